import type { Clock } from '../../core/clock.ts';
import type { ProcessedLogPolicy } from '../../core/config.ts';
import { PROCESSOR_DEFAULTS } from '../../core/defaults.ts';
import type { LineLogger, Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import type {
  ExpiredValue,
  ExpiryHandler,
  HandlerContext,
  HandlerEvent,
  ValueMissingReason,
} from '../handlers/expiry-handler.ts';
import {
  HandlerAbortedError,
  HandlerTimeoutError,
  UnsettledHandlerError,
} from '../handlers/handler-errors.ts';
import type { LeadershipGrant, LeadershipView } from '../leader/leadership.ts';
import { BoundedQueue } from './bounded-queue.ts';
import { expiredValueSize } from './expired-value.ts';
import type { ExpiryEvent } from './expiry-event.ts';
import { keyLogFields } from './key-text.ts';
import { TurnSlice } from './turn-slice.ts';

/**
 * Between the fan-in and the handler: bounded queue, leadership gate, bounded concurrency, per-call
 * timeout, and the `key.processed` / `handler.failed` record of every call.
 *
 * Contracts:
 * - What it is offered is filtered already: the fan-in applies the pipeline's one key filter (own keys,
 *   KEY_PATTERN; key-pattern.ts `compileKeyFilter`) before anything keeps an event.
 * - The queue holds at most `queueCapacity` events. Shedding policy: tail drop -- an event that
 *   arrives at a full queue is dropped (`EventsShed`, reason `queue-full`); queued events keep their
 *   order and are not displaced. `events.shed` is logged at once for the first shed after a quiet
 *   period, then at most once per `shedLogIntervalMs` per reason with the count since the last line.
 * - One gate policy. Only the replay coordinator offers, and only while this worker leads (a follower
 *   offers nothing, so it hands nothing to the handler). The gate is checked at dequeue time, per
 *   event: the event is handed to the handler only when `leadership.current(clock.monotonicMs())`
 *   returns a grant (this worker leads and its deadline is ahead). Otherwise the queue is held: the
 *   event stays queued, in order, and the gate is tried again every `gateRetryMs` (a pause pushed the
 *   deadline past, and a renewal may extend it; an event the leader took must not be dropped for
 *   that). When leadership ends, the coordinator's `clearQueue()` hands the queue back (`cleared`)
 *   for the successor to replay.
 * - At most `concurrency` calls run at once. A call that has not settled after `handlerTimeoutMs` is
 *   failed (`handler.failed`, `HandlerFailures`), its signal aborted, and its slot freed; if the handler
 *   ignores the signal its promise is abandoned (counted in `stats().abandonedCalls`). The call's signal
 *   also aborts when the grant's signal aborts (this worker stopped leading) and at shutdown.
 * - A call that throws, rejects or times out never stops the processor or affects leadership.
 * - `processedLog` (PROCESSED_LOG) decides which completed calls get a `key.processed` line; every
 *   failed call gets its `handler.failed` line and the metrics count every call, whatever it says.
 *   A line that is written goes to the logger before the `onDone` listeners hear of the call (the
 *   replay coordinator flushes the logger before a processed mark covers the event); a call without
 *   a line has nothing to lose.
 * - Every accepted event (offer returned `queued`) is reported to the `onDone` listeners exactly once, with its
 *   outcome: `processed` (the call completed), `failed` (it threw, rejected or timed out: reported,
 *   not retried), `unsettled` (it ended with an UnsettledHandlerError, or was aborted at shutdown
 *   after the drain bound: reported like a failure, but nobody may rely on it having taken effect),
 *   or `cleared` (`clearQueue` handed it back, or `drain` dropped it at its bound). The replay
 *   coordinator settles only `processed` and `failed`, so the processed mark stays before the others
 *   and the successor replays them. Events offer refused are not reported.
 * - Value capture: while the read of the value of the queue's head is still out (`valueReady`), the
 *   queue waits for it, at most `valueWaitMs`, and the events behind the head keep their place; the
 *   head's call then starts and takes what `takeValue` gives.
 * - Room: `room()` is the number of events `offer` can queue right now (0 once intake is closed);
 *   listeners given to `onRoom` are called synchronously whenever events left the queue, so a caller
 *   that offers only while there is room (the replay coordinator: back-pressure) never meets a full
 *   queue. A listener may call `offer` (re-entrantly).
 */

/** Where an event stands in its primary's numbered sequence (see worker/replay/), given by the coordinator. */
export interface EventMeta {
  /**
   * The event's number in its primary's shared numbering (worker/replay/progress-tracker.ts, inside a
   * reservation of the processed marks); identity `<nodeId>:<seq>`, the same whatever REPLAY_WINDOW_MS.
   */
  readonly seq: number;
  /** True when a new leader processes the event from its window (the previous leader may have too). */
  readonly replayed: boolean;
}

export type DoneOutcome = 'processed' | 'failed' | 'unsettled' | 'cleared';

/** Hears the outcome of an accepted event (`Processor.onDone`). */
export type DoneListener = (event: ExpiryEvent, meta: EventMeta, outcome: DoneOutcome) => void;

/** What `offer` did with an event: queued, or refused because shed (queue full) or closed (shutdown). */
export type OfferResult = 'queued' | 'shed' | 'closed';

export interface ProcessorOptions {
  readonly handler: ExpiryHandler;
  readonly leadership: LeadershipView;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
  /** HANDLER_CONCURRENCY. */
  readonly concurrency: number;
  /** HANDLER_TIMEOUT_MS. */
  readonly handlerTimeoutMs: number;
  readonly queueCapacity?: number;
  readonly shedLogIntervalMs?: number;
  /** How often a queue held by a closed gate tries the gate again. @default 20 */
  readonly gateRetryMs?: number;
  /**
   * Calls are started for at most this long per turn of the event loop; the rest of the queue waits
   * for the next turn (setImmediate), after timers and socket reads. A call that settles at once (a
   * synchronous handler) starts the next one in a microtask, so without this bound a queue of
   * thousands ran start to end before a lease renewal's timer or reply got a turn.
   * @default PROCESSOR_DEFAULTS.sliceMs (2)
   */
  readonly sliceMs?: number;
  /**
   * PROCESSED_LOG: which completed calls get a `key.processed` line (see ProcessedLogPolicy).
   * @default { mode: 'all' }
   */
  readonly processedLog?: ProcessedLogPolicy;
  /**
   * Value capture (worker/expiry/value-capture.ts through precise-expiry.ts `takeValue`): the event's
   * value, or why there is none, taken when its handler call starts, so that held values stay within
   * VALUE_BUDGET_BYTES while their events wait in the queue. @default none (events carry neither)
   */
  readonly takeValue?: (event: ExpiryEvent) => CapturedValue;
  /**
   * Value capture (precise-expiry.ts `valueReady`): a promise while the read of `event`'s value is
   * still out, undefined otherwise. The queue's head then waits for it before its call starts, and
   * the events behind it keep their place: a worker slower than the primary's own expiry (its first
   * burst, a loaded moment) receives a key's `expired` before the reply of a read sent in time.
   * @default none (nothing waits)
   */
  readonly valueReady?: (event: ExpiryEvent) => Promise<void> | undefined;
  /**
   * How long the head of the queue waits for its value's read at most; its call then starts with
   * what takeValue gives (`read-late` when nothing was held).
   * @default PROCESSOR_DEFAULTS.valueWaitMs (1000)
   */
  readonly valueWaitMs?: number;
}

/** What `takeValue` gives a call: the value, or why there is none. */
export type CapturedValue =
  | { readonly value: ExpiredValue; readonly valueMissing?: undefined }
  | { readonly value?: undefined; readonly valueMissing: ValueMissingReason };

/** The outcome of every call while values are not captured (CAPTURE_VALUES=false or PRECISE_EXPIRY=false). */
export const CAPTURE_OFF: CapturedValue = { valueMissing: 'capture-off' };

interface Queued {
  readonly event: ExpiryEvent;
  readonly meta: EventMeta;
}

export type ShedReason = 'queue-full' | 'shutdown';

export interface ProcessorStats {
  readonly queued: number;
  readonly inFlight: number;
  /** Calls failed by timeout or abort whose handler promise has still not settled. */
  readonly abandonedCalls: number;
}

export interface DrainResult {
  /** True when queue and calls finished within the bound. */
  readonly drained: boolean;
  /** Calls still running at the bound and aborted. */
  readonly abortedCalls: number;
  /** Queued events dropped at the bound. */
  readonly droppedEvents: number;
}

export const DEFAULT_QUEUE_CAPACITY = PROCESSOR_DEFAULTS.handlerQueueCapacity;
export const DEFAULT_SHED_LOG_INTERVAL_MS = PROCESSOR_DEFAULTS.shedLogIntervalMs;

interface Call {
  readonly event: ExpiryEvent;
  readonly meta: EventMeta;
  /** `key` (and `keyBase64` when not UTF-8), computed once for every line about this call. */
  readonly keyFields: { key: string; keyBase64?: string };
  readonly grant: LeadershipGrant;
  /** Created when the handler first reads `ctx.signal` (most never do); then aborted with `abortReason`. */
  controller: AbortController | undefined;
  /** Why the call's signal is aborted (the first reason wins), whether or not the signal exists yet. */
  abortReason: Error | undefined;
  /** Monotonic ms when the handler was called: `handlerMs` in the call's line. */
  readonly startedAtMono: number;
  /** Monotonic ms at which the call times out (startedAtMono + handlerTimeoutMs). */
  readonly deadlineMono: number;
  finished: boolean;
  /** Forced to fail while its handler promise was still pending. */
  abandoned: boolean;
  /** Deadline -> handler call, for a tracked key (on-time expiry); undefined otherwise. */
  lagMs: number | undefined;
  /** Value capture's outcome for the call (takeValue); undefined without capture. */
  captured: CapturedValue | undefined;
}

/** The call's signal, created on first use and aborted at once if the call was aborted before. */
function signalOf(call: Call): AbortSignal {
  if (call.controller === undefined) {
    call.controller = new AbortController();
    if (call.abortReason !== undefined) call.controller.abort(call.abortReason);
  }
  return call.controller.signal;
}

export class Processor {
  private readonly queue: BoundedQueue<Queued>;
  private readonly inFlight = new Set<Call>();
  private readonly pendingShed = new Map<ShedReason, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly roomListeners: (() => void)[] = [];
  private readonly doneListeners: DoneListener[] = [];
  private readonly shedLogIntervalMs: number;
  private shedTimer: NodeJS.Timeout | undefined;
  /**
   * One timer for every call's timeout, armed for the oldest call in flight: calls start in order and
   * share `handlerTimeoutMs`, so `inFlight` (a Set, in insertion order) is ordered by deadline.
   */
  private timeoutTimer: NodeJS.Timeout | undefined;
  /** Grant signals this processor listens to (one listener per term, not per call). */
  private readonly watchedGrantSignals = new WeakSet<AbortSignal>();
  private intakeOpen = true;
  private abandonedCalls = 0;
  /** Calls completed since start: PROCESSED_LOG=sample:N writes the line of the 1st, N+1st, ... */
  private completedCalls = 0;
  /** The time budget per turn for starting calls (sliceMs). */
  private readonly slice: TurnSlice;
  private resumeScheduled = false;
  /**
   * The head of the queue whose value's read the queue waits for (valueReady), if any; `ended` once
   * the read settled or valueWaitMs passed: that head then starts without asking again.
   */
  private valueWait: { readonly head: Queued; ended: boolean } | undefined;

  constructor(private readonly options: ProcessorOptions) {
    if (!(options.concurrency >= 1))
      throw new RangeError(`concurrency must be >= 1, got ${options.concurrency}`);
    this.queue = new BoundedQueue(options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY);
    this.shedLogIntervalMs = options.shedLogIntervalMs ?? DEFAULT_SHED_LOG_INTERVAL_MS;
    this.slice = new TurnSlice(options.clock, options.sliceMs ?? PROCESSOR_DEFAULTS.sliceMs);
  }

  /**
   * Takes one event. Never throws, never blocks. Returns `queued`, or why the event was refused:
   * `shed` (queue full) or `closed` (intake closed); the `onDone` listeners then never hear of it.
   */
  offer(event: ExpiryEvent, meta: EventMeta): OfferResult {
    if (!this.intakeOpen) {
      // Refused during shutdown: this worker will not handle it; count it so the hand-over gap is
      // visible. The mark stays before it and the successor replays it.
      if (this.currentGrant() !== undefined) this.noteShed('shutdown', 1);
      return 'closed';
    }
    if (!this.queue.push({ event, meta })) {
      this.noteShed('queue-full', 1);
      return 'shed';
    }
    this.pump();
    return 'queued';
  }

  /** Hands every queued event back (`cleared`): leadership ended, the successor replays them. */
  clearQueue(): number {
    let cleared = 0;
    for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
      cleared++;
      this.reportDone(item.event, item.meta, 'cleared');
    }
    if (cleared > 0) this.notifyRoom();
    return cleared;
  }

  /** How many events `offer` can queue now: free queue slots, 0 once intake is closed. */
  room(): number {
    return this.intakeOpen ? this.queue.capacity - this.queue.length : 0;
  }

  /** `listener` hears the outcome of every accepted event, once (see the contract above). */
  onDone(listener: DoneListener): void {
    this.doneListeners.push(listener);
  }

  private reportDone(event: ExpiryEvent, meta: EventMeta, outcome: DoneOutcome): void {
    for (const listener of this.doneListeners) listener(event, meta, outcome);
  }

  /** `listener` runs (synchronously) each time events left the queue; it may call `offer`. */
  onRoom(listener: () => void): void {
    this.roomListeners.push(listener);
  }

  private notifyRoom(): void {
    if (this.room() === 0) return;
    for (const listener of this.roomListeners) listener();
  }

  stats(): ProcessorStats {
    return { queued: this.queue.length, inFlight: this.inFlight.size, abandonedCalls: this.abandonedCalls };
  }

  /** Stops taking events into the queue (first step of shutdown). Idempotent. */
  stopIntake(): void {
    this.intakeOpen = false;
  }

  /**
   * Stops intake, lets queued events and running calls finish for up to `boundMs` (the gate still
   * applies to each), then aborts the calls still running and drops what is still queued.
   */
  async drain(boundMs: number): Promise<DrainResult> {
    this.stopIntake();
    const drained = await this.waitIdle(boundMs);
    // Empty the queue first: aborting a call frees its slot, which would otherwise start the next event.
    clearTimeout(this.gateRetryTimer);
    this.gateRetryTimer = undefined;
    const grantNow = this.currentGrant();
    const droppedEvents = this.clearQueue();
    // Counted as shed by this worker; they stay unsettled and a successor replays them.
    if (droppedEvents > 0 && grantNow !== undefined) this.noteShed('shutdown', droppedEvents);
    let abortedCalls = 0;
    for (const call of [...this.inFlight]) {
      abortedCalls++;
      this.force(call, new HandlerAbortedError('shutdown'));
    }
    this.flushShedLog();
    clearTimeout(this.shedTimer);
    this.shedTimer = undefined;
    return { drained, abortedCalls, droppedEvents };
  }

  private currentGrant(): LeadershipGrant | undefined {
    const grant = this.options.leadership.current(this.options.clock.monotonicMs());
    return grant && !grant.signal.aborted ? grant : undefined;
  }

  private pump(): void {
    if (this.queue.length > 0 && this.inFlight.size < this.options.concurrency && this.sliceSpent()) return;
    let dequeued = 0;
    while (this.inFlight.size < this.options.concurrency && this.queue.length > 0) {
      const grant = this.currentGrant();
      if (grant === undefined) {
        this.armGateRetry();
        break;
      }
      if (this.waitsForValue()) break;
      const { event, meta } = this.queue.shift() as Queued;
      this.valueWait = undefined;
      dequeued++;
      this.start(event, meta, grant);
    }
    if (this.queue.length === 0 && this.inFlight.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    if (dequeued > 0) this.notifyRoom();
  }

  /**
   * True while the head of the queue waits for its value's read (valueReady); starts that wait, bounded
   * by valueWaitMs, when the head has a read out. The pump runs again when the wait ends.
   */
  private waitsForValue(): boolean {
    const head = this.queue.peek();
    if (head === undefined || this.options.valueReady === undefined) return false;
    if (this.valueWait?.head === head) return !this.valueWait.ended;
    const ready = this.options.valueReady(head.event);
    if (ready === undefined) return false;
    const wait = { head, ended: false };
    this.valueWait = wait;
    let timer: NodeJS.Timeout | undefined;
    const resume = () => {
      clearTimeout(timer);
      if (this.valueWait !== wait || wait.ended) return;
      wait.ended = true;
      this.pump();
    };
    timer = setTimeout(resume, this.options.valueWaitMs ?? PROCESSOR_DEFAULTS.valueWaitMs);
    // Never what keeps a stopping process alive: drain's bound decides about the queue.
    timer.unref?.();
    void ready.then(resume);
    return true;
  }

  /**
   * True when this turn's slice is spent: the queue resumes in the next turn (one setImmediate), and
   * the caller starts nothing now (turn-slice.ts: the first pump of a turn opens the slice).
   */
  private sliceSpent(): boolean {
    if (!this.slice.spent()) return false;
    if (!this.resumeScheduled) {
      this.resumeScheduled = true;
      setImmediate(() => {
        this.resumeScheduled = false;
        this.pump();
      });
    }
    return true;
  }

  private gateRetryTimer: NodeJS.Timeout | undefined;

  private armGateRetry(): void {
    if (this.gateRetryTimer !== undefined) return;
    this.gateRetryTimer = setTimeout(() => {
      this.gateRetryTimer = undefined;
      this.pump();
    }, this.options.gateRetryMs ?? 20);
    this.gateRetryTimer.unref?.();
  }

  private start(event: ExpiryEvent, meta: EventMeta, grant: LeadershipGrant): void {
    const keyFields = keyLogFields(event.key);
    const startedAtMono = this.options.clock.monotonicMs();
    const call: Call = {
      event,
      meta,
      keyFields,
      grant,
      controller: undefined,
      abortReason: undefined,
      startedAtMono,
      deadlineMono: startedAtMono + this.options.handlerTimeoutMs,
      finished: false,
      abandoned: false,
      lagMs: undefined,
      captured: this.options.takeValue?.(event),
    };
    this.watchGrant(grant.signal);
    this.inFlight.add(call);
    this.armTimeout();

    const handlerEvent: HandlerEvent = {
      id: `${event.nodeId}:${meta.seq}`,
      key: keyFields.key,
      keyBytes: event.key,
      node: event.node,
      nodeId: event.nodeId,
      seq: meta.seq,
      receivedAt: event.receivedAt,
      replayed: meta.replayed,
      deadlineMs: event.deadlineMs,
      value: call.captured?.value,
      valueMissing: call.captured?.valueMissing,
    };
    if (event.deadlineLocalMs !== undefined) {
      // Deadline -> handler, in this worker's wall clock (the deadline converted by the offset estimate).
      call.lagMs = Math.round((this.options.clock.wallMs() - event.deadlineLocalMs) * 10) / 10;
      this.options.metrics.sample('ExpiryLagMs', call.lagMs);
    }
    const { logger, leadership, clock } = this.options;
    let log: LineLogger | undefined;
    const ctx: HandlerContext = {
      fencingToken: grant.fencingToken,
      get signal() {
        return signalOf(call);
      },
      // The same term keeps its signal across renewals (a renewal replaces the grant object, not the
      // signal), so comparing signals accepts an extended deadline and refuses a newer term.
      leaseValid: () =>
        !grant.signal.aborted && leadership.current(clock.monotonicMs())?.signal === grant.signal,
      get log() {
        log ??= logger.child({ ...keyFields, node: event.node, fencingToken: grant.fencingToken }).lines();
        return log;
      },
    };
    let result: Promise<void>;
    try {
      result = Promise.resolve(this.options.handler(handlerEvent, ctx));
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      () => this.settled(call, { ok: true }),
      (error: unknown) => this.settled(call, { ok: false, error }),
    );
  }

  /** Once per term: when the grant's signal aborts (leadership lost), every call of that term aborts. */
  private watchGrant(signal: AbortSignal): void {
    if (this.watchedGrantSignals.has(signal)) return;
    this.watchedGrantSignals.add(signal);
    signal.addEventListener(
      'abort',
      () => {
        for (const call of this.inFlight) {
          if (call.grant.signal === signal) this.abort(call, new HandlerAbortedError('leadership-lost'));
        }
      },
      { once: true },
    );
  }

  /** Arms the one timeout timer for the oldest call in flight, unless it is armed. */
  private armTimeout(): void {
    if (this.timeoutTimer !== undefined) return;
    const oldest = this.inFlight.values().next().value;
    if (oldest === undefined) return;
    const delayMs = Math.max(0, oldest.deadlineMono - this.options.clock.monotonicMs());
    this.timeoutTimer = setTimeout(() => {
      this.timeoutTimer = undefined;
      const nowMono = this.options.clock.monotonicMs();
      for (const call of [...this.inFlight]) {
        // The call this timer was armed for is due even if the clock reads a hair earlier.
        if (call !== oldest && call.deadlineMono > nowMono) break;
        this.force(call, new HandlerTimeoutError(this.options.handlerTimeoutMs));
      }
      this.armTimeout();
    }, delayMs);
  }

  /** Aborts a running call's signal (this worker stopped leading); the call still settles or times out. */
  private abort(call: Call, reason: HandlerAbortedError): void {
    if (call.finished) return;
    call.abortReason ??= reason;
    call.controller?.abort(reason);
  }

  /** Fails a call that has not settled (timeout, shutdown): aborts its signal and frees its slot now. */
  private force(call: Call, error: HandlerTimeoutError | HandlerAbortedError): void {
    if (call.finished) return;
    call.abortReason ??= error;
    call.controller?.abort(error);
    call.abandoned = true;
    this.abandonedCalls++;
    this.finish(call, error);
  }

  /** The handler's promise settled: records the outcome, unless the call was already forced. */
  private settled(call: Call, outcome: { ok: true } | { ok: false; error: unknown }): void {
    if (call.finished) {
      if (call.abandoned) {
        call.abandoned = false;
        this.abandonedCalls--;
      }
      return;
    }
    this.finish(call, outcome.ok ? undefined : outcome.error, outcome.ok);
  }

  private finish(call: Call, error: unknown, ok = false): void {
    call.finished = true;
    this.inFlight.delete(call);
    if (this.inFlight.size === 0) {
      clearTimeout(this.timeoutTimer);
      this.timeoutTimer = undefined;
    }
    const { event, meta, grant, keyFields } = call;
    const eventId = `${event.nodeId}:${meta.seq}`;
    const nowMono = this.options.clock.monotonicMs();
    // How long the call ran: its line's `time` minus this is when the gate let it start (a call in
    // flight across a pause of the process shows up as started before the pause).
    const handlerMs = Math.round((nowMono - call.startedAtMono) * 10) / 10;
    if (ok) {
      const latencyMs = Math.round((nowMono - event.receivedAtMono) * 10) / 10;
      this.options.metrics.count('EventsProcessed');
      this.options.metrics.sample('ProcessingLatencyMs', latencyMs);
      // The record is built only when it is written (LOG_LEVEL=warn: thousands a second saved).
      if (this.logsProcessedCall() && this.options.logger.isEnabled('info')) {
        // A captured value's type and size only, never its contents (docs/security.md, "Values").
        const captured = call.captured;
        const valueSize = captured?.value === undefined ? undefined : expiredValueSize(captured.value);
        // Built field by field: an object spread here cost ~4-7 µs per event on Node 20 (measured),
        // a third of the whole per-event cost of the processor.
        this.options.logger.info('key.processed', {
          key: keyFields.key,
          keyBase64: keyFields.keyBase64,
          node: event.node,
          fencingToken: grant.fencingToken,
          latencyMs,
          handlerMs,
          replayed: meta.replayed,
          eventId,
          deadlineMs: event.deadlineMs,
          lagMs: call.lagMs,
          valueType: valueSize?.type,
          valueBytes: valueSize?.bytes,
          valueMissing: captured?.valueMissing,
        });
      }
    } else {
      this.options.metrics.count('HandlerFailures');
      this.options.logger.error('handler.failed', {
        ...keyFields,
        node: event.node,
        fencingToken: grant.fencingToken,
        eventId,
        handlerMs,
        error,
      });
    }
    this.reportDone(event, meta, ok ? 'processed' : doneOutcomeOfFailure(error));
    this.pump();
  }

  /** Counts a completed call; true when PROCESSED_LOG wants its `key.processed` line. */
  private logsProcessedCall(): boolean {
    const policy = this.options.processedLog ?? { mode: 'all' };
    const index = this.completedCalls++;
    if (policy.mode === 'all') return true;
    if (policy.mode === 'failures') return false;
    return index % policy.everyN === 0;
  }

  private waitIdle(boundMs: number): Promise<boolean> {
    if (this.queue.length === 0 && this.inFlight.size === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        const index = this.idleWaiters.indexOf(onIdle);
        if (index >= 0) this.idleWaiters.splice(index, 1);
        resolve(false);
      }, boundMs);
      const onIdle = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(onIdle);
    });
  }

  private noteShed(reason: ShedReason, count: number): void {
    this.options.metrics.count('EventsShed', count);
    this.pendingShed.set(reason, (this.pendingShed.get(reason) ?? 0) + count);
    if (this.shedTimer === undefined) {
      this.flushShedLog();
      this.armShedTimer();
    }
  }

  private armShedTimer(): void {
    this.shedTimer = setTimeout(() => {
      this.shedTimer = undefined;
      if (this.pendingShed.size === 0) return;
      this.flushShedLog();
      this.armShedTimer();
    }, this.shedLogIntervalMs);
    this.shedTimer.unref?.();
  }

  private flushShedLog(): void {
    for (const [reason, count] of this.pendingShed) {
      this.options.logger.warn('events.shed', { count, reason, queueCapacity: this.queue.capacity });
    }
    this.pendingShed.clear();
  }
}

/**
 * A call that ended with an UnsettledHandlerError (the handler says its effect is not assured), or
 * that was aborted at shutdown after the drain bound (it may or may not have taken effect), must be
 * replayed by the successor: `unsettled`. Every other failure settles the event (`failed`).
 */
function doneOutcomeOfFailure(error: unknown): 'failed' | 'unsettled' {
  if (error instanceof UnsettledHandlerError) return 'unsettled';
  if (error instanceof HandlerAbortedError && error.reason === 'shutdown') return 'unsettled';
  return 'failed';
}
