import type { Clock } from '../../core/clock.ts';
import { withTimeout } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { ExpiryEvent } from '../expiry/expiry-event.ts';
import type { DoneOutcome, EventMeta, OfferResult } from '../expiry/processor.ts';
import { HandOutCursor } from './hand-out-cursor.ts';
import type { ProcessedMark } from './processed-mark.ts';
import { ProgressTracker } from './progress-tracker.ts';
import type { Alignment, ReplayWindow, WindowEntry } from './replay-window.ts';

/**
 * Sits between the fan-in and the processor and makes a change of leader lose nothing:
 *
 * - Every worker appends every event to its ReplayWindow (followers stay warm).
 * - The leader numbers each primary's events (ProgressTracker), hands them to the processor, and every
 *   `markIntervalMs` writes, per primary, the mark of the contiguous prefix its handler calls settled.
 * - A new leader first reads the marks, then (synchronously, so no live event slips between) sets each
 *   primary's hand-out cursor at the first window entry after its mark, then goes live.
 *
 * Hand-out with back-pressure: entries go from the window to the processor only while the processor
 * has room (`room()`, and `onRoom` when calls free it; at most HAND_OUT_BATCH queued, refilled once
 * per event-loop turn), per primary from its cursor, oldest first, one primary after another in turn. Replayed entries (`replayed: true`) and live ones share that path, so
 * a primary's live events wait behind its replay backlog and its order is kept; a suspended primary's
 * cursor stands still. While leading, the window holds (keeps past its time bound, never past
 * REPLAY_MAX_EVENTS) every entry from the oldest one whose hand-out is not over: not handed out yet,
 * or handed out and not reported done. When the count bound pushes out an entry not handed out yet,
 * that event is lost to this leader: it is numbered and settled at once (the ids and the mark's tail
 * go on as a follower's window numbers them; a successor does not replay it) and counted through
 * `onBacklogShed` (EventsShed, reason `backlog-full`). So with replay on the processor queue never
 * sheds: the window is where a leader slower than the event rate sheds.
 *
 * Semantics (README, "Delivery guarantees"): at-least-once while one healthy follower remains. The one
 * case it cannot decide: calls that were running or completed on the old leader after its last mark
 * write (at most `markIntervalMs` of events plus HANDLER_CONCURRENCY calls) are handled again; they
 * carry the same `id`, so a downstream drops them.
 */
export interface MarkStoreLike {
  read(nodeIds: readonly string[]): Promise<Map<string, ProcessedMark>>;
  write(marks: readonly ProcessedMark[]): Promise<void>;
}

export interface ProcessorLike {
  offer(event: ExpiryEvent, meta: EventMeta): OfferResult;
  /** How many events `offer` can queue now (0 when intake is closed). */
  room(): number;
  /** Calls `listener` (synchronously) whenever events left the queue; the listener may offer. */
  onRoom(listener: () => void): void;
  /** `queued`: events waiting in the queue now. */
  stats(): { readonly queued: number };
  /** Leadership ended: hand the queued events back (they are not settled; the successor replays them). */
  clearQueue(): number;
}

export interface ReplayCoordinatorOptions {
  readonly window: ReplayWindow;
  readonly marks: MarkStoreLike;
  readonly processor: ProcessorLike;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often the leader writes its marks; bounds the duplicates of a crash. */
  readonly markIntervalMs: number;
  /** Fingerprints per mark tail. */
  readonly tailLength: number;
  /** Bound on the marks read at acquisition; on failure the whole window is replayed (duplicates, no loss). */
  readonly markReadTimeoutMs: number;
  /** Events of the leader's backlog the window's count bound pushed out before they were handed out. */
  readonly onBacklogShed?: (count: number, nodeId: string) => void;
}

interface Session {
  readonly fencingToken: number;
  readonly signal: AbortSignal;
  readonly tracker: ProgressTracker;
  live: boolean;
  /** Primaries whose subscription dropped while leading: their events wait in the window. */
  readonly suspended: Set<string>;
  /** Per primary, where its hand-out stands (from its catch-up plan, or its first live event). */
  readonly cursors: Map<string, HandOutCursor>;
  /** Primaries that may have entries to hand out, in turn order. */
  readonly ready: Set<string>;
}

/**
 * At most this many events wait in the processor queue at once (never more than its room): a handler
 * that completes synchronously runs the whole queue in one chain of microtasks, without yielding to
 * timers (lease renewals) or I/O, so the queue is refilled in batches, one per event-loop turn.
 */
export const HAND_OUT_BATCH = 512;

export class ReplayCoordinator {
  private session: Session | undefined;
  private markTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private pumpAgain = false;
  private refill: NodeJS.Immediate | undefined;

  constructor(private readonly options: ReplayCoordinatorOptions) {
    if (!(options.markIntervalMs > 0)) throw new RangeError('markIntervalMs must be > 0');
    // Quiet primaries age out of the window too.
    this.expiryTimer = setInterval(() => options.window.expire(options.clock.monotonicMs()), 1000);
    this.expiryTimer.unref();
    // Refills wait for the next turn of the event loop: a handler that completes synchronously settles
    // in a microtask, so refilling at once would run a whole backlog without ever yielding to timers
    // (lease renewals) or I/O; this way at most one queue's worth runs per turn.
    options.processor.onRoom(() => {
      if (this.refill !== undefined || !this.session?.live) return;
      this.refill = setImmediate(() => {
        this.refill = undefined;
        if (this.session?.live) this.pump(this.session);
      });
    });
  }

  /** From the fan-in, in arrival order. */
  onEvent(event: ExpiryEvent): void {
    const entry = this.options.window.append(event);
    const session = this.session;
    if (!session?.live) return;
    const { nodeId } = event;
    // A primary first seen while leading: its numbering starts here (no previous leader had it).
    const cursor =
      session.cursors.get(nodeId) ?? this.openCursor(session, nodeId, entry.position, entry.position);
    this.shedDroppedBacklog(session, nodeId, cursor);
    if (session.suspended.has(nodeId)) return;
    session.ready.add(nodeId);
    this.pump(session);
  }

  /**
   * This worker's subscription to `nodeId` dropped: it missed that primary's events for a moment. While
   * leading, its mark for that primary must not move past the gap, so the primary is suspended: its
   * new events stay in the window, unnumbered. Either the leader then hands over to a follower that
   * was subscribed through the gap (which replays from the mark, gap included), or, when no follower
   * was (a failover drops everybody), `resumeSuspended` hands the waiting events out after all.
   */
  suspend(nodeId: string): void {
    const session = this.session;
    if (!session?.live || session.suspended.has(nodeId)) return;
    session.suspended.add(nodeId);
    this.options.logger.info('replay.primary_suspended', { nodeId, fencingToken: session.fencingToken });
  }

  /** No follower has what this leader missed: go on with what the window holds. */
  resumeSuspended(): void {
    const session = this.session;
    if (!session?.live || session.suspended.size === 0) return;
    const { window, logger } = this.options;
    for (const nodeId of session.suspended) {
      const cursor = session.cursors.get(nodeId);
      if (!cursor) continue;
      // What waited in the window is handed out with `replayed: true`, as a successor would.
      cursor.replayedBefore = window.endPosition(nodeId);
      logger.info('replay.primary_resumed', { nodeId, events: cursor.replayedBefore - cursor.next });
      session.ready.add(nodeId);
    }
    session.suspended.clear();
    this.pump(session);
  }

  /**
   * From the processor, once per accepted event. Only a call that completed or failed settles it:
   * an event the gate dropped or the queue handed back was not handled, and an `unsettled` call (an
   * UnsettledHandlerError, or aborted at shutdown) may not have taken effect, so the processed mark
   * must stay before it and the successor replays it.
   */
  onDone(event: ExpiryEvent, meta: EventMeta, outcome: DoneOutcome): void {
    const session = this.session;
    if (!session) return;
    const cursor = session.cursors.get(event.nodeId);
    if (cursor) {
      cursor.done(meta.seq);
      this.options.window.hold(event.nodeId, cursor.holdFrom);
    }
    if (outcome === 'processed' || outcome === 'failed') session.tracker.settle(event.nodeId, meta.seq);
  }

  /** Starts the hand-out of `nodeId` at window position `next`; positions before `replayedBefore` are replays. */
  private openCursor(session: Session, nodeId: string, next: number, replayedBefore: number): HandOutCursor {
    const cursor = new HandOutCursor(next, replayedBefore);
    session.cursors.set(nodeId, cursor);
    this.options.window.hold(nodeId, cursor.holdFrom);
    return cursor;
  }

  /**
   * Hands entries to the processor while it has room, one primary after another. A re-entrant call
   * (an offer that reports an outcome or frees room synchronously) only asks for another pass.
   */
  private pump(session: Session): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.handOutWhileRoom(session);
      } while (this.pumpAgain && this.session === session);
    } finally {
      this.pumping = false;
    }
  }

  private handOutWhileRoom(session: Session): void {
    const { window, processor } = this.options;
    while (session.ready.size > 0 && this.session === session) {
      for (const nodeId of session.ready) {
        if (processor.room() <= 0 || processor.stats().queued >= HAND_OUT_BATCH) return;
        const cursor = session.cursors.get(nodeId);
        const entry =
          cursor && !session.suspended.has(nodeId) ? window.entryAt(nodeId, cursor.next) : undefined;
        if (!cursor || !entry) {
          session.ready.delete(nodeId);
          continue;
        }
        cursor.next++;
        if (!this.handOut(session, cursor, entry)) return;
      }
    }
  }

  /** Offers one entry; false when the processor refused it for good (intake closed: stop handing out). */
  private handOut(session: Session, cursor: HandOutCursor, entry: WindowEntry): boolean {
    const { event } = entry;
    const seq = session.tracker.assign(event.nodeId, entry.fingerprint, event.receivedAt);
    const result = this.options.processor.offer(event, {
      seq,
      replayed: entry.position < cursor.replayedBefore,
    });
    if (result === 'queued') cursor.handedOut(entry.position, seq);
    this.options.window.hold(event.nodeId, cursor.holdFrom);
    // Filtered: never for a handler; counts as settled so the mark moves on. Shed (the queue was full,
    // which the room check prevents): counted in EventsShed by the processor, settled. Closed
    // (shutdown): not settled, the successor replays it.
    if (result === 'filtered' || result === 'shed') session.tracker.abandon(event.nodeId, seq);
    return result !== 'closed';
  }

  /**
   * The window's count bound pushed out held entries of `nodeId`: those handed out are still the
   * processor's; those not handed out yet are lost to this leader. They are numbered and settled in
   * order (ids and the mark's tail go on as a follower's window numbers them) and counted.
   */
  private shedDroppedBacklog(session: Session, nodeId: string, cursor: HandOutCursor): void {
    let shed = 0;
    for (const entry of this.options.window.takeDroppedHeld(nodeId)) {
      if (entry.position < cursor.next) continue;
      cursor.next = entry.position + 1;
      const seq = session.tracker.assign(nodeId, entry.fingerprint, entry.event.receivedAt);
      session.tracker.abandon(nodeId, seq);
      shed++;
    }
    if (shed === 0) return;
    this.options.window.hold(nodeId, cursor.holdFrom);
    this.options.onBacklogShed?.(shed, nodeId);
  }

  /** Events in the window that this leader has not handed out yet (0 when not leading). */
  backlog(): number {
    const session = this.session;
    if (!session?.live) return 0;
    let events = 0;
    for (const [nodeId, cursor] of session.cursors) {
      events += Math.max(0, this.options.window.endPosition(nodeId) - cursor.next);
    }
    return events;
  }

  get isCatchingUp(): boolean {
    return this.session !== undefined && !this.session.live;
  }

  /** Leader callback: read marks, replay, go live. Never throws. */
  onStartedLeading(signal: AbortSignal, fencingToken: number): void {
    const session: Session = {
      fencingToken,
      signal,
      tracker: new ProgressTracker(this.options.tailLength, fencingToken),
      live: false,
      suspended: new Set(),
      cursors: new Map(),
      ready: new Set(),
    };
    this.session = session;
    this.catchUp(session).catch((error: unknown) => this.options.logger.error('replay.failed', { error }));
  }

  /**
   * Leader callback: stop numbering (the window keeps filling) and write the last marks once more, so
   * the successor replays as little as possible. That write is fenced by the token in Lua, so it can
   * never move a successor's mark.
   */
  onStoppedLeading(): void {
    const session = this.session;
    this.session = undefined;
    // The window returns to its time bound: a successor replays from its own window.
    for (const nodeId of session?.cursors.keys() ?? []) this.options.window.hold(nodeId, undefined);
    // What the processor still queues was not handled: it goes back, unsettled, for the successor.
    this.options.processor.clearQueue();
    clearInterval(this.markTimer);
    this.markTimer = undefined;
    if (session?.live) this.writing = this.writeMarks(session).finally(() => (this.writing = undefined));
  }

  /** Writes the current marks now (graceful hand-over: after the drain, before the release). */
  async flushMarks(): Promise<void> {
    await this.writing;
    if (this.session) await this.writeMarks(this.session);
  }

  close(): void {
    clearImmediate(this.refill);
    this.refill = undefined;
    clearInterval(this.markTimer);
    clearInterval(this.expiryTimer);
    this.markTimer = undefined;
    this.expiryTimer = undefined;
  }

  private async catchUp(session: Session): Promise<void> {
    const { window, logger, clock } = this.options;
    const began = clock.monotonicMs();
    let marks = new Map<string, ProcessedMark>();
    let marksRead = true;
    try {
      marks = await withTimeout(
        this.options.marks.read(window.nodeIds()),
        this.options.markReadTimeoutMs,
        'read processed marks',
      );
    } catch (error) {
      marksRead = false;
      logger.warn('replay.marks_unavailable', { error });
    }
    if (this.session !== session || session.signal.aborted) return;

    // From here to `live = true` runs without yielding: every event is either in a plan or live.
    const alignments: Record<Alignment, number> = { tail: 0, time: 0, 'no-mark': 0 };
    let replayed = 0;
    for (const nodeId of new Set([...window.nodeIds(), ...marks.keys()])) {
      const mark = marks.get(nodeId);
      const plan = window.plan(nodeId, mark);
      alignments[plan.alignment]++;
      session.tracker.begin(nodeId, plan.firstSeq, plan.alignment === 'tail' ? (mark?.tail ?? []) : []);
      // The plan is a suffix of the window: hand out from its first entry on (paced by the processor).
      const end = window.endPosition(nodeId);
      this.openCursor(session, nodeId, plan.entries[0]?.position ?? end, end);
      replayed += plan.entries.length;
      session.ready.add(nodeId);
    }
    session.live = true;
    this.pump(session);
    this.markTimer = setInterval(() => {
      if (this.writing === undefined && this.session === session) {
        this.writing = this.writeMarks(session).finally(() => (this.writing = undefined));
      }
    }, this.options.markIntervalMs);
    this.markTimer.unref();
    logger.info('replay.completed', {
      fencingToken: session.fencingToken,
      replayed,
      primaries: alignments,
      marksRead,
      durationMs: Math.round(clock.monotonicMs() - began),
    });
  }

  private async writeMarks(session: Session): Promise<void> {
    if (!session.live) return;
    const marks = session.tracker.takeDirtyMarks();
    if (marks.length === 0) return;
    try {
      await this.options.marks.write(marks);
    } catch (error) {
      // Retried with the next interval; meanwhile a crash would only replay more (duplicates, no loss).
      session.tracker.restoreDirty(marks.map((m) => m.nodeId));
      this.options.logger.warn('replay.mark_write_failed', { error });
    }
  }
}
