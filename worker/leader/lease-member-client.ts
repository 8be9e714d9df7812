import type { Cluster } from 'ioredis';
import { withTimeout } from '../../core/errors.ts';
import { leaseAcquire } from '../scripts/lease-acquire.ts';
import { leaseExtend } from '../scripts/lease-extend.ts';
import { leaseRelease } from '../scripts/lease-release.ts';
import type { RedisScript } from '../scripts/redis-script.ts';
import { scriptsOn } from '../scripts/registry.ts';
import { ReplicaAckError } from './lease-errors.ts';
import type { LeaseMember } from './redlock-quorum.ts';

/**
 * One member of the lease: its votes (acquire, extend, release) run the registry's lease scripts
 * (worker/scripts/lease-*.ts) on this member's own keys through the one shared Cluster client.
 * `leaseKey` has a hash tag that lives on this member's primary, so N members give the redlock
 * adapter (redlock-quorum.ts) a quorum over N primaries without N connections. A vote answers true
 * (the script applied) or false (another owner's value is there); anything else rejects.
 *
 * Every vote is bounded by `voteTimeoutMs()`: redlock waits for all votes before it settles a failed
 * quorum, and ioredis keeps a command for a dead primary queued until its retries run out, so an
 * unbounded vote would hold every operation for as long as a failover takes. A timed-out command may
 * still run later on Redis; that is harmless (see docs/leader-election.md, "Late writes").
 */
export interface LeaseMemberClientOptions {
  readonly cluster: Cluster;
  readonly leaseKey: string;
  /** Epoch counter beside the lease key (same hash tag); raised by every renewal. */
  readonly epochKey: string;
  /** Bound of one vote, read at each call (it follows the TTL of the current operation). */
  readonly voteTimeoutMs: () => number;
  /** Fencing token of the hold whose owner value is given (0 when unknown): passed to renewals. */
  readonly tokenOf: (ownerValue: string) => number;
  /**
   * Single-key mode: after a successful acquire or renewal, `WAIT 1 <voteTimeoutMs>` on the same
   * primary connection (see `confirmReplicaAck`), and fail the vote (ReplicaAckError) when the
   * primary has a replica attached (ROLE, same pipeline as WAIT) and none acknowledged the write.
   */
  readonly requireReplicaAck?: boolean;
  /**
   * Replicas the topology shows for this member's shard: used only when ROLE is refused (an ACL user
   * without @admin), in place of the replicas the primary reports attached.
   */
  readonly knownReplicas?: () => number;
}

/** Replicas attached to a primary, from a ROLE reply (`['master', offset, [[ip, port, offset], ...]]`). */
function attachedReplicas(role: unknown): number | undefined {
  if (!Array.isArray(role) || role.length < 3) return undefined;
  const kind = Buffer.isBuffer(role[0]) ? role[0].toString() : String(role[0]);
  if (kind !== 'master') return undefined;
  return Array.isArray(role[2]) ? role[2].length : undefined;
}

export class LeaseMemberClient implements LeaseMember {
  readonly leaseKey: string;
  readonly epochKey: string;

  constructor(private readonly options: LeaseMemberClientOptions) {
    this.leaseKey = options.leaseKey;
    this.epochKey = options.epochKey;
  }

  /** Takes the member key for `ownerValue`: false when the key exists (whoever owns it). */
  acquire(ownerValue: string, ttlMs: number): Promise<boolean> {
    return this.vote(leaseAcquire, 'acquire', [this.leaseKey], [ownerValue, String(ttlMs)]);
  }

  /**
   * Renews the member key for `ownerValue` and raises the member's epoch to the hold's token: false
   * when the key holds another owner's value.
   */
  extend(ownerValue: string, ttlMs: number): Promise<boolean> {
    const token = String(this.options.tokenOf(ownerValue));
    return this.vote(
      leaseExtend,
      'extend',
      [this.leaseKey, this.epochKey],
      [ownerValue, String(ttlMs), token],
    );
  }

  /** Deletes the member key while it holds `ownerValue`: false when it does not. */
  release(ownerValue: string): Promise<boolean> {
    return this.vote(leaseRelease, 'release', [this.leaseKey], [ownerValue]);
  }

  private async vote(
    script: RedisScript<boolean>,
    operation: 'acquire' | 'extend' | 'release',
    keys: readonly string[],
    args: readonly string[],
  ): Promise<boolean> {
    const timeoutMs = this.options.voteTimeoutMs();
    const what = `${operation} on ${this.leaseKey}`;
    const scripts = scriptsOn(this.options.cluster);
    if (!this.options.requireReplicaAck || operation === 'release') {
      return await withTimeout(scripts.run(script, keys, args), timeoutMs, what);
    }
    const run = async () => {
      const applied = await scripts.run(script, keys, args);
      if (applied) await this.confirmReplicaAck(this.leaseKey, timeoutMs);
      return applied;
    };
    return await withTimeout(run(), 2 * timeoutMs, what);
  }

  /**
   * Single-key fencing: INCR of the epoch counter, acknowledged like a lease write (ROLE, WAIT in the
   * same pipeline). Returns the new token; rejects (ReplicaAckError, TimeoutError) when it cannot
   * be shown to survive a failover.
   */
  async incrementEpoch(): Promise<number> {
    const timeoutMs = this.options.voteTimeoutMs();
    const run = async () => {
      const pipeline = this.options.cluster.pipeline();
      pipeline.incr(this.epochKey);
      pipeline.role();
      pipeline.wait(1, timeoutMs);
      const results = (await pipeline.exec()) ?? [];
      const [incrError, token] = results[0] ?? [new Error('empty pipeline reply'), undefined];
      if (incrError) throw incrError;
      this.checkReplicaAck(this.epochKey, results, timeoutMs);
      return Number(token);
    };
    return await withTimeout(run(), 2 * timeoutMs, `epoch increment on ${this.epochKey}`);
  }

  /**
   * ROLE and WAIT in one pipeline behind a keyed read of `key` (EXISTS), sent after the script's
   * reply: ioredis routes a cluster pipeline by the slot of its keyed commands, so ROLE and WAIT run
   * on the primary and the connection that took the write, and a WAIT sent after that write's reply
   * covers it (a script resent by ioredis after NOSCRIPT is covered too, which a WAIT queued in the
   * script's own pipeline would not be). WAIT blocks that shared connection for at most `timeoutMs`
   * when no replica answers.
   */
  private async confirmReplicaAck(key: string, timeoutMs: number): Promise<void> {
    const pipeline = this.options.cluster.pipeline();
    pipeline.exists(key);
    pipeline.role();
    pipeline.wait(1, timeoutMs);
    const results = (await pipeline.exec()) ?? [];
    this.checkReplicaAck(key, results, timeoutMs);
  }

  /** `results[1]` is ROLE's reply, `results[2]` WAIT's. */
  private checkReplicaAck(key: string, results: readonly [Error | null, unknown][], timeoutMs: number): void {
    const [roleError, roleReply] = results[1] ?? [];
    const [waitError, acked] = results[2] ?? [];
    if (waitError) throw waitError;
    const known = this.options.knownReplicas?.() ?? 1;
    const replicas = roleError ? known : (attachedReplicas(roleReply) ?? known);
    if (replicas > 0 && !(Number(acked) >= 1)) throw new ReplicaAckError(key, replicas, timeoutMs);
  }
}
