import type { Cluster } from 'ioredis';
import type { Lock } from 'redlock';
import { type Clock, systemClock } from '../../core/clock.ts';
import { withTimeout } from '../../core/errors.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import type { Topology } from '../../core/topology.ts';
import type { Lease, LeaseHold } from './lease.ts';
import { LeaseUnavailableError } from './lease-errors.ts';
import { LeaseMemberClient } from './lease-member-client.ts';
import { leaseScripts } from './lease-scripts.ts';
import {
  onDistinctShards,
  placeQuorumMembers,
  type QuorumPlacement,
  samePlacement,
} from './quorum-placement.ts';
import { RedlockQuorum, voteTimeoutFor } from './redlock-quorum.ts';

/**
 * The lease as a redlock quorum over three members, one key per primary (see quorum-placement.ts),
 * all reached through the one shared Cluster client, each vote bounded on its own. A primary that
 * fails over takes one member with it: the holder keeps renewing on the other two, and a contender
 * finds at most one free member, never a majority.
 *
 * Fencing (the argument, in full in docs/leader-election.md): each member keeps an epoch counter
 * beside its lease key. After the lease is won, the epochs are read from the members; with answers
 * from a majority R, token = 1 + max(answers). The token is then written to every member with "set
 * if greater" and the acquisition counts only when a majority W took it; otherwise the lease is
 * released and the attempt fails.
 * - Increasing: a leader's W was complete before it started leading, and the next leader reads only
 *   after it has won the lease, which needs the previous leader's lease gone from at least one member
 *   of every majority -- so after W was written. Any two majorities intersect: the next R contains a
 *   member of W and sees the previous token, so the next token is greater.
 * - Unique: a value is accepted at most once per member (strictly greater), so two acquirers that
 *   computed the same token cannot both get a majority of writes.
 * - Failover: a promoted replica may miss the newest epoch write on ITS member. Writes go to all
 *   three members (not just a majority), and every renewal raises each member's epoch to the
 *   holder's token again (lease-scripts.ts `extend`), so one lost member still leaves the token on
 *   the other two, and any majority includes one of them.
 * The family counter `keys.epoch` is raised too (best effort) and read as a floor, so tokens keep
 * increasing when a cluster moves between single-key and quorum mode.
 *
 * `acquire` is only called by a follower (no hold of this lease alive); only then may the placement
 * change: when a topology check (at most every `placementCheckIntervalMs`, in the background) finds
 * two members on one shard, the next acquire uses a new placement (see quorum-placement.ts for why
 * this is rare and what it costs).
 */
export interface QuorumLeaseOptions {
  readonly cluster: Cluster;
  readonly keys: KeyspaceKeys;
  readonly placement: QuorumPlacement;
  readonly logger: Logger;
  /** Enables the follower-time placement check. */
  readonly topology?: () => Promise<Topology>;
  readonly clock?: Clock;
  readonly placementCheckIntervalMs?: number;
}

interface Generation {
  readonly placement: QuorumPlacement;
  readonly clients: readonly LeaseMemberClient[];
  readonly quorum: RedlockQuorum;
}

interface HoldState {
  readonly generation: Generation;
  lock: Lock;
}

const DEFAULT_PLACEMENT_CHECK_INTERVAL_MS = 10_000;

export class QuorumLease implements Lease {
  readonly mode = 'quorum' as const;
  private generation: Generation;
  private pendingPlacement: QuorumPlacement | undefined;
  /** Epoch keys of earlier placements: read as a floor by the fencing step. */
  private readonly retiredEpochKeys: string[] = [];
  private voteTimeoutMs = voteTimeoutFor(3000);
  /** Owner value -> fencing token, for the holds alive (renewals raise the member epochs to it). */
  private readonly tokens = new Map<string, number>();
  private readonly holds = new WeakMap<LeaseHold, HoldState>();
  private highestToken = 0;
  private readonly clock: Clock;
  private lastPlacementCheckMs = Number.NEGATIVE_INFINITY;
  private placementCheck: Promise<void> | undefined;

  constructor(private readonly options: QuorumLeaseOptions) {
    this.clock = options.clock ?? systemClock;
    this.generation = this.build(options.placement);
  }

  get placement(): QuorumPlacement {
    return this.generation.placement;
  }

  describe(): Record<string, unknown> {
    return {
      mode: this.mode,
      strategy: this.generation.placement.strategy,
      members: this.generation.placement.members.map((m) => m.leaseKey),
    };
  }

  private build(placement: QuorumPlacement): Generation {
    const clients = placement.members.map(
      (m) =>
        new LeaseMemberClient({
          cluster: this.options.cluster,
          leaseKey: m.leaseKey,
          epochKey: m.epochKey,
          voteTimeoutMs: () => this.voteTimeoutMs,
          tokenOf: (value) => this.tokens.get(value) ?? 0,
        }),
    );
    return { placement, clients, quorum: new RedlockQuorum(clients) };
  }

  async acquire(ttlMs: number): Promise<LeaseHold | undefined> {
    this.adoptPendingPlacement();
    this.schedulePlacementCheck();
    this.voteTimeoutMs = voteTimeoutFor(ttlMs);
    const generation = this.generation;
    const result = await generation.quorum.acquire(ttlMs);
    if (!result.acquired) return undefined;
    let token: number;
    try {
      token = await this.fence(generation);
    } catch (error) {
      await generation.quorum.release(result.lock).catch(() => {});
      throw error;
    }
    const hold: LeaseHold = { fencingToken: token };
    this.holds.set(hold, { generation, lock: result.lock });
    this.tokens.set(result.lock.value, token);
    this.highestToken = Math.max(this.highestToken, token);
    return hold;
  }

  async extend(hold: LeaseHold, ttlMs: number): Promise<void> {
    const state = this.stateOf(hold);
    this.voteTimeoutMs = voteTimeoutFor(ttlMs);
    state.lock = await state.generation.quorum.extend(state.lock, ttlMs);
  }

  async release(hold: LeaseHold): Promise<void> {
    const state = this.holds.get(hold);
    if (!state) return;
    this.holds.delete(hold);
    try {
      await state.generation.quorum.release(state.lock);
    } finally {
      this.tokens.delete(state.lock.value);
    }
  }

  private stateOf(hold: LeaseHold): HoldState {
    const state = this.holds.get(hold);
    if (!state) throw new TypeError('QuorumLease: this hold is not (or no longer) held through this lease');
    return state;
  }

  /** The fencing step; see the class comment for why it yields increasing, unique tokens. */
  private async fence(generation: Generation): Promise<number> {
    const { cluster, keys } = this.options;
    const timeoutMs = this.voteTimeoutMs;
    const members = generation.placement.members;
    const quorum = Math.floor(members.length / 2) + 1;
    const read = (key: string) =>
      withTimeout(cluster.get(key), timeoutMs, `epoch read of ${key}`).then(parseEpoch);
    const [memberReads, floorReads] = await Promise.all([
      Promise.allSettled(members.map((m) => read(m.epochKey))),
      Promise.allSettled([keys.epoch, ...this.retiredEpochKeys].map(read)),
    ]);
    const answers = memberReads.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (answers.length < quorum) {
      throw new LeaseUnavailableError(
        'fence',
        `epoch read answered by ${answers.length} of ${members.length} members`,
        {
          cause: new AggregateError(memberReads.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []))),
        },
      );
    }
    const floors = floorReads.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const token = 1 + Math.max(this.highestToken, ...answers, ...floors);
    const raise = (key: string) =>
      withTimeout(
        cluster.eval(leaseScripts.raiseEpoch.text, 1, key, String(token)),
        timeoutMs,
        `epoch write of ${key}`,
      ).then((reply) => reply === 1);
    const [memberWrites] = await Promise.all([
      Promise.allSettled(members.map((m) => raise(m.epochKey))),
      raise(keys.epoch).catch(() => false),
    ]);
    const written = memberWrites.filter((w) => w.status === 'fulfilled' && w.value).length;
    if (written < quorum) {
      this.highestToken = Math.max(this.highestToken, token);
      throw new LeaseUnavailableError(
        'fence',
        `token ${token} written on ${written} of ${members.length} members`,
        {
          cause: new AggregateError(memberWrites.flatMap((w) => (w.status === 'rejected' ? [w.reason] : []))),
        },
      );
    }
    return token;
  }

  private adoptPendingPlacement(): void {
    const next = this.pendingPlacement;
    if (!next) return;
    this.pendingPlacement = undefined;
    this.retiredEpochKeys.push(...this.generation.placement.members.map((m) => m.epochKey));
    this.options.logger.warn('lease.placement_changed', {
      from: this.generation.placement.members.map((m) => m.leaseKey),
      to: next.members.map((m) => m.leaseKey),
      strategy: next.strategy,
    });
    this.generation = this.build(next);
  }

  private schedulePlacementCheck(): void {
    const topology = this.options.topology;
    if (!topology || this.placementCheck) return;
    const nowMs = this.clock.monotonicMs();
    const intervalMs = this.options.placementCheckIntervalMs ?? DEFAULT_PLACEMENT_CHECK_INTERVAL_MS;
    if (nowMs - this.lastPlacementCheckMs < intervalMs) return;
    this.lastPlacementCheckMs = nowMs;
    this.placementCheck = (async () => {
      const current = await topology();
      if (onDistinctShards(this.generation.placement.members, current)) return;
      const next = placeQuorumMembers(this.options.keys, current);
      if (samePlacement(next, this.generation.placement) || !onDistinctShards(next.members, current)) return;
      this.pendingPlacement = next;
    })()
      .catch((error: unknown) => this.options.logger.debug('lease.placement_check_failed', { error }))
      .finally(() => {
        this.placementCheck = undefined;
      });
  }
}

function parseEpoch(reply: string | null): number {
  if (reply === null) return 0;
  const value = Number(reply);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`epoch counter holds ${JSON.stringify(reply)}`);
  return value;
}
