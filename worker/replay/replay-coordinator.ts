import type { Clock } from '../../core/clock.ts';
import { withTimeout } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { ExpiryEvent } from '../expiry/expiry-event.ts';
import type { DoneOutcome, EventMeta, OfferResult } from '../expiry/processor.ts';
import type { MarkReadResult } from './mark-store.ts';
import type { ProcessedMark } from './processed-mark.ts';
import { ProgressTracker } from './progress-tracker.ts';
import type { Alignment, ReplayWindow, WindowEntry } from './replay-window.ts';

/**
 * Sits between the fan-in and the processor and makes a change of leader lose nothing:
 *
 * - Every worker appends every event to its ReplayWindow (followers stay warm), and notes in it where
 *   its own subscription to a primary dropped (`suspend`): the window knows its discontinuities.
 * - A new leader reads the marks of every primary it may number (those in its window and every known
 *   primary, `knownPrimaryIds`), plans each primary's replay, reserves its seqs (a mark write that a
 *   majority of the copies acknowledged), then hands the processor what its window holds after each
 *   mark (`replayed: true`) and goes live for that primary. Until then the primary is *held*: its
 *   events wait in the window, unnumbered. A primary whose events appear later (a promoted replica, a
 *   new primary) is held the same way until its mark has been read. No event is ever numbered without
 *   knowing its primary's mark, or that it has none.
 * - While leading it numbers each primary's events (ProgressTracker) and every `markIntervalMs` writes,
 *   per primary, the mark of the contiguous prefix its handler calls settled, with its reservation.
 *
 * Identity (docs/worker.md, "Event identity"): an id `<nodeId>:<seq>` never names two different
 * expirations. A successor continues the previous numbering only when its plan aligned on the tail at
 * exactly one position with no discontinuity after it; otherwise it numbers a fresh line above every
 * reservation (a replayed event may then be handled twice under two ids: a duplicate, never a reuse).
 * Marks that fewer than a majority of copies answered for are not enough to number: the read is retried
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
  /** Bound on one read of the marks (each copy is also bounded on its own by the store). */
  readonly markReadTimeoutMs: number;
  /** Node ids of the primaries currently known (the subscriber pool's): their marks are read at acquisition. */
  readonly knownPrimaryIds?: () => readonly string[];
  /** Delay before a failed (or minority) mark read is tried again, events waiting. @default 250 */
  readonly markReadRetryMs?: number;
  /** Seqs reserved at a time, ahead of use. @default 1_000_000 */
  readonly reservationBlock?: number;
}

const DEFAULT_MARK_READ_RETRY_MS = 250;

interface Session {
  readonly fencingToken: number;
  readonly signal: AbortSignal;
  readonly tracker: ProgressTracker;
  /** The first mark read (of the window's and the known primaries) is done and planned. */
  live: boolean;
  /** Primaries whose mark is not read yet: their events wait in the window, unnumbered. */
  readonly unread: Set<string>;
  /** A mark read is running (one at a time). */
  reading: boolean;
  /** Primaries handed out live; the others (planned, reserving, suspended) wait in the window. */
  readonly numbering: Set<string>;
  /** Primaries whose subscription dropped while leading: their events wait in the window. */
  readonly suspended: Set<string>;
  /** Per primary, the last window entry handed to the processor (or the entry a plan starts after). */
  readonly lastAssigned: Map<string, WindowEntry | undefined>;
  /** A mark write was asked for while one was running. */
  writeAgain: boolean;
}

type HandOutResult = 'queued' | 'refused' | 'held';

export class ReplayCoordinator {
  private session: Session | undefined;
  private markTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ReplayCoordinatorOptions) {
    if (!(options.markIntervalMs > 0)) throw new RangeError('markIntervalMs must be > 0');
    if (!(options.marks.copies >= 1)) throw new RangeError('marks.copies must be >= 1');
    // Quiet primaries age out of the window too.
    this.expiryTimer = setInterval(() => options.window.expire(options.clock.monotonicMs()), 1000);
    this.expiryTimer.unref();
  }

  /** From the fan-in, in arrival order. */
  onEvent(event: ExpiryEvent): void {
    const entry = this.options.window.append(event);
    const session = this.session;
    if (!session) return;
    const { nodeId } = event;
    if (session.numbering.has(nodeId)) {
      if (this.handOut(session, entry, false) === 'held') session.numbering.delete(nodeId);
      return;
    }
    if (!session.tracker.has(nodeId) && !session.unread.has(nodeId)) {
      // A primary this leader has not read the mark of: hold it until it has.
      session.unread.add(nodeId);
      this.options.logger.info('replay.primary_held', { nodeId, fencingToken: session.fencingToken });
      this.readMarks(session);
    }
  }

  /**
   * This worker's subscription to `nodeId` dropped: it missed that primary's events for a moment. The
   * window records the discontinuity (on every worker: a successor must not number across it as if
   * consecutive). While leading, its mark for that primary must not move past the gap, so the primary
   * is suspended: its new events stay in the window, unnumbered. Either the leader then hands over to
   * a follower that was subscribed through the gap (which replays from the mark, gap included), or,
   * when no follower was (a failover drops everybody), `resumeSuspended` hands the waiting events out
   * after all, in a new line of seqs.
   */
  suspend(nodeId: string): void {
    this.options.window.noteGap(nodeId);
    const session = this.session;
    if (!session || session.suspended.has(nodeId)) return;
    session.suspended.add(nodeId);
    session.numbering.delete(nodeId);
    this.options.logger.info('replay.primary_suspended', { nodeId, fencingToken: session.fencingToken });
  }

  /** No follower has what this leader missed: go on with what the window holds, in a new line. */
  resumeSuspended(): void {
    const session = this.session;
    if (!session || session.suspended.size === 0) return;
    for (const nodeId of session.suspended) {
      if (!session.tracker.has(nodeId)) continue; // its mark is still to be read: planned then
      // What follows the gap is not consecutive with what preceded it.
      session.tracker.breakLine(nodeId);
      this.options.logger.info('replay.primary_resumed', {
        nodeId,
        events: this.options.window.entriesAfter(nodeId, session.lastAssigned.get(nodeId)).length,
      });
    }
    session.suspended.clear();
    this.requestWrite(session);
  }

  /**
   * Hands out what waited in the window for `nodeId` (after its plan's start or its last hand-out),
   * then numbers it live. Stops, still held, when its reservation runs out before a confirmation.
   */
  private release(session: Session, nodeId: string): void {
    if (session.suspended.has(nodeId) || session.numbering.has(nodeId)) return;
    const entries = this.options.window.entriesAfter(nodeId, session.lastAssigned.get(nodeId));
    for (const entry of entries) {
      if (this.handOut(session, entry, true) === 'held') return;
    }
    session.numbering.add(nodeId);
  }

  private handOut(session: Session, entry: WindowEntry, replayed: boolean): HandOutResult {
    const { event } = entry;
    const seq = session.tracker.assign(event.nodeId, entry.fingerprint, event.receivedAt);
    // No confirmed reservation covers it: it waits in the window until the next confirmation.
    if (seq === undefined) return 'held';
    session.lastAssigned.set(event.nodeId, entry);
    const result = this.options.processor.offer(event, { seq, replayed });
    if (result === 'queued') return 'queued';
    // Filtered: never for a handler. Shed: the stated backpressure loss, counted in EventsShed. Both
    // count as settled so the mark moves on. Closed (shutdown): not settled, the successor replays it.
    if (result === 'filtered' || result === 'shed') session.tracker.abandon(event.nodeId, seq);
    return 'refused';
  }

  /**
   * From the processor, once per accepted event. Only a call that completed or failed settles it:
   * an event the gate dropped or the queue handed back was not handled, so the processed mark must
   * stay before it and the successor replays it.
   */
  onDone(event: ExpiryEvent, meta: EventMeta, outcome: DoneOutcome): void {
    if (outcome === 'processed' || outcome === 'failed') this.session?.tracker.settle(event.nodeId, meta.seq);
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
      unread: new Set([...this.options.window.nodeIds(), ...(this.options.knownPrimaryIds?.() ?? [])]),
      reading: false,
      numbering: new Set(),
      suspended: new Set(),
      lastAssigned: new Map(),
      writeAgain: false,
    };
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
    // What the processor still queues was not handled: it goes back, unsettled, for the successor.
    this.options.processor.clearQueue();
    clearInterval(this.markTimer);
    clearTimeout(this.retryTimer);
    this.markTimer = undefined;
    if (session) void this.enqueueWrite(session);
  }

  /** Writes the current marks now (graceful hand-over: after the drain, before the release). */
  async flushMarks(): Promise<void> {
    if (this.session) await this.enqueueWrite(this.session);
    else await this.writing;
  }

  close(): void {
    clearInterval(this.markTimer);
    clearInterval(this.expiryTimer);
    clearTimeout(this.retryTimer);
    this.markTimer = undefined;
    this.expiryTimer = undefined;
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

  /** Plans the primaries just read (synchronously: every event is either in a plan or waits after it). */
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
      if (mark && plan.continues) {
        session.tracker.begin(nodeId, { kind: 'continue', mark });
      } else {
        freshLines++;
        session.tracker.begin(nodeId, {
          kind: 'fresh',
          reservedThrough: mark?.reservedThrough ?? 0,
          receivedAt: mark?.receivedAt ?? 0,
        });
      }
      session.lastAssigned.set(nodeId, plan.previous);
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
    const marks = session.tracker.takeDirtyMarks();
    if (marks.length === 0) return;
    const nodeIds = marks.map((m) => m.nodeId);
    try {
      const written = await this.options.marks.write(marks);
      if (written >= majorityOf(this.options.marks.copies)) {
        // The reservations are durable: the primaries they unblock hand out what waited.
        for (const nodeId of session.tracker.confirm(nodeIds)) {
          if (this.session === session) this.release(session, nodeId);
        }
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
