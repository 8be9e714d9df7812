import type { Cluster } from 'ioredis';
import type { Lock } from 'redlock';
import { withTimeout } from '../../core/errors.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Lease, LeaseHold } from './lease.ts';
import { LeaseUnavailableError } from './lease-errors.ts';
import { LeaseMemberClient } from './lease-member-client.ts';
import { fixedPlacement } from './quorum-placement.ts';
import { RedlockQuorum, voteTimeoutFor } from './redlock-quorum.ts';

/**
 * The lease on a cluster of fewer than 3 shards: one key (`keys.lease`), a "quorum" of one, made
 * to survive a failover of its primary the way Redisson does it: every acquire and renewal is
 * followed, on the same connection, by `WAIT 1 <vote timeout>`, and counts only when a replica
 * acknowledged it -- unless the primary has no replica attached (ROLE), in which case there is no
 * one to promote and nothing to wait for. The fencing token is `INCR keys.epoch` (same hash tag, same
 * primary), acknowledged the same way, so a promoted replica holds the newest token.
 *
 * After winning `keys.lease` it reads the fixed quorum members and gives back when any is held: a
 * worker still in quorum mode after a reshard across the 3-shard line (docs/leader-election.md).
 *
 * What it cannot cover: a replica that was detached from its primary when the write was
 * acknowledged by nobody and is promoted later (a partition), and a primary without replicas that
 * restarts without persistence (its epoch counter starts again from 0). docs/leader-election.md.
 */
export interface SingleKeyLeaseOptions {
  readonly cluster: Cluster;
  readonly keys: KeyspaceKeys;
  /** Replicas of the lease's shard per the topology: used only when ROLE is refused. */
  readonly knownReplicas: () => number;
}

export class SingleKeyLease implements Lease {
  readonly mode = 'single-key' as const;
  private readonly client: LeaseMemberClient;
  private readonly quorum: RedlockQuorum;
  private voteTimeoutMs = voteTimeoutFor(3000);
  private readonly tokens = new Map<string, number>();
  private readonly holds = new WeakMap<LeaseHold, { lock: Lock }>();

  constructor(private readonly options: SingleKeyLeaseOptions) {
    this.client = new LeaseMemberClient({
      cluster: options.cluster,
      leaseKey: options.keys.lease,
      epochKey: options.keys.epoch,
      voteTimeoutMs: () => this.voteTimeoutMs,
      tokenOf: (value) => this.tokens.get(value) ?? 0,
      requireReplicaAck: true,
      knownReplicas: options.knownReplicas,
    });
    this.quorum = new RedlockQuorum([this.client]);
  }

  describe(): Record<string, unknown> {
    return { mode: this.mode, members: [this.options.keys.lease], epoch: this.options.keys.epoch };
  }

  async acquire(ttlMs: number): Promise<LeaseHold | undefined> {
    this.voteTimeoutMs = voteTimeoutFor(ttlMs);
    const result = await this.quorum.acquire(ttlMs);
    if (!result.acquired) return undefined;
    if (await this.quorumLeaseHeld()) {
      await this.quorum.release(result.lock).catch(() => {});
      return undefined;
    }
    let token: number;
    try {
      token = await this.client.incrementEpoch();
    } catch (error) {
      await this.quorum.release(result.lock).catch(() => {});
      throw new LeaseUnavailableError('fence', 'epoch increment not acknowledged', { cause: error });
    }
    const hold: LeaseHold = { fencingToken: token };
    this.holds.set(hold, { lock: result.lock });
    this.tokens.set(result.lock.value, token);
    return hold;
  }

  /**
   * The fixed quorum members of the same leader name, read AFTER `keys.lease` was won: any of them
   * held means a worker in quorum mode (started before a reshard across the 3-shard line) may lead.
   * It reads `keys.lease` after winning its members (quorum-lease.ts), so of two overlapping
   * acquisitions at least one gives back. Reads that do not answer count as free. A quorum worker on
   * a `topology` placement (an uneven slot map only) is not seen: docs/leader-election.md.
   */
  private async quorumLeaseHeld(): Promise<boolean> {
    const reads = await Promise.allSettled(
      fixedPlacement(this.options.keys).members.map((m) =>
        withTimeout(this.options.cluster.get(m.leaseKey), this.voteTimeoutMs, `lease read of ${m.leaseKey}`),
      ),
    );
    return reads.some((r) => r.status === 'fulfilled' && r.value !== null);
  }

  async extend(hold: LeaseHold, ttlMs: number): Promise<void> {
    const state = this.holds.get(hold);
    if (!state)
      throw new TypeError('SingleKeyLease: this hold is not (or no longer) held through this lease');
    this.voteTimeoutMs = voteTimeoutFor(ttlMs);
    state.lock = await this.quorum.extend(state.lock, ttlMs);
  }

  async release(hold: LeaseHold): Promise<void> {
    const state = this.holds.get(hold);
    if (!state) return;
    this.holds.delete(hold);
    try {
      await this.quorum.release(state.lock);
    } finally {
      this.tokens.delete(state.lock.value);
    }
  }
}
