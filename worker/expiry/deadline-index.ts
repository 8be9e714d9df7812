/**
 * The deadline index (issue 13): every volatile key this worker tracks, with its deadline in its
 * primary's clock and the local wall-clock time at which it is next due to be touched. One structure
 * for every key, never a timer per key: the toucher (expiry-toucher.ts) arms one timer at
 * `nextTouchAtMs()` and takes the due keys with `takeDue`.
 *
 * Layout, chosen for memory (docs/precise-expiry.md, "Memory per tracked key"): a Map from the key
 * (a latin1 string: one char per byte, so any binary key maps 1:1) to a small integer, the entry's
 * slot in parallel typed arrays (deadline, scheduled time, attempts, read-ahead flag), and a binary min-heap of
 * (touch time, slot) pairs with lazy deletion: a reschedule pushes a new pair and leaves the old one,
 * which is recognised as stale when popped (its time no longer equals the slot's) and skipped. The
 * heap is rebuilt from the live entries when stale pairs outnumber them, so it never holds more than
 * 2 x size + 1 pairs. A slot taken by `takeDue` is "in flight" (touch time NaN) until the caller
 * reschedules or deletes it, so a stale pair of the same slot can never hand it out twice.
 *
 * Capacity: at most `maxKeys` entries. A new key that would pass the bound makes room by dropping the
 * farthest deadlines (the farthest `evictShare` of the entries, found in one O(n) selection), counted
 * through `onDropped`; while the index stays nearly full, keys whose deadline lies beyond the farthest
 * one kept are refused (also counted) instead of evicting nearer ones. The keyspace scan finds dropped
 * keys again once there is room (keyspace-scanner.ts).
 */
export interface DeadlineIndexOptions {
  /** Entries kept at most. */
  readonly maxKeys: number;
  /** Share of `maxKeys` dropped, farthest deadlines first, when a new key finds the index full. @default 0.05 */
  readonly evictShare?: number;
  /** Keys dropped or refused for capacity (the scan finds them again once there is room). @default none */
  readonly onDropped?: (count: number) => void;
}

/** One entry as `takeDue` hands it out. */
export interface DueEntry {
  /** The key as a latin1 string (Buffer.from(key, 'latin1') gives its bytes). */
  readonly key: string;
  /** Deadline in the primary's clock (ms since the epoch), as PEXPIRETIME returned it. */
  readonly deadlineMs: number;
  /** Touches already made for this deadline without the key expiring (0 for the first touch). */
  readonly attempts: number;
  /**
   * True when this is the entry's read-ahead time (value capture, value-capture.ts), not its touch:
   * the caller reads the value (or not, on a follower) and schedules the touch with `advance`.
   */
  readonly readAhead: boolean;
}

export type SetResult = 'added' | 'updated' | 'unchanged' | 'refused';

const INITIAL_CAPACITY = 1024;

export class DeadlineIndex {
  private readonly slotOf = new Map<string, number>();
  private keys: (string | undefined)[] = [];
  private deadlines = new Float64Array(INITIAL_CAPACITY);
  private touchAts = new Float64Array(INITIAL_CAPACITY);
  private attemptCounts = new Uint8Array(INITIAL_CAPACITY);
  /** 1 while the entry's scheduled time is its read-ahead (value capture), 0 for its touch. */
  private readAheads = new Uint8Array(INITIAL_CAPACITY);
  private freeSlots: number[] = [];
  private heapTimes = new Float64Array(INITIAL_CAPACITY);
  private heapSlots = new Int32Array(INITIAL_CAPACITY);
  private heapSize = 0;
  /** While the index is nearly full: deadlines at or beyond this are refused. */
  private refuseFromMs = Number.POSITIVE_INFINITY;
  private readonly maxKeys: number;
  private readonly evictCount: number;

  constructor(private readonly options: DeadlineIndexOptions) {
    if (!Number.isInteger(options.maxKeys) || options.maxKeys < 1) {
      throw new RangeError(`maxKeys must be an integer >= 1, got ${options.maxKeys}`);
    }
    const evictShare = options.evictShare ?? 0.05;
    if (!(evictShare > 0 && evictShare <= 1))
      throw new RangeError(`evictShare must be in (0, 1], got ${evictShare}`);
    this.maxKeys = options.maxKeys;
    this.evictCount = Math.max(1, Math.floor(options.maxKeys * evictShare));
  }

  /** Entries tracked now (in flight included). */
  get size(): number {
    return this.slotOf.size;
  }

  has(key: string): boolean {
    return this.slotOf.has(key);
  }

  /** The deadline (primary clock) tracked for `key`, or undefined. */
  deadlineOf(key: string): number | undefined {
    const slot = this.slotOf.get(key);
    return slot === undefined ? undefined : (this.deadlines[slot] as number);
  }

  /**
   * Tracks `key` with `deadlineMs` (primary clock), due to be touched at `touchAtMs` (local wall
   * clock), and first handed out at `readAtMs` for its value's read-ahead when that is given (and
   * earlier than the touch). An existing entry with the same deadline keeps its schedule
   * (`unchanged`); a new deadline replaces the old one, resets the attempts and schedules the
   * read-ahead again (`updated`).
   */
  set(key: string, deadlineMs: number, touchAtMs: number, readAtMs?: number): SetResult {
    const readAhead = readAtMs !== undefined && readAtMs < touchAtMs;
    const existing = this.slotOf.get(key);
    if (existing !== undefined) {
      if (this.deadlines[existing] === deadlineMs) return 'unchanged';
      this.deadlines[existing] = deadlineMs;
      this.attemptCounts[existing] = 0;
      this.readAheads[existing] = readAhead ? 1 : 0;
      this.schedule(existing, readAhead ? (readAtMs as number) : touchAtMs);
      return 'updated';
    }
    if (this.slotOf.size >= this.maxKeys) {
      if (deadlineMs >= this.refuseFromMs || !this.evictFarthest(deadlineMs)) {
        this.options.onDropped?.(1);
        return 'refused';
      }
    } else if (this.slotOf.size < this.maxKeys - 2 * this.evictCount) {
      this.refuseFromMs = Number.POSITIVE_INFINITY;
    }
    const slot = this.allocate();
    this.keys[slot] = key;
    this.deadlines[slot] = deadlineMs;
    this.attemptCounts[slot] = 0;
    this.readAheads[slot] = readAhead ? 1 : 0;
    this.slotOf.set(key, slot);
    this.schedule(slot, readAhead ? (readAtMs as number) : touchAtMs);
    return 'added';
  }

  /**
   * After its read-ahead: schedules the first touch of `key` at `touchAtMs` (no attempt counted).
   * False when the key is not tracked.
   */
  advance(key: string, touchAtMs: number): boolean {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return false;
    this.readAheads[slot] = 0;
    this.schedule(slot, touchAtMs);
    return true;
  }

  /**
   * Schedules the next touch of `key` (the key was alive, or reported gone without its event) and
   * counts the attempt. False when the key is not tracked (its event came meanwhile).
   */
  retryAt(key: string, touchAtMs: number): boolean {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return false;
    this.attemptCounts[slot] = Math.min(255, (this.attemptCounts[slot] as number) + 1);
    this.readAheads[slot] = 0;
    this.schedule(slot, touchAtMs);
    return true;
  }

  /** Stops tracking `key`; returns its deadline (primary clock) when it was tracked. */
  delete(key: string): number | undefined {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return undefined;
    const deadlineMs = this.deadlines[slot] as number;
    this.release(key, slot);
    return deadlineMs;
  }

  /** Local wall-clock time of the earliest scheduled touch, or undefined when none is scheduled. */
  nextTouchAtMs(): number | undefined {
    this.dropStaleTop();
    return this.heapSize === 0 ? undefined : (this.heapTimes[0] as number);
  }

  /**
   * Takes up to `limit` entries due at `nowMs` (touch time <= nowMs), earliest first, and marks them
   * in flight: each stays tracked (an `expired` event still finds it) but is not handed out again
   * until `retryAt` or `set` schedules it anew.
   */
  takeDue(nowMs: number, limit: number): DueEntry[] {
    const due: DueEntry[] = [];
    while (due.length < limit) {
      this.dropStaleTop();
      if (this.heapSize === 0 || (this.heapTimes[0] as number) > nowMs) break;
      const slot = this.heapSlots[0] as number;
      this.popHeap();
      this.touchAts[slot] = Number.NaN;
      due.push({
        key: this.keys[slot] as string,
        deadlineMs: this.deadlines[slot] as number,
        attempts: this.attemptCounts[slot] as number,
        readAhead: this.readAheads[slot] === 1,
      });
    }
    return due;
  }

  /** Pairs in the heap (live and stale): for tests of the bound. */
  get heapLength(): number {
    return this.heapSize;
  }

  private schedule(slot: number, touchAtMs: number): void {
    this.touchAts[slot] = touchAtMs;
    if (this.heapSize >= 2 * this.slotOf.size + 1) this.rebuildHeap();
    this.pushHeap(touchAtMs, slot);
  }

  private allocate(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    const slot = this.keys.length;
    this.keys.push(undefined);
    if (slot >= this.deadlines.length) {
      const capacity = this.deadlines.length * 2;
      this.deadlines = grow(this.deadlines, capacity);
      this.touchAts = grow(this.touchAts, capacity);
      const attempts = new Uint8Array(capacity);
      attempts.set(this.attemptCounts);
      this.attemptCounts = attempts;
      const readAheads = new Uint8Array(capacity);
      readAheads.set(this.readAheads);
      this.readAheads = readAheads;
    }
    return slot;
  }

  private release(key: string, slot: number): void {
    this.slotOf.delete(key);
    this.keys[slot] = undefined;
    this.touchAts[slot] = Number.NaN;
    this.freeSlots.push(slot);
  }

  /**
   * Drops the farthest `evictCount` deadlines to make room for one at `deadlineMs`; false (nothing
   * dropped) when that one would itself be among the farthest.
   */
  private evictFarthest(deadlineMs: number): boolean {
    const live: number[] = [];
    for (const slot of this.slotOf.values()) live.push(slot);
    const keep = live.length - this.evictCount;
    const deadlines = this.deadlines;
    // Partition so that live[keep..] hold the farthest deadlines (quickselect on the deadline).
    select(live, keep, (a, b) => (deadlines[a] as number) - (deadlines[b] as number));
    let cutoff = Number.POSITIVE_INFINITY;
    for (let i = keep; i < live.length; i++)
      cutoff = Math.min(cutoff, deadlines[live[i] as number] as number);
    if (deadlineMs >= cutoff) {
      this.refuseFromMs = cutoff;
      return false;
    }
    for (let i = keep; i < live.length; i++) {
      const slot = live[i] as number;
      this.release(this.keys[slot] as string, slot);
    }
    this.options.onDropped?.(live.length - keep);
    this.refuseFromMs = cutoff;
    return true;
  }

  private dropStaleTop(): void {
    while (this.heapSize > 0) {
      const slot = this.heapSlots[0] as number;
      if (this.touchAts[slot] === this.heapTimes[0]) return;
      this.popHeap();
    }
  }

  private rebuildHeap(): void {
    this.heapSize = 0;
    for (const slot of this.slotOf.values()) {
      const touchAt = this.touchAts[slot] as number;
      if (!Number.isNaN(touchAt)) this.pushHeap(touchAt, slot);
    }
  }

  private pushHeap(time: number, slot: number): void {
    if (this.heapSize >= this.heapTimes.length) {
      const capacity = this.heapTimes.length * 2;
      this.heapTimes = grow(this.heapTimes, capacity);
      const slots = new Int32Array(capacity);
      slots.set(this.heapSlots);
      this.heapSlots = slots;
    }
    const times = this.heapTimes;
    const slots = this.heapSlots;
    let i = this.heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((times[parent] as number) <= time) break;
      times[i] = times[parent] as number;
      slots[i] = slots[parent] as number;
      i = parent;
    }
    times[i] = time;
    slots[i] = slot;
  }

  private popHeap(): void {
    const times = this.heapTimes;
    const slots = this.heapSlots;
    const last = --this.heapSize;
    if (last === 0) return;
    const time = times[last] as number;
    const slot = slots[last] as number;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= last) break;
      if (child + 1 < last && (times[child + 1] as number) < (times[child] as number)) child++;
      if ((times[child] as number) >= time) break;
      times[i] = times[child] as number;
      slots[i] = slots[child] as number;
      i = child;
    }
    times[i] = time;
    slots[i] = slot;
  }
}

function grow(array: Float64Array, capacity: number): Float64Array<ArrayBuffer> {
  const grown = new Float64Array(capacity);
  grown.set(array);
  return grown;
}

/** Rearranges `items` so that items[k] is the k-th smallest and items[k..] are all >= it (Hoare quickselect). */
function select<T>(items: T[], k: number, compare: (a: T, b: T) => number): void {
  let left = 0;
  let right = items.length - 1;
  while (right > left) {
    const pivot = items[(left + right) >> 1] as T;
    let i = left;
    let j = right;
    while (i <= j) {
      while (compare(items[i] as T, pivot) < 0) i++;
      while (compare(items[j] as T, pivot) > 0) j--;
      if (i <= j) {
        const swap = items[i] as T;
        items[i] = items[j] as T;
        items[j] = swap;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return;
  }
}
