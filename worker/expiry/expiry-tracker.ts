import { EXPIRY_TRACKER_DEFAULTS } from '../../core/defaults.ts';
import type { DeadlineIndex } from './deadline-index.ts';
import type { ExpiryToucher } from './expiry-toucher.ts';
import type { KeyMatcher } from './key-pattern.ts';

/**
 * Keeps the deadline index current from its two sources (issue 13) and answers the fan-in:
 *
 * - `expire` keyspace events (`noteTtlSet`): a TTL was set or changed on a key. Filtered first (the
 *   pipeline's one key filter: the project's own keys and keys outside KEY_PATTERN never enter),
 *   then **coalesced per key** (a key written many times before its lookup is looked up once) and
 *   looked up with PEXPIRETIME in batches of `batchSize`, at most `maxBatchesInFlight` at a time, one
 *   batch per event-loop turn. Keys waiting beyond `maxPending` are dropped, counted (`lookup-dropped`:
 *   the keyspace scan finds them again).
 * - the keyspace scan (`noteDeadline`, keyspace-scanner.ts): keys and deadlines it already read.
 *
 * A lookup's reply: a deadline -> tracked (or rescheduled, when it moved); -1 (no TTL: a SET without
 * one cleared it) or -2 (gone) -> not tracked. A lookup that fails leaves the key to the scan.
 *
 * `takeDeadline` is the fan-in's side: an `expired` event of a tracked key ends its entry and gives
 * the event its deadline (primary clock) and the local time of that deadline (for the lag).
 */
export interface ExpiryTrackerOptions {
  readonly index: DeadlineIndex;
  readonly toucher: ExpiryToucher;
  /** The pipeline's key filter (key-pattern.ts compileKeyFilter). */
  readonly accepts: KeyMatcher;
  /** PEXPIRETIME of each key, routed to its primary; one result per key. */
  readonly lookup: (keys: readonly Buffer[]) => Promise<readonly (number | Error)[]>;
  /** `primary clock - local clock` for the primary of `key` (primary-clocks.ts). */
  readonly offsetForKey: (key: string) => number;
  /** Keys per lookup batch. @default 1000 */
  readonly batchSize?: number;
  /** Lookup batches in flight at most. @default 4 */
  readonly maxBatchesInFlight?: number;
  /** Keys waiting for a lookup at most. @default 100000 */
  readonly maxPending?: number;
  /** Counts, for metrics. */
  readonly onOutcome?: (outcome: TrackOutcome, count: number) => void;
}

export type TrackOutcome = 'looked-up' | 'tracked' | 'untracked' | 'lookup-failed' | 'lookup-dropped';

/** What `takeDeadline` tells the fan-in of a tracked key's expiry. */
export interface TrackedDeadline {
  /** The deadline in the primary's clock (ms since the epoch). */
  readonly deadlineMs: number;
  /** The same instant in this worker's wall clock, by the current offset estimate. */
  readonly deadlineLocalMs: number;
}

export class ExpiryTracker {
  private pending = new Set<string>();
  private inFlight = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;
  private readonly batchSize: number;
  private readonly maxBatchesInFlight: number;
  private readonly maxPending: number;

  constructor(private readonly options: ExpiryTrackerOptions) {
    this.batchSize = options.batchSize ?? EXPIRY_TRACKER_DEFAULTS.batchSize;
    this.maxBatchesInFlight = options.maxBatchesInFlight ?? EXPIRY_TRACKER_DEFAULTS.maxBatchesInFlight;
    this.maxPending = options.maxPending ?? EXPIRY_TRACKER_DEFAULTS.maxPending;
    if (!(this.batchSize >= 1 && this.maxBatchesInFlight >= 1 && this.maxPending >= 1)) {
      throw new RangeError('batchSize, maxBatchesInFlight and maxPending must be >= 1');
    }
  }

  /** Keys tracked now. */
  get trackedKeys(): number {
    return this.options.index.size;
  }

  /** Keys waiting for their lookup. */
  get pendingLookups(): number {
    return this.pending.size;
  }

  /** An `expire` event: `key` got a TTL, or another one. */
  noteTtlSet(key: Buffer): void {
    if (this.closed || !this.options.accepts(key)) return;
    const text = key.toString('latin1');
    if (this.pending.has(text)) return;
    if (this.pending.size >= this.maxPending) {
      this.options.onOutcome?.('lookup-dropped', 1);
      return;
    }
    this.pending.add(text);
    this.scheduleLookups();
  }

  /** A key and its deadline read by the scan (already filtered by it). */
  noteDeadline(key: string, deadlineMs: number): void {
    if (this.closed) return;
    this.track(key, deadlineMs);
    this.options.toucher.arm();
  }

  /** The fan-in's side: `key` expired. Ends its entry; its deadline when it was tracked. */
  takeDeadline(key: Buffer): TrackedDeadline | undefined {
    // Every accepted `expired` event comes here: no string is made while nothing is tracked.
    if (this.options.index.size === 0) return undefined;
    const text = key.toString('latin1');
    const deadlineMs = this.options.index.delete(text);
    if (deadlineMs === undefined) return undefined;
    return { deadlineMs, deadlineLocalMs: deadlineMs - this.options.offsetForKey(text) };
  }

  close(): void {
    this.closed = true;
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.pending.clear();
  }

  private track(key: string, deadlineMs: number): void {
    const { toucher, index } = this.options;
    // Unchanged: nothing to schedule (and no read-ahead planned twice: a batch's plan counts keys).
    if (index.deadlineOf(key) === deadlineMs) return;
    const touchAtMs = toucher.touchAtFor(key, deadlineMs);
    const result = index.set(key, deadlineMs, touchAtMs, toucher.readAtFor(key, deadlineMs, touchAtMs));
    if (result === 'added' || result === 'updated') this.options.onOutcome?.('tracked', 1);
  }

  private scheduleLookups(): void {
    if (this.scheduled !== undefined || this.closed) return;
    if (this.inFlight >= this.maxBatchesInFlight || this.pending.size === 0) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.runLookups();
    });
  }

  private runLookups(): void {
    while (!this.closed && this.inFlight < this.maxBatchesInFlight && this.pending.size > 0) {
      const batch: string[] = [];
      for (const key of this.pending) {
        batch.push(key);
        this.pending.delete(key);
        if (batch.length >= this.batchSize) break;
      }
      this.inFlight++;
      this.options.onOutcome?.('looked-up', batch.length);
      this.options.lookup(batch.map((key) => Buffer.from(key, 'latin1'))).then(
        (replies) => this.settle(batch, replies),
        () => this.settle(batch, undefined),
      );
    }
  }

  private settle(batch: readonly string[], replies: readonly (number | Error)[] | undefined): void {
    this.inFlight--;
    if (this.closed) return;
    let failed = 0;
    let untracked = 0;
    for (let i = 0; i < batch.length; i++) {
      const key = batch[i] as string;
      const reply = replies?.[i];
      if (typeof reply !== 'number') failed++;
      else if (reply >= 0) this.track(key, reply);
      else if (this.options.index.delete(key) !== undefined) untracked++;
    }
    if (failed > 0) this.options.onOutcome?.('lookup-failed', failed);
    if (untracked > 0) this.options.onOutcome?.('untracked', untracked);
    this.options.toucher.arm();
    this.scheduleLookups();
  }
}
