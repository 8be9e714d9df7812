import type { Clock } from '../../core/clock.ts';
import { withTimeout } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { ExpiryEvent } from '../expiry/expiry-event.ts';
import type { DoneOutcome, EventMeta, OfferResult } from '../expiry/processor.ts';
import type { ProcessedMark } from './processed-mark.ts';
import { ProgressTracker } from './progress-tracker.ts';
import type { Alignment, ReplayWindow, WindowEntry } from './replay-window.ts';

/**
 * Sits between the fan-in and the processor and makes a change of leader lose nothing:
 *
 * - Every worker appends every event to its ReplayWindow (followers stay warm).
 * - The leader numbers each primary's events (ProgressTracker), hands them to the processor, and every
 *   `markIntervalMs` writes, per primary, the mark of the contiguous prefix its handler calls settled.
 * - A new leader first reads the marks, then (synchronously, so no live event slips between) hands the
 *   processor what its window holds after each mark (`replayed: true`), then goes live.
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
}

interface Session {
  readonly fencingToken: number;
  readonly signal: AbortSignal;
  readonly tracker: ProgressTracker;
  live: boolean;
  /** Primaries whose subscription dropped while leading: their events wait in the window. */
  readonly suspended: Set<string>;
  /** Per primary, the last window entry handed to the processor. */
  readonly lastAssigned: Map<string, WindowEntry>;
}

export class ReplayCoordinator {
  private session: Session | undefined;
  private markTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ReplayCoordinatorOptions) {
    if (!(options.markIntervalMs > 0)) throw new RangeError('markIntervalMs must be > 0');
    // Quiet primaries age out of the window too.
    this.expiryTimer = setInterval(() => options.window.expire(options.clock.monotonicMs()), 1000);
    this.expiryTimer.unref();
  }

  /** From the fan-in, in arrival order. */
  onEvent(event: ExpiryEvent): void {
    const entry = this.options.window.append(event);
    const session = this.session;
    if (!session?.live || session.suspended.has(event.nodeId)) return;
    this.handOut(session, entry, false);
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
    for (const nodeId of session.suspended) {
      const entries = this.options.window.entriesAfter(nodeId, session.lastAssigned.get(nodeId));
      for (const entry of entries) this.handOut(session, entry, true);
      this.options.logger.info('replay.primary_resumed', { nodeId, events: entries.length });
    }
    session.suspended.clear();
  }

  private handOut(session: Session, entry: WindowEntry, replayed: boolean): boolean {
    const { event } = entry;
    session.lastAssigned.set(event.nodeId, entry);
    const seq = session.tracker.assign(event.nodeId, entry.fingerprint, event.receivedAt);
    const result = this.options.processor.offer(event, { seq, replayed });
    if (result === 'queued') return true;
    // Filtered: never for a handler. Shed: the stated backpressure loss, counted in EventsShed. Both
    // count as settled so the mark moves on. Closed (shutdown): not settled, the successor replays it.
    if (result === 'filtered' || result === 'shed') session.tracker.abandon(event.nodeId, seq);
    return false;
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
      tracker: new ProgressTracker(this.options.tailLength, fencingToken),
      live: false,
      suspended: new Set(),
      lastAssigned: new Map(),
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
    let refused = 0;
    for (const nodeId of new Set([...window.nodeIds(), ...marks.keys()])) {
      const mark = marks.get(nodeId);
      const plan = window.plan(nodeId, mark);
      alignments[plan.alignment]++;
      session.tracker.begin(nodeId, plan.firstSeq, plan.alignment === 'tail' ? (mark?.tail ?? []) : []);
      for (const entry of plan.entries) {
        if (this.handOut(session, entry, true)) replayed++;
        else refused++;
      }
    }
    session.live = true;
    this.markTimer = setInterval(() => {
      if (this.writing === undefined && this.session === session) {
        this.writing = this.writeMarks(session).finally(() => (this.writing = undefined));
      }
    }, this.options.markIntervalMs);
    this.markTimer.unref();
    logger.info('replay.completed', {
      fencingToken: session.fencingToken,
      replayed,
      filteredOrShed: refused,
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
