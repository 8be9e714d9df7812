import { describe, expect, it } from 'vitest';
import {
  duplicatesInWindow,
  medianAndWorst,
  percentChange,
  perThousandEvents,
} from '../../../bench/analysis.ts';
import { parseStatCpuSeconds, parseVmRssKiB } from '../../../bench/cpu-usage.ts';
import { mergeReports } from '../../../bench/markdown.ts';

describe('medianAndWorst', () => {
  it('gives the median and the largest value of the runs', () => {
    expect(medianAndWorst([3, 0, 7])).toEqual({ median: 3, worst: 7 });
    expect(medianAndWorst([5])).toEqual({ median: 5, worst: 5 });
  });

  it('is NaN for no runs', () => {
    const r = medianAndWorst([]);
    expect(Number.isNaN(r.worst)).toBe(true);
  });
});

describe('perThousandEvents', () => {
  it('scales an amount to 1,000 events', () => {
    expect(perThousandEvents(250, 10_000)).toBe(25);
    expect(perThousandEvents(1.5, 500)).toBe(3);
  });

  it('is NaN without events', () => {
    expect(Number.isNaN(perThousandEvents(10, 0))).toBe(true);
  });
});

describe('percentChange', () => {
  it('is the relative change against the base in percent', () => {
    expect(percentChange(200, 250)).toBe(25);
    expect(percentChange(200, 150)).toBe(-25);
  });

  it('is NaN without a positive base or a finite value', () => {
    expect(Number.isNaN(percentChange(0, 5))).toBe(true);
    expect(Number.isNaN(percentChange(10, Number.NaN))).toBe(true);
  });
});

describe('duplicatesInWindow', () => {
  const reference = new Map([
    ['in-once', 1000],
    ['in-twice', 1500],
    ['in-thrice', 2000],
    ['outside', 5000],
  ]);
  const processed = new Map([
    ['in-once', { calls: 1 }],
    ['in-twice', { calls: 2 }],
    ['in-thrice', { calls: 3 }],
    ['outside', { calls: 4 }],
    ['unknown', { calls: 9 }],
  ]);

  it('counts handler calls beyond the first for keys received within the window, bounds included', () => {
    expect(duplicatesInWindow(reference, processed, 1000, 2000)).toBe(1 + 2);
    expect(duplicatesInWindow(reference, processed, 1001, 1999)).toBe(1);
  });

  it('ignores keys outside the window and keys no bare subscriber received', () => {
    expect(duplicatesInWindow(reference, processed, 4000, 6000)).toBe(3);
    expect(duplicatesInWindow(new Map(), processed, 0, 10_000)).toBe(0);
  });
});

describe('parseStatCpuSeconds', () => {
  it('adds utime and stime (fields 14 and 15) in clock ticks of 1/100 s', () => {
    const stat =
      '4242 (node) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 11 0 100 1000000 5000 18446744073709551615';
    expect(parseStatCpuSeconds(stat)).toBeCloseTo(3.25, 6);
  });

  it('copes with spaces and parentheses in the command name', () => {
    const stat = '7 (my (odd) cmd) R 1 7 7 0 -1 0 0 0 0 0 100 100 0 0 20 0 1 0 1 1 1 1';
    expect(parseStatCpuSeconds(stat)).toBeCloseTo(2, 6);
  });

  it('is undefined for text that is not a stat line', () => {
    expect(parseStatCpuSeconds('')).toBeUndefined();
    expect(parseStatCpuSeconds('1 (x) S 1 2')).toBeUndefined();
  });
});

describe('parseVmRssKiB', () => {
  it('reads VmRSS in kB', () => {
    const status = 'Name:\tnode\nVmPeak:\t  999999 kB\nVmRSS:\t   81234 kB\nRssAnon:\t   60000 kB\n';
    expect(parseVmRssKiB(status)).toBe(81_234);
  });

  it('is undefined without a VmRSS line (a kernel thread, a zombie)', () => {
    expect(parseVmRssKiB('Name:\tkthreadd\nState:\tS (sleeping)\n')).toBeUndefined();
  });
});

describe('mergeReports', () => {
  const existing = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` on 2026-01-01T00:00:00.000Z (full run; took 300 s).',
    '',
    'Machine: 2 cores. Load average (1 min) at the start and the end of the run: 4.59 / 4.49; whatever.',
    '',
    '## Fan-in: 5,000 expirations/s for 30 s',
    '',
    'old fan-in',
    '',
    '## Hand-over',
    '',
    'old hand-over',
    '',
    '## Not measured',
    '',
    '- old failure',
    '',
  ].join('\n');
  const fresh = [
    '# Benchmarks',
    '',
    'Written by `npm run bench -- --quick --only hand-over,cost` on 2026-02-02T00:00:00.000Z (QUICK run; took 60 s).',
    '',
    '## Hand-over',
    '',
    'new hand-over',
    '',
    '## Cost of the guarantees: one leader',
    '',
    'new cost',
    '',
  ].join('\n');

  it('takes the fresh head and sections, keeps the others in place marked with their run, drops the old failures', () => {
    const merged = mergeReports(existing, fresh);
    expect(merged.startsWith('# Benchmarks\n\nWritten by `npm run bench -- --quick')).toBe(true);
    expect(merged).toContain(
      '## Fan-in: 5,000 expirations/s for 30 s\n\n_Kept from an earlier run: `npm run bench` on 2026-01-01T00:00:00.000Z (full run; load average (1 min) at its start / end 4.59 / 4.49), same machine._\n\nold fan-in',
    );
    expect(merged).toContain('old fan-in');
    expect(merged).not.toContain('old hand-over');
    expect(merged).not.toContain('old failure');
    expect(merged.indexOf('## Fan-in')).toBeLessThan(merged.indexOf('## Hand-over'));
    expect(merged.indexOf('## Hand-over')).toBeLessThan(merged.indexOf('## Cost'));
    expect(merged.endsWith('new cost\n')).toBe(true);
  });

  it('matches a section by its heading up to the colon (the figures in it change) and marks a kept one once', () => {
    const quickFanIn = fresh.replace(
      '## Hand-over\n\nnew hand-over',
      '## Fan-in: 2,000 expirations/s for 8 s\n\nnew fan-in',
    );
    const merged = mergeReports(existing, quickFanIn);
    expect(merged).toContain('new fan-in');
    expect(merged).not.toContain('old fan-in');
    const twice = mergeReports(mergeReports(existing, fresh), fresh);
    expect(twice.split('_Kept from an earlier run').length - 1).toBe(1);
  });
});
