import { quantile } from './statistics.ts';

/**
 * Captured values as `npm start` shows them (docs/local-run.md, "What the live view shows"), from the
 * `key.processed` lines alone: per line, the value's type and payload bytes (`valueType`,
 * `valueBytes`) or why it is missing (`valueMissing`). The lines carry nothing else of a value, so
 * neither does this: counts, types and sizes, never contents (docs/security.md, "Values"). Every
 * line counts (a replayed or duplicate call too: these are handler calls, like the workers'
 * `processed` column). Pure and bounded: the size percentile is over the most recent `samplesKept`.
 */

export interface ValueStatsSnapshot {
  /** Lines with a captured value. */
  readonly captured: number;
  /** Of those, per value type (`string`, `hash`, ...), in the order first seen. */
  readonly byType: readonly (readonly [string, number])[];
  readonly bytesP50: number;
  readonly bytesMax: number;
  readonly bytesTotal: number;
  /** Lines with `valueMissing`. */
  readonly missing: number;
  /** Of those, per reason, most frequent first (then by name). */
  readonly byReason: readonly (readonly [string, number])[];
  /** Lines with neither (a worker that runs no value capture). */
  readonly unreported: number;
}

export interface ValueStatsOptions {
  /** Recent sizes the median is taken over. @default 2048 */
  readonly samplesKept?: number;
}

export class ValueStats {
  private readonly byType = new Map<string, number>();
  private readonly byReason = new Map<string, number>();
  private readonly sizes: number[] = [];
  private nextSize = 0;
  private captured = 0;
  private bytesTotal = 0;
  private bytesMax = 0;
  private missing = 0;
  private unreported = 0;
  private readonly samplesKept: number;

  constructor(options: ValueStatsOptions = {}) {
    this.samplesKept = options.samplesKept ?? 2048;
  }

  /** One `key.processed` line's value fields. */
  processed(
    valueType: string | undefined,
    valueBytes: number | undefined,
    valueMissing: string | undefined,
  ): void {
    if (valueType !== undefined) {
      this.captured++;
      this.byType.set(valueType, (this.byType.get(valueType) ?? 0) + 1);
      const bytes = valueBytes ?? 0;
      this.bytesTotal += bytes;
      if (bytes > this.bytesMax) this.bytesMax = bytes;
      if (this.sizes.length < this.samplesKept) this.sizes.push(bytes);
      else this.sizes[this.nextSize] = bytes;
      this.nextSize = (this.nextSize + 1) % this.samplesKept;
    } else if (valueMissing !== undefined) {
      this.missing++;
      this.byReason.set(valueMissing, (this.byReason.get(valueMissing) ?? 0) + 1);
    } else {
      this.unreported++;
    }
  }

  snapshot(): ValueStatsSnapshot {
    return {
      captured: this.captured,
      byType: [...this.byType],
      bytesP50: quantile(this.sizes, 0.5),
      bytesMax: this.bytesMax,
      bytesTotal: this.bytesTotal,
      missing: this.missing,
      byReason: [...this.byReason].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
      unreported: this.unreported,
    };
  }
}
