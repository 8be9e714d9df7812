import { describe, expect, it } from 'vitest';
import {
  expandNotifyFlags,
  hasRequiredNotifyFlags,
  mergeNotifyFlags,
  missingNotifyFlags,
  requiredNotifyFlags,
} from '../../../../lambdas/notify-check/notify-flags.ts';

describe('requiredNotifyFlags', () => {
  it('is E, g, x with precise expiry and E, x without', () => {
    expect(requiredNotifyFlags(true)).toEqual(['E', 'g', 'x']);
    expect(requiredNotifyFlags(false)).toEqual(['E', 'x']);
  });
});

describe('mergeNotifyFlags with PRECISE_EXPIRY=false (E and x)', () => {
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
    const result = mergeNotifyFlags(current, false);
    expect(result.merged).toBe(merged);
    expect(result.missing).toEqual(missing);
    expect(result.changed).toBe(true);
    expect(hasRequiredNotifyFlags(result.merged, false)).toBe(true);
    // Never removes a flag.
    for (const flag of expandNotifyFlags(current))
      expect(expandNotifyFlags(result.merged).has(flag)).toBe(true);
  });

  const untouched = ['xE', 'Ex', 'AE', 'AKE', 'gxKE', 'AKEm', 'xEQ', 'Kxg$E'];
  it.each(untouched)('%s already has E and x: left exactly as it is', (current) => {
    const result = mergeNotifyFlags(current, false);
    expect(result).toEqual({ current, merged: current, missing: [], changed: false });
  });

  it('merging twice changes nothing more (idempotent)', () => {
    for (const { current } of cases) {
      const once = mergeNotifyFlags(current, false).merged;
      expect(mergeNotifyFlags(once, false)).toMatchObject({ merged: once, changed: false });
    }
  });
});

describe('mergeNotifyFlags with PRECISE_EXPIRY=true (E, g and x)', () => {
  // current -> merged, in the order Redis 7.0's CONFIG GET answers with (checked: `Egx` reads back `gxE`).
  const cases: { current: string | null | undefined; merged: string; missing: string[] }[] = [
    { current: '', merged: 'gxE', missing: ['E', 'g', 'x'] },
    { current: null, merged: 'gxE', missing: ['E', 'g', 'x'] },
    { current: 'Ex', merged: 'gxE', missing: ['g'] },
    { current: 'xE', merged: 'gxE', missing: ['g'] },
    { current: 'K', merged: 'gxKE', missing: ['E', 'g', 'x'] },
    { current: 'Kg', merged: 'gxKE', missing: ['E', 'x'] },
    { current: '$E', merged: 'g$xE', missing: ['g', 'x'] },
    { current: 'AK', merged: 'AKE', missing: ['E'] },
    { current: 'xKEm', merged: 'gxKEm', missing: ['g'] },
    // the classes of A but g, given one by one, collapse to A once g completes the set
    { current: '$lshzxetdE', merged: 'AE', missing: ['g'] },
    { current: 'xEQ', merged: 'gxEQ', missing: ['g'] },
  ];
  it.each(cases)('$current -> $merged', ({ current, merged, missing }) => {
    const result = mergeNotifyFlags(current, true);
    expect(result).toMatchObject({ merged, missing, changed: true });
    expect(hasRequiredNotifyFlags(result.merged, true)).toBe(true);
    for (const flag of expandNotifyFlags(current))
      expect(expandNotifyFlags(result.merged).has(flag)).toBe(true);
    // What precise expiry needs includes what native expiry needs.
    expect(hasRequiredNotifyFlags(result.merged, false)).toBe(true);
  });

  const untouched = ['gxE', 'Egx', 'AE', 'AKE', 'gxKE', 'g$xE', 'gxEQ'];
  it.each(untouched)('%s already has E, g and x: left exactly as it is', (current) => {
    expect(mergeNotifyFlags(current, true)).toEqual({
      current,
      merged: current,
      missing: [],
      changed: false,
    });
  });

  it('finds the values native expiry accepts lacking only g', () => {
    for (const current of ['xE', 'Ex', 'xKE', 'KEx']) {
      expect(hasRequiredNotifyFlags(current, false)).toBe(true);
      expect(missingNotifyFlags(current, true)).toEqual(['g']);
    }
  });

  it('merging twice changes nothing more (idempotent)', () => {
    for (const { current } of cases) {
      const once = mergeNotifyFlags(current, true).merged;
      expect(mergeNotifyFlags(once, true)).toMatchObject({ merged: once, changed: false });
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
    expect(missingNotifyFlags(value, false)).toEqual(missing);
  });

  it('is case-sensitive: e (evicted) is not E (keyevent), X is not x', () => {
    expect(missingNotifyFlags('eX', false)).toEqual(['E', 'x']);
    expect(missingNotifyFlags('GeX', true)).toEqual(['E', 'g', 'x']);
  });
});
