import { describe, expect, it } from 'vitest';
import { summarizeHandovers } from '../../../bench/analysis.ts';
import { parseBenchArgs } from '../../../bench/bench-options.ts';
import { type BenchResults, renderConsole, renderMarkdown } from '../../../bench/report.ts';

const parsed = parseBenchArgs([]);
if (parsed.kind !== 'run') throw new Error('expected run');

const results: BenchResults = {
  settings: parsed.settings,
  machine: {
    cores: 2,
    cpuModel: 'Test CPU',
    memoryGiB: 8,
    os: 'Linux 6',
    node: 'v20.0.0',
    redis: '7.0.15',
    date: '2025-01-01T00:00:00.000Z',
  },
  durationS: 420,
  fanIn: {
    keysPerSecond: 5000,
    durationS: 30,
    workers: 1,
    generated: 150_000,
    skipped: 0,
    failed: 0,
    benchLoopDelayP99Ms: 3.2,
    workerReceived: 150_010,
    subscriptionDrops: 0,
    burstSize: { count: 300, min: 1, p50: 150, p90: 200, p99: 480, max: 600, mean: 160 },
    cpu: [
      { name: 'bench process', percentOfOneCore: 41.4 },
      { name: 'worker (the leader)', percentOfOneCore: 63 },
    ],
    result: {
      expected: 150_000,
      matched: 149_990,
      unexpected: 0,
      duplicates: 0,
      ratio: 149_990 / 150_000,
      addedMs: { count: 149_990, min: 0.2, p50: 1.1, p90: 2, p99: 4.2, max: 30, mean: 1.3 },
      addedArrivalMs: undefined,
      workerLatencyMs: undefined,
    },
  },
  maxRate: [
    {
      variant: 'log',
      sustainedPerSecond: 5000,
      bareMaxPerSecond: 10_000,
      steps: [
        {
          targetPerSecond: 5000,
          generatedPerSecond: 5000,
          bareReceivedPerSecond: 5000,
          workerReceivedPerSecond: 5000,
          subscriptionDrops: 0,
          processedPerSecond: 5000,
          ratio: 1,
          addedP99Ms: 3,
          workerP99Ms: 1,
          verdict: 'sustained',
          reason: 'processed 100.00%',
        },
        {
          targetPerSecond: 10_000,
          generatedPerSecond: 10_000,
          bareReceivedPerSecond: 10_000,
          workerReceivedPerSecond: 9_500,
          subscriptionDrops: 1,
          processedPerSecond: 9_000,
          ratio: 0.9,
          addedP99Ms: 900,
          workerP99Ms: 800,
          verdict: 'behind',
          reason: 'processed 90.00% of the events (< 99%)',
        },
      ],
    },
  ],
  handover: {
    seed: {
      algorithm: 'seed',
      keysPerSecond: 200,
      workers: 3,
      gracefulSignalToAcquiredMedianMs: 300,
      graceful: summarizeHandovers([{ gapMs: 250, lost: 50, expected: 500, duplicates: 0 }]),
      crash: summarizeHandovers([
        { gapMs: 6000, lost: 1200, expected: 1600, duplicates: 0, newLeaderStartedAfterSignal: false },
      ]),
      gracefulRuns: [],
      crashRuns: [],
    },
  },
  failures: ['hand-over (keyspace-leader): no stable leader'],
  loadAverage: { start: 0.5, end: 2.25 },
};

describe('renderMarkdown', () => {
  const markdown = renderMarkdown(results);
  // Table cells are padded to their column's width; compare them with single spaces.
  const text = markdown.replace(/ {2,}/g, ' ');

  it('pads every table to aligned columns', () => {
    const tables = markdown.split('\n\n').filter((block) => block.startsWith('|'));
    expect(tables.length).toBeGreaterThanOrEqual(4);
    for (const block of tables) {
      const lengths = new Set(block.split('\n').map((l) => l.length));
      expect(lengths.size).toBe(1);
    }
  });

  it('describes the machine and the date', () => {
    expect(text).toContain('on 2025-01-01T00:00:00.000Z (full run; took 420 s)');
    expect(text).toContain('Machine: 2 cores (Test CPU), 8 GiB memory, Linux 6; Node v20.0.0; Redis 7.0.15.');
    expect(text).toContain('Load average (1 min) at the start and the end of the run: 0.50 / 2.25;');
  });

  it('states each goal and whether it was met', () => {
    expect(text).toContain('| of those, processed by the leader | 149,990 (99.993%) | >= 99.9% (met) |');
    expect(text).toContain(
      '| added latency p50 / p99 / max (upper bound) | 1.10 ms / 4.20 ms / 30.0 ms | p99 <= 5 ms (met) |',
    );
  });

  it('has the rate steps with their verdicts and the reason stepping stopped', () => {
    expect(text).toContain('| log | 5,000/s | 10,000/s | processed 90.00% of the events (< 99%) |');
    expect(text).toContain(
      '| log | 10,000/s | 10,000/s | 10,000/s | 9,500/s | 9,000/s | 90.00% | 900.0 ms | 800.0 ms | 1 | behind |',
    );
  });

  it('shows what the worker received and whether its subscriptions dropped', () => {
    expect(text).toContain('| events the worker received (its EMF EventsReceived) | 150,010 | |');
    expect(text).toContain("| the worker's subscriptions dropped (subscription.down) | 0 | 0 |");
  });

  it('shows the burst sizes of the expirations', () => {
    expect(text).toContain(
      '| events per burst at the bare subscribers (< 2 ms apart) p50 / p99 / max | 150 / 480 / 600 | |',
    );
  });

  it('says where the CPU went during the fan-in', () => {
    expect(text).toContain(
      'CPU while the keys were generated (share of one core; the machine has 2 cores): bench process 41%, worker (the leader) 63%.',
    );
  });

  it('has the hand-over rows of the baseline and lists what was not measured', () => {
    expect(text).toContain(
      '| seed (baseline) | crash (SIGKILL) | 1 | 6000 ms / 6000 ms | 1,200 of 1,600 (median 1,200, worst 1,200) | 0 |',
    );
    expect(text).toContain('## Not measured');
    expect(text).toContain('- hand-over (keyspace-leader): no stable leader');
    expect(text).toContain(
      'seed: a warm follower (running, subscribed, since before the kill) took over in every run.',
    );
  });
});

describe('renderConsole', () => {
  it('prints one aligned line per figure', () => {
    const lines = renderConsole(results);
    expect(lines[0]).toMatch(/^fan-in 5,000\/s: processed \/ received\s+149,990 \/ 150,000 \(99\.993%\)$/);
    expect(
      lines.some((l) =>
        /^hand-over crash \(seed\)\s+median 6000 ms, worst 6000 ms, lost 1,200\/1,600$/.test(l),
      ),
    ).toBe(true);
  });
});
