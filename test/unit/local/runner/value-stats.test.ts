import { describe, expect, it } from 'vitest';
import { ValueStats } from '../../../../local/runner/value-stats.ts';

describe('ValueStats', () => {
  it('counts captured values per type with their sizes, missing ones per reason, and lines with neither', () => {
    const stats = new ValueStats();
    stats.processed('string', 10, undefined);
    stats.processed('hash', 300, undefined);
    stats.processed('string', 20, undefined);
    stats.processed(undefined, undefined, 'not-tracked');
    stats.processed(undefined, undefined, 'read-late');
    stats.processed(undefined, undefined, 'not-tracked');
    stats.processed(undefined, undefined, undefined);
    expect(stats.snapshot()).toEqual({
      captured: 3,
      byType: [
        ['string', 2],
        ['hash', 1],
      ],
      bytesP50: 20,
      bytesMax: 300,
      bytesTotal: 330,
      missing: 3,
      byReason: [
        ['not-tracked', 2],
        ['read-late', 1],
      ],
      unreported: 1,
    });
  });

  it('the size median is over the most recent samples; the maximum and totals over all', () => {
    const stats = new ValueStats({ samplesKept: 3 });
    for (const bytes of [1000, 1, 2, 3]) stats.processed('set', bytes, undefined);
    const s = stats.snapshot();
    expect(s.bytesP50).toBe(2);
    expect(s.bytesMax).toBe(1000);
    expect(s.captured).toBe(4);
    expect(Number.isNaN(new ValueStats().snapshot().bytesP50)).toBe(true);
  });
});
