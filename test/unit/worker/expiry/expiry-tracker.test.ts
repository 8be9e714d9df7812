import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineIndex } from '../../../../worker/expiry/deadline-index.ts';
import { ExpiryToucher } from '../../../../worker/expiry/expiry-toucher.ts';
import { ExpiryTracker, type ExpiryTrackerOptions } from '../../../../worker/expiry/expiry-tracker.ts';
import { compileKeyFilter } from '../../../../worker/expiry/key-pattern.ts';
import { fakeClock } from '../support/fakes.ts';

const T0 = 1_700_000_000_000;

function harness(overrides: Partial<ExpiryTrackerOptions> = {}) {
  const index = new DeadlineIndex({ maxKeys: 10_000 });
  const toucher = new ExpiryToucher({
    index,
    clock: fakeClock,
    touch: async (keys) => keys.map(() => -2),
    offsetForKey: () => 0,
    isLeader: () => true,
  });
  const lookups: string[][] = [];
  const deadlines = new Map<string, number>();
  const outcomes: Record<string, number> = {};
  const tracker = new ExpiryTracker({
    index,
    toucher,
    accepts: compileKeyFilter('user:*'),
    lookup: async (keys) => {
      lookups.push(keys.map((k) => k.toString('latin1')));
      return keys.map((k) => deadlines.get(k.toString('latin1')) ?? -2);
    },
    offsetForKey: () => 0,
    onOutcome: (outcome, n) => {
      outcomes[outcome] = (outcomes[outcome] ?? 0) + n;
    },
    ...overrides,
  });
  return { index, tracker, lookups, deadlines, outcomes };
}

describe('ExpiryTracker', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('filters first: own keys and keys outside KEY_PATTERN are never looked up', async () => {
    const h = harness();
    h.tracker.noteTtlSet(Buffer.from('{kl:default}:lease'));
    h.tracker.noteTtlSet(Buffer.from('other:1'));
    h.tracker.noteTtlSet(Buffer.from('user:1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(h.lookups).toEqual([['user:1']]);
  });

  it('coalesces per key: a key whose TTL is set many times before its lookup is looked up once', async () => {
    const h = harness();
    h.deadlines.set('user:1', T0 + 5000);
    for (let i = 0; i < 1000; i++) h.tracker.noteTtlSet(Buffer.from('user:1'));
    h.tracker.noteTtlSet(Buffer.from('user:2'));
    await vi.advanceTimersByTimeAsync(0);
    expect(h.lookups).toEqual([['user:1', 'user:2']]);
    expect(h.index.deadlineOf('user:1')).toBe(T0 + 5000);
    expect(h.index.has('user:2')).toBe(false); // -2: gone already
  });

  it('a lookup that finds no TTL (-1) stops tracking the key; a new deadline reschedules it', async () => {
    const h = harness();
    h.deadlines.set('user:1', T0 + 5000);
    h.tracker.noteTtlSet(Buffer.from('user:1'));
    await vi.advanceTimersByTimeAsync(0);
    h.deadlines.set('user:1', T0 + 9000);
    h.tracker.noteTtlSet(Buffer.from('user:1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(h.index.deadlineOf('user:1')).toBe(T0 + 9000);
    h.deadlines.set('user:1', -1);
    h.tracker.noteTtlSet(Buffer.from('user:1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(h.index.has('user:1')).toBe(false);
    expect(h.outcomes.untracked).toBe(1);
  });

  it('batches lookups and bounds the keys waiting, counting the ones dropped', async () => {
    const h = harness({ batchSize: 100, maxBatchesInFlight: 1, maxPending: 250 });
    for (let i = 0; i < 300; i++) h.tracker.noteTtlSet(Buffer.from(`user:${i}`));
    expect(h.tracker.pendingLookups).toBe(250);
    expect(h.outcomes['lookup-dropped']).toBe(50);
    for (let turn = 0; turn < 3; turn++) {
      await vi.advanceTimersToNextTimerAsync();
    }
    expect(h.lookups.map((batch) => batch.length)).toEqual([100, 100, 50]);
  });

  it('an expired event ends a tracked entry and gives its deadline; untracked keys give none', async () => {
    const h = harness();
    h.tracker.noteDeadline('user:1', T0 + 100);
    expect(h.tracker.trackedKeys).toBe(1);
    expect(h.tracker.takeDeadline(Buffer.from('user:1'))).toEqual({
      deadlineMs: T0 + 100,
      deadlineLocalMs: T0 + 100,
    });
    expect(h.tracker.trackedKeys).toBe(0);
    expect(h.tracker.takeDeadline(Buffer.from('user:2'))).toBeUndefined();
  });

  it('a failed lookup leaves the key untracked, counted (the scan finds it)', async () => {
    const h = harness({ lookup: async () => Promise.reject(new Error('connection lost')) });
    h.tracker.noteTtlSet(Buffer.from('user:1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(h.outcomes['lookup-failed']).toBe(1);
    expect(h.index.size).toBe(0);
  });

  it("plans a key's read-ahead once per deadline: a lookup that finds the same deadline plans nothing", () => {
    const index = new DeadlineIndex({ maxKeys: 100 });
    const planned: string[] = [];
    const toucher = new ExpiryToucher({
      index,
      clock: fakeClock,
      touch: async (keys) => keys.map(() => -2),
      offsetForKey: () => 0,
      isLeader: () => true,
      readAhead: {
        readAtFor: (key, _deadlineMs, touchAtMs) => {
          planned.push(key);
          return touchAtMs - 20;
        },
        read: () => {},
      },
    });
    const tracker = new ExpiryTracker({
      index,
      toucher,
      accepts: compileKeyFilter('user:*'),
      lookup: async (keys) => keys.map(() => T0 + 5000),
      offsetForKey: () => 0,
    });
    tracker.noteDeadline('user:a', T0 + 5000);
    tracker.noteDeadline('user:a', T0 + 5000); // the scan, or a second lookup: the same deadline
    tracker.noteDeadline('user:a', T0 + 6000); // a new deadline: planned again
    expect(planned).toEqual(['user:a', 'user:a']);
  });
});
