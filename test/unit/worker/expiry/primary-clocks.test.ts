import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { keySlot } from '../../../../core/key-slot.ts';
import type { SlotRange } from '../../../../core/keys.ts';
import type { ClusterNode, Topology } from '../../../../core/topology.ts';
import { PrimaryClocks, type PrimaryClocksOptions } from '../../../../worker/expiry/primary-clocks.ts';
import { captureLogger, fakeClock } from '../support/fakes.ts';

const T0 = 1_700_000_000_000;
/** How far an estimate may be off when its round trip was symmetric (float arithmetic only). */
const EXACT_MS = 0.01;

function node(id: string): ClusterNode {
  return { id, host: '127.0.0.1', port: 7000, role: 'primary', health: 'online' };
}

function topology(...shards: [ClusterNode | undefined, ...SlotRange[]][]): Topology {
  return { shards: shards.map(([primary, ...slots]) => ({ slots, primary, replicas: [] })) };
}

/** A round trip: ms to reach the primary, ms back. */
type Trip = readonly [outMs: number, backMs: number];

/**
 * A fake `TIME`: each primary's clock is `offsetMs` ahead of the local (fake) clock; each call
 * takes the next of its trips (the last one repeats), the server time read at the far end.
 */
class FakeTimes {
  readonly calls: { nodeId: string; atMs: number }[] = [];
  readonly offsets = new Map<string, number>();
  readonly trips = new Map<string, Trip[]>();
  readonly failing = new Set<string>();

  readTime = async (nodeId: string): Promise<readonly [string, string]> => {
    this.calls.push({ nodeId, atMs: Date.now() });
    const trips = this.trips.get(nodeId) ?? [[1, 1]];
    const [outMs, backMs] = (trips.length > 1 ? trips.shift() : trips[0]) as Trip;
    await new Promise((resolve) => setTimeout(resolve, outMs));
    if (this.failing.has(nodeId)) throw new Error(`TIME failed on ${nodeId}`);
    const serverMs = Date.now() + (this.offsets.get(nodeId) ?? 0);
    await new Promise((resolve) => setTimeout(resolve, backMs));
    const seconds = Math.floor(serverMs / 1000);
    const micros = Math.round((serverMs - seconds * 1000) * 1000);
    return [String(seconds), String(micros)];
  };

  callsTo(nodeId: string): number {
    return this.calls.filter((c) => c.nodeId === nodeId).length;
  }
}

function clocks(times: FakeTimes, overrides: Partial<PrimaryClocksOptions> = {}) {
  const logs = captureLogger();
  const primaryClocks = new PrimaryClocks({
    clock: fakeClock,
    logger: logs.logger,
    readTime: times.readTime,
    ...overrides,
  });
  return { primaryClocks, logs };
}

/** A key whose slot is in [first, last]. */
function keyInSlots(first: number, last: number): string {
  for (let i = 0; ; i++) {
    const slot = keySlot(`k${i}`);
    if (slot >= first && slot <= last) return `k${i}`;
  }
}

const LOW_KEY = keyInSlots(0, 8191);
const HIGH_KEY = keyInSlots(8192, 16383);

describe('PrimaryClocks', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("maps keys to the primary owning their slot in the last topology, and takes each primary's offset from TIME", async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 250);
    times.offsets.set('b', -40);
    const { primaryClocks } = clocks(times);
    primaryClocks.update(topology([node('a'), [0, 8191]], [node('b'), [8192, 16383]]));
    expect(primaryClocks.ownerOf(LOW_KEY)).toBe('a');
    expect(primaryClocks.ownerOf(Buffer.from(HIGH_KEY))).toBe('b');
    // Until the estimate is in: 0.
    expect(primaryClocks.offsetForKey(LOW_KEY)).toBe(0);
    expect(primaryClocks.offsetOf('a')).toBeUndefined();
    await vi.advanceTimersByTimeAsync(100);
    expect(primaryClocks.offsetOf('a')).toBeCloseTo(250, 1);
    expect(primaryClocks.offsetForKey(LOW_KEY)).toBeCloseTo(250, 1);
    expect(primaryClocks.offsetForKey(HIGH_KEY)).toBeCloseTo(-40, 1);
    // Three round trips per estimate (the default).
    expect(times.callsTo('a')).toBe(3);
  });

  it('keeps the sample with the shortest round trip: slow asymmetric trips do not skew the offset', async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 100);
    // 80 ms out and 10 back reads the server 35 ms late; 2 + 2 is symmetric; 5 + 40 reads it 17.5 ms early.
    times.trips.set('a', [
      [80, 10],
      [2, 2],
      [5, 40],
    ]);
    const { primaryClocks } = clocks(times);
    primaryClocks.update(topology([node('a'), [0, 16383]]));
    await vi.advanceTimersByTimeAsync(200);
    expect(Math.abs((primaryClocks.offsetOf('a') as number) - 100)).toBeLessThan(EXACT_MS);
  });

  it('corrects by half the round trip: a symmetric 20 ms trip gives the exact offset', async () => {
    const times = new FakeTimes();
    times.offsets.set('a', -1234.5);
    times.trips.set('a', [[10, 10]]);
    const { primaryClocks } = clocks(times, { samples: 1 });
    primaryClocks.update(topology([node('a'), [0, 16383]]));
    await vi.advanceTimersByTimeAsync(50);
    expect(Math.abs((primaryClocks.offsetOf('a') as number) + 1234.5)).toBeLessThan(EXACT_MS);
  });

  it('estimates a primary once per reestimateMs, however often the topology is taken', async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 10);
    const { primaryClocks } = clocks(times, { reestimateMs: 60_000 });
    const map = topology([node('a'), [0, 16383]]);
    primaryClocks.update(map);
    // A discovery while the first estimate is still out starts no second one.
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(100);
    expect(times.callsTo('a')).toBe(3);
    await vi.advanceTimersByTimeAsync(30_000);
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(100);
    expect(times.callsTo('a')).toBe(3);

    // Due again: the clock drifted by 30 ms meanwhile.
    times.offsets.set('a', 40);
    await vi.advanceTimersByTimeAsync(30_000);
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(100);
    expect(times.callsTo('a')).toBe(6);
    expect(primaryClocks.offsetOf('a')).toBeCloseTo(40, 1);
  });

  it("re-estimates after a failover: a slot's new owner has another id and its own clock", async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 500);
    times.offsets.set('a-replica', -200);
    const { primaryClocks } = clocks(times);
    primaryClocks.update(topology([node('a'), [0, 16383]]));
    await vi.advanceTimersByTimeAsync(100);
    expect(primaryClocks.offsetForKey(LOW_KEY)).toBeCloseTo(500, 1);

    // The replica was promoted: same slots, another node id. The old estimate is not used for it.
    primaryClocks.update(topology([node('a-replica'), [0, 16383]]));
    expect(primaryClocks.ownerOf(LOW_KEY)).toBe('a-replica');
    expect(primaryClocks.offsetOf('a')).toBeUndefined();
    expect(primaryClocks.offsetForKey(LOW_KEY)).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(times.callsTo('a-replica')).toBe(3);
    expect(primaryClocks.offsetForKey(LOW_KEY)).toBeCloseTo(-200, 1);
  });

  it('follows a resharding: a key moves to the primary now owning its slot', async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 1);
    times.offsets.set('b', 2);
    const { primaryClocks } = clocks(times);
    primaryClocks.update(topology([node('a'), [0, 8191]], [node('b'), [8192, 16383]]));
    await vi.advanceTimersByTimeAsync(100);
    const slot = keySlot(LOW_KEY);
    primaryClocks.update(
      topology([node('a'), [0, slot - 1], [slot + 1, 8191]], [node('b'), [slot, slot], [8192, 16383]]),
    );
    expect(primaryClocks.ownerOf(LOW_KEY)).toBe('b');
    expect(primaryClocks.offsetForKey(LOW_KEY)).toBeCloseTo(2, 1);
  });

  it('a shard without a live primary owns nothing; its primaries are not asked for TIME', async () => {
    const times = new FakeTimes();
    const { primaryClocks } = clocks(times);
    primaryClocks.update(
      topology([undefined, [0, 8191]], [{ ...node('b'), health: 'failed' }, [8192, 16383]]),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(primaryClocks.ownerOf(LOW_KEY)).toBeUndefined();
    expect(primaryClocks.ownerOf(HIGH_KEY)).toBeUndefined();
    expect(primaryClocks.offsetForKey(HIGH_KEY)).toBe(0);
    expect(times.calls).toEqual([]);
  });

  // Was a defect, fixed (worker/expiry/primary-clocks.ts, `update`): the slot map is only written for the slots
  // of shards that have a live primary; the slots of a shard that lost its primary (between a failure
  // and the promotion) keep their old index into `owners`, and `owners` is renumbered, so those slots
  // now name whichever primary got that index: here shard A's slots are reported as owned by B, and
  // A's keys are touched with B's clock offset. `update` should reset the map (fill -1) first.
  it("a shard that lost its primary owns nothing in the next topology (not another primary's index)", async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 0);
    times.offsets.set('b', 900);
    const { primaryClocks } = clocks(times);
    primaryClocks.update(topology([node('a'), [0, 8191]], [node('b'), [8192, 16383]]));
    await vi.advanceTimersByTimeAsync(100);
    primaryClocks.update(topology([undefined, [0, 8191]], [node('b'), [8192, 16383]]));
    expect(primaryClocks.ownerOf(HIGH_KEY)).toBe('b');
    expect(primaryClocks.ownerOf(LOW_KEY)).toBeUndefined();
    expect(primaryClocks.offsetForKey(LOW_KEY)).toBe(0);
  });

  it('a failed estimate keeps the previous offset (0 at first) and the next discovery tries again', async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 300);
    times.failing.add('a');
    const { primaryClocks, logs } = clocks(times, { reestimateMs: 60_000 });
    const map = topology([node('a'), [0, 16383]]);
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(100);
    expect(primaryClocks.offsetOf('a')).toBeUndefined();
    expect(primaryClocks.offsetForKey(LOW_KEY)).toBe(0);
    expect(logs.events('expiry.clock_offset_failed')).toHaveLength(1);

    times.failing.delete('a');
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(100);
    expect(primaryClocks.offsetOf('a')).toBeCloseTo(300, 1);

    // A failed re-estimate keeps the estimate it had.
    times.failing.add('a');
    await vi.advanceTimersByTimeAsync(60_000);
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(100);
    expect(primaryClocks.offsetOf('a')).toBeCloseTo(300, 1);
  });

  it('logs an estimate when it is new or moved by 5 ms or more', async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 20);
    const { primaryClocks, logs } = clocks(times, { reestimateMs: 1000 });
    const map = topology([node('a'), [0, 16383]]);
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(1000);
    times.offsets.set('a', 22);
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(1000);
    times.offsets.set('a', 30);
    primaryClocks.update(map);
    await vi.advanceTimersByTimeAsync(100);
    expect(logs.events('expiry.clock_offset').map((l) => l.offsetMs)).toEqual([20, 30]);
  });

  it('after close, an estimate still out is dropped and updates start none', async () => {
    const times = new FakeTimes();
    times.offsets.set('a', 70);
    times.trips.set('a', [[50, 50]]);
    const { primaryClocks } = clocks(times);
    primaryClocks.update(topology([node('a'), [0, 16383]]));
    await vi.advanceTimersByTimeAsync(10);
    primaryClocks.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(primaryClocks.offsetOf('a')).toBeUndefined();
    const before = times.calls.length;
    primaryClocks.update(topology([node('b'), [0, 16383]]));
    await vi.advanceTimersByTimeAsync(1000);
    expect(times.calls.length).toBe(before);
  });
});
