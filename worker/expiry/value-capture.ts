import type { Clock } from '../../core/clock.ts';
import { VALUE_CAPTURE_DEFAULTS } from '../../core/defaults.ts';
import type { ValueMissingReason } from '../handlers/expiry-handler.ts';
import type { DueEntry } from './deadline-index.ts';
import type { ReadAheadStage } from './expiry-toucher.ts';
import type { HeldOutcome, HeldValues, ValueReservation } from './held-values.ts';
import type { ValueReader, ValueReadResult } from './value-reader.ts';

/**
 * Value capture (issue 14, README "Values", docs/precise-expiry.md "Values"): the leader reads each
 * tracked key's value just before its deadline and holds it (held-values.ts) until the key's
 * `expired` event is handed to the handler.
 *
 * - **When**: a stage of the deadline index before the touch (expiry-toucher.ts ReadAheadStage).
 *   A key is read `readAheadMs` (EXPIRY_READ_AHEAD_MS) before its touch time, earlier when many keys
 *   share its deadline: the k-th key tracked for the same `bucketMs` slice of touch times is read
 *   `k / readsPerMs` ms earlier still (at most `maxLeadMs`), so a batch of keys sharing one deadline
 *   is read at about `readsPerMs` and the last read is due `readAheadMs` before the deadline. The
 *   count per slice lives in a fixed table (`bucketSlots` slices, a slice's count restarts when
 *   another slice takes its slot), never per key; a key deleted meanwhile still counted only makes
 *   later keys of its slice read earlier. Keys of many neighbouring slices are not summed: a batch
 *   spread over many slices of a dense second can be read late (`read-late`).
 * - **What**: one read per key (value-reader.ts, the read-only value-read script) with the room the
 *   budget grants (`HeldValues.reserve`); the outcome is held for (key, deadline):
 *   the value; or `too-large`, `unsupported-type`, `over-budget` (no room, or the value did not fit);
 *   `ttl-changed` (the read saw another deadline or none: the `expire` event reschedules the key, and
 *   its read-ahead comes again for the new deadline); `read-late` (the read was due at or after the
 *   touch time, or found the key gone); `read-failed` (an error reply). A reply for a key tracked with
 *   another deadline (its TTL moved) is dropped; one for a key no longer tracked (its event came first)
 *   is held: the event's handler call takes it when it starts, and a call may wait for a read still
 *   out (`whenRead`, the processor's `valueReady`), which a worker that is slower than the primary's own
 *   expiry (a first burst, a loaded moment) needs.
 * - **Who**: only the leader reads (`isLeader` when the entry comes due); a follower moves the entry on
 *   to its backstop touch. Leadership lost: every held value is dropped (`leadershipChanged`).
 * - **Handing out**: `take` when the handler call starts (the processor), so held values stay within
 *   the budget while their events wait in the backlog: the value, or why there is none
 *   (`not-tracked`: no deadline was known for the key; `leader-changed`: this worker was not leading
 *   when the value was due to be read, e.g. it replays a previous leader's events; `read-late`: it
 *   led but never read it, its event came before the read-ahead).
 * Values are user data: nothing here logs them, and no error carries them.
 */
export interface ValueCaptureOptions {
  readonly reader: Pick<ValueReader, 'read'>;
  readonly held: HeldValues;
  readonly clock: Clock;
  /** The leader's touch time of `key` for `deadlineMs` (expiry-toucher.ts `touchAtFor`). */
  readonly touchAtFor: (key: string, deadlineMs: number) => number;
  /** The deadline the index tracks for `key` now (deadline-index.ts `deadlineOf`). */
  readonly trackedDeadlineOf: (key: string) => number | undefined;
  /** EXPIRY_READ_AHEAD_MS. */
  readonly readAheadMs: number;
  /** VALUE_MAX_BYTES: the most a read may be granted. */
  readonly maxBytes: number;
  /** Reads per ms a batch sharing one deadline is planned at. @default 20 */
  readonly readsPerMs?: number;
  /** The read-ahead of a key in a batch is at most this much longer than `readAheadMs`. @default 5000 */
  readonly maxLeadMs?: number;
  /** Width of the slices of touch times whose keys are counted together. @default 10 */
  readonly bucketMs?: number;
}

/** Slices counted at once (a fixed table: 64 Ki slices of 10 ms cover ~11 minutes). */
const BUCKET_SLOTS = 65_536;

/** A read sent and not settled: the deadline it reads for, and who waits for it (whenRead). */
interface Reading {
  readonly deadlineMs: number;
  waiters: (() => void)[] | undefined;
}

/** Lets everyone waiting for `read` (if any) go on. */
function release(read: Reading | undefined): void {
  for (const resolve of read?.waiters ?? []) resolve();
}

export class ValueCapture implements ReadAheadStage {
  private readonly bucketIds = new Float64Array(BUCKET_SLOTS).fill(Number.NaN);
  private readonly bucketCounts = new Uint32Array(BUCKET_SLOTS);
  private readonly readsPerMs: number;
  private readonly maxLeadMs: number;
  private readonly bucketMs: number;
  /** Local wall-clock ms since which this worker leads; +Infinity while it follows. */
  private leaderSinceMs = Number.POSITIVE_INFINITY;
  /** Reads sent and not settled, per key (latin1): the deadline read for, and who waits (whenRead). */
  private readonly reading = new Map<string, Reading>();

  constructor(private readonly options: ValueCaptureOptions) {
    const d = VALUE_CAPTURE_DEFAULTS;
    this.readsPerMs = options.readsPerMs ?? d.readsPerMs;
    this.maxLeadMs = options.maxLeadMs ?? d.maxLeadMs;
    this.bucketMs = options.bucketMs ?? d.bucketMs;
    if (!(options.readAheadMs >= 0))
      throw new RangeError(`readAheadMs must be >= 0, got ${options.readAheadMs}`);
    if (!(this.readsPerMs > 0 && this.maxLeadMs >= 0 && this.bucketMs >= 1))
      throw new RangeError('readsPerMs must be > 0, maxLeadMs >= 0 and bucketMs >= 1');
    if (!(options.maxBytes >= 1)) throw new RangeError(`maxBytes must be >= 1, got ${options.maxBytes}`);
  }

  readAtFor(_key: string, _deadlineMs: number, touchAtMs: number): number {
    const bucket = Math.floor(touchAtMs / this.bucketMs);
    const slot = ((bucket % BUCKET_SLOTS) + BUCKET_SLOTS) % BUCKET_SLOTS;
    if (this.bucketIds[slot] !== bucket) {
      this.bucketIds[slot] = bucket;
      this.bucketCounts[slot] = 0;
    }
    const rank = this.bucketCounts[slot] as number;
    if (rank < 0xffffffff) this.bucketCounts[slot] = rank + 1;
    return touchAtMs - this.options.readAheadMs - Math.min(this.maxLeadMs, rank / this.readsPerMs);
  }

  read(entries: readonly DueEntry[], nowMs: number, answered: (entries: readonly DueEntry[]) => void): void {
    const { held, maxBytes, touchAtFor } = this.options;
    const keys: Buffer[] = [];
    const limits: number[] = [];
    const sent: DueEntry[] = [];
    const reservations: ValueReservation[] = [];
    const notSent: DueEntry[] = [];
    for (const entry of entries) {
      const reservation = held.reserve(maxBytes);
      const late = nowMs >= touchAtFor(entry.key, entry.deadlineMs);
      if (late || reservation.bytes === 0) {
        const reason = late ? 'read-late' : 'over-budget';
        held.settle(entry.key, entry.deadlineMs, reservation, reason);
        notSent.push(entry);
      } else {
        keys.push(Buffer.from(entry.key, 'latin1'));
        // A read still out for an older deadline of the key: its waiters go now (their event is that
        // deadline's; its reply is dropped as a moved TTL's).
        release(this.reading.get(entry.key));
        this.reading.set(entry.key, { deadlineMs: entry.deadlineMs, waiters: undefined });
        limits.push(reservation.bytes);
        sent.push(entry);
        reservations.push(reservation);
      }
    }
    if (notSent.length > 0) answered(notSent);
    if (sent.length === 0) return;
    // Each entry's touch waits for its read (expiry-toucher.ts ReadAheadStage): `answered` once settled.
    const settleAll = (resultOf: (i: number) => ValueReadResult | Error | undefined) => {
      for (let i = 0; i < sent.length; i++)
        this.settle(sent[i] as DueEntry, reservations[i] as ValueReservation, resultOf(i));
      answered(sent);
    };
    this.options.reader.read(keys, limits).then(
      (results) => settleAll((i) => results[i]),
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        settleAll(() => failure);
      },
    );
  }

  private settle(
    entry: DueEntry,
    reservation: ValueReservation,
    result: ValueReadResult | Error | undefined,
  ): void {
    const { held } = this.options;
    const tracked = this.options.trackedDeadlineOf(entry.key);
    // Its TTL moved meanwhile (another deadline is tracked): nobody will take this one. A key no longer
    // tracked had its event: its handler call takes the value when it starts (or waits for it here),
    // unless this worker stopped leading meanwhile (its calls find none: `leader-changed`).
    const ours =
      tracked === entry.deadlineMs ||
      (tracked === undefined && this.leaderSinceMs !== Number.POSITIVE_INFINITY);
    if (!ours) held.cancel(reservation);
    else held.settle(entry.key, entry.deadlineMs, reservation, outcomeOf(entry.deadlineMs, result));
    const read = this.reading.get(entry.key);
    if (read?.deadlineMs !== entry.deadlineMs) return;
    this.reading.delete(entry.key);
    release(read);
  }

  /** True while any read is out: with none (a warm burst's reads settle before its events), no key need be looked up. */
  get readsOut(): boolean {
    return this.reading.size > 0;
  }

  /**
   * A promise settled once the read of `key` (latin1) for `deadlineMs` is (its value held, or why not),
   * while that read is out; undefined otherwise. The processor waits on it before it starts the call
   * of the key's event (a bounded wait: processor.ts `valueWaitMs`).
   */
  whenRead(key: string, deadlineMs: number | undefined): Promise<void> | undefined {
    const read = this.reading.get(key);
    if (read === undefined || read.deadlineMs !== deadlineMs) return undefined;
    return new Promise<void>((resolve) => {
      read.waiters ??= [];
      read.waiters.push(resolve);
    });
  }

  /**
   * The value (or why there is none) for the handler call of `key`'s (latin1) expiry; `deadlineMs`
   * is the event's (undefined when the key was not tracked), `deadlineLocalMs` that instant in the
   * local clock.
   */
  take(key: string, deadlineMs: number | undefined, deadlineLocalMs: number | undefined): HeldOutcome {
    if (deadlineMs === undefined) return { valueMissing: 'not-tracked' };
    const held = this.options.held.take(key, deadlineMs);
    if (held !== undefined) return held;
    // Nothing held: the read was not this worker's to make, or it never ran.
    const dueToReadAtMs = (deadlineLocalMs ?? deadlineMs) - this.options.readAheadMs;
    return { valueMissing: this.leaderSinceMs > dueToReadAtMs ? 'leader-changed' : 'read-late' };
  }

  /** The role changed: leading from now, or not; a worker that stops leading drops every held value. */
  leadershipChanged(isLeader: boolean): void {
    if (isLeader) {
      if (this.leaderSinceMs === Number.POSITIVE_INFINITY) this.leaderSinceMs = this.options.clock.wallMs();
      return;
    }
    if (this.leaderSinceMs !== Number.POSITIVE_INFINITY) this.options.held.clear();
    this.leaderSinceMs = Number.POSITIVE_INFINITY;
    // Nobody waits for a follower's reads: its calls find no value (`leader-changed`).
    for (const read of this.reading.values()) release(read);
    this.reading.clear();
  }
}

function outcomeOf(
  deadlineMs: number,
  result: ValueReadResult | Error | undefined,
): Parameters<HeldValues['settle']>[3] {
  if (result === undefined || result instanceof Error) return 'read-failed';
  switch (result.kind) {
    case 'value':
      return result.deadlineMs === deadlineMs ? result.value : 'ttl-changed';
    case 'missing':
      return result.deadlineMs === deadlineMs ? (result.reason satisfies ValueMissingReason) : 'ttl-changed';
    case 'no-ttl':
      return 'ttl-changed';
    case 'gone':
      return 'read-late';
  }
}
