import type { Cluster } from 'ioredis';
import type { Lock } from 'redlock';
import { type Clock, systemClock } from '../../core/clock.ts';
import { withTimeout } from '../../core/errors.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import { coversAllSlots, type Topology } from '../../core/topology.ts';
import { epochRaise } from '../scripts/epoch-raise.ts';
import { scriptsOn } from '../scripts/registry.ts';
import type { StoppedLeadingReason } from './leadership.ts';
import type { Lease, LeaseHold } from './lease.ts';
import { LeaseUnavailableError } from './lease-errors.ts';
import { LeaseMemberClient } from './lease-member-client.ts';
import {
  onDistinctShards,
  placeQuorumMembers,
  QUORUM_MEMBER_COUNT,
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
 *   holder's token again (worker/scripts/lease-extend.ts), so one lost member still leaves the token on
 *   the other two, and any majority includes one of them.
 * The family counter `keys.epoch` is raised too (best effort) and read as a floor, so tokens keep
 * increasing when a cluster moves between single-key and quorum mode.
 *
 * Placement changes (the argument, in full in docs/leader-election.md, "Placement changes"): every
 * worker re-derives the placement from the topology at most every `placementCheckIntervalMs`, in the
 * background of its acquires AND its renewals. A read that does not own every slot (`coversAllSlots`:
 * the CLUSTER SHARDS empty-slots bug, a reply mid-update) or that fails changes nothing. When a read
 * derives another placement B (what a worker started on that map would choose) than the current A,
 * A is stale; B, and later A once left, are remembered.
 * - Every acquire, after winning its own members, reads those of every remembered placement (and the
 *   single-key lease) and gives back unless each shows no other owner's value on a majority of
 *   answers: of two overlapping acquisitions on different key sets, at least one sees the other.
 * - A stale follower keeps competing on A; it moves to B once the settle period
 *   (`placementSettleMs`) has passed since the first read that showed B.
 * - A stale leader keeps leading on A through the same settle period, then `stepDownReason()`
 *   answers `placement-changed` and the elector hands over by the normal release path.
 * A later complete read that derives A again cancels the move.
 */
export interface QuorumLeaseOptions {
  readonly cluster: Cluster;
  readonly keys: KeyspaceKeys;
  readonly placement: QuorumPlacement;
  readonly logger: Logger;
  /** Enables the placement check (on acquires and renewals). */
  readonly topology?: () => Promise<Topology>;
  readonly clock?: Clock;
  /** @default 10000 */
  readonly placementCheckIntervalMs?: number;
  /**
   * Time from the first read that showed the placement stale to the move to the new one (and to a
   * stale leader's step-down). Must exceed the check interval + a renew interval + a topology read's
   * bound, so that every competing worker that can read the topology has read it since; the rest is
   * margin for the nodes' slot maps to agree (docs/leader-election.md, "Placement changes").
   * @default placementCheckIntervalMs + 2 * ttlMs (16 s with the default timings)
   */
  readonly placementSettleMs?: number;
}

/** A placement found stale: where to go, and since when (monotonic, end of the read that showed it). */
interface PendingMove {
  readonly to: QuorumPlacement;
  readonly seenAtMs: number;
}

/** A placement this worker derived or left: checked free before any acquire until `untilMs`. */
interface RecentPlacement {
  readonly placement: QuorumPlacement;
  untilMs: number;
}

function placementId(placement: QuorumPlacement): string {
  return placement.members.map((m) => m.partitionIndex).join(',');
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
  private pendingMove: PendingMove | undefined;
  /** Placements derived or left lately, by placementId: an acquire waits while one is held. */
  private readonly recent = new Map<string, RecentPlacement>();
  /** Epoch keys of earlier placements: read as a floor by the fencing step. */
  private readonly retiredEpochKeys: string[] = [];
  /** TTL of the last acquire/renewal: the default settle period follows it. */
  private ttlMs = 3000;
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
    this.schedulePlacementCheck();
    this.ttlMs = ttlMs;
    this.voteTimeoutMs = voteTimeoutFor(ttlMs);
    if (this.pendingMove && this.settled(this.pendingMove)) this.completeMove(this.pendingMove);
    const generation = this.generation;
    const result = await generation.quorum.acquire(ttlMs);
    if (!result.acquired) return undefined;
    // Read AFTER winning, as every worker does: of two overlapping acquisitions on different key
    // sets, at least one sees the other's value and gives back (docs/leader-election.md).
    const others = this.recentPlacements().filter((p) => !samePlacement(p, generation.placement));
    const [singleKeyHeld, othersFree] = await Promise.all([
      this.singleKeyLeaseHeld(),
      this.placementsFree(others, result.lock.value),
    ]);
    if (singleKeyHeld || !othersFree) {
      await generation.quorum.release(result.lock).catch(() => {});
      return undefined;
    }
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
    this.schedulePlacementCheck();
    this.ttlMs = ttlMs;
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

  /**
   * `placement-changed` once the settle period has passed since a topology read showed this
   * placement stale (see the class comment): until then the holder keeps leading on it, which is
   * safe (a worker that moved remembers this placement and gives back while it is held) and keeps
   * the hand-over gap short.
   */
  stepDownReason(): StoppedLeadingReason | undefined {
    const move = this.pendingMove;
    return move && this.settled(move) ? 'placement-changed' : undefined;
  }

  private settleMs(): number {
    return this.options.placementSettleMs ?? this.placementCheckIntervalMs() + 2 * this.ttlMs;
  }

  private settled(move: PendingMove): boolean {
    return this.clock.monotonicMs() - move.seenAtMs >= this.settleMs();
  }

  /**
   * Remembers a placement for at least twice the settle period -- long enough for a holder of it that
   * reads the topology to have found it stale (within the settle period of this worker's verdict) and
   * stepped down (one settle period after its own) -- and after that until it is seen free once, so a
   * holder that cannot read the topology keeps this worker waiting for as long as it holds.
   */
  private remember(placement: QuorumPlacement): void {
    const untilMs = this.clock.monotonicMs() + 2 * this.settleMs();
    const id = placementId(placement);
    const known = this.recent.get(id);
    if (known) known.untilMs = Math.max(known.untilMs, untilMs);
    else this.recent.set(id, { placement, untilMs });
  }

  /** Remembered placements other than the current one. */
  private recentPlacements(): QuorumPlacement[] {
    const current = placementId(this.generation.placement);
    return [...this.recent].filter(([id]) => id !== current).map(([, entry]) => entry.placement);
  }

  /**
   * True when no member of `placements` holds another owner's value (not `ownValue`, the value of
   * the acquisition in progress, nor a live hold's) and a majority of each placement's members
   * answered (GET, each bounded by the vote timeout). True for none.
   */
  private async placementsFree(placements: readonly QuorumPlacement[], ownValue: string): Promise<boolean> {
    if (placements.length === 0) return true;
    const quorum = Math.floor(QUORUM_MEMBER_COUNT / 2) + 1;
    const verdicts = await Promise.all(
      placements.map(async (placement) => {
        const reads = await Promise.allSettled(
          placement.members.map((m) =>
            withTimeout(
              this.options.cluster.get(m.leaseKey),
              this.voteTimeoutMs,
              `lease read of ${m.leaseKey}`,
            ),
          ),
        );
        const answers = reads.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        // Placements may share members: a member of the one just won holds `ownValue`.
        const heldByOthers = answers.filter(
          (value) => value !== null && value !== ownValue && !this.tokens.has(value),
        ).length;
        return { placement, answered: answers.length, heldByOthers };
      }),
    );
    const busy = verdicts.filter((v) => v.heldByOthers > 0 || v.answered < quorum);
    const nowMs = this.clock.monotonicMs();
    for (const v of verdicts) {
      const id = placementId(v.placement);
      const entry = this.recent.get(id);
      if (entry && entry.untilMs <= nowMs && !busy.includes(v)) this.recent.delete(id);
    }
    for (const v of busy) {
      this.options.logger.debug('lease.placement_move_waiting', {
        members: v.placement.members.map((m) => m.leaseKey),
        answered: v.answered,
        heldByOthers: v.heldByOthers,
      });
    }
    return busy.length === 0;
  }

  private stateOf(hold: LeaseHold): HoldState {
    const state = this.holds.get(hold);
    if (!state) throw new TypeError('QuorumLease: this hold is not (or no longer) held through this lease');
    return state;
  }

  /**
   * The single-key lease of the same leader name (`keys.lease`), read AFTER this acquire won: a
   * worker that started in single-key mode (a cluster resharded across the 3-shard line) checks the
   * fixed quorum members the same way after winning `keys.lease` (single-key-lease.ts), so of two
   * overlapping acquisitions at least one sees the other and gives back. A read that does not answer
   * counts as free: the check must not make one primary's failover block the quorum lease.
   */
  private async singleKeyLeaseHeld(): Promise<boolean> {
    const key = this.options.keys.lease;
    try {
      const value = await withTimeout(
        this.options.cluster.get(key),
        this.voteTimeoutMs,
        `lease read of ${key}`,
      );
      return value !== null;
    } catch {
      return false;
    }
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
    const scripts = scriptsOn(cluster);
    const raise = (key: string) =>
      withTimeout(scripts.run(epochRaise, [key], [String(token)]), timeoutMs, `epoch write of ${key}`);
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

  /**
   * Moves to the pending placement (its settle period has passed). The placement left is remembered,
   * so this worker's acquires check it free after winning the new one (see `acquire`).
   */
  private completeMove(move: PendingMove): void {
    const from = this.generation.placement;
    this.pendingMove = undefined;
    this.remember(from);
    this.retiredEpochKeys.push(...from.members.map((m) => m.epochKey));
    this.options.logger.warn('lease.placement_changed', {
      from: from.members.map((m) => m.leaseKey),
      to: move.to.members.map((m) => m.leaseKey),
      strategy: move.to.strategy,
    });
    this.generation = this.build(move.to);
  }

  private placementCheckIntervalMs(): number {
    return this.options.placementCheckIntervalMs ?? DEFAULT_PLACEMENT_CHECK_INTERVAL_MS;
  }

  private schedulePlacementCheck(): void {
    const topology = this.options.topology;
    if (!topology || this.placementCheck) return;
    const nowMs = this.clock.monotonicMs();
    if (nowMs - this.lastPlacementCheckMs < this.placementCheckIntervalMs()) return;
    this.lastPlacementCheckMs = nowMs;
    this.placementCheck = (async () => this.checkPlacement(await topology()))()
      .catch((error: unknown) => this.options.logger.debug('lease.placement_check_failed', { error }))
      .finally(() => {
        this.placementCheck = undefined;
      });
  }

  /** One topology read's verdict on the current placement (see the class comment). */
  private checkPlacement(current: Topology): void {
    const { keys, logger } = this.options;
    const placement = this.generation.placement;
    if (!coversAllSlots(current)) {
      logger.debug('lease.placement_check_failed', {
        reason: 'the topology read does not own every slot',
        shards: current.shards.length,
      });
      return;
    }
    let next: QuorumPlacement;
    try {
      next = placeQuorumMembers(keys, current);
    } catch (error) {
      // Fewer than 3 shards own slots: the single-key/quorum boundary, handled by a restart of the
      // service (docs/leader-election.md, "Operations"); the placement stays.
      logger.debug('lease.placement_check_failed', { error });
      return;
    }
    // Stale: this slot map places the members elsewhere -- what every worker reading it, and every
    // worker started on it, chooses (the canonical placement), so the fleet converges on one.
    const stale = !samePlacement(next, placement) && onDistinctShards(next.members, current);
    if (stale) this.remember(next);
    if (!stale) {
      if (this.pendingMove) {
        logger.info('lease.placement_move_cancelled', { members: placement.members.map((m) => m.leaseKey) });
        this.pendingMove = undefined;
      }
      return;
    }
    if (this.pendingMove && samePlacement(this.pendingMove.to, next)) return;
    this.pendingMove = { to: next, seenAtMs: this.clock.monotonicMs() };
    logger.warn('lease.placement_stale', {
      members: placement.members.map((m) => m.leaseKey),
      next: next.members.map((m) => m.leaseKey),
      strategy: next.strategy,
      holding: this.tokens.size > 0,
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
