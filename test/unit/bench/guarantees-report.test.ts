import { describe, expect, it } from 'vitest';
import { matchFanIn, type ProcessedRecord } from '../../../bench/analysis.ts';
import type { FixedStepResult } from '../../../bench/fixed-step.ts';
import type { CrashLossRate } from '../../../bench/guarantees.ts';
import {
  costLines,
  crashLossLines,
  guaranteesConsole,
  resourcesLines,
  threeWorkersLines,
} from '../../../bench/guarantees-report.ts';

function step(rate: number, over: Partial<FixedStepResult> = {}): FixedStepResult {
  const reference = new Map([
    ['a', 1000],
    ['b', 1001],
  ]);
  const processed = new Map<string, ProcessedRecord>([
    ['a', { lineMs: 1002, arrivalMs: 1003, latencyMs: 1, workerId: 'w1', calls: 1 }],
    ['b', { lineMs: 1004, arrivalMs: 1005, latencyMs: 2, workerId: 'w1', calls: 1 }],
  ]);
  return {
    keysPerSecond: rate,
    durationS: 10,
    workers: 3,
    generated: rate * 10,
    expected: rate * 10,
    fanIn: matchFanIn(reference, processed),
    verdict: 'sustained',
    reason: 'processed 100.00%',
    shed: 0,
    subscriptionDrops: 0,
    usage: [
      {
        id: 'w1',
        role: 'leader',
        cpuSeconds: 2,
        cpuMsPerThousandEvents: 40,
        rssBeforeKiB: 80 * 1024,
        rssAfterKiB: 100 * 1024,
      },
      {
        id: 'w2',
        role: 'follower',
        cpuSeconds: 1,
        cpuMsPerThousandEvents: 20,
        rssBeforeKiB: 70 * 1024,
        rssAfterKiB: 90 * 1024,
      },
    ],
    benchCpuPercent: 30,
    ...over,
  };
}

/** A summary over runs as [median, worst]. */
type MedianWorst = readonly [median: number, worst: number];

/** A crash-loss rate of one algorithm with its runs and its summaries, no run won by the replacement. */
function crashLossRate(
  rate: Pick<CrashLossRate, 'keysPerSecond' | 'measuredMaxPerSecond' | 'algorithm' | 'runs'>,
  summaries: Record<'lost' | 'duplicates' | 'expected' | 'gapMs' | 'catchUpMs', MedianWorst>,
): CrashLossRate {
  const summary = ([median, worst]: MedianWorst) => ({ median, worst });
  return {
    ...rate,
    lost: summary(summaries.lost),
    duplicates: summary(summaries.duplicates),
    expected: summary(summaries.expected),
    gapMs: summary(summaries.gapMs),
    catchUpMs: summary(summaries.catchUpMs),
    wonByReplacement: 0,
  };
}

describe('guarantees report sections', () => {
  it('shows lost and duplicate events per rate and algorithm as median / worst', () => {
    const text = crashLossLines([
      crashLossRate(
        {
          keysPerSecond: 2000,
          algorithm: 'seed',
          runs: [
            { gapMs: 5000, lost: 9000, expected: 16_000, duplicates: 0 },
            { gapMs: 5600, lost: 10_500, expected: 17_000, duplicates: 0 },
          ],
        },
        {
          lost: [9750, 10_500],
          duplicates: [0, 0],
          expected: [16_500, 17_000],
          gapMs: [5300, 5600],
          catchUpMs: [0, 0],
        },
      ),
    ]).join('\n');
    expect(text).toContain('## Crash loss');
    expect(text).toMatch(
      /\| seed \(baseline\) +\| 2,000\/s +\| 2 +\| 16,500 \/ 17,000 +\| 9,750 \/ 10,500 +\| 0 \/ 0 +\| 5,300 ms \/ 5,600 ms +\| - +\|/,
    );
  });

  it('labels the rate taken from the measured maximum with that maximum', () => {
    const text = crashLossLines([
      crashLossRate(
        {
          keysPerSecond: 6400,
          measuredMaxPerSecond: 8000,
          algorithm: 'keyspace-leader',
          runs: [{ gapMs: 2500, lost: 0, expected: 30_000, duplicates: 12, catchUpMs: 900 }],
        },
        {
          lost: [0, 0],
          duplicates: [12, 12],
          expected: [30_000, 30_000],
          gapMs: [2500, 2500],
          catchUpMs: [900, 900],
        },
      ),
    ]).join('\n');
    expect(text).toMatch(/\| keyspace-leader +\| 6,400\/s \(80 % of 8,000\/s sustained\) +\| 1 +\|/);
  });

  it('compares the cost variants against replay off', () => {
    const text = costLines([
      { variant: 'replay on (default)', env: { HANDLER: 'log' }, step: step(5000) },
      {
        variant: 'replay off',
        env: { HANDLER: 'log', REPLAY_WINDOW_MS: '0' },
        step: step(5000, {
          usage: [
            {
              id: 'w1',
              role: 'leader',
              cpuSeconds: 1,
              cpuMsPerThousandEvents: 32,
              rssBeforeKiB: 1,
              rssAfterKiB: 2,
            },
          ],
        }),
      },
    ]).join('\n');
    expect(text).toContain('## Cost of the guarantees: one leader, 5,000 expirations/s for 10 s');
    expect(text).toContain('REPLAY_WINDOW_MS=0');
    expect(text).toContain('leader CPU per 1,000 events +25%');
  });

  it('lists every worker with its role, CPU per 1,000 events and RSS growth', () => {
    const text = resourcesLines([{ variant: 'replay on (default)', step: step(2000) }]).join('\n');
    expect(text).toMatch(
      /\| replay on \(default\) \| w2 +\| follower \| 20\.0 ms +\| 1\.00 s +\| 70 MiB +\| 90 MiB +\| 20\.0 MiB/,
    );
  });

  it('states the highest rate sustained with three workers and the ratio there', () => {
    const text = threeWorkersLines(
      {
        steps: [
          step(2000),
          step(5000, { verdict: 'behind', reason: 'processed 90.00% of the events (< 99%)' }),
        ],
        sustainedPerSecond: 2000,
      },
      10,
    ).join('\n');
    expect(text).toContain('**2,000/s**');
    expect(text).toContain('ratio 100.000%');
    expect(text).toContain('behind (processed 90.00%');
    expect(guaranteesConsole({ threeWorkers: { steps: [], sustainedPerSecond: undefined } })).toEqual([
      ['three workers: highest sustained', 'none'],
    ]);
  });
});
