import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  rangesOf,
  slotCountOf,
  slotCoverage,
  slotsOf,
  splitAllSlots,
  splitSlotRange,
} from '../../../local/slot-ranges.ts';

describe('slot ranges', () => {
  it('splits the slot space like redis-cli --cluster create', () => {
    expect(splitAllSlots(3)).toEqual([
      [0, 5461],
      [5462, 10922],
      [10923, 16383],
    ]);
    expect(splitAllSlots(1)).toEqual([[0, 16383]]);
  });

  it('splits any range into contiguous parts whose sizes differ by at most one', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 16383 }),
        fc.integer({ min: 0, max: 500 }),
        fc.integer({ min: 1, max: 20 }),
        (first, length, parts) => {
          const last = Math.min(16383, first + length);
          const ranges = splitSlotRange(first, last, parts);
          expect(slotsOf(ranges)).toEqual(slotsOf([[first, last]]));
          const sizes = ranges.map(([a, b]) => b - a + 1);
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
          expect(ranges.length).toBe(Math.min(parts, last - first + 1));
        },
      ),
    );
  });

  it('rangesOf and slotsOf round-trip, merging neighbours and ignoring duplicates', () => {
    expect(rangesOf([5, 3, 4, 9, 9, 10, 0])).toEqual([
      [0, 0],
      [3, 5],
      [9, 10],
    ]);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 16383 }), { maxLength: 200 }), (slots) => {
        expect(slotsOf(rangesOf(slots))).toEqual([...slots].sort((a, b) => a - b));
        expect(slotCountOf(rangesOf(slots))).toBe(slots.length);
      }),
    );
  });

  it('reports uncovered and doubly claimed slots', () => {
    expect(slotCoverage(new Map([['a', splitAllSlots(1)]]))).toEqual({ uncovered: 0, overlapping: 0 });
    expect(
      slotCoverage(
        new Map<string, [number, number][]>([
          ['a', [[0, 100]]],
          ['b', [[100, 16000]]],
        ]),
      ),
    ).toEqual({ uncovered: 383, overlapping: 1 });
  });
});
