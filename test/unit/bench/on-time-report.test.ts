import { describe, expect, it } from 'vitest';
import { ON_TIME_LABELS, onTimeRows } from '../../../bench/chart-specs.ts';
import {
  bytesPerKey,
  commandCalls,
  lagFigures,
  meetsOnTimeGoal,
  type OnTimeReport,
  onTimeConsole,
  onTimeLines,
  usedCpuSeconds,
} from '../../../bench/on-time-report.ts';

const COMMANDSTATS = [
  '# Commandstats',
  'cmdstat_set:calls=100000,usec=81234,usec_per_call=0.81,rejected_calls=0,failed_calls=0',
  'cmdstat_pexpiretime:calls=2048,usec=1000,usec_per_call=0.49,rejected_calls=0,failed_calls=0',
  'cmdstat_scan:calls=31,usec=900,usec_per_call=29.03,rejected_calls=0,failed_calls=0',
  '',
].join('\r\n');

const CPU = [
  '# CPU',
  'used_cpu_sys:1.250000',
  'used_cpu_user:2.500000',
  'used_cpu_sys_children:0.0',
  '',
].join('\r\n');

function report(overrides: Partial<OnTimeReport> = {}): OnTimeReport {
  return {
    probes: 1000,
    scanKeysPerS: 20_000,
    nativeWaitS: 60,
    native: [{ backgroundKeys: 10_000, waitS: 60, bare: lagFigures([19_000, 39_000], 1000) }],
    runs: [
      {
        backgroundKeys: 10_000,
        variant: 'scan',
        handler: lagFigures(
          Array.from({ length: 1000 }, (_, i) => i / 100),
          1000,
        ),
        workerLag: lagFigures([1, 2], 1000),
        bare: lagFigures([1, 2], 1000),
        readyMs: 3000,
        trackedAtProbes: 10_000,
        duplicates: 0,
      },
    ],
    memory: [
      {
        trackedKeys: 100_000,
        heapBeforeBytes: 10_000_000,
        heapAfterBytes: 18_000_000,
        rssBeforeKiB: 100_000,
        rssAfterKiB: 110_000,
      },
    ],
    cost: [],
    ...overrides,
  };
}

describe('on-time report helpers', () => {
  it('reads calls of one command from INFO commandstats, 0 when it was not called', () => {
    expect(commandCalls(COMMANDSTATS, 'pexpiretime')).toBe(2048);
    expect(commandCalls(COMMANDSTATS, 'scan')).toBe(31);
    expect(commandCalls(COMMANDSTATS, 'set')).toBe(100_000);
    expect(commandCalls(COMMANDSTATS, 'get')).toBe(0);
  });

  it('sums used_cpu_sys and used_cpu_user of INFO cpu, undefined when one is missing', () => {
    expect(usedCpuSeconds(CPU)).toBeCloseTo(3.75, 6);
    expect(usedCpuSeconds('# CPU\r\nused_cpu_sys:1.0\r\n')).toBeUndefined();
  });

  it('summarizes the lags of the probes that arrived, out of those expected', () => {
    const f = lagFigures([5, 1, 3], 1000);
    expect(f).toMatchObject({ expected: 1000, delivered: 3, maxMs: 5 });
    expect(lagFigures([], 1000)).toEqual({
      expected: 1000,
      delivered: 0,
      p50Ms: undefined,
      p99Ms: undefined,
      maxMs: undefined,
    });
  });

  it('meets the goal only with every probe delivered and p99 within 50 ms', () => {
    const onTime = Array.from({ length: 1000 }, () => 10);
    expect(meetsOnTimeGoal(lagFigures(onTime, 1000))).toBe(true);
    expect(meetsOnTimeGoal(lagFigures(onTime.slice(1), 1000))).toBe(false);
    expect(meetsOnTimeGoal(lagFigures([...onTime.slice(20), ...Array(20).fill(51)], 1000))).toBe(false);
    expect(meetsOnTimeGoal(lagFigures([], 0))).toBe(false);
  });

  it('computes bytes per key from two readings, undefined without both or without keys', () => {
    expect(bytesPerKey(1000, 9000, 100)).toBe(80);
    expect(bytesPerKey(undefined, 9000, 100)).toBeUndefined();
    expect(bytesPerKey(1000, 9000, 0)).toBeUndefined();
  });

  it('renders the section with native beside on-time per size, and the goal verdict', () => {
    const text = onTimeLines(report()).join('\n');
    expect(text).toMatch(/^## On-time expiry: 1,000 probes sharing one deadline/);
    expect(text).toContain('| 10,000 ');
    expect(text).toContain('native Redis (no worker; within 60 s)');
    expect(text).toContain('2 / 1,000');
    expect(text).toContain('1,000 / 1,000');
    expect(text).toContain('**met**');
    expect(text).toContain('80.0 B');
    const late = report({
      runs: [{ ...(report().runs[0] as OnTimeReport['runs'][number]), handler: lagFigures([100], 1000) }],
    });
    expect(onTimeLines(late).join('\n')).toContain('**NOT met**');
    expect(onTimeConsole(report()).map(([name]) => name)).toContain('on-time 10,000 keys: native');
  });

  it('gives the chart p50 and p99 rows per set-up and size, marking partial deliveries', () => {
    const rows = onTimeRows(report());
    expect(rows.filter((r) => r.setUp === ON_TIME_LABELS.native)).toHaveLength(2);
    expect(rows.find((r) => r.setUp === ON_TIME_LABELS.native)).toMatchObject({
      backgroundKeys: '10,000',
      allDelivered: false,
      delivered: '2 / 1,000 delivered',
    });
    // A log scale has no 0: the scan run's p50 (about 5 ms) stays, a 0 ms lag is drawn at 1 ms.
    const zero = onTimeRows(
      report({
        native: [],
        runs: [{ ...(report().runs[0] as OnTimeReport['runs'][number]), handler: lagFigures([0], 1) }],
      }),
    );
    expect(zero.map((r) => r.lagMs)).toEqual([1, 1]);
    expect(zero[0]?.allDelivered).toBe(true);
  });
});
