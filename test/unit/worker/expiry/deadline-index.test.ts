import { describe, expect, it } from 'vitest';
import { DeadlineIndex } from '../../../../worker/expiry/deadline-index.ts';

/** A deadline far from every other in these tests. */
const T0 = 1_700_000_000_000;

function keysOf(index: DeadlineIndex, nowMs: number, limit = 1_000_000): string[] {
  return index.takeDue(nowMs, limit).map((entry) => entry.key);
}

describe('DeadlineIndex', () => {
  it('hands out due keys earliest first, and only those due', () => {
    const index = new DeadlineIndex({ maxKeys: 100 });
    index.set('c', T0 + 30, T0 + 31);
    index.set('a', T0 + 10, T0 + 11);
    index.set('b', T0 + 20, T0 + 21);
    expect(index.nextTouchAtMs()).toBe(T0 + 11);
    expect(keysOf(index, T0 + 21)).toEqual(['a', 'b']);
    expect(index.nextTouchAtMs()).toBe(T0 + 31);
    expect(keysOf(index, T0 + 40)).toEqual(['c']);
    expect(index.nextTouchAtMs()).toBeUndefined();
    // Handed out is not forgotten: the entries stay until their event (delete) or a reschedule.
    expect(index.size).toBe(3);
    expect(index.delete('a')).toBe(T0 + 10);
    expect(index.size).toBe(2);
  });

  it('respects the limit of one take and hands the rest out on the next', () => {
    const index = new DeadlineIndex({ maxKeys: 100 });
    for (let i = 0; i < 10; i++) index.set(`k${i}`, T0 + i, T0 + i);
    expect(keysOf(index, T0 + 100, 4)).toEqual(['k0', 'k1', 'k2', 'k3']);
    expect(keysOf(index, T0 + 100, 100)).toEqual(['k4', 'k5', 'k6', 'k7', 'k8', 'k9']);
  });

  it('a new deadline replaces the old schedule; the same deadline keeps it', () => {
    const index = new DeadlineIndex({ maxKeys: 100 });
    expect(index.set('k', T0 + 10, T0 + 11)).toBe('added');
    expect(index.set('k', T0 + 10, T0 + 99)).toBe('unchanged');
    expect(index.nextTouchAtMs()).toBe(T0 + 11);
    expect(index.set('k', T0 + 500, T0 + 501)).toBe('updated');
    expect(index.deadlineOf('k')).toBe(T0 + 500);
    // The old pair is stale: nothing is due at the old time.
    expect(keysOf(index, T0 + 100)).toEqual([]);
    expect(index.takeDue(T0 + 501, 10)).toEqual([
      { key: 'k', deadlineMs: T0 + 500, attempts: 0, readAhead: false },
    ]);
  });

  it('an entry in flight is not handed out twice, even by a stale pair, until rescheduled', () => {
    const index = new DeadlineIndex({ maxKeys: 100 });
    index.set('k', T0 + 10, T0 + 11);
    index.set('k', T0 + 20, T0 + 21); // leaves a stale pair at T0 + 11
    expect(keysOf(index, T0 + 50)).toEqual(['k']);
    expect(keysOf(index, T0 + 50)).toEqual([]);
    expect(index.retryAt('k', T0 + 60)).toBe(true);
    expect(index.takeDue(T0 + 60, 10)).toEqual([
      { key: 'k', deadlineMs: T0 + 20, attempts: 1, readAhead: false },
    ]);
    expect(index.retryAt('gone', T0 + 60)).toBe(false);
  });

  it('keeps the heap within 2 x size + 1 pairs however often keys are rescheduled', () => {
    const index = new DeadlineIndex({ maxKeys: 1000 });
    for (let i = 0; i < 10; i++) index.set(`k${i}`, T0, T0);
    for (let round = 1; round <= 1000; round++) {
      for (let i = 0; i < 10; i++) index.set(`k${i}`, T0 + round, T0 + round);
      expect(index.heapLength).toBeLessThanOrEqual(2 * index.size + 1);
    }
    expect(keysOf(index, T0 + 1000)).toHaveLength(10);
  });

  it('reuses the slots of deleted keys and grows past its initial arrays', () => {
    const index = new DeadlineIndex({ maxKeys: 10_000 });
    for (let i = 0; i < 5000; i++) index.set(`k${i}`, T0 + i, T0 + i);
    for (let i = 0; i < 5000; i += 2) index.delete(`k${i}`);
    for (let i = 0; i < 2500; i++) index.set(`n${i}`, T0 + 10_000 + i, T0 + 10_000 + i);
    expect(index.size).toBe(5000);
    const due = keysOf(index, T0 + 20_000);
    expect(due).toHaveLength(5000);
    expect(due.slice(0, 2)).toEqual(['k1', 'k3']);
    expect(due.at(-1)).toBe('n2499');
  });

  it('binary keys (latin1 strings) keep their bytes', () => {
    const index = new DeadlineIndex({ maxKeys: 10 });
    const bytes = Buffer.from([0x00, 0xff, 0x80, 0x7b]);
    index.set(bytes.toString('latin1'), T0, T0);
    const [entry] = index.takeDue(T0, 1);
    expect(Buffer.from(entry?.key ?? '', 'latin1').equals(bytes)).toBe(true);
  });

  describe('read-ahead (value capture)', () => {
    it('an entry with a read-ahead is handed out at it, flagged, and advance schedules its touch', () => {
      const index = new DeadlineIndex({ maxKeys: 100 });
      expect(index.set('k', T0 + 100, T0 + 101, T0 + 81)).toBe('added');
      expect(index.nextTouchAtMs()).toBe(T0 + 81);
      expect(keysOf(index, T0 + 80)).toEqual([]);
      expect(index.takeDue(T0 + 81, 10)).toEqual([
        { key: 'k', deadlineMs: T0 + 100, attempts: 0, readAhead: true },
      ]);
      // In flight until advanced: not handed out again.
      expect(index.nextTouchAtMs()).toBeUndefined();
      expect(index.advance('k', T0 + 101)).toBe(true);
      expect(index.nextTouchAtMs()).toBe(T0 + 101);
      expect(keysOf(index, T0 + 100)).toEqual([]);
      // The touch: no attempt counted by the read-ahead, and no longer flagged.
      expect(index.takeDue(T0 + 101, 10)).toEqual([
        { key: 'k', deadlineMs: T0 + 100, attempts: 0, readAhead: false },
      ]);
      expect(index.advance('untracked', T0 + 101)).toBe(false);
    });

    it('a retry after a touch is a touch again, not a read-ahead', () => {
      const index = new DeadlineIndex({ maxKeys: 100 });
      index.set('k', T0 + 100, T0 + 101, T0 + 81);
      index.takeDue(T0 + 81, 10);
      index.advance('k', T0 + 101);
      index.takeDue(T0 + 101, 10);
      index.retryAt('k', T0 + 200);
      expect(index.takeDue(T0 + 200, 10)).toEqual([
        { key: 'k', deadlineMs: T0 + 100, attempts: 1, readAhead: false },
      ]);
    });

    it('a new deadline re-arms the read-ahead, whatever stage the entry was in; the same deadline does not', () => {
      const index = new DeadlineIndex({ maxKeys: 100 });
      index.set('k', T0 + 100, T0 + 101, T0 + 81);
      index.takeDue(T0 + 81, 10);
      index.advance('k', T0 + 101);
      // The same deadline again (another lookup): the touch stays scheduled, no second read-ahead.
      expect(index.set('k', T0 + 100, T0 + 101, T0 + 81)).toBe('unchanged');
      expect(index.nextTouchAtMs()).toBe(T0 + 101);
      // The TTL moved before the touch: read ahead again for the new deadline.
      expect(index.set('k', T0 + 500, T0 + 501, T0 + 481)).toBe('updated');
      expect(index.nextTouchAtMs()).toBe(T0 + 481);
      expect(keysOf(index, T0 + 480)).toEqual([]);
      expect(index.takeDue(T0 + 481, 10)).toEqual([
        { key: 'k', deadlineMs: T0 + 500, attempts: 0, readAhead: true },
      ]);
      // Moved again while the read-ahead is in flight (taken, not yet advanced).
      expect(index.set('k', T0 + 900, T0 + 901, T0 + 881)).toBe('updated');
      expect(index.takeDue(T0 + 881, 10)).toEqual([
        { key: 'k', deadlineMs: T0 + 900, attempts: 0, readAhead: true },
      ]);
      // Moved after a touch and a retry: attempts reset, the read-ahead comes again.
      index.advance('k', T0 + 901);
      index.takeDue(T0 + 901, 10);
      index.retryAt('k', T0 + 950);
      expect(index.set('k', T0 + 2000, T0 + 2001, T0 + 1981)).toBe('updated');
      expect(index.takeDue(T0 + 1981, 10)).toEqual([
        { key: 'k', deadlineMs: T0 + 2000, attempts: 0, readAhead: true },
      ]);
    });

    it('a new deadline without a read-ahead clears the flag of a pending one', () => {
      const index = new DeadlineIndex({ maxKeys: 100 });
      index.set('k', T0 + 100, T0 + 101, T0 + 81);
      expect(index.set('k', T0 + 500, T0 + 501)).toBe('updated');
      expect(keysOf(index, T0 + 500)).toEqual([]);
      expect(index.takeDue(T0 + 501, 10)).toEqual([
        { key: 'k', deadlineMs: T0 + 500, attempts: 0, readAhead: false },
      ]);
    });

    it('a read-ahead at or after the touch time is none: the entry is handed out once, for its touch', () => {
      const index = new DeadlineIndex({ maxKeys: 100 });
      index.set('at', T0 + 100, T0 + 101, T0 + 101);
      index.set('after', T0 + 100, T0 + 101, T0 + 150);
      index.set('before', T0 + 100, T0 + 101, T0 + 100.5);
      expect(index.nextTouchAtMs()).toBe(T0 + 100.5);
      expect(index.takeDue(T0 + 101, 10)).toEqual([
        { key: 'before', deadlineMs: T0 + 100, attempts: 0, readAhead: true },
        { key: 'at', deadlineMs: T0 + 100, attempts: 0, readAhead: false },
        { key: 'after', deadlineMs: T0 + 100, attempts: 0, readAhead: false },
      ]);
      expect(keysOf(index, T0 + 1000)).toEqual([]);
    });

    it('the flag survives the arrays growing and a reused slot starts without it', () => {
      const index = new DeadlineIndex({ maxKeys: 10_000 });
      for (let i = 0; i < 3000; i++)
        index.set(`k${i}`, T0 + 100, T0 + 101, i % 2 === 0 ? T0 + 81 : undefined);
      const reads = index.takeDue(T0 + 81, 10_000);
      expect(reads).toHaveLength(1500);
      expect(reads.every((entry) => entry.readAhead && Number(entry.key.slice(1)) % 2 === 0)).toBe(true);
      for (const entry of reads) index.delete(entry.key);
      index.set('new', T0 + 100, T0 + 101);
      expect(index.takeDue(T0 + 101, 10_000).every((entry) => !entry.readAhead)).toBe(true);
    });
  });

  describe('capacity', () => {
    it('drops the farthest deadlines first, counted, to make room for a nearer one', () => {
      const dropped: number[] = [];
      const index = new DeadlineIndex({ maxKeys: 100, evictShare: 0.1, onDropped: (n) => dropped.push(n) });
      for (let i = 0; i < 100; i++) index.set(`k${i}`, T0 + i * 1000, T0 + i * 1000);
      expect(index.set('near', T0 + 500, T0 + 500)).toBe('added');
      expect(dropped).toEqual([10]);
      expect(index.size).toBe(91);
      for (let i = 90; i < 100; i++) expect(index.has(`k${i}`)).toBe(false);
      expect(index.has('k89')).toBe(true);
    });

    it('refuses a key farther than every kept one instead of dropping nearer ones', () => {
      const dropped: number[] = [];
      const index = new DeadlineIndex({ maxKeys: 100, evictShare: 0.1, onDropped: (n) => dropped.push(n) });
      for (let i = 0; i < 100; i++) index.set(`k${i}`, T0 + i * 1000, T0 + i * 1000);
      expect(index.set('far', T0 + 1_000_000, T0 + 1_000_000)).toBe('refused');
      expect(dropped).toEqual([1]);
      expect(index.size).toBe(100);
      // Refused again without another selection while nearly full.
      expect(index.set('far2', T0 + 2_000_000, T0)).toBe('refused');
      expect(dropped).toEqual([1, 1]);
    });

    it('accepts far keys again once the index has room', () => {
      const index = new DeadlineIndex({ maxKeys: 100, evictShare: 0.1 });
      for (let i = 0; i < 100; i++) index.set(`k${i}`, T0 + i, T0 + i);
      expect(index.set('far', T0 + 1_000_000, T0)).toBe('refused');
      for (let i = 0; i < 50; i++) index.delete(`k${i}`);
      expect(index.set('far', T0 + 1_000_000, T0)).toBe('added');
    });

    it('rejects a bound that is not a positive integer', () => {
      expect(() => new DeadlineIndex({ maxKeys: 0 })).toThrow(RangeError);
      expect(() => new DeadlineIndex({ maxKeys: 10, evictShare: 0 })).toThrow(RangeError);
    });
  });
});
