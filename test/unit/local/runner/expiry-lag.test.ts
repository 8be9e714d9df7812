import { describe, expect, it } from 'vitest';
import { ExpiryLag } from '../../../../local/runner/expiry-lag.ts';

const T0 = 1_700_000_000_000;

describe('ExpiryLag', () => {
  it("takes a tracked key's lag from its key.processed line and measures a native one from its deadline", () => {
    const lag = new ExpiryLag();
    lag.keySet('demo:1', T0 + 1000);
    lag.keySet('demo:2', T0 + 1000);
    // demo:1 tracked: the worker said 3 ms, whenever the line arrived; demo:2 native: 19 s late.
    expect(lag.processed('demo:1', T0 + 1010, 3)).toBe('tracked');
    expect(lag.processed('demo:2', T0 + 20_000, undefined)).toBe('native');
    const s = lag.snapshot(T0 + 21_000);
    expect(s.tracked).toEqual({ p50: 3, p99: 3, count: 1 });
    expect(s.native).toEqual({ p50: 19_000, p99: 19_000, count: 1 });
  });

  it("counts only a key's first key.processed, and only keys the generator set", () => {
    const lag = new ExpiryLag();
    lag.keySet('demo:1', T0);
    expect(lag.processed('demo:1', T0 + 5, 5)).toBe('tracked');
    expect(lag.processed('demo:1', T0 + 900, 900)).toBeUndefined();
    expect(lag.processed('other', T0 + 5, 5)).toBeUndefined();
    expect(lag.snapshot(T0 + 1000).tracked).toEqual({ p50: 5, p99: 5, count: 1 });
  });

  it('p50 and p99 over the recent samples; no sample: NaN (shown as -)', () => {
    const lag = new ExpiryLag({ samplesKept: 100 });
    for (let i = 1; i <= 200; i++) {
      lag.keySet(`demo:${i}`, T0);
      lag.processed(`demo:${i}`, T0, i);
    }
    const s = lag.snapshot(T0);
    // The last 100 samples: 101..200.
    expect(s.tracked).toEqual({ p50: 150, p99: 199, count: 200 });
    expect(s.native.count).toBe(0);
    expect(Number.isNaN(s.native.p50)).toBe(true);
  });

  it('is bounded: deadlines long past are forgotten, and at most maxKeys are kept', () => {
    const lag = new ExpiryLag({ maxAgeMs: 10_000, maxKeys: 3 });
    lag.keySet('demo:1', T0);
    lag.keySet('demo:2', T0 + 5000);
    lag.snapshot(T0 + 12_000);
    expect(lag.pending).toBe(1);
    expect(lag.processed('demo:1', T0 + 12_000, undefined)).toBeUndefined();
    for (let i = 3; i <= 6; i++) lag.keySet(`demo:${i}`, T0 + 6000);
    expect(lag.pending).toBe(3);
    expect(lag.processed('demo:2', T0 + 12_000, undefined)).toBeUndefined();
    expect(lag.processed('demo:6', T0 + 12_000, undefined)).toBe('native');
  });
});
