import type { Cluster } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { silentLogger } from '../../../../core/logger.ts';
import { CoverageRegistry } from '../../../../worker/leader/coverage-registry.ts';
import { LeaderElector } from '../../../../worker/leader/leader-elector.ts';
import { electorConfig, FakeWorld, T0, testClock } from './fakes.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** An in-memory sorted set behind the pipeline calls the registry makes. */
function fakeCluster(set: Map<string, number>): Cluster {
  const pipeline = () => {
    const ops: (() => unknown)[] = [];
    const p = {
      zadd: (_k: string, score: number, member: string) => ops.push(() => set.set(member, score)) && p,
      zrem: (_k: string, member: string) => ops.push(() => set.delete(member)) && p,
      zremrangebyscore: (_k: string, _min: string, max: number) =>
        ops.push(() => {
          for (const [m, s] of set) if (s <= max) set.delete(m);
        }) && p,
      pexpire: () => ops.push(() => 1) && p,
      zrangebyscore: (_k: string, min: number) =>
        ops.push(() => [...set].filter(([, s]) => s >= min).map(([m]) => m)) && p,
      exec: async () => ops.map((op) => [null, op()]),
    };
    return p;
  };
  return { pipeline, zrem: async (_k: string, m: string) => set.delete(m) } as unknown as Cluster;
}

function registry(set: Map<string, number>, workerId: string, covered: { value: boolean }) {
  return new CoverageRegistry({
    cluster: fakeCluster(set),
    keys: new KeyspaceKeys('t'),
    workerId,
    clock: testClock,
    logger: silentLogger,
    isCovered: () => covered.value,
  });
}

describe('CoverageRegistry', () => {
  it('an uncovered worker may lead only while no covered peer exists', async () => {
    const set = new Map<string, number>();
    const a = { value: false };
    const b = { value: false };
    const ra = registry(set, 'a', a);
    const rb = registry(set, 'b', b);
    ra.start();
    rb.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(ra.canLead()).toBe(true); // nobody covered: an incomplete leader beats none
    b.value = true;
    await vi.advanceTimersByTimeAsync(1000); // b publishes, then a reads it on its next tick
    expect(ra.canLead()).toBe(false);
    expect(rb.canLead()).toBe(true);
    await rb.stop(); // b leaves: its entry goes, a may lead again once it reads that
    await vi.advanceTimersByTimeAsync(1000);
    expect(ra.canLead()).toBe(true);
    await ra.stop();
  });

  it('a leader steps down for coverage only after the grace and only for a covered peer', async () => {
    const set = new Map<string, number>();
    const leader = { value: true };
    const peer = { value: false };
    const rl = registry(set, 'leader', leader);
    const rp = registry(set, 'peer', peer);
    rl.start();
    rp.start();
    await vi.advanceTimersByTimeAsync(0);
    leader.value = false;
    expect(rl.shouldStepDown()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2500);
    expect(rl.shouldStepDown()).toBeUndefined(); // no covered peer: keep leading
    peer.value = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(rl.shouldStepDown()).toBe('coverage-lost');
    leader.value = true;
    expect(rl.shouldStepDown()).toBeUndefined();
    await rl.stop();
    await rp.stop();
  });
});

describe('LeaderElector.shouldStepDown', () => {
  it('hands over at the next renewal: lease released and released published', async () => {
    const world = new FakeWorld();
    let reason: 'coverage-lost' | undefined;
    const config = electorConfig(world, 'a', { shouldStepDown: () => reason });
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(elector.isLeader).toBe(true);
    reason = 'coverage-lost';
    await vi.advanceTimersByTimeAsync(1000);
    expect(elector.isLeader).toBe(false);
    expect(config.lines.find((l) => l.event === 'leader.lost')).toMatchObject({ reason: 'coverage-lost' });
    await vi.advanceTimersByTimeAsync(300);
    expect(world.published.at(-1)).toMatchObject({ workerId: 'a', fencingToken: 1 });
    await elector.stop({ release: false });
  });
});
