import { describe, expect, it } from 'vitest';
import {
  burstSizes,
  CRASH_LOSS_SHARE_OF_MAX,
  crashLossRates,
  duplicatesInWindow,
  judgeStep,
  keysInWindow,
  latencyTrend,
  lostInWindow,
  matchFanIn,
  type ProcessedRecord,
  summarizeHandovers,
} from '../../../bench/analysis.ts';

function processed(entries: [string, Partial<ProcessedRecord>][]): Map<string, ProcessedRecord> {
  return new Map(
    entries.map(([key, r]) => [
      key,
      { lineMs: 0, arrivalMs: 0, latencyMs: undefined, workerId: 'w', calls: 1, ...r } as ProcessedRecord,
    ]),
  );
}

describe('matchFanIn', () => {
  it('matches by key and bounds the added latency from above by the line time resolution', () => {
    const reference = new Map([
      ['k1', 1000.4],
      ['k2', 1001.0],
      ['k3', 1002.0],
    ]);
    const result = matchFanIn(
      reference,
      processed([
        ['k1', { lineMs: 1001, arrivalMs: 1001.9, latencyMs: 0.3 }],
        ['k2', { lineMs: 1003, arrivalMs: 1004.5, latencyMs: 0.5, calls: 2 }],
        ['ghost', { lineMs: 1003, arrivalMs: 1003 }],
      ]),
    );
    expect(result).toMatchObject({ expected: 3, matched: 2, unexpected: 1, duplicates: 1 });
    expect(result.ratio).toBeCloseTo(2 / 3, 10);
    // k1: 1001 + 1 - 1000.4 = 1.6; k2: 1003 + 1 - 1001 = 3
    expect(result.addedMs?.p50).toBeCloseTo(1.6, 10);
    expect(result.addedMs?.max).toBeCloseTo(3, 10);
    expect(result.addedArrivalMs?.max).toBeCloseTo(3.5, 10);
    expect(result.workerLatencyMs?.max).toBe(0.5);
  });

  it('has no latency summary and a ratio of 0 when nothing was received', () => {
    const result = matchFanIn(new Map(), new Map());
    expect(result.ratio).toBe(0);
    expect(result.addedMs).toBeUndefined();
  });
});

describe('latencyTrend', () => {
  it('compares the median delay of the first and the last third of the keys by receipt time', () => {
    const reference = new Map<string, number>();
    const records: [string, Partial<ProcessedRecord>][] = [];
    for (let i = 0; i < 90; i++) {
      reference.set(`k${i}`, i * 10);
      // delay grows from 1 ms to ~90 ms: a backlog building up
      records.push([`k${i}`, { lineMs: i * 10 + i }]);
    }
    const trend = latencyTrend(reference, processed(records));
    expect(trend?.firstThirdMs).toBe(15);
    expect(trend?.lastThirdMs).toBe(75);
    expect(latencyTrend(new Map([['a', 1]]), processed([['a', { lineMs: 2 }]]))).toBeUndefined();
  });
});

describe('judgeStep', () => {
  const base = {
    targetPerSecond: 1000,
    durationS: 10,
    generated: 10_000,
    expected: 10_000,
    processed: 10_000,
  };

  it('calls a step sustained when >= 99% is processed with a flat delay', () => {
    expect(judgeStep({ ...base, processed: 9_900, trend: { firstThirdMs: 2, lastThirdMs: 3 } }).verdict).toBe(
      'sustained',
    );
  });

  it('calls it behind below 99%, with shed events, a growing delay or a high worker p99', () => {
    expect(judgeStep({ ...base, processed: 9_899 }).verdict).toBe('behind');
    expect(judgeStep({ ...base, shed: 5 }).verdict).toBe('behind');
    expect(judgeStep({ ...base, trend: { firstThirdMs: 5, lastThirdMs: 40 } })).toMatchObject({
      verdict: 'behind',
      reason: 'added latency grew from 5.0 ms to 40.0 ms within the step',
    });
    expect(judgeStep({ ...base, trend: { firstThirdMs: 30, lastThirdMs: 55 } }).verdict).toBe('sustained');
    expect(judgeStep({ ...base, workerP99Ms: 150 }).verdict).toBe('behind');
    // With per-key lines the trend decides; a high but flat delay is still keeping up.
    expect(
      judgeStep({ ...base, workerP99Ms: 150, trend: { firstThirdMs: 30, lastThirdMs: 35 } }).verdict,
    ).toBe('sustained');
  });

  it('blames the generator, not the leader, when the rate was not produced', () => {
    expect(judgeStep({ ...base, generated: 8_000, processed: 0 })).toMatchObject({
      verdict: 'generator-limited',
    });
  });
});

/** A fault window's reference (key -> bare subscribers' receipt, ms): four keys 100 ms apart. */
const receipts: ReadonlyMap<string, number> = new Map([
  ['a', 100],
  ['b', 200],
  ['c', 300],
  ['d', 400],
]);

describe('keysInWindow', () => {
  it('yields the keys received within [fromMs, toMs], both ends included, with their receipt instant', () => {
    expect([...keysInWindow(receipts, 200, 300)]).toEqual([
      ['b', 200],
      ['c', 300],
    ]);
    expect([...keysInWindow(receipts, 150, 350)]).toEqual([
      ['b', 200],
      ['c', 300],
    ]);
    expect([...keysInWindow(receipts, 0, 1000)].map(([key]) => key)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('yields nothing for a window between receipts, before them, or reversed', () => {
    expect([...keysInWindow(receipts, 201, 299)]).toEqual([]);
    expect([...keysInWindow(receipts, 0, 99)]).toEqual([]);
    expect([...keysInWindow(receipts, 400, 100)]).toEqual([]);
    expect([...keysInWindow(new Map(), 0, 1000)]).toEqual([]);
  });

  it('is the window of duplicatesInWindow: extra calls of keys received inside it, not outside', () => {
    const processed = new Map([
      ['a', { calls: 3 }],
      ['b', { calls: 2 }],
      ['c', { calls: 1 }],
      ['unknown', { calls: 5 }],
    ]);
    expect(duplicatesInWindow(receipts, processed, 200, 400)).toBe(1);
    expect(duplicatesInWindow(receipts, processed, 100, 400)).toBe(3);
  });
});

describe('lostInWindow and summarizeHandovers', () => {
  it('counts the received keys inside the window that nobody processed', () => {
    expect(lostInWindow(receipts, new Set(['b']), 150, 350)).toEqual({ expected: 2, lost: 1 });
    expect(lostInWindow(receipts, new Map([['a', 1]]), 0, 1000)).toEqual({ expected: 4, lost: 3 });
  });

  it('summarises gaps (median, worst) and losses over runs, counting runs without a new leader', () => {
    const summary = summarizeHandovers([
      { gapMs: 30, lost: 0, expected: 400, duplicates: 0, newLeaderStartedAfterSignal: false },
      { gapMs: 10, lost: 2, expected: 410, duplicates: 1, newLeaderStartedAfterSignal: true },
      { gapMs: 20, lost: 6, expected: 420, duplicates: 0 },
      { gapMs: undefined, lost: 0, expected: 0, duplicates: 0 },
    ]);
    expect(summary).toEqual({
      runs: 4,
      failed: 1,
      medianGapMs: 20,
      worstGapMs: 30,
      lostTotal: 8,
      lostMedian: 0,
      lostWorst: 6,
      expectedTotal: 1230,
      duplicatesTotal: 1,
      wonByReplacement: 1,
      lostWhenWonByReplacement: 2,
    });
  });
});

describe('burstSizes', () => {
  it('splits receipts into runs less than gapMs apart', () => {
    expect(burstSizes([100, 0, 0.5, 1.2, 50, 50.1, 200], 2)).toEqual([3, 2, 1, 1]);
    expect(burstSizes([], 2)).toEqual([]);
  });
});

describe('crashLossRates', () => {
  it('adds the rate at CRASH_LOSS_SHARE_OF_MAX of the measured maximum, rounded down to 100/s, in order', () => {
    expect(CRASH_LOSS_SHARE_OF_MAX).toBe(0.8);
    expect(crashLossRates([200, 2000, 10_000], 8500)).toEqual([
      { keysPerSecond: 200 },
      { keysPerSecond: 2000 },
      { keysPerSecond: 6800, measuredMaxPerSecond: 8500 },
      { keysPerSecond: 10_000 },
    ]);
  });

  it('marks a configured rate that equals the share instead of running it twice', () => {
    expect(crashLossRates([2000, 4000], 5000)).toEqual([
      { keysPerSecond: 2000 },
      { keysPerSecond: 4000, measuredMaxPerSecond: 5000 },
    ]);
  });

  it('runs the configured rates alone when nothing was measured', () => {
    expect(crashLossRates([200, 5000], undefined)).toEqual([{ keysPerSecond: 200 }, { keysPerSecond: 5000 }]);
  });
});
