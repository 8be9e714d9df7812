import { describe, expect, it } from 'vitest';
import { formatMs, formatPercent, median, quantile, summarize } from '../../../../local/runner/statistics.ts';

describe('statistics', () => {
  it('uses the nearest rank, so each quantile is an observed value', () => {
    const values = [5, 1, 4, 2, 3];
    expect(quantile(values, 0)).toBe(1);
    expect(quantile(values, 0.2)).toBe(1);
    expect(quantile(values, 0.5)).toBe(3);
    expect(quantile(values, 0.99)).toBe(5);
    expect(quantile(values, 1)).toBe(5);
    expect(median([10, 20, 30, 40])).toBe(20);
  });

  it('gives the 99th percentile of 1..1000 as 990 and leaves its input unsorted', () => {
    const values = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    expect(quantile(values, 0.99)).toBe(990);
    expect(values[0]).toBe(1000);
  });

  it('is NaN (quantile) or undefined (summary) for no values, and refuses q outside [0, 1]', () => {
    expect(quantile([], 0.5)).toBeNaN();
    expect(summarize([])).toBeUndefined();
    expect(() => quantile([1], 1.5)).toThrow(RangeError);
  });

  it('summarizes count, min, p50, p90, p99, max and mean', () => {
    expect(summarize([4, 1, 3, 2])).toEqual({ count: 4, min: 1, p50: 2, p90: 4, p99: 4, max: 4, mean: 2.5 });
  });

  it('formats milliseconds and percentages for people', () => {
    expect(formatMs(1.234)).toBe('1.2 ms');
    expect(formatMs(1234.5)).toBe('1235 ms');
    expect(formatMs(Number.NaN)).toBe('-');
    expect(formatMs(undefined)).toBe('-');
    expect(formatPercent(999, 1000, 1)).toBe('99.9%');
    expect(formatPercent(1, 0)).toBe('-');
  });
});
