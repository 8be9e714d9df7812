import type { Clock } from '../../core/clock.ts';
import { EXPIRY_TOUCHER_DEFAULTS } from '../../core/defaults.ts';
import type { DeadlineIndex, DueEntry } from './deadline-index.ts';

/**
 * Makes tracked keys expire at their deadline (issue 13): Redis deletes a due key, and publishes its
 * `expired` event through the normal path, when a command looks it up on its primary; `PEXPIRETIME`
 * does that and returns the deadline (or -1 / -2). One timer, armed for the earliest scheduled touch
 * of the index, never a timer per key.
 *
 * Touch rules, for the reply to a touch of (key, deadline):
 * - the entry changed meanwhile (its event arrived, or a new deadline was set): the reply is ignored;
 * - `-2`, gone: NOT proof that it expired (during `CLIENT PAUSE`, a failover or maintenance, a
 *   primary reports a due key as gone without deleting it or publishing): the entry stays until its
 *   `expired` event arrives (the fan-in deletes it, expiry-tracker.ts) and is touched again after
 *   `goneRetryMs`, doubling up to `goneRetryMaxMs`, at most `goneAttempts` times (a key deleted by
 *   DEL or renamed sends no `expired`: then it is dropped, counted `gone`);
 * - `-1`, the TTL was removed (a SET without TTL, PERSIST): dropped, counted `persisted`;
 * - another deadline (the TTL moved): rescheduled for it (with its read-ahead, when there is a stage);
 * - the same deadline (alive: this worker's estimate of the primary's clock was early): touched again
 *   at the deadline by the estimate or after `minStepMs`, whichever is later (never spinning);
 * - an error (connection, CLUSTERDOWN, a timeout): touched again after `goneRetryMs`.
 * MOVED and ASK are followed by the Cluster client, which routes each touch to the slot's current
 * primary (TRYAGAIN concerns multi-key commands only).
 *
 * Role: the leader touches at the scheduled time (deadline + 1 ms in the primary's clock); a follower
 * touches `followerDelayMs` later, a backstop that covers the crash gap of a leader (touches are
 * harmless reads, and a key the leader expired is no longer tracked by the time the follower's turn
 * comes, because its `expired` event reached every worker). `arm()` re-evaluates the timer: call it
 * when the role changes.
 */
export interface ExpiryToucherOptions {
  readonly index: DeadlineIndex;
  readonly clock: Clock;
  /** PEXPIRETIME of each key, routed to its primary; one result per key (a number, or the error). */
  readonly touch: (keys: readonly Buffer[]) => Promise<readonly (number | Error)[]>;
  /** `primary clock - local clock` for the primary of `key` (primary-clocks.ts). */
  readonly offsetForKey: (key: string) => number;
  /** True while this worker leads (LeadershipState.current). */
  readonly isLeader: () => boolean;
  /** Extra delay of a follower's backstop touch. @default 500 */
  readonly followerDelayMs?: number;
  /** Shortest delay before a key found alive is touched again. @default 10 */
  readonly minStepMs?: number;
  /** First delay after a touch found the key gone without its event, or failed. @default 250 */
  readonly goneRetryMs?: number;
  /** Cap of the doubling retry delay. @default 2000 */
  readonly goneRetryMaxMs?: number;
  /** Touches of a key reported gone before it is dropped. @default 12 */
  readonly goneAttempts?: number;
  /** Keys per touch batch. @default 1000 */
  readonly batchSize?: number;
  /** Batches in flight at most. @default 4 */
  readonly maxBatchesInFlight?: number;
  /** Outcomes, for metrics: touched (sent), dropped because gone or persisted, errors. */
  readonly onOutcome?: (outcome: TouchOutcome, count: number) => void;
  /** Value capture's read-ahead before the touch (value-capture.ts). @default none: no read-ahead */
  readonly readAhead?: ReadAheadStage;
}

/**
 * A stage before the touch (value capture, issue 14): an entry is first handed out at its read-ahead
 * time, then scheduled for its touch. On the leader the stage reads the entries' values; a follower
 * reads nothing and only moves each entry on to its (backstop) touch.
 */
export interface ReadAheadStage {
  /** Local wall-clock time to read `key`'s value before its touch at `touchAtMs`, or undefined for none. */
  readAtFor(key: string, deadlineMs: number, touchAtMs: number): number | undefined;
  /**
   * Leader only: entries at their read-ahead time (`nowMs`, local wall clock), in deadline order. The
   * stage calls `answered` with every entry once its read has answered (or was not sent): only then is
   * the entry scheduled for its touch, at its touch time or at once if that has passed. A touch before
   * the read's answer would let the key's event come first and the value be dropped; waiting delays
   * the expiry only while a read is slower than its read-ahead, by at most the read's command timeout.
   */
  read(entries: readonly DueEntry[], nowMs: number, answered: (entries: readonly DueEntry[]) => void): void;
}

export type TouchOutcome = 'touched' | 'alive' | 'moved-deadline' | 'gone' | 'persisted' | 'error';

/** Redis expires a key once its clock is past the deadline: touch this long after it. */
export const TOUCH_AFTER_DEADLINE_MS = 1;

/**
 * The local wall-clock time at which the leader touches a key due at `deadlineMs` (its primary's
 * clock), given that primary's offset (`primary clock - local clock`): the one rule, for the toucher
 * and the read-ahead stage (value-capture.ts) alike.
 */
export function leaderTouchAtMs(deadlineMs: number, offsetMs: number): number {
  return deadlineMs + TOUCH_AFTER_DEADLINE_MS - offsetMs;
}

export class ExpiryToucher {
  private timer: NodeJS.Timeout | undefined;
  private timerAtMs = Number.POSITIVE_INFINITY;
  private inFlight = 0;
  private running = false;
  private readonly settings: { readonly [K in keyof typeof EXPIRY_TOUCHER_DEFAULTS]: number };

  constructor(private readonly options: ExpiryToucherOptions) {
    const d = EXPIRY_TOUCHER_DEFAULTS;
    this.settings = {
      followerDelayMs: options.followerDelayMs ?? d.followerDelayMs,
      minStepMs: options.minStepMs ?? d.minStepMs,
      goneRetryMs: options.goneRetryMs ?? d.goneRetryMs,
      goneRetryMaxMs: options.goneRetryMaxMs ?? d.goneRetryMaxMs,
      goneAttempts: options.goneAttempts ?? d.goneAttempts,
      batchSize: options.batchSize ?? d.batchSize,
      maxBatchesInFlight: options.maxBatchesInFlight ?? d.maxBatchesInFlight,
    };
    const { minStepMs, goneRetryMs, goneRetryMaxMs, goneAttempts, batchSize, maxBatchesInFlight } =
      this.settings;
    if (!(minStepMs >= 1)) throw new RangeError(`minStepMs must be >= 1, got ${minStepMs}`);
    if (!(goneRetryMs >= 1 && goneRetryMaxMs >= goneRetryMs)) {
      throw new RangeError(
        `goneRetryMs must be >= 1 and <= goneRetryMaxMs, got ${goneRetryMs} / ${goneRetryMaxMs}`,
      );
    }
    if (!(goneAttempts >= 1 && batchSize >= 1 && maxBatchesInFlight >= 1)) {
      throw new RangeError('goneAttempts, batchSize and maxBatchesInFlight must be >= 1');
    }
  }

  /** The local wall-clock time at which `deadlineMs` (primary clock) of `key` is due for the leader. */
  touchAtFor(key: string, deadlineMs: number): number {
    return leaderTouchAtMs(deadlineMs, this.options.offsetForKey(key));
  }

  /** When the read-ahead stage reads `key` before its touch at `touchAtMs`; undefined without one. */
  readAtFor(key: string, deadlineMs: number, touchAtMs: number): number | undefined {
    return this.options.readAhead?.readAtFor(key, deadlineMs, touchAtMs);
  }

  /** Starts touching. Idempotent. */
  start(): void {
    this.running = true;
    this.arm();
  }

  /** Stops the timer; touches in flight complete and their replies still update the index. */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAtMs = Number.POSITIVE_INFINITY;
  }

  /** Re-evaluates the timer (a new entry may be due earlier, or the role changed). Cheap. */
  arm(): void {
    if (!this.running || this.inFlight >= this.settings.maxBatchesInFlight) return;
    const next = this.options.index.nextTouchAtMs();
    if (next === undefined) return;
    const fireAtMs = next + this.roleDelayMs();
    if (this.timer !== undefined && fireAtMs >= this.timerAtMs) return;
    clearTimeout(this.timer);
    this.timerAtMs = fireAtMs;
    // Whole ms, rounded up: a timer counts whole ms and runs up to 1 ms before a fractional delay
    // (touch times carry the offsets' microseconds), when nothing is due yet, and a re-armed timer
    // costs 1-2 ms more. With a sub-ms clock (core/clock.ts, preciseClock) this never wakes early.
    const delayMs = Math.max(0, Math.ceil(fireAtMs - this.options.clock.wallMs()));
    this.timer = setTimeout(() => this.fire(), Math.min(delayMs, 2 ** 31 - 1));
  }

  private roleDelayMs(): number {
    return this.options.isLeader() ? 0 : this.settings.followerDelayMs;
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAtMs = Number.POSITIVE_INFINITY;
    if (!this.running) return;
    const nowMs = this.options.clock.wallMs();
    const dueBeforeMs = nowMs - this.roleDelayMs();
    const isLeader = this.options.isLeader();
    while (this.inFlight < this.settings.maxBatchesInFlight) {
      const due = this.options.index.takeDue(dueBeforeMs, this.settings.batchSize);
      if (due.length === 0) break;
      const touches = this.passReadAheads(due, isLeader, nowMs);
      if (touches.length > 0) this.send(touches);
    }
    this.arm();
  }

  /**
   * The read-ahead entries of `due` go to the stage (leader; each scheduled for its touch once its read
   * answered) or straight on to their touch (follower); a touch already due is taken again by the same
   * `fire`. The touches are returned.
   */
  private passReadAheads(due: DueEntry[], isLeader: boolean, nowMs: number): DueEntry[] {
    const stage = this.options.readAhead;
    if (stage === undefined || !due.some((entry) => entry.readAhead)) return due;
    const touches: DueEntry[] = [];
    const reads: DueEntry[] = [];
    for (const entry of due) {
      if (!entry.readAhead) touches.push(entry);
      else if (isLeader) reads.push(entry);
      else this.options.index.advance(entry.key, this.touchAtFor(entry.key, entry.deadlineMs));
    }
    if (reads.length > 0) stage.read(reads, nowMs, (answered) => this.readAnswered(answered));
    return touches;
  }

  /** The stage's reads answered: each entry still tracked for that deadline is scheduled for its touch. */
  private readAnswered(entries: readonly DueEntry[]): void {
    const { index } = this.options;
    for (const entry of entries) {
      // Its event came, or a new deadline was set (and scheduled) meanwhile: not ours to schedule.
      if (index.deadlineOf(entry.key) !== entry.deadlineMs) continue;
      index.advance(entry.key, this.touchAtFor(entry.key, entry.deadlineMs));
    }
    this.arm();
  }

  private send(due: readonly DueEntry[]): void {
    this.inFlight++;
    this.options.onOutcome?.('touched', due.length);
    const keys = due.map((entry) => Buffer.from(entry.key, 'latin1'));
    this.options.touch(keys).then(
      (replies) => this.settle(due, replies),
      (error: unknown) =>
        this.settle(
          due,
          due.map(() => (error instanceof Error ? error : new Error(String(error)))),
        ),
    );
  }

  private settle(due: readonly DueEntry[], replies: readonly (number | Error)[]): void {
    this.inFlight--;
    const { index, clock } = this.options;
    const now = clock.wallMs();
    const counts = new Map<TouchOutcome, number>();
    const count = (outcome: TouchOutcome) => counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    for (let i = 0; i < due.length; i++) {
      const entry = due[i] as DueEntry;
      // The entry changed while the touch was out (its event, or a new deadline): not ours to settle.
      if (index.deadlineOf(entry.key) !== entry.deadlineMs) continue;
      const reply = replies[i];
      if (reply === -1) {
        index.delete(entry.key);
        count('persisted');
      } else if (reply === -2 || reply instanceof Error || typeof reply !== 'number') {
        if (reply === -2 && entry.attempts + 1 >= this.settings.goneAttempts) {
          index.delete(entry.key);
          count('gone');
          continue;
        }
        if (reply !== -2) count('error');
        index.retryAt(entry.key, now + this.retryDelayMs(entry.attempts));
      } else if (reply !== entry.deadlineMs) {
        // As the tracker does: the new deadline gets its read-ahead too (its `expire` event, if it
        // comes after this, finds the same deadline tracked and changes nothing).
        const touchAtMs = this.touchAtFor(entry.key, reply);
        index.set(entry.key, reply, touchAtMs, this.readAtFor(entry.key, reply, touchAtMs));
        count('moved-deadline');
      } else {
        index.retryAt(entry.key, Math.max(now + this.settings.minStepMs, this.touchAtFor(entry.key, reply)));
        count('alive');
      }
    }
    for (const [outcome, n] of counts) this.options.onOutcome?.(outcome, n);
    this.arm();
  }

  private retryDelayMs(attempts: number): number {
    const { goneRetryMs, goneRetryMaxMs } = this.settings;
    return Math.min(goneRetryMaxMs, goneRetryMs * 2 ** Math.min(attempts, 20));
  }
}
