import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineIndex, type DueEntry } from '../../../../worker/expiry/deadline-index.ts';
import {
  ExpiryToucher,
  type ExpiryToucherOptions,
  type ReadAheadStage,
} from '../../../../worker/expiry/expiry-toucher.ts';
import { fakeClock } from '../support/fakes.ts';

const T0 = 1_700_000_000_000;
/** The follower's backstop delay in these tests. */
const FOLLOWER_DELAY_MS = 500;

interface Harness {
  index: DeadlineIndex;
  toucher: ExpiryToucher;
  /** Each touch batch: the keys and when it was sent (fake wall clock). */
  batches: { keys: string[]; atMs: number }[];
  /** What the fake primary answers, per key (default: -2, gone). */
  replies: Map<string, number | Error>;
  leader: { value: boolean };
  track(key: string, deadlineMs: number): void;
}

function harness(overrides: Partial<ExpiryToucherOptions> & { offsetMs?: number } = {}): Harness {
  const index = new DeadlineIndex({ maxKeys: 10_000 });
  const batches: Harness['batches'] = [];
  const replies = new Map<string, number | Error>();
  const leader = { value: true };
  const toucher = new ExpiryToucher({
    index,
    clock: fakeClock,
    touch: async (keys) => {
      batches.push({ keys: keys.map((k) => k.toString('latin1')), atMs: Date.now() });
      return keys.map((k) => replies.get(k.toString('latin1')) ?? -2);
    },
    offsetForKey: () => overrides.offsetMs ?? 0,
    isLeader: () => leader.value,
    followerDelayMs: FOLLOWER_DELAY_MS,
    ...overrides,
  });
  toucher.start();
  return {
    index,
    toucher,
    batches,
    replies,
    leader,
    track(key, deadlineMs) {
      const touchAtMs = toucher.touchAtFor(key, deadlineMs);
      index.set(key, deadlineMs, touchAtMs, toucher.readAtFor(key, deadlineMs, touchAtMs));
      toucher.arm();
    },
  };
}

describe('ExpiryToucher', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the leader touches each key 1 ms after its deadline, many keys in one batch, on one timer', async () => {
    const h = harness();
    for (let i = 0; i < 100; i++) h.track(`k${i}`, T0 + 1000);
    h.track('later', T0 + 2000);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.batches).toHaveLength(1);
    expect(h.batches[0]?.keys).toHaveLength(100);
    expect(h.batches[0]?.atMs).toBe(T0 + 1001);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.batches.map((b) => [b.keys, b.atMs])).toContainEqual([['later'], T0 + 2001]);
  });

  it("touches at the deadline in the primary's clock: a primary 300 ms ahead is touched 300 ms sooner", async () => {
    const h = harness({ offsetMs: 300 });
    h.track('k', T0 + 1000);
    await vi.advanceTimersByTimeAsync(701);
    expect(h.batches.map((b) => b.atMs)).toEqual([T0 + 701]);
  });

  it('a touch time with a fraction of a ms (offsets are estimated to the microsecond) wakes the timer once, not before it', async () => {
    // Timers count whole ms (Node's and the fake ones alike): a delay of 1000.6 ms runs after 1000,
    // when the key is not due yet, and the re-armed timer costs another 1-2 ms on the critical path.
    const h = harness({ offsetMs: 0.4 });
    h.replies.set('k', -1); // the reply ends the entry: no timer after the touch
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    h.track('k', T0 + 1000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.batches.map((b) => b.atMs)).toEqual([T0 + 1001]);
    expect(setTimeoutSpy).toHaveBeenCalledTimes(1);
  });

  it('a follower touches only as a backstop, followerDelayMs later, and re-arms when it becomes leader', async () => {
    const h = harness();
    h.leader.value = false;
    h.track('a', T0 + 100);
    h.track('b', T0 + 2000);
    await vi.advanceTimersByTimeAsync(101 + FOLLOWER_DELAY_MS - 1);
    expect(h.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.batches.map((b) => [b.keys, b.atMs])).toEqual([[['a'], T0 + 101 + FOLLOWER_DELAY_MS]]);
    h.leader.value = true;
    h.toucher.arm();
    await vi.advanceTimersByTimeAsync(T0 + 2001 - Date.now());
    expect(h.batches.at(-1)).toEqual({ keys: ['b'], atMs: T0 + 2001 });
  });

  it('-2 does not end the entry: it waits for the event and is touched again, backing off, then dropped', async () => {
    const outcomes: string[] = [];
    const h = harness({
      goneRetryMs: 100,
      goneRetryMaxMs: 400,
      goneAttempts: 4,
      onOutcome: (o, n) => outcomes.push(`${o}:${n}`),
    });
    h.track('k', T0 + 10);
    await vi.advanceTimersByTimeAsync(11);
    expect(h.index.has('k')).toBe(true);
    await vi.advanceTimersByTimeAsync(100 + 200 + 400);
    expect(h.batches.map((b) => b.atMs - T0)).toEqual([11, 111, 311, 711]);
    expect(h.index.has('k')).toBe(false);
    expect(outcomes).toContain('gone:1');
  });

  it('an event that arrives while the touch is out ends the entry; the reply is ignored', async () => {
    let release: (() => void) | undefined;
    let touches = 0;
    const h2 = harness({
      touch: (keys) =>
        new Promise((resolve) => {
          touches++;
          release = () => resolve(keys.map(() => -2));
        }),
    });
    h2.track('k', T0 + 10);
    await vi.advanceTimersByTimeAsync(11);
    expect(h2.index.delete('k')).toBe(T0 + 10); // the `expired` event
    release?.();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h2.index.has('k')).toBe(false);
    expect(touches).toBe(1); // not touched again: the reply of the ended entry was ignored
  });

  it('-1 (the TTL was removed) drops the entry', async () => {
    const h = harness();
    h.replies.set('k', -1);
    h.track('k', T0 + 10);
    await vi.advanceTimersByTimeAsync(11);
    expect(h.index.has('k')).toBe(false);
  });

  it('a moved deadline reschedules the key for it', async () => {
    const h = harness();
    h.replies.set('k', T0 + 5000);
    h.track('k', T0 + 10);
    await vi.advanceTimersByTimeAsync(11);
    expect(h.index.deadlineOf('k')).toBe(T0 + 5000);
    h.replies.set('k', -2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.batches.map((b) => b.atMs - T0)).toEqual([11, 5001]);
  });

  it('a key found alive at its deadline (a clock estimate off) is retried after the minimum step, never in a loop', async () => {
    const h = harness({ minStepMs: 10, offsetMs: 50 }); // estimate says 50 ms ahead; the primary is not
    h.replies.set('k', T0 + 100);
    h.track('k', T0 + 100);
    await vi.advanceTimersByTimeAsync(100);
    const touchTimes = h.batches.map((b) => b.atMs - T0);
    expect(touchTimes[0]).toBe(51);
    for (let i = 1; i < touchTimes.length; i++) {
      expect((touchTimes[i] as number) - (touchTimes[i - 1] as number)).toBeGreaterThanOrEqual(10);
    }
    expect(touchTimes.length).toBeLessThanOrEqual(6);
  });

  it('a failed touch is retried', async () => {
    const h = harness({ goneRetryMs: 100 });
    h.replies.set('k', new Error('CLUSTERDOWN'));
    h.track('k', T0 + 10);
    await vi.advanceTimersByTimeAsync(11);
    h.replies.set('k', -2);
    await vi.advanceTimersByTimeAsync(100);
    expect(h.batches.map((b) => b.atMs - T0)).toEqual([11, 111]);
    expect(h.index.has('k')).toBe(true);
  });

  it('bounds the batches in flight and sends the rest as replies come back', async () => {
    const pending: (() => void)[] = [];
    const sent: number[] = [];
    const h = harness({
      batchSize: 10,
      maxBatchesInFlight: 2,
      touch: (keys) => {
        sent.push(keys.length);
        return new Promise((resolve) => pending.push(() => resolve(keys.map(() => -1))));
      },
    });
    for (let i = 0; i < 35; i++) h.track(`k${i}`, T0 + 10);
    await vi.advanceTimersByTimeAsync(11);
    expect(sent).toEqual([10, 10]);
    pending.shift()?.();
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([10, 10, 10]);
    while (pending.length > 0) {
      pending.shift()?.();
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(sent).toEqual([10, 10, 10, 5]);
    expect(h.index.size).toBe(0);
  });

  describe('with a read-ahead stage', () => {
    const READ_AHEAD_MS = 20;

    /**
     * A stage that reads READ_AHEAD_MS before the touch and records what it was handed, and when; its
     * reads answer at once, or, with `answerAfterMs`, that much later.
     */
    function stage(
      answerAfterMs?: number,
    ): ReadAheadStage & { reads: { entries: DueEntry[]; nowMs: number; atMs: number }[] } {
      const reads: { entries: DueEntry[]; nowMs: number; atMs: number }[] = [];
      return {
        reads,
        readAtFor: (_key, _deadlineMs, touchAtMs) => touchAtMs - READ_AHEAD_MS,
        read: (entries, nowMs, answered) => {
          reads.push({ entries: [...entries], nowMs, atMs: Date.now() });
          if (answerAfterMs === undefined) answered(entries);
          else setTimeout(() => answered(entries), answerAfterMs);
        },
      };
    }

    it("the leader's touch waits for the entry's read: a read answered after the touch time is touched then", async () => {
      // A read still out at the touch time would lose its value: the event would come first, and the
      // reply be dropped (the key no longer tracked). So the touch waits for the answer.
      const readAhead = stage(READ_AHEAD_MS + 15);
      const h = harness({ readAhead });
      h.track('k', T0 + 1000);
      await vi.advanceTimersByTimeAsync(1001 - READ_AHEAD_MS);
      expect(readAhead.reads).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(READ_AHEAD_MS + 14);
      expect(h.batches).toEqual([]); // touch time T0 + 1001 passed: still waiting for the read
      // The read answers at T0 + 1016; the touch goes on the timer's next turn (a 0 ms timer is 1 ms).
      await vi.advanceTimersByTimeAsync(2);
      expect(h.batches).toEqual([{ keys: ['k'], atMs: T0 + 1001 + 16 }]);
    });

    it('the leader hands each entry to the stage at its read-ahead, then touches it at its touch time', async () => {
      const readAhead = stage();
      const h = harness({ readAhead, minStepMs: 10 });
      h.replies.set('k', -1);
      for (let i = 0; i < 3; i++) h.track(`b${i}`, T0 + 1000);
      h.track('k', T0 + 2000);
      await vi.advanceTimersByTimeAsync(1001 - READ_AHEAD_MS - 1);
      expect(readAhead.reads).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(readAhead.reads).toHaveLength(1);
      expect(readAhead.reads[0]?.entries.sort((a, b) => a.key.localeCompare(b.key))).toEqual(
        ['b0', 'b1', 'b2'].map((key) => ({ key, deadlineMs: T0 + 1000, attempts: 0, readAhead: true })),
      );
      expect([readAhead.reads[0]?.nowMs, readAhead.reads[0]?.atMs]).toEqual([T0 + 981, T0 + 981]);
      expect(h.batches).toEqual([]); // a read-ahead is not a touch
      await vi.advanceTimersByTimeAsync(19);
      expect(h.batches).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      // Keys sharing a touch time come in any order.
      expect(h.batches.map((b) => [[...b.keys].sort(), b.atMs])).toEqual([[['b0', 'b1', 'b2'], T0 + 1001]]);
      await vi.advanceTimersByTimeAsync(1000);
      expect(readAhead.reads.map((r) => [r.entries.length, r.atMs])).toEqual([
        [3, T0 + 981],
        [1, T0 + 1981],
      ]);
      expect(h.batches.map((b) => [b.keys, b.atMs])).toContainEqual([['k'], T0 + 2001]);
    });

    it('a follower does not read: it moves each entry on to its backstop touch, followerDelayMs late', async () => {
      const readAhead = stage();
      const h = harness({ readAhead });
      h.leader.value = false;
      h.track('k', T0 + 1000);
      await vi.advanceTimersByTimeAsync(1001 + FOLLOWER_DELAY_MS - 1);
      expect(h.batches).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(h.batches).toEqual([{ keys: ['k'], atMs: T0 + 1001 + FOLLOWER_DELAY_MS }]);
      expect(readAhead.reads).toEqual([]);
    });

    it('a follower that becomes leader before its read-ahead was taken reads it', async () => {
      const readAhead = stage();
      const h = harness({ readAhead });
      h.leader.value = false;
      h.track('k', T0 + 1000);
      await vi.advanceTimersByTimeAsync(990);
      h.leader.value = true;
      h.toucher.arm();
      await vi.advanceTimersByTimeAsync(0);
      expect(readAhead.reads.map((r) => [r.entries.map((e) => e.key), r.nowMs])).toEqual([[['k'], T0 + 990]]);
      await vi.advanceTimersByTimeAsync(11);
      expect(h.batches).toEqual([{ keys: ['k'], atMs: T0 + 1001 }]);
    });

    it('an entry whose read-ahead comes after its touch time is touched in the same fire', () => {
      const readAhead = stage();
      const h = harness({ readAhead });
      // Tracked 5 ms before its deadline (a late lookup): its read-ahead and its touch are both past.
      vi.setSystemTime(T0 + 1005);
      h.track('k', T0 + 1000);
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersToNextTimer(); // exactly one timer callback
      expect(readAhead.reads.map((r) => [r.entries.map((e) => e.key), r.nowMs])).toEqual([
        [['k'], T0 + 1005],
      ]);
      expect(h.batches).toEqual([{ keys: ['k'], atMs: T0 + 1005 }]);
    });

    it('a deadline moved by a touch reply is read ahead again for its new deadline', async () => {
      const readAhead = stage();
      const h = harness({ readAhead });
      h.replies.set('k', T0 + 5000); // the TTL moved; the touch sees it before the `expire` event's lookup
      h.track('k', T0 + 1000);
      await vi.advanceTimersByTimeAsync(1001);
      expect(h.index.deadlineOf('k')).toBe(T0 + 5000);
      h.replies.set('k', -1);
      await vi.advanceTimersByTimeAsync(4000);
      expect(readAhead.reads.map((r) => [r.entries.map((e) => e.deadlineMs), r.atMs])).toEqual([
        [[T0 + 1000], T0 + 981],
        [[T0 + 5000], T0 + 4981],
      ]);
      expect(h.batches.map((b) => b.atMs)).toEqual([T0 + 1001, T0 + 5001]);
    });
  });

  it('stop() leaves no timer', async () => {
    const h = harness();
    h.track('k', T0 + 10_000);
    h.toucher.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.batches).toEqual([]);
  });
});
