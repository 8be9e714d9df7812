import type { Clock } from '../../core/clock.ts';
import { withTimeout } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { ExpiryEvent } from '../expiry/expiry-event.ts';
import type { DoneOutcome, EventMeta, OfferResult } from '../expiry/processor.ts';
import type { SuspensionListener } from '../leader/coverage-registry.ts';
import { HandOutCursor } from './hand-out-cursor.ts';
import type { MarkReadResult } from './mark-store.ts';
import type { ProcessedMark } from './processed-mark.ts';
import { ProgressTracker } from './progress-tracker.ts';
import type { Alignment, ReplayWindow, WindowEntry } from './replay-window.ts';

/**
 * Sits between the fan-in and the processor and makes a change of leader lose nothing:
 *
 * - Every worker appends every event to its ReplayWindow (followers stay warm), and notes in it where
 *   its own subscription to a primary dropped (each gap the `suspensions` owner reports): the window
 *   knows its discontinuities.
 *   Only the coordinator offers to the processor, and only while leading: a follower hands nothing
 *   to the handler. This is the one path, whatever REPLAY_WINDOW_MS: with 0 the window keeps nothing
 *   for a follower, so a new leader has nothing of before its acquisition to replay (its plans hold
 *   only what arrived since) and, the previous leader's tail not being among it, numbers a fresh
 *   line above every reservation (the rules below decide, as with any window); the marks, the
 *   reservations and the ids mean the same as with replay on.
 * - A new leader reads the marks of every primary it may number (those in its window and every known
 *   primary, `knownPrimaryIds`), plans each primary's replay, reserves its seqs (a mark write that a
 *   majority of the copies acknowledged), then hands the processor what its window holds after each
 *   mark (`replayed: true`) and the live events after it.
 * - While leading it numbers each primary's events (ProgressTracker) as it hands them out and every
 *   `markIntervalMs` writes, per primary, the mark of the contiguous prefix its handler calls settled,
 *   with its reservation.
 *
 * Each primary of a leadership session is in one of these states:
 * - **held** (`unread`): its mark is not read yet (at acquisition, or a primary first seen while
 *   leading: a promoted replica, a new primary). Its events wait in the window, unnumbered.
 * - **planned**: its mark was read and its numbering line chosen; it has a hand-out cursor at the
 *   first entry of its plan. The cursor stops at the first entry no confirmed reservation covers
 *   (right after planning, until the first mark write reached a majority; or at a line break) and
 *   goes on once a write confirms one.
 * - **live**: handed out from its cursor under back-pressure (below). Replayed and live entries
 *   share that one path, so a primary's live events wait behind its replay backlog, in order.
 * - **suspended**: this worker's subscription to it dropped and the gap is not settled yet; the owner
 *   of that decision is `suspensions` (worker/leader/coverage-registry.ts), asked and listened to
 *   here, never decided here. Its cursor stands still; it goes on when the owner ends the suspension.
 *
 * Hand-out with back-pressure: entries go from the window to the processor only while the processor
 * has room (`room()`, and `onRoom` when calls free it; at most HAND_OUT_BATCH queued, refilled once
 * per event-loop turn), one primary after another in turn, each from its cursor, oldest first.
 *
 * Window retention: while leading, the window holds (keeps past its time bound, never past
 * REPLAY_MAX_EVENTS) a held primary's every entry, and a planned one's from the oldest entry whose
 * hand-out is not over (not handed out yet, or handed out and not reported done). An entry the count
 * bound pushes out before it was handed out is lost to this leader and counted through
 * `onBacklogShed` (EventsShed, reason `backlog-full`): so the processor queue never
 * sheds, the window is where a leader slower than the event rate sheds. Such an entry is numbered and
 * settled at once (the ids and the mark's tail go on as a follower's window numbers them; a successor
 * does not replay it) when a confirmed reservation covers it and settling it cannot move a suspended
 * primary's mark past its gap; otherwise it is passed over unnumbered and the line breaks before the
 * next number. A held primary's are only counted (its plan is made from what the window still holds).
 *
 * Identity (docs/worker.md, "Event identity"): an id `<nodeId>:<seq>` never names two different
 * expirations. A seq is assigned only inside a reservation a majority of the mark copies acknowledged.
 * A successor continues the previous numbering only when its plan aligned on the tail at exactly one
 * position with no discontinuity after it; otherwise it numbers a fresh line above every reservation
 * (a replayed event may then be handled twice under two ids: a duplicate, never a reuse). A line
 * only ever covers consecutive events of this leader's window: before numbering an entry of a later
 * window epoch (a gap) than the last one numbered, or after passing one over, the line breaks. Marks
 * that fewer than a majority of copies answered for are not enough to number: the read is retried
 * every `markReadRetryMs` while the events wait (the quorum lease needs the same majority to be held).
 *
 * Semantics (README, "Delivery guarantees"): at-least-once while one healthy follower remains. The one
 * case it cannot decide: calls that were running or completed on the old leader after its last mark
 * write (at most `markIntervalMs` of events plus HANDLER_CONCURRENCY calls) are handled again; they
 * carry the same `id` when the tail aligned, so a downstream drops them.
 */
export interface MarkStoreLike {
  /** Rejects only when no copy answered. */
  read(nodeIds: readonly string[]): Promise<MarkReadResult>;
  /** Resolves with the number of copies that took every mark; rejects when none did. */
  write(marks: readonly ProcessedMark[]): Promise<number>;
  /** Copies per mark: a majority of them must acknowledge a reservation and answer a read. */
  readonly copies: number;
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
  /** Calls `listener` with the outcome of every event `offer` queued, once (the coordinator's `onDone`). */
  onDone(listener: (event: ExpiryEvent, meta: EventMeta, outcome: DoneOutcome) => void): void;
}

/**
 * Which primaries this worker's gaps suspend (worker/leader/coverage-registry.ts owns that): asked at
 * each hand-out, listened to for every gap and every end of a suspension.
 */
export interface SuspensionsLike {
  isSuspended(nodeId: string): boolean;
  onSuspensionChange(listener: SuspensionListener): void;
}

export interface ReplayCoordinatorOptions {
  readonly window: ReplayWindow;
  readonly suspensions: SuspensionsLike;
  readonly marks: MarkStoreLike;
  readonly processor: ProcessorLike;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often the leader writes its marks; bounds the duplicates of a crash. */
  readonly markIntervalMs: number;
  /** Fingerprints per mark tail. */
  readonly tailLength: number;
  /** Bound on one read of the marks (each copy is also bounded on its own by the store). */
  readonly markReadTimeoutMs: number;
  /** Node ids of the primaries currently known (the subscriber pool's): their marks are read at acquisition. */
  readonly knownPrimaryIds?: () => readonly string[];
  /** Delay before a failed (or minority) mark read is tried again, events waiting. @default 250 */
  readonly markReadRetryMs?: number;
  /** Seqs reserved at a time, ahead of use. @default 1_000_000 */
  readonly reservationBlock?: number;
  /** Events of the leader's backlog the window's count bound pushed out before they were handed out. */
  readonly onBacklogShed?: (count: number, nodeId: string) => void;
}

const DEFAULT_MARK_READ_RETRY_MS = 250;

/**
 * At most this many events wait in the processor queue at once (never more than its room): a handler
 * that completes synchronously runs the whole queue in one chain of microtasks, without yielding to
 * timers (lease renewals) or I/O, so the queue is refilled in batches, one per event-loop turn.
 */
export const HAND_OUT_BATCH = 512;

interface Session {
  readonly fencingToken: number;
  readonly signal: AbortSignal;
  readonly tracker: ProgressTracker;
  /** The first mark read (of the window's and the known primaries) is done and planned. */
  live: boolean;
  /** Held primaries: their mark is not read yet; their events wait in the window, unnumbered. */
  readonly unread: Set<string>;
  /** A mark read is running (one at a time). */
  reading: boolean;
  /** Planned primaries (their mark read, their numbering begun): where each one's hand-out stands. */
  readonly cursors: Map<string, HandOutCursor>;
  /** Planned primaries that may have an entry to hand out now, in turn order. */
  readonly ready: Set<string>;
  /** A mark write was asked for while one was running. */
  writeAgain: boolean;
}

export class ReplayCoordinator {
  private session: Session | undefined;
  private markTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private pumpAgain = false;
  private refill: NodeJS.Immediate | undefined;

  constructor(private readonly options: ReplayCoordinatorOptions) {
    if (!(options.markIntervalMs > 0)) throw new RangeError('markIntervalMs must be > 0');
    if (!(options.marks.copies >= 1)) throw new RangeError('marks.copies must be >= 1');
    options.processor.onDone((event, meta, outcome) => this.onDone(event, meta, outcome));
    options.suspensions.onSuspensionChange(({ nodeId, suspended }) => {
      if (suspended) this.suspend(nodeId);
      else this.resume(nodeId);
    });
    // Quiet primaries age out of the window too.
    this.expiryTimer = setInterval(() => options.window.expire(options.clock.monotonicMs()), 1000);
    this.expiryTimer.unref();
    // Refills wait for the next turn of the event loop: a handler that completes synchronously settles
    // in a microtask, so refilling at once would run a whole backlog without ever yielding to timers
    // (lease renewals) or I/O; this way at most one batch runs per turn.
    options.processor.onRoom(() => {
      if (this.refill !== undefined || !this.session) return;
      this.refill = setImmediate(() => {
        this.refill = undefined;
        if (this.session) this.pump(this.session);
      });
    });
  }

  /** From the fan-in, in arrival order. */
  onEvent(event: ExpiryEvent): void {
    const session = this.session;
    if (!session) {
      this.options.window.append(event);
      return;
    }
    const { nodeId } = event;
    if (!session.cursors.has(nodeId) && !session.unread.has(nodeId)) {
      // A primary this leader has not read the mark of: hold it until it has. The hold comes before
      // the append, so the event is held whatever the time bound (REPLAY_WINDOW_MS=0 keeps nothing else).
      this.holdUnread(session, nodeId);
      this.options.window.append(event);
      this.options.logger.info('replay.primary_held', { nodeId, fencingToken: session.fencingToken });
      this.readMarks(session);
      return;
    }
    this.options.window.append(event);
    this.shedDroppedBacklog(session, nodeId);
    if (!session.cursors.has(nodeId) || this.options.suspensions.isSuspended(nodeId)) return;
    session.ready.add(nodeId);
    this.pump(session);
  }

  /**
   * A gap of `nodeId` (from `suspensions`): this worker's subscription dropped, it missed that
   * primary's events for a moment. The window records the discontinuity (on every worker: a successor
   * must not number across it as if consecutive). While the primary is suspended, its mark must not
   * move past the gap: its cursor stands still and its new events stay in the window, unnumbered.
   * Either the leader then hands over to a follower that was subscribed through the gap (which
   * replays from the mark, gap included), or, when no follower was (a failover drops everybody),
   * `resume` hands the waiting events out after all; the numbering breaks its line at the gap.
   */
  private suspend(nodeId: string): void {
    this.options.window.noteGap(nodeId);
    const session = this.session;
    if (!session) return;
    this.options.logger.info('replay.primary_suspended', { nodeId, fencingToken: session.fencingToken });
  }

  /** The suspension of `nodeId` ended (no follower has what this worker missed): go on with the window. */
  private resume(nodeId: string): void {
    const session = this.session;
    const cursor = session?.cursors.get(nodeId);
    // Not leading, or held: its mark is still to be read, planned then.
    if (!session || !cursor) return;
    // What waited in the window is handed out with `replayed: true`, as a successor would.
    cursor.replayedBefore = this.options.window.endPosition(nodeId);
    this.options.logger.info('replay.primary_resumed', {
      nodeId,
      events: cursor.replayedBefore - cursor.next,
    });
    session.ready.add(nodeId);
    this.pump(session);
  }

  /**
   * From the processor, once per accepted event. Only a call that completed or failed settles it:
   * an event the queue handed back was not handled, and an `unsettled` call (an
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

  /** Events in the window that this leader has not handed out yet (0 when not leading). */
  backlog(): number {
    const session = this.session;
    if (!session) return 0;
    const { window } = this.options;
    let events = 0;
    for (const [nodeId, cursor] of session.cursors) {
      events += Math.max(0, window.endPosition(nodeId) - cursor.next);
    }
    for (const nodeId of session.unread) events += window.size(nodeId);
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
      tracker: new ProgressTracker(this.options.tailLength, fencingToken, this.options.reservationBlock),
      live: false,
      unread: new Set(),
      reading: false,
      cursors: new Map(),
      ready: new Set(),
      writeAgain: false,
    };
    for (const nodeId of [...this.options.window.nodeIds(), ...(this.options.knownPrimaryIds?.() ?? [])]) {
      this.holdUnread(session, nodeId);
    }
    this.session = session;
    clearInterval(this.markTimer);
    this.markTimer = setInterval(() => {
      if (this.session === session) this.requestWrite(session);
    }, this.options.markIntervalMs);
    this.markTimer.unref();
    this.readMarks(session);
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
    for (const nodeId of [...(session?.cursors.keys() ?? []), ...(session?.unread ?? [])]) {
      this.options.window.hold(nodeId, undefined);
    }
    // What the processor still queues was not handled: it goes back, unsettled, for the successor.
    this.options.processor.clearQueue();
    clearInterval(this.markTimer);
    clearTimeout(this.retryTimer);
    clearImmediate(this.refill);
    this.markTimer = undefined;
    this.refill = undefined;
    if (session) void this.enqueueWrite(session);
  }

  /** Writes the current marks now (graceful hand-over: after the drain, before the release). */
  async flushMarks(): Promise<void> {
    if (this.session) await this.enqueueWrite(this.session);
    else await this.writing;
  }

  close(): void {
    clearImmediate(this.refill);
    clearInterval(this.markTimer);
    clearInterval(this.expiryTimer);
    clearTimeout(this.retryTimer);
    this.refill = undefined;
    this.markTimer = undefined;
    this.expiryTimer = undefined;
  }

  /** Marks `nodeId` held: nothing of it is numbered until its mark is read; the window keeps all of it. */
  private holdUnread(session: Session, nodeId: string): void {
    session.unread.add(nodeId);
    this.options.window.hold(nodeId, this.options.window.firstPosition(nodeId));
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
          cursor && !this.options.suspensions.isSuspended(nodeId)
            ? window.entryAt(nodeId, cursor.next)
            : undefined;
        const seq = cursor && entry ? this.number(session, nodeId, cursor, entry) : undefined;
        if (!cursor || !entry || seq === undefined) {
          // Nothing to hand out now: caught up, suspended, or waiting for a confirmed reservation
          // (`writeMarks` puts it back in turn then; `onEvent` and `resume` do otherwise).
          session.ready.delete(nodeId);
          continue;
        }
        cursor.next++;
        if (!this.offer(session, cursor, entry, seq)) return;
      }
    }
  }

  /**
   * Numbers `entry`, the entry of `nodeId` at its cursor, in the current line, first breaking the line
   * when the entry is not consecutive with the last one numbered (a later window epoch, or entries
   * passed over since). Undefined when no confirmed reservation covers it: it waits in the window.
   */
  private number(
    session: Session,
    nodeId: string,
    cursor: HandOutCursor,
    entry: WindowEntry,
  ): number | undefined {
    if (cursor.skipped || (cursor.epoch !== undefined && entry.epoch !== cursor.epoch)) {
      session.tracker.breakLine(nodeId);
      cursor.skipped = false;
      this.requestWrite(session);
    }
    cursor.epoch = entry.epoch;
    return session.tracker.assign(nodeId, entry.fingerprint, entry.event.receivedAt);
  }

  /** Offers one numbered entry; false when the processor refused it for good (intake closed: stop handing out). */
  private offer(session: Session, cursor: HandOutCursor, entry: WindowEntry, seq: number): boolean {
    const { event } = entry;
    // Registered before the offer: the processor may report the outcome before `offer` returns.
    cursor.handedOut(entry.position, seq);
    const result = this.options.processor.offer(event, {
      seq,
      replayed: entry.position < cursor.replayedBefore,
    });
    if (result !== 'queued') cursor.done(seq);
    this.options.window.hold(event.nodeId, cursor.holdFrom);
    // Shed (the queue was full, which the room check prevents): counted in EventsShed by the
    // processor, settled. Closed (shutdown): not settled, the successor replays it.
    if (result === 'shed') session.tracker.abandon(event.nodeId, seq);
    return result !== 'closed';
  }

  /**
   * The window's count bound pushed out held entries of `nodeId`. Those handed out already are the
   * processor's. The others are lost to this leader: counted (`onBacklogShed`), and, for a planned
   * primary, numbered and settled in order when a reservation covers them and settling cannot move a
   * suspended primary's mark past its gap (a later epoch than the last entry numbered); else passed
   * over, and the line breaks before the next number. A held primary's are only counted.
   */
  private shedDroppedBacklog(session: Session, nodeId: string): void {
    const dropped = this.options.window.takeDroppedHeld(nodeId);
    if (dropped.length === 0) return;
    const cursor = session.cursors.get(nodeId);
    const suspended = this.options.suspensions.isSuspended(nodeId);
    let shed = 0;
    for (const entry of dropped) {
      if (cursor) {
        if (entry.position < cursor.next) continue;
        cursor.next = entry.position + 1;
        const beyondGap = suspended && entry.epoch !== cursor.epoch;
        const seq = beyondGap ? undefined : this.number(session, nodeId, cursor, entry);
        if (seq === undefined) cursor.skipped = true;
        else session.tracker.abandon(nodeId, seq);
      }
      shed++;
    }
    if (cursor) this.options.window.hold(nodeId, cursor.holdFrom);
    if (shed > 0) this.options.onBacklogShed?.(shed, nodeId);
  }

  /** Starts a read of the unread primaries' marks unless one runs. Never throws. */
  private readMarks(session: Session): void {
    if (session.reading) return;
    session.reading = true;
    this.readUnread(session)
      .catch((error: unknown) => this.options.logger.error('replay.failed', { error }))
      .finally(() => {
        session.reading = false;
      });
  }

  /**
   * Reads the marks of every unread primary and plans them; retried while a read fails or rests on
   * fewer than a majority of the copies (the events wait). Runs until nothing is unread.
   */
  private async readUnread(session: Session): Promise<void> {
    const { logger, clock, marks } = this.options;
    while (this.session === session && !session.signal.aborted && session.unread.size > 0) {
      const began = clock.monotonicMs();
      const nodeIds = [...session.unread];
      let read: MarkReadResult | undefined;
      try {
        read = await withTimeout(marks.read(nodeIds), this.options.markReadTimeoutMs, 'read processed marks');
      } catch (error) {
        logger.warn('replay.marks_unavailable', { error, primaries: nodeIds.length, copiesAnswered: 0 });
      }
      if (this.session !== session || session.signal.aborted) return;
      if (read && read.copiesAnswered < majorityOf(read.copies)) {
        logger.warn('replay.marks_unavailable', {
          primaries: nodeIds.length,
          copiesAnswered: read.copiesAnswered,
          copies: read.copies,
        });
        read = undefined;
      }
      if (!read) {
        await this.retryDelay(session);
        continue;
      }
      this.plan(session, nodeIds, read, began);
    }
  }

  /**
   * Plans the primaries just read (synchronously: every event is either in a plan or waits after it):
   * chooses each one's numbering line and opens its cursor at the plan's first entry. Their hand-out
   * starts once the mark write requested here confirms the reservation (`writeMarks`).
   */
  private plan(session: Session, nodeIds: readonly string[], read: MarkReadResult, began: number): void {
    const { window, logger, clock } = this.options;
    const alignments: Record<Alignment, number> = { tail: 0, ambiguous: 0, time: 0, 'no-mark': 0 };
    let planned = 0;
    let freshLines = 0;
    for (const nodeId of nodeIds) {
      session.unread.delete(nodeId);
      const mark = read.marks.get(nodeId);
      const plan = window.plan(nodeId, mark);
      alignments[plan.alignment]++;
      planned += plan.entries.length;
      if (plan.alignment === 'ambiguous') {
        logger.warn('replay.alignment_ambiguous', {
          nodeId,
          matches: plan.tailMatches,
          events: plan.entries.length,
        });
      }
      const continues = mark !== undefined && plan.continues;
      if (continues) {
        session.tracker.begin(nodeId, { kind: 'continue', mark });
      } else {
        freshLines++;
        session.tracker.begin(nodeId, {
          kind: 'fresh',
          reservedThrough: mark?.reservedThrough ?? 0,
          receivedAt: mark?.receivedAt ?? 0,
        });
      }
      // The plan is a suffix of the window: hand out from its first entry on. A continued line's
      // predecessor is the entry the tail aligned on (`previous`); a fresh line has none.
      const end = window.endPosition(nodeId);
      const cursor = new HandOutCursor(
        plan.entries[0]?.position ?? end,
        end,
        continues ? plan.previous?.epoch : undefined,
      );
      session.cursors.set(nodeId, cursor);
      window.hold(nodeId, cursor.holdFrom);
      session.ready.add(nodeId);
    }
    this.requestWrite(session);
    if (session.live) {
      logger.info('replay.primaries_planned', {
        fencingToken: session.fencingToken,
        planned,
        primaries: alignments,
      });
      return;
    }
    session.live = true;
    logger.info('replay.completed', {
      fencingToken: session.fencingToken,
      replayed: planned,
      primaries: alignments,
      freshLines,
      marksRead: true,
      copiesAnswered: read.copiesAnswered,
      durationMs: Math.round(clock.monotonicMs() - began),
    });
  }

  /** Waits `markReadRetryMs`, or less when leadership ends meanwhile. */
  private retryDelay(session: Session): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(this.retryTimer);
        session.signal.removeEventListener('abort', done);
        resolve();
      };
      this.retryTimer = setTimeout(done, this.options.markReadRetryMs ?? DEFAULT_MARK_READ_RETRY_MS);
      this.retryTimer.unref();
      session.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** One mark write at a time; a request during a write runs right after it. */
  private requestWrite(session: Session): void {
    if (this.writing !== undefined) {
      session.writeAgain = true;
      return;
    }
    void this.enqueueWrite(session);
  }

  /**
   * Runs a mark write after the one in progress, never beside it: two writes of one token landing in
   * the wrong order on a copy could move its reservation back. Never rejects (writeMarks catches).
   */
  private enqueueWrite(session: Session): Promise<void> {
    session.writeAgain = false;
    const tracked: Promise<void> = (this.writing ?? Promise.resolve())
      .then(() => this.writeMarks(session))
      .finally(() => {
        if (this.writing === tracked) this.writing = undefined;
        if (session.writeAgain && this.session === session) this.requestWrite(session);
      });
    this.writing = tracked;
    return tracked;
  }

  private async writeMarks(session: Session): Promise<void> {
    // Every settled event's key.processed line (the `log` handler's output) leaves the process before a
    // mark can cover the event: a line still buffered here would be lost by a SIGKILL, never replayed.
    this.options.logger.flush();
    const marks = session.tracker.takeDirtyMarks();
    if (marks.length === 0) return;
    const nodeIds = marks.map((m) => m.nodeId);
    try {
      const written = await this.options.marks.write(marks);
      if (written >= majorityOf(this.options.marks.copies)) {
        // The reservations are durable: the primaries they cover hand out what waited, in turn.
        const released = session.tracker.confirm(nodeIds);
        if (this.session !== session || released.length === 0) return;
        for (const nodeId of released) session.ready.add(nodeId);
        this.pump(session);
        return;
      }
      session.tracker.restoreDirty(nodeIds);
      this.options.logger.warn('replay.mark_write_failed', {
        copiesWritten: written,
        copies: this.options.marks.copies,
      });
    } catch (error) {
      // Retried with the next interval; meanwhile a crash would only replay more (duplicates, no loss).
      session.tracker.restoreDirty(nodeIds);
      this.options.logger.warn('replay.mark_write_failed', { error });
    }
  }
}

function majorityOf(copies: number): number {
  return Math.floor(copies / 2) + 1;
}
