import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExpiryEvent } from '../../../../worker/expiry/expiry-event.ts';
import { FanIn } from '../../../../worker/expiry/fan-in.ts';
import { compileKeyFilter } from '../../../../worker/expiry/key-pattern.ts';
import { SLICE_CHECK_EVERY } from '../../../../worker/expiry/turn-slice.ts';
import { captureMetrics, fakeClock } from '../support/fakes.ts';

/** Events per batch in the batching tests. */
const BATCH = 4;
/** Events pushed per turn in the long-burst test: more than a batch, so the queue grows and compacts. */
const LONG_BURST_ROUND = 3000;

describe('FanIn', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stamps, indexes per node (receipt order) and counts every event, in arrival order', () => {
    const { metrics, totals } = captureMetrics();
    const out: ExpiryEvent[] = [];
    const fanIn = new FanIn({ clock: fakeClock, metrics, accepts: () => true, sink: (e) => out.push(e) });
    const a = { id: 'id-a', address: '10.0.0.1:6379' };
    const b = { id: 'id-b', address: '10.0.0.2:6379' };
    fanIn.push(a, Buffer.from('k1'));
    vi.advanceTimersByTime(5);
    fanIn.push(b, Buffer.from('k2'));
    fanIn.push(a, Buffer.from([0xff]));
    expect(out).toHaveLength(1); // k1, handed over at the end of its turn (the 5 ms advance ran it)
    vi.advanceTimersToNextTimer();
    expect(out.map((e) => [e.node, e.nodeId, e.receivedIndex, e.key.toString('hex')])).toEqual([
      ['10.0.0.1:6379', 'id-a', 1, '6b31'],
      ['10.0.0.2:6379', 'id-b', 1, '6b32'],
      ['10.0.0.1:6379', 'id-a', 2, 'ff'],
    ]);
    expect(out[0]?.receivedAt).toBe(1_700_000_000_000);
    expect(out[1]?.receivedAt).toBe(1_700_000_000_005);
    expect(out[1]?.receivedAtMono).toBe(1_700_000_000_005);
    expect(totals().EventsReceived).toBe(3);
  });

  it('is the one filter: own keys and keys outside KEY_PATTERN go nowhere, but count as received', () => {
    const { metrics, totals } = captureMetrics();
    const out: string[] = [];
    const fanIn = new FanIn({
      clock: fakeClock,
      metrics,
      accepts: compileKeyFilter('job:*'),
      sink: (e) => out.push(e.key.toString()),
    });
    const node = { id: 'id-a', address: '10.0.0.1:6379' };
    for (const key of ['job:1', 'other:1', '{kl:default}:lease', '{kl:x:c0}:canary:abc', 'job:2'])
      fanIn.push(node, Buffer.from(key));
    fanIn.flush();
    expect(out).toEqual(['job:1', 'job:2']);
    expect(totals().EventsReceived).toBe(5);
  });

  it('keeps own keys out even with KEY_PATTERN=*', () => {
    const accepts = compileKeyFilter('*');
    expect(accepts(Buffer.from('{kl:orders}:lease'))).toBe(false);
    expect(accepts(Buffer.from('{kl'))).toBe(true);
    expect(accepts(Buffer.from('session:1'))).toBe(true);
  });

  it('hands a burst over in batches, one per turn of the event loop, so timers run between them', async () => {
    const { metrics } = captureMetrics();
    const order: string[] = [];
    const fanIn = new FanIn({
      clock: fakeClock,
      metrics,
      accepts: () => true,
      batchSize: BATCH,
      sink: (e) => order.push(e.key.toString()),
    });
    const node = { id: 'id-a', address: '10.0.0.1:6379' };
    for (let i = 0; i < BATCH * 3; i++) fanIn.push(node, Buffer.from(`k${i}`));
    // A timer due now (a lease renewal) is armed while the burst waits.
    setTimeout(() => order.push('timer'), 0);
    expect(fanIn.pending).toBe(BATCH * 3);
    await vi.advanceTimersByTimeAsync(0);
    const timerAt = order.indexOf('timer');
    expect(timerAt).toBeGreaterThan(-1);
    expect(timerAt).toBeLessThan(BATCH * 3);
    expect(timerAt % BATCH).toBe(0); // between two batches, never inside one
    await vi.runAllTimersAsync();
    expect(order.filter((k) => k !== 'timer')).toEqual(Array.from({ length: BATCH * 3 }, (_, i) => `k${i}`));
    expect(fanIn.pending).toBe(0);
  });

  it('flush() hands over everything queued at once, in order', () => {
    const { metrics } = captureMetrics();
    const out: string[] = [];
    const fanIn = new FanIn({
      clock: fakeClock,
      metrics,
      accepts: () => true,
      batchSize: 2,
      sink: (e) => out.push(e.key.toString()),
    });
    const node = { id: 'id-a', address: '10.0.0.1:6379' };
    for (const key of ['a', 'b', 'c', 'd', 'e']) fanIn.push(node, Buffer.from(key));
    fanIn.flush();
    expect(out).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(fanIn.pending).toBe(0);
  });

  it('keeps the order of a long burst across the queue compactions, with pushes between batches', async () => {
    const { metrics } = captureMetrics();
    const out: number[] = [];
    const fanIn = new FanIn({
      clock: fakeClock,
      metrics,
      accepts: () => true,
      sink: (e) => out.push(Number(e.key.toString())),
    });
    const node = { id: 'id-a', address: '10.0.0.1:6379' };
    let next = 0;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < LONG_BURST_ROUND; i++) fanIn.push(node, Buffer.from(String(next++)));
      await vi.advanceTimersByTimeAsync(0);
    }
    await vi.runAllTimersAsync();
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
  });

  it('on-time expiry: takes the tracked deadline of accepted keys only, and the event carries it', () => {
    const { metrics } = captureMetrics();
    const out: ExpiryEvent[] = [];
    const asked: string[] = [];
    const fanIn = new FanIn({
      clock: fakeClock,
      metrics,
      accepts: compileKeyFilter('user:*'),
      sink: (e) => out.push(e),
      takeDeadline: (key) => {
        asked.push(key.toString());
        return key.toString() === 'user:1' ? { deadlineMs: 1000, deadlineLocalMs: 990 } : undefined;
      },
    });
    const node = { id: 'id-a', address: '10.0.0.1:6379' };
    fanIn.push(node, Buffer.from('user:1'));
    fanIn.push(node, Buffer.from('user:2'));
    fanIn.push(node, Buffer.from('{kl:default}:lease'));
    fanIn.push(node, Buffer.from('other'));
    fanIn.flush();
    expect(asked).toEqual(['user:1', 'user:2']);
    expect(out.map((e) => [e.key.toString(), e.deadlineMs, e.deadlineLocalMs])).toEqual([
      ['user:1', 1000, 990],
      ['user:2', undefined, undefined],
    ]);
  });

  it('yields after timeSliceMs of hand-over: a burst of slow events cannot hold timers (a touch, a renewal) for its whole batch', () => {
    // Found by the on-time bench (as of 5cdc61e): the second primary's touch, due 1 ms after the
    // first's, waited 18-29 ms behind the hand-over of the first primary's 672 events (one batch).
    let nowMono = 0;
    const clock = { monotonicMs: () => nowMono, wallMs: () => Date.now() };
    const { metrics } = captureMetrics();
    const out: ExpiryEvent[] = [];
    // Each event costs 1 ms of the fake monotonic clock.
    const fanIn = new FanIn({
      clock,
      metrics,
      accepts: () => true,
      sink: (e) => {
        out.push(e);
        nowMono += 1;
      },
      timeSliceMs: 5,
    });
    const node = { id: 'id-a', address: '10.0.0.1:6379' };
    for (let i = 0; i < 100; i++) fanIn.push(node, Buffer.from(`k${i}`));
    vi.advanceTimersToNextTimer();
    // One turn: the slice (5 ms) and at most one check interval more, far from the 100 of the batch.
    expect(out.length).toBeGreaterThanOrEqual(5);
    expect(out.length).toBeLessThanOrEqual(5 + SLICE_CHECK_EVERY);
    while (fanIn.pending > 0) vi.advanceTimersToNextTimer();
    expect(out.map((e) => e.key.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `k${i}`));
  });
});
