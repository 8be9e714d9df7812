import type { Clock } from '../../core/clock.ts';
import { VALUE_CAPTURE_DEFAULTS } from '../../core/defaults.ts';
import type { ExpiredValue, ExpiredValueType, ValueMissingReason } from '../handlers/expiry-handler.ts';
import { type ExpiredValueSize, expiredValueSize } from './expired-value.ts';

/**
 * The leader's store of values read ahead of their key's deadline (issue 14), each waiting for its
 * key's `expired` event: one entry per key (the key as a latin1 string, one char per byte, as in
 * deadline-index.ts), holding either the value or the reason it was not read.
 *
 * The budget (VALUE_BUDGET_BYTES) bounds, strictly and at all times, `heldBytes + reservedBytes`:
 * - `reservedBytes`: the room granted to reads in flight (`reserve`). A read is granted room before it
 *   is sent, so replies on their way cannot push the total over the budget; a reservation ends with
 *   exactly one `settle` or `cancel`, whatever happened meanwhile (a `clear` included: its reply still
 *   lands in memory, so its room stays counted until then).
 * - `heldBytes`: the charge of every held value: its payload bytes (expired-value.ts
 *   `expiredValueSize`) plus a fixed overhead per element and per entry, measured (below), so the
 *   budget approximates the memory the values really take in the V8 heap, not only their payload.
 *   A value whose charge is over its reservation is held only if it fits in what is free; otherwise
 *   the entry says `over-budget` instead.
 * What the budget does not count:
 * - a value once `take` returned it: it belongs to the caller. Take it as late as possible, when the
 *   handler call starts, so that the values of events waiting in the backlog and the queue stay
 *   counted; the values outside the budget are then those of the calls in flight, at most
 *   HANDLER_CONCURRENCY values. (Counting a taken value until a `release` from the call's end would
 *   bound those too, but every path that ends an event -- completion, timeout, shed, cleared queue,
 *   shutdown -- would have to release it, and one missed path would leak budget for good.)
 * - the entries that hold a reason (`too-large`, `over-budget`, ...): charged 0 so that they are never
 *   refused (an `over-budget` reason must be held precisely when the budget is full). They are small
 *   (about REASON_ENTRY_BYTES plus the key's bytes) and at most one per tracked key, which the deadline
 *   index bounds (EXPIRY_TRACK_MAX_KEYS).
 * - the reply buffers of the Redis client, and what the read script allocates: the reader should copy
 *   each element out of its reply (Buffer.from) so that a held value does not pin a socket's read chunk.
 *
 * Ordering: each reservation has a sequence number; a `settle` never replaces an entry settled from a
 * later reservation (a slow reply of an earlier read of the key is discarded). `clear` (leadership
 * lost) drops every entry and makes the settles of reservations made before it hold nothing.
 *
 * Release bound: an entry whose event has not come `holdTimeoutMs` after its deadline (in the local
 * wall clock: `deadlineMs - offsetForKey(key)`, or after its settle if that is later) is released by
 * a sweep, and the released values are counted (`onReleased`). One timer, armed for the earliest
 * release but at most once per `sweepIntervalMs`, unref'd, stopped while the store is empty; a sweep
 * walks every entry (O(n), at most once per `sweepIntervalMs`). An entry may be released up to
 * `sweepIntervalMs` late; a `take` before the sweep still gets it. The default bound is long (60 s)
 * on purpose: memory stays within the budget whatever it is; it only decides how long a value whose
 * event never comes (a DEL in the read-ahead window) keeps its room, and it must outlast the wait of
 * an event behind a backlog when values are taken at the call's start.
 *
 * Values are user data: nothing here logs them or puts them in an error.
 */
export interface HeldValuesOptions {
  /** Bytes held values and reservations take at most together (VALUE_BUDGET_BYTES). */
  readonly budgetBytes: number;
  readonly clock: Clock;
  /** `primary clock - local clock` for the primary of `key` (primary-clocks.ts): a deadline's local time. */
  readonly offsetForKey: (key: string) => number;
  /** An entry whose event has not come this long after its deadline is released. @default 60000 */
  readonly holdTimeoutMs?: number;
  /** Shortest time between two sweeps for released entries. @default 1000 */
  readonly sweepIntervalMs?: number;
  /** Values released by the bound (count, charged bytes), once per sweep that released any. @default none */
  readonly onReleased?: (count: number, bytes: number) => void;
}

/** Room granted to one read (`reserve`); end it with `settle` or `cancel`, exactly once. */
export interface ValueReservation {
  /** Charged bytes the read may bring back (compare with `heldValueCharge`); 0: over budget, do not read. */
  readonly bytes: number;
}

/** What `take` hands out for an expired key. */
export type HeldOutcome = { readonly value: ExpiredValue } | { readonly valueMissing: ValueMissingReason };

/**
 * What `settle` did: held the value, held the reason given, held `over-budget` because the value did
 * not fit, or held nothing (the reservation predates a `clear`, or a later read of the key settled first).
 */
export type SettleResult = 'value' | 'reason' | 'over-budget' | 'discarded';

/**
 * Charged per entry, beyond the key's bytes: the Map entry, the entry object, the `{ value }` object
 * and the value's own object, the key string's header. Measured (node 20, `--expose-gc`): 180-230
 * bytes besides the value's Buffers, depending on how full the Map's table is (50,000 to 100,000
 * entries); the upper end is charged, so the budget errs high.
 */
export const ENTRY_OVERHEAD_BYTES = 224;

/**
 * Charged per element, beyond its payload bytes, by type. Measured as above: a Buffer copied out of a
 * reply costs about 105 bytes on its own (object and backing-store record), plus 8 for its slot in an
 * array; a hash field is a [Buffer, Buffer] pair (two Buffers and a 2-element array, ~265 bytes), a
 * sorted-set member a [Buffer, number] pair (~180 bytes). With these, the charge of 50,000 values of
 * each shape measured within -2 % .. +12 % of the heap they took (strings of 50 B and 4 KiB; lists,
 * sets, hashes and sorted sets of 10 elements; lists of 1,000 one-byte items), and 100,000 strings of
 * 100 B within 2 %. A Buffer made by Buffer.alloc (its own ArrayBuffer, not a slice of the pool)
 * costs about 100 bytes more than charged: the reader copies with Buffer.from.
 */
export const ELEMENT_OVERHEAD_BYTES: Readonly<Record<ExpiredValueType, number>> = {
  string: 112,
  list: 112,
  set: 112,
  hash: 264,
  zset: 184,
};

/** Memory of an entry that holds a reason, besides the key's string (measured ~125 bytes; not charged: see the contract). */
export const REASON_ENTRY_BYTES = 128;

/** The smallest charge of any value (an empty string under an empty key): less room is no room. */
export const MIN_VALUE_CHARGE_BYTES = ENTRY_OVERHEAD_BYTES + ELEMENT_OVERHEAD_BYTES.string;

/** The bytes a value of `size` held under a key of `keyBytes` bytes is charged against the budget. */
export function heldValueCharge(
  keyBytes: number,
  size: Pick<ExpiredValueSize, 'type' | 'bytes' | 'elements'>,
): number {
  return ENTRY_OVERHEAD_BYTES + keyBytes + size.bytes + size.elements * ELEMENT_OVERHEAD_BYTES[size.type];
}

class Reservation implements ValueReservation {
  ended = false;
  constructor(
    readonly owner: HeldValues,
    readonly bytes: number,
    readonly generation: number,
    readonly seq: number,
  ) {}
}

interface HeldEntry {
  /** The deadline the read was for (primary clock), as the event's `deadlineMs` will say. */
  readonly deadlineMs: number;
  /** Local wall-clock time after which the entry is released. */
  readonly releaseAtMs: number;
  /** The sequence number of the reservation it was settled from. */
  readonly seq: number;
  /** Bytes charged (0 for a reason). */
  readonly charge: number;
  readonly outcome: HeldOutcome;
}

/** One shared outcome object per reason: a reason entry allocates nothing but its entry. */
const REASON_OUTCOMES = new Map<ValueMissingReason, HeldOutcome>();
function reasonOutcome(reason: ValueMissingReason): HeldOutcome {
  let outcome = REASON_OUTCOMES.get(reason);
  if (outcome === undefined) {
    outcome = Object.freeze({ valueMissing: reason });
    REASON_OUTCOMES.set(reason, outcome);
  }
  return outcome;
}

export class HeldValues {
  private readonly entries = new Map<string, HeldEntry>();
  private held = 0;
  private reserved = 0;
  private values = 0;
  private generation = 0;
  private seq = 0;
  private closed = false;
  private readonly budgetBytes: number;
  private readonly holdTimeoutMs: number;
  private readonly sweepIntervalMs: number;
  /** At most the earliest release time of the entries (exact after a sweep); +Infinity when empty. */
  private earliestReleaseAtMs = Number.POSITIVE_INFINITY;
  private lastSweepAtMs = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private timerAtMs = Number.POSITIVE_INFINITY;

  constructor(private readonly options: HeldValuesOptions) {
    const d = VALUE_CAPTURE_DEFAULTS;
    this.budgetBytes = options.budgetBytes;
    this.holdTimeoutMs = options.holdTimeoutMs ?? d.holdTimeoutMs;
    this.sweepIntervalMs = options.sweepIntervalMs ?? d.sweepIntervalMs;
    if (!Number.isSafeInteger(this.budgetBytes) || this.budgetBytes < 1)
      throw new RangeError(`budgetBytes must be an integer >= 1, got ${this.budgetBytes}`);
    if (!(this.holdTimeoutMs >= 0))
      throw new RangeError(`holdTimeoutMs must be >= 0, got ${this.holdTimeoutMs}`);
    if (!(this.sweepIntervalMs >= 1))
      throw new RangeError(`sweepIntervalMs must be >= 1, got ${this.sweepIntervalMs}`);
  }

  /** Charged bytes of the held values. */
  get heldBytes(): number {
    return this.held;
  }

  /** Room granted to reads in flight. */
  get reservedBytes(): number {
    return this.reserved;
  }

  /** Entries held: values and reasons. */
  get size(): number {
    return this.entries.size;
  }

  /** Entries that hold a value. */
  get valueCount(): number {
    return this.values;
  }

  /**
   * Grants room for one read: `min(maxBytes, budget - held - reserved)` charged bytes, or 0 when less
   * than the smallest value's charge is free (or the store is closed): then the caller does not read,
   * and settles the reservation with `over-budget`.
   */
  reserve(maxBytes: number): ValueReservation {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
      throw new RangeError(`maxBytes must be an integer >= 1, got ${maxBytes}`);
    const room = this.budgetBytes - this.held - this.reserved;
    const bytes = this.closed || room < MIN_VALUE_CHARGE_BYTES ? 0 : Math.min(maxBytes, room);
    this.reserved += bytes;
    return new Reservation(this, bytes, this.generation, ++this.seq);
  }

  /** Ends a reservation without holding anything (the read was not sent, or its result is not wanted). */
  cancel(reservation: ValueReservation): void {
    this.end(reservation);
  }

  /**
   * Ends `reservation` and holds its read's outcome for `key` and `deadlineMs` (primary clock): the
   * value, or the reason there is none. It replaces an entry the key held (freeing its bytes) unless
   * that one came from a later reservation. A value whose charge does not fit in what is free once its
   * reservation ended is not held: the entry says `over-budget`.
   */
  settle(
    key: string,
    deadlineMs: number,
    reservation: ValueReservation,
    outcome: ExpiredValue | ValueMissingReason,
  ): SettleResult {
    const r = this.end(reservation);
    if (this.closed || r.generation !== this.generation) return 'discarded';
    const existing = this.entries.get(key);
    if (existing !== undefined) {
      if (existing.seq > r.seq) return 'discarded';
      this.remove(key, existing);
    }
    const now = this.options.clock.wallMs();
    const releaseAtMs = Math.max(deadlineMs - this.options.offsetForKey(key), now) + this.holdTimeoutMs;
    if (typeof outcome === 'string') {
      this.hold(key, { deadlineMs, releaseAtMs, seq: r.seq, charge: 0, outcome: reasonOutcome(outcome) });
      return 'reason';
    }
    const charge = heldValueCharge(key.length, expiredValueSize(outcome));
    if (this.held + this.reserved + charge > this.budgetBytes) {
      this.hold(key, {
        deadlineMs,
        releaseAtMs,
        seq: r.seq,
        charge: 0,
        outcome: reasonOutcome('over-budget'),
      });
      return 'over-budget';
    }
    this.hold(key, { deadlineMs, releaseAtMs, seq: r.seq, charge, outcome: { value: outcome } });
    return 'value';
  }

  /**
   * The held outcome for `key`'s expiry, removed (its bytes freed); undefined when nothing is held.
   * With `deadlineMs` (the event's): an entry read for an earlier deadline (the TTL moved after the
   * read) is dropped and gives `ttl-changed`; an entry read for a later deadline (the key's next life,
   * read before this event was taken) is kept for its own event and this one gives `ttl-changed`.
   */
  take(key: string, deadlineMs?: number): HeldOutcome | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (deadlineMs !== undefined && entry.deadlineMs !== deadlineMs) {
      if (entry.deadlineMs < deadlineMs) this.remove(key, entry);
      return reasonOutcome('ttl-changed');
    }
    this.remove(key, entry);
    return entry.outcome;
  }

  /**
   * Drops `key`'s entry (its TTL moved, or the deadline index dropped the key); with `deadlineMs`,
   * only an entry read for that deadline. True when one was dropped.
   */
  drop(key: string, deadlineMs?: number): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined || (deadlineMs !== undefined && entry.deadlineMs !== deadlineMs)) return false;
    this.remove(key, entry);
    return true;
  }

  /**
   * Leadership lost: every entry is dropped (not counted as released), and the settles of the
   * reservations made so far will hold nothing (their room stays counted until they end). Returns the
   * number of entries dropped.
   */
  clear(): number {
    const dropped = this.entries.size;
    this.entries.clear();
    this.held = 0;
    this.values = 0;
    this.generation++;
    this.stopTimer();
    this.earliestReleaseAtMs = Number.POSITIVE_INFINITY;
    return dropped;
  }

  /** Shutdown: clears, stops the timer; later reservations get no room and later settles hold nothing. */
  close(): void {
    this.closed = true;
    this.clear();
  }

  private end(reservation: ValueReservation): Reservation {
    if (!(reservation instanceof Reservation) || reservation.owner !== this)
      throw new TypeError('not a reservation of this store');
    if (reservation.ended) throw new Error('reservation already ended');
    reservation.ended = true;
    this.reserved -= reservation.bytes;
    return reservation;
  }

  private hold(key: string, entry: HeldEntry): void {
    this.entries.set(key, entry);
    this.held += entry.charge;
    if ('value' in entry.outcome) this.values++;
    if (entry.releaseAtMs < this.earliestReleaseAtMs) this.earliestReleaseAtMs = entry.releaseAtMs;
    this.arm();
  }

  private remove(key: string, entry: HeldEntry): void {
    this.entries.delete(key);
    this.held -= entry.charge;
    if ('value' in entry.outcome) this.values--;
    if (this.entries.size === 0) {
      this.stopTimer();
      this.earliestReleaseAtMs = Number.POSITIVE_INFINITY;
    }
  }

  private arm(): void {
    if (this.closed || this.entries.size === 0) return;
    const fireAtMs = Math.max(this.earliestReleaseAtMs, this.lastSweepAtMs + this.sweepIntervalMs);
    if (this.timer !== undefined && this.timerAtMs <= fireAtMs) return;
    clearTimeout(this.timer);
    this.timerAtMs = fireAtMs;
    const delayMs = Math.max(0, fireAtMs - this.options.clock.wallMs());
    this.timer = setTimeout(() => this.sweep(), Math.min(delayMs, 2 ** 31 - 1));
    this.timer.unref();
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAtMs = Number.POSITIVE_INFINITY;
  }

  private sweep(): void {
    this.timer = undefined;
    this.timerAtMs = Number.POSITIVE_INFINITY;
    const now = this.options.clock.wallMs();
    this.lastSweepAtMs = now;
    let count = 0;
    let bytes = 0;
    let earliest = Number.POSITIVE_INFINITY;
    for (const [key, entry] of this.entries) {
      if (entry.releaseAtMs <= now) {
        // Deleting the current entry while iterating a Map is safe: iteration goes on with the next.
        this.remove(key, entry);
        if ('value' in entry.outcome) {
          count++;
          bytes += entry.charge;
        }
      } else if (entry.releaseAtMs < earliest) {
        earliest = entry.releaseAtMs;
      }
    }
    this.earliestReleaseAtMs = earliest;
    if (count > 0) this.options.onReleased?.(count, bytes);
    this.arm();
  }
}
