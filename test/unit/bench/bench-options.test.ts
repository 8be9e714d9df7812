import { describe, expect, it } from 'vitest';
import { BENCH_HELP, BenchArgumentsError, parseBenchArgs, SCENARIOS } from '../../../bench/bench-options.ts';

function settings(argv: string[]) {
  const parsed = parseBenchArgs(argv);
  if (parsed.kind !== 'run') throw new Error('expected run');
  return parsed.settings;
}

describe('parseBenchArgs', () => {
  it('runs every benchmark at full size by default and writes docs/benchmarks.md', () => {
    const s = settings([]);
    expect(s).toMatchObject({
      quick: false,
      write: true,
      out: 'docs/benchmarks.md',
      scenarios: [...SCENARIOS],
    });
    expect(s.fanIn).toEqual({ keysPerSecond: 5000, durationS: 30, workers: 1 });
    expect(s.handover).toEqual({ runs: 5, keysPerSecond: 200, workers: 3 });
  });

  it('shortens everything with --quick', () => {
    const s = settings(['--quick']);
    expect(s.quick).toBe(true);
    expect(s.fanIn.durationS).toBeLessThan(30);
    expect(s.maxRate.stepS).toBeLessThan(10);
    expect(s.handover.runs).toBeLessThan(5);
  });

  it('selects benchmarks with --only, in the canonical order', () => {
    expect(settings(['--only', 'hand-over,fan-in']).scenarios).toEqual(['fan-in', 'hand-over']);
    expect(() => settings(['--only', 'fan-in,speed'])).toThrow(BenchArgumentsError);
    expect(() => settings(['--only', ''])).toThrow(BenchArgumentsError);
  });

  it('measures on-time expiry at 0, 10,000 and 100,000 background keys, and 1,000,000 with --full', () => {
    expect(settings([]).onTime.backgroundSizes).toEqual([0, 10_000, 100_000]);
    expect(settings(['--full']).onTime.backgroundSizes).toEqual([0, 10_000, 100_000, 1_000_000]);
    expect(settings(['--only', 'on-time']).scenarios).toEqual(['on-time']);
    expect(settings([]).onTime).toMatchObject({ probes: 1000, nativeWaitS: 60, costWritesPerS: 10_000 });
  });

  it('reads --no-write and --out, and answers --help', () => {
    expect(settings(['--no-write', '--out', 'x.md'])).toMatchObject({ write: false, out: 'x.md' });
    expect(parseBenchArgs(['-h'])).toEqual({ kind: 'help', text: BENCH_HELP });
    expect(() => parseBenchArgs(['--fast'])).toThrow(BenchArgumentsError);
  });
});

describe('parseBenchArgs, issue 7 sections', () => {
  it('runs each new section alone with --only, and shortens them with --quick', () => {
    for (const only of ['crash-loss', 'cost', 'resources', 'three-workers'] as const) {
      expect(settings(['--only', only]).scenarios).toEqual([only]);
    }
    const full = settings([]);
    expect(full.crashLoss).toEqual({ runs: 5, ratesPerSecond: [200, 2000, 5000, 10_000], workers: 3 });
    expect(full.cost).toEqual({ keysPerSecond: 5000, durationS: 10 });
    expect(full.threeWorkers.workers).toBe(3);
    const quick = settings(['--quick']);
    expect(quick.crashLoss.runs).toBeLessThan(full.crashLoss.runs);
    expect(quick.crashLoss.ratesPerSecond).toEqual([200, 2000, 5000, 10_000]);
    expect(quick.cost.durationS).toBeLessThan(full.cost.durationS);
  });
});
