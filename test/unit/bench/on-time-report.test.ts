import { describe, expect, it } from 'vitest';
import { ON_TIME_LABELS, onTimeRows } from '../../../bench/chart-specs.ts';
import {
  bytesPerKey,
  capturedShare,
  commandCalls,
  commandUsec,
  heapPerHeldValue,
  lagFigures,
  meetsOnTimeGoal,
  missingText,
  type OnTimeCostVariant,
  type OnTimeHeldValues,
  type OnTimeReport,
  onTimeConsole,
  onTimeLines,
  PROBE_VALUES,
  probeHashBytes,
  probeValueOf,
  usedCpuSeconds,
  type ValueFigures,
  valueFigures,
} from '../../../bench/on-time-report.ts';

const COMMANDSTATS = [
  '# Commandstats',
  'cmdstat_set:calls=100000,usec=81234,usec_per_call=0.81,rejected_calls=0,failed_calls=0',
  'cmdstat_pexpiretime:calls=2048,usec=1000,usec_per_call=0.49,rejected_calls=0,failed_calls=0',
  'cmdstat_scan:calls=31,usec=900,usec_per_call=29.03,rejected_calls=0,failed_calls=0',
  'cmdstat_evalsha_ro:calls=4000,usec=52000,usec_per_call=13.00,rejected_calls=0,failed_calls=0',
  'cmdstat_eval_ro:calls=3,usec=90,usec_per_call=30.00,rejected_calls=0,failed_calls=0',
  '',
].join('\r\n');

const CPU = [
  '# CPU',
  'used_cpu_sys:1.250000',
  'used_cpu_user:2.500000',
  'used_cpu_sys_children:0.0',
  '',
].join('\r\n');

const VALUES: ValueFigures = {
  delivered: 1000,
  captured: 997,
  mismatched: 0,
  missing: { 'read-late': 2, 'over-budget': 1 },
};

function report(overrides: Partial<OnTimeReport> = {}): OnTimeReport {
  return {
    probes: 1000,
    probeValues: PROBE_VALUES,
    scanKeysPerS: 20_000,
    nativeWaitS: 60,
    native: [{ backgroundKeys: 10_000, waitS: 60, bare: lagFigures([19_000, 39_000], 1000) }],
    runs: [
      {
        backgroundKeys: 10_000,
        variant: 'scan',
        burst: 'cold',
        handler: lagFigures(
          Array.from({ length: 1000 }, (_, i) => i / 100),
          1000,
        ),
        workerLag: lagFigures([1, 2], 1000),
        bare: lagFigures([1, 2], 1000),
        readyMs: 3000,
        trackedAtProbes: 10_000,
        duplicates: 0,
        values: VALUES,
        valueReads: 1000,
        valueReadsFound: 998,
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

  it('reads the usec of one command, apart from commands whose name it begins', () => {
    expect(commandUsec(COMMANDSTATS, 'evalsha_ro')).toBe(52_000);
    expect(commandCalls(COMMANDSTATS, 'evalsha_ro')).toBe(4000);
    expect(commandUsec(COMMANDSTATS, 'eval_ro')).toBe(90);
    expect(commandUsec(COMMANDSTATS, 'type')).toBe(0);
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
    // The goal counts the warm burst as much as the first one.
    const cold = report().runs[0] as OnTimeReport['runs'][number];
    const lateWarm = report({
      runs: [cold, { ...cold, burst: 'warm', warmUpEvents: 2000, handler: lagFigures([100], 1000) }],
    });
    const lateWarmText = onTimeLines(lateWarm).join('\n');
    expect(lateWarmText).toContain('**NOT met**');
    expect(lateWarmText).toContain('first burst (cold)');
    expect(lateWarmText).toContain('warm (after 2,000 events)');
    // The bursts between the cold and the warm one: their p99 as min / median / max, beside the goal.
    const spread = report({
      runs: [cold, { ...cold, burst: 'warm', warmUpEvents: 3000, warmUpP99Ms: [61, 35, 48] }],
    });
    expect(onTimeLines(spread).join('\n')).toMatch(/\| 35\.0 ms \/ 48\.0 ms \/ 61\.0 ms +\|/);
    // The CPU budget of a burst, when it was read.
    expect(lateWarmText).not.toContain('main thread waiting for a CPU');
    const withCpu = report({
      runs: [
        {
          ...cold,
          cpu: {
            windowMs: 140,
            workerMainRunMs: 70,
            workerMainWaitMs: 30,
            workerOtherThreadsRunMs: 45,
            benchMs: 25,
            primariesMs: 18,
          },
        },
      ],
    });
    expect(onTimeLines(withCpu).join('\n')).toMatch(
      /\| 10,000 +\| scan, cold +\| 140 ms +\| 70\.0 ms +\| 30\.0 ms +\| 45\.0 ms +\| 25\.0 ms +\| 18\.0 ms +\|/,
    );
    expect(onTimeConsole(report()).map(([name]) => name)).toContain('on-time 10,000 keys: native');
  });

  it('renders the quota runs, or why they were not measured', () => {
    const quotas = {
      runs: [
        { vcpu: 0.25, burst: 'cold' as const, handler: lagFigures([300, 600], 2) },
        { vcpu: 1, burst: 'warm' as const, handler: lagFigures([20, 40], 2) },
      ],
    };
    const text = onTimeLines(report({ quotas })).join('\n');
    expect(text).toMatch(/\| 0\.25 vCPU +\| first burst \(cold\) +\| 2 \/ 2 .*\| no +\|/);
    expect(text).toMatch(/\| 1 vCPU +\| warm +\| 2 \/ 2 .*\| yes +\|/);
    expect(onTimeConsole(report({ quotas })).map(([name]) => name)).toContain(
      'on-time under 0.25 vCPU: cold',
    );
    expect(
      onTimeLines(report({ quotas: { unavailable: 'no writable cpu cgroup (EROFS)' } })).join('\n'),
    ).toContain('Not measured: no writable cpu cgroup (EROFS).');
    expect(onTimeLines(report()).join('\n')).not.toContain('Under a CPU quota');
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

  it('writes every tenth probe as a hash of 10 fields, the others as strings', () => {
    expect(probeHashBytes(PROBE_VALUES)).toBe(10 * 2 + 10 * 10);
    expect(probeValueOf(PROBE_VALUES, 0)).toEqual({ type: 'string', bytes: 100 });
    expect(probeValueOf(PROBE_VALUES, 9)).toEqual({ type: 'hash', bytes: 120 });
    const hashes = Array.from({ length: 1000 }, (_, i) => probeValueOf(PROBE_VALUES, i)).filter(
      (v) => v.type === 'hash',
    );
    expect(hashes).toHaveLength(100);
  });

  it('counts a line as captured only with the type and size written, else by its reason', () => {
    const lines = new Map([
      ['p:0', { valueType: 'string' as const, valueBytes: 100 }],
      ['p:1', { valueType: 'string' as const, valueBytes: 99 }],
      ['p:9', { valueType: 'string' as const, valueBytes: 120 }],
      ['p:19', { valueType: 'hash' as const, valueBytes: 120 }],
      ['p:2', { valueMissing: 'read-late' as const }],
      ['p:3', { valueMissing: 'read-late' as const }],
      ['p:4', {}],
    ]);
    const v = valueFigures(lines, (key) => probeValueOf(PROBE_VALUES, Number(key.slice(2))));
    expect(v).toEqual({ delivered: 7, captured: 2, mismatched: 2, missing: { 'read-late': 2, none: 1 } });
    expect(capturedShare(v)).toBeCloseTo(2 / 7, 9);
    expect(capturedShare(valueFigures(new Map(), () => ({ type: 'string', bytes: 1 })))).toBeNaN();
    expect(missingText({ 'over-budget': 1, 'read-late': 2, 'ttl-changed': 0 })).toBe(
      'read-late 2, over-budget 1',
    );
    expect(missingText({})).toBe('-');
  });

  it('renders the values table per run and the console rows', () => {
    const text = onTimeLines(report()).join('\n');
    expect(text).toContain('every 10th a hash of 10 fields');
    expect(text).toMatch(
      /\| 10,000 +\| on-time \(scan\), cold +\| 1,000 +\| 1,000 \(998\) +\| 997 +\| 99\.70% +\| 0 +\| read-late 2, over-budget 1 \|/,
    );
    const rows = onTimeConsole(report());
    expect(rows).toContainEqual([
      'on-time values 10,000 keys: scan, cold',
      'captured 997/1,000 (99.70%), without: read-late 2, over-budget 1',
    ]);
  });

  const HELD: OnTimeHeldValues = {
    keys: 100_000,
    valueBytes: 100,
    leadMs: 12_000,
    caughtUpBeforeDeadlineMs: 7000,
    empty: { heapBytes: 20_000_000, rssKiB: 100_000, gcMs: 20, valueReads: 0, atFromDeadlineMs: -12_500 },
    tracked: { heapBytes: 36_000_000, rssKiB: 130_000, gcMs: 30, valueReads: 0, atFromDeadlineMs: -6900 },
    held: { heapBytes: 76_000_000, rssKiB: 180_000, gcMs: 80, valueReads: 80_000, atFromDeadlineMs: -400 },
    after: { heapBytes: 60_000_000, rssKiB: 170_000, gcMs: 70, valueReads: 100_000, atFromDeadlineMs: 3000 },
    settled: {
      heapBytes: 21_000_000,
      rssKiB: 170_000,
      gcMs: undefined,
      valueReads: 100_000,
      atFromDeadlineMs: 5600,
    },
    handler: lagFigures([10, 20, 2500], 100_000),
    values: { delivered: 100_000, captured: 99_990, mismatched: 0, missing: { 'read-late': 10 } },
  };

  it('charges the heap growth from tracked to held to the values read in between', () => {
    expect(heapPerHeldValue(HELD)).toBe(500);
    expect(heapPerHeldValue({ ...HELD, held: { ...HELD.held, valueReads: 0 } })).toBeUndefined();
    expect(heapPerHeldValue({ ...HELD, held: { ...HELD.held, heapBytes: undefined } })).toBeUndefined();
  });

  it('renders the held-values section with its readings and figures', () => {
    const text = onTimeLines(report({ held: HELD })).join('\n');
    expect(text).toContain('## Held values: 100,000 keys sharing one deadline, one worker');
    expect(text).toMatch(
      /\| just before the deadline \(values held\) +\| -400 ms +\| 80,000 +\| 72\.5 MiB +\| 175\.8 MiB +\| 80\.0 ms +\|/,
    );
    expect(text).toContain(
      'Heap per held value (tracked -> just before the deadline, per value read in between): 500.0 B',
    );
    expect(text).toContain('99.99%');
    expect(text).toMatch(
      /\| the same, after the held values' sweep +\| \+5600 ms +\| 100,000 +\| 20\.0 MiB +\| 166\.0 MiB +\| - +\|/,
    );
    expect(text).toContain('the last handled event 2500 ms');
    expect(text).toContain('7000 ms before the deadline');
    expect(onTimeConsole(report({ held: HELD })).map(([name]) => name)).toContain(
      'on-time held values (100,000 keys)',
    );
    expect(onTimeLines(report())).not.toContain('## Held values');
  });

  function costVariant(
    tracking: boolean,
    capture: boolean,
    o: Partial<OnTimeCostVariant> = {},
  ): OnTimeCostVariant {
    const primary = (cpuS: number, evalshaRoCalls: number, evalshaRoUsec: number, valueReads: number) => ({
      port: 7000,
      pexpiretimeCalls: tracking ? 10_000 + valueReads : 0,
      scanCalls: 0,
      setCalls: 10_000,
      evalshaRoCalls,
      evalshaRoUsec,
      valueReads,
      cpuS,
    });
    const p = tracking
      ? capture
        ? primary(0.5, 20_000, 300_000, 10_000)
        : primary(0.4, 10_000, 100_000, 0)
      : primary(0.3, 0, 0, 0);
    return {
      tracking,
      capture,
      notify: tracking ? 'Egx' : 'Ex',
      writesPerS: 10_000,
      written: 100_000,
      durationS: 10,
      primaries: [p, p],
      workerCpuS: tracking ? (capture ? 8 : 6) : 2,
      ...o,
    };
  }

  it('compares tracking with capture against tracking alone in the cost section', () => {
    const text = onTimeLines(
      report({ cost: [costVariant(false, false), costVariant(true, false), costVariant(true, true)] }),
    ).join('\n');
    expect(text).toContain('tracking, no capture (CAPTURE_VALUES=false)');
    expect(text).toContain('tracking and capture (CAPTURE_VALUES=true)');
    // 2 primaries x 0.3 s over 100,000 writes: 6 ms per 1,000; with tracking 8 ms, with capture 10 ms.
    expect(text).toContain('6.0 ms without tracking, 8.0 ms with (x1.33)');
    expect(text).toMatch(/\| 2,000 \/ 2,000 +\| 1,000 \/ 1,000 +\|/);
    expect(text).toContain('0.20 value reads per TTL write, +0.20 EVALSHA_RO per TTL write');
    // 200,000 us over 20,000 calls (tracking alone: 10 us per call) less the lookups' share: 20 us per read.
    expect(text).toContain('10.0 µs per call without capture, 15.0 µs with, about 20.0 µs per read');
    expect(text).toContain('8.0 ms without capture, 10.0 ms with (x1.25); worker CPU 60% without, 80% with.');
    const rows = onTimeConsole(report({ cost: [costVariant(true, true)] }));
    expect(rows.map(([name]) => name)).toContain('on-time cost (tracking, capture)');
  });
});
