/**
 * Matches, key by key, the `expired` events the reference subscribers received (one bare subscriber
 * per primary: the honest "expected") against the keys the workers processed (`key.processed`).
 * Pure and bounded: an entry is settled `settleMs` after it was first seen and then only counted, so a
 * run of hours keeps at most `settleMs` worth of keys in memory.
 */

export interface LedgerTotals {
  /** Distinct keys the reference subscribers received. */
  readonly expected: number;
  /** Distinct tracked keys processed at least once. */
  readonly processed: number;
  /** Keys both expected and processed. */
  readonly matched: number;
  /** Settled keys that were expected but never processed. */
  readonly missing: number;
  /** Settled keys that were processed but never seen by a reference subscriber. */
  readonly unexpected: number;
  /** Handler calls beyond the first for a key (replays, or two workers acting as leader). */
  readonly duplicates: number;
  /** Keys seen by one side only, not yet settled. */
  readonly pending: number;
}

interface Entry {
  firstSeenMs: number;
  expectedAtMs: number | undefined;
  processedAtMs: number | undefined;
  processedCalls: number;
}

export interface EventLedgerOptions {
  /** Only keys for which this returns true are counted (the generator's prefix). */
  readonly isTracked: (key: string) => boolean;
  /** How long a key may wait for its other side before it counts as missing / unexpected. */
  readonly settleMs?: number;
  /** Latency samples kept for the percentiles (most recent). */
  readonly latencySamples?: number;
}

export class EventLedger {
  private readonly entries = new Map<string, Entry>();
  private readonly settleMs: number;
  private readonly latencyCapacity: number;
  private readonly latencies: number[] = [];
  private latencyNext = 0;
  private expectedCount = 0;
  private processedCount = 0;
  private matchedCount = 0;
  private missingCount = 0;
  private unexpectedCount = 0;
  private duplicateCount = 0;

  constructor(private readonly options: EventLedgerOptions) {
    this.settleMs = options.settleMs ?? 30_000;
    this.latencyCapacity = options.latencySamples ?? 2048;
  }

  private entry(key: string, atMs: number): Entry {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { firstSeenMs: atMs, expectedAtMs: undefined, processedAtMs: undefined, processedCalls: 0 };
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** A reference subscriber received `key` at `atMs`. Returns false when the key is not tracked. */
  expected(key: string, atMs: number): boolean {
    if (!this.options.isTracked(key)) return false;
    const entry = this.entry(key, atMs);
    if (entry.expectedAtMs !== undefined) return true;
    entry.expectedAtMs = atMs;
    this.expectedCount++;
    if (entry.processedAtMs !== undefined) {
      this.matchedCount++;
      this.recordLatency(entry.processedAtMs - atMs);
    }
    return true;
  }

  /** A worker wrote `key.processed` for `key`, observed at `atMs`. */
  processed(key: string, atMs: number): boolean {
    if (!this.options.isTracked(key)) return false;
    const entry = this.entry(key, atMs);
    entry.processedCalls++;
    if (entry.processedCalls > 1) {
      this.duplicateCount++;
      return true;
    }
    entry.processedAtMs = atMs;
    this.processedCount++;
    if (entry.expectedAtMs !== undefined) {
      this.matchedCount++;
      this.recordLatency(atMs - entry.expectedAtMs);
    }
    return true;
  }

  private recordLatency(ms: number): void {
    if (this.latencies.length < this.latencyCapacity) this.latencies.push(ms);
    else this.latencies[this.latencyNext] = ms;
    this.latencyNext = (this.latencyNext + 1) % this.latencyCapacity;
  }

  /** Settles entries first seen before `nowMs - settleMs`. Map order is insertion order: stop early. */
  settle(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (nowMs !== Number.POSITIVE_INFINITY && entry.firstSeenMs > nowMs - this.settleMs) break;
      if (entry.expectedAtMs === undefined) this.unexpectedCount++;
      else if (entry.processedAtMs === undefined) this.missingCount++;
      this.entries.delete(key);
    }
  }

  totals(): LedgerTotals {
    let pending = 0;
    for (const entry of this.entries.values()) {
      if (entry.expectedAtMs === undefined || entry.processedAtMs === undefined) pending++;
    }
    return {
      expected: this.expectedCount,
      processed: this.processedCount,
      matched: this.matchedCount,
      missing: this.missingCount,
      unexpected: this.unexpectedCount,
      duplicates: this.duplicateCount,
      pending,
    };
  }

  /** Processed-minus-received latencies of the most recent matched keys (ms, unordered). */
  recentLatencies(): readonly number[] {
    return this.latencies;
  }
}
