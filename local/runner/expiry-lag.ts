import { quantile } from './statistics.ts';

/**
 * Deadline -> handler lag of the generator's keys, in two kinds (docs/local-run.md, "What the live
 * view shows"):
 * - **tracked**: the worker's index knew the key and made it expire on time; its `key.processed`
 *   line carries `deadlineMs` and `lagMs` (the worker's own measure, at the handler call), taken as is;
 * - **native**: the line has no `deadlineMs` (Redis expired the key on its own: precise expiry off,
 *   or the key never reached the index); the lag is measured here, line arrival minus the deadline
 *   the generator set (`SET ... PXAT`, same machine, same wall clock), so it includes the handler and
 *   the pipe.
 * Only a key's first `key.processed` counts (a replay or duplicate is not a second expiry). Pure and
 * bounded: deadlines are kept for `maxAgeMs` after they pass and at most `maxKeys` of them, samples
 * are the most recent `samplesKept` per kind.
 */

export interface LagStats {
  readonly p50: number;
  readonly p99: number;
  /** Keys of this kind since the start. */
  readonly count: number;
}

export interface ExpiryLagSnapshot {
  readonly tracked: LagStats;
  readonly native: LagStats;
}

export interface ExpiryLagOptions {
  /** How long after its deadline a key's first `key.processed` is still awaited. @default 600000 */
  readonly maxAgeMs?: number;
  /** Deadlines kept at most (the oldest go first). @default 500000 */
  readonly maxKeys?: number;
  /** Recent samples per kind the percentiles are taken over. @default 2048 */
  readonly samplesKept?: number;
}

/** The most recent samples of one kind (a ring of `capacity`), and how many there were in all. */
interface RecentSamples {
  readonly values: number[];
  next: number;
  count: number;
}

function addSample(samples: RecentSamples, value: number, capacity: number): void {
  samples.count++;
  if (samples.values.length < capacity) samples.values.push(value);
  else samples.values[samples.next] = value;
  samples.next = (samples.next + 1) % capacity;
}

function statsOf(samples: RecentSamples): LagStats {
  return {
    p50: quantile(samples.values, 0.5),
    p99: quantile(samples.values, 0.99),
    count: samples.count,
  };
}

export class ExpiryLag {
  /** Key -> its deadline (wall ms); Map order is the order of SETs, about the order of deadlines. */
  private readonly deadlines = new Map<string, number>();
  private readonly tracked: RecentSamples = { values: [], next: 0, count: 0 };
  private readonly native: RecentSamples = { values: [], next: 0, count: 0 };
  private readonly maxAgeMs: number;
  private readonly maxKeys: number;
  private readonly samplesKept: number;

  constructor(options: ExpiryLagOptions = {}) {
    this.maxAgeMs = options.maxAgeMs ?? 600_000;
    this.maxKeys = options.maxKeys ?? 500_000;
    this.samplesKept = options.samplesKept ?? 2048;
  }

  /** The generator set `key` with this deadline (wall ms). */
  keySet(key: string, deadlineMs: number): void {
    this.deadlines.delete(key);
    this.deadlines.set(key, deadlineMs);
    if (this.deadlines.size > this.maxKeys) {
      const oldest = this.deadlines.keys().next();
      if (!oldest.done) this.deadlines.delete(oldest.value);
    }
  }

  /**
   * A `key.processed` line for `key` arrived at `atMs` (wall ms), with the worker's `lagMs` when the
   * event was tracked. Returns the kind counted, or undefined (not a generator key, or not its first).
   */
  processed(key: string, atMs: number, lagMs: number | undefined): 'tracked' | 'native' | undefined {
    const deadlineMs = this.deadlines.get(key);
    if (deadlineMs === undefined) return undefined;
    this.deadlines.delete(key);
    if (lagMs !== undefined) {
      addSample(this.tracked, lagMs, this.samplesKept);
      return 'tracked';
    }
    addSample(this.native, atMs - deadlineMs, this.samplesKept);
    return 'native';
  }

  /** Forgets deadlines more than `maxAgeMs` in the past (their key was never processed). */
  prune(nowMs: number): void {
    for (const [key, deadlineMs] of this.deadlines) {
      if (deadlineMs >= nowMs - this.maxAgeMs) break;
      this.deadlines.delete(key);
    }
  }

  /** Deadlines still awaiting their key's first `key.processed`. */
  get pending(): number {
    return this.deadlines.size;
  }

  snapshot(nowMs: number): ExpiryLagSnapshot {
    this.prune(nowMs);
    return { tracked: statsOf(this.tracked), native: statsOf(this.native) };
  }
}
