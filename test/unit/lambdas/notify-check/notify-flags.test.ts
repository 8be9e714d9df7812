import { describe, expect, it } from 'vitest';
import {
  expandNotifyFlags,
  hasRequiredNotifyFlags,
  mergeNotifyFlags,
  missingNotifyFlags,
} from '../../../../lambdas/notify-check/notify-flags.ts';

describe('mergeNotifyFlags', () => {
  // current -> merged, in Redis' canonical order (what CONFIG GET answers with, checked on redis 7.0).
  const cases: { current: string | null | undefined; merged: string; missing: string[] }[] = [
    { current: '', merged: 'xE', missing: ['E', 'x'] },
    { current: null, merged: 'xE', missing: ['E', 'x'] },
    { current: undefined, merged: 'xE', missing: ['E', 'x'] },
    { current: 'Kg', merged: 'gxKE', missing: ['E', 'x'] },
    { current: 'gK', merged: 'gxKE', missing: ['E', 'x'] },
    { current: 'K', merged: 'xKE', missing: ['E', 'x'] },
    { current: 'E', merged: 'xE', missing: ['x'] },
    { current: 'x', merged: 'xE', missing: ['E'] },
    { current: 'Eg', merged: 'gxE', missing: ['x'] },
    { current: 'KA', merged: 'AKE', missing: ['E'] },
    { current: 'AK', merged: 'AKE', missing: ['E'] },
    { current: 'Km', merged: 'xKEm', missing: ['E', 'x'] },
    { current: 'Kn', merged: 'xnKE', missing: ['E', 'x'] },
    { current: 'KAn', merged: 'AnKE', missing: ['E'] },
    { current: 'K$lshz', merged: '$lshzxKE', missing: ['E', 'x'] },
    // every class of A given one by one collapses to A once x completes the set
    { current: 'Kg$lshzetd', merged: 'AKE', missing: ['E', 'x'] },
    // an unknown flag (a newer engine's class) is kept, after the known ones
    { current: 'KgQ', merged: 'gxKEQ', missing: ['E', 'x'] },
  ];
  it.each(cases)('$current -> $merged', ({ current, merged, missing }) => {
    const result = mergeNotifyFlags(current);
    expect(result.merged).toBe(merged);
    expect(result.missing).toEqual(missing);
    expect(result.changed).toBe(true);
    expect(hasRequiredNotifyFlags(result.merged)).toBe(true);
    // Never removes a flag.
    for (const flag of expandNotifyFlags(current))
      expect(expandNotifyFlags(result.merged).has(flag)).toBe(true);
  });

  const untouched = ['xE', 'Ex', 'AE', 'AKE', 'gxKE', 'AKEm', 'xEQ', 'Kxg$E'];
  it.each(untouched)('%s already has E and x: left exactly as it is', (current) => {
    const result = mergeNotifyFlags(current);
    expect(result).toEqual({ current, merged: current, missing: [], changed: false });
  });

  it('merging twice changes nothing more (idempotent)', () => {
    for (const { current } of cases) {
      const once = mergeNotifyFlags(current).merged;
      expect(mergeNotifyFlags(once)).toMatchObject({ merged: once, changed: false });
    }
  });
});

describe('missingNotifyFlags', () => {
  it.each([
    ['', ['E', 'x']],
    ['A', ['E']],
    ['AE', []],
    ['KEx', []],
    ['Ke', ['E', 'x']],
    ['KE', ['x']],
  ])('%s lacks %j', (value, missing) => {
    expect(missingNotifyFlags(value)).toEqual(missing);
  });

  it('is case-sensitive: e (evicted) is not E (keyevent), X is not x', () => {
    expect(missingNotifyFlags('eX')).toEqual(['E', 'x']);
  });
});
