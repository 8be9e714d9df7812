/**
 * Small order statistics for status views and benchmarks. Quantiles use the nearest-rank method
 * (the value at rank ceil(q * n)), so every reported figure is a value that was actually observed.
 */

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank quantile of `values` (need not be sorted); NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be within [0, 1], got ${q}`);
  const sorted = [...values].sort((a, b) => a - b);
  return quantileOfSorted(sorted, q);
}

function quantileOfSorted(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] as number;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Summary of `values`; undefined for an empty list. */
export function summarize(values: readonly number[]): Summary | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted[0] as number,
    p50: quantileOfSorted(sorted, 0.5),
    p90: quantileOfSorted(sorted, 0.9),
    p99: quantileOfSorted(sorted, 0.99),
    max: sorted[sorted.length - 1] as number,
    mean: sum / sorted.length,
  };
}

/** `12.3 ms` style: one decimal below 100, none above; `-` for NaN/undefined. */
export function formatMs(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  return Math.abs(value) < 100 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

/** A lag: like `formatMs` below 10 s, `12.3 s` above; `-` for NaN/undefined. */
export function formatLag(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  return Math.abs(value) < 10_000 ? formatMs(value) : `${(value / 1000).toFixed(1)} s`;
}

/** Ratio as a percentage with `digits` decimals; `-` when the denominator is 0. */
export function formatPercent(numerator: number, denominator: number, digits = 1): string {
  if (denominator === 0) return '-';
  return `${((numerator / denominator) * 100).toFixed(digits)}%`;
}
