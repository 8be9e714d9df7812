import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaderElector } from '../../../../worker/leader/leader-elector.ts';
import { LeadershipState } from '../../../../worker/leader/leadership-state.ts';
import { LeadershipEndedError } from '../../../../worker/leader/lease-errors.ts';
import { DEFAULT_TIMINGS, electorConfig, FakeWorld, T0, testClock } from './fakes.ts';

const now = () => testClock.monotonicMs();

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('LeaderElector construction', () => {
  const world = new FakeWorld();
  const invalid: [string, Partial<typeof DEFAULT_TIMINGS>][] = [
    ['TTL equal to the renew deadline', { leaseTtlMs: 2000 }],
    ['renew deadline below the interval', { leaseRenewDeadlineMs: 900 }],
    ['renew deadline equal to the interval', { leaseRenewDeadlineMs: 1000 }],
    ['zero interval', { leaseRenewIntervalMs: 0 }],
    ['negative interval', { leaseRenewIntervalMs: -5 }],
    ['retry equal to the TTL', { leaseRetryMs: 3000 }],
    ['zero retry', { leaseRetryMs: 0 }],
    ['NaN TTL', { leaseTtlMs: Number.NaN }],
  ];
  it.each(invalid)('throws RangeError for %s', (_, timings) => {
    expect(
      () => new LeaderElector(electorConfig(world, 'w', { timings: { ...DEFAULT_TIMINGS, ...timings } })),
    ).toThrow(RangeError);
  });

  it('accepts the defaults and tight but valid timings', () => {
    expect(() => new LeaderElector(electorConfig(world, 'w'))).not.toThrow();
    const tight = { leaseTtlMs: 3, leaseRenewDeadlineMs: 2, leaseRenewIntervalMs: 1, leaseRetryMs: 2 };
    expect(() => new LeaderElector(electorConfig(world, 'w', { timings: tight }))).not.toThrow();
  });

  it('accepts a whole worker configuration as its timings (only the four lease fields count)', () => {
    const workerConfig = { ...DEFAULT_TIMINGS, leaderName: 'x', redis: { nodes: [] }, workerId: undefined };
    expect(() => new LeaderElector(electorConfig(world, 'w', { timings: workerConfig }))).not.toThrow();
  });

  it('rejects an empty worker id', () => {
    expect(() => new LeaderElector(electorConfig(world, 'w', { workerId: '' }))).toThrow(RangeError);
  });
});

describe('LeaderElector state machine', () => {
  it('follower -> leader -> follower: acquires, renews every interval, loses the lease, competes again', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    const elector = new LeaderElector(config);
    expect(elector.isLeader).toBe(false);
    elector.start();
    elector.start(); // idempotent
    await vi.advanceTimersByTimeAsync(0);

    expect(elector.isLeader).toBe(true);
    const grant = elector.current(now());
    expect(grant).toMatchObject({ fencingToken: 1, deadlineMs: 2000 });
    expect(config.callbacks.events).toEqual([
      { what: 'started', atMs: 0, token: 1 },
      { what: 'new-leader', atMs: 0, token: 1 },
    ]);
    expect(config.callbacks.signal?.aborted).toBe(false);
    expect(config.gauges).toEqual([0, 1]);
    expect(config.lines.find((l) => l.event === 'leader.acquired')).toMatchObject({
      fencingToken: 1,
      level: 'info',
    });
    expect(config.recordStore.writes[0]).toMatchObject({
      workerId: 'a',
      fencingToken: 1,
      leaseTtlMs: 3000,
      releasedAt: null,
    });

    // Renewals at 1000, 2000, 3000: the deadline follows the start of each successful one.
    await vi.advanceTimersByTimeAsync(3000);
    expect(config.lease.calls.filter((c) => c.op === 'extend').map((c) => c.atMs)).toEqual([
      1000, 2000, 3000,
    ]);
    expect(elector.current(now())?.deadlineMs).toBe(5000);
    expect(config.recordStore.writes).toHaveLength(4);
    expect(config.lease.count('acquire')).toBe(1);

    // Another owner took the lease: the next renewal is refused and leadership ends at once.
    world.owner = 'intruder';
    world.expiresAtMs = now() + 3000;
    await vi.advanceTimersByTimeAsync(1000);
    expect(elector.isLeader).toBe(false);
    expect(elector.current(now())).toBeUndefined();
    expect(config.callbacks.events.at(-1)).toEqual({ what: 'stopped', atMs: 4000, reason: 'lease-lost' });
    expect(config.callbacks.signal?.aborted).toBe(true);
    expect(config.callbacks.signal?.reason).toBeInstanceOf(LeadershipEndedError);
    expect(config.gauges.at(-1)).toBe(0);
    expect(config.lines.find((l) => l.event === 'leader.lost')).toMatchObject({
      reason: 'lease-lost',
      fencingToken: 1,
    });
    expect(config.lines.find((l) => l.event === 'leader.renew_failed')).toMatchObject({
      level: 'warn',
      fencingToken: 1,
    });
    // The leftover hold is released at once (a 0 ms timer: 1 ms under Node's clamping), then the
    // worker competes again as a follower after a retry period.
    await vi.advanceTimersByTimeAsync(1);
    expect(config.lease.calls.find((c) => c.op === 'release')).toMatchObject({ atMs: 4001, token: 1 });

    // Follower retries every 250 ms (random 0.5 = no jitter) until the intruder's lease expires at 6000.
    await vi.advanceTimersByTimeAsync(3100);
    expect(elector.isLeader).toBe(true);
    expect(elector.current(now())?.fencingToken).toBe(2);
    const acquires = config.lease.calls.filter((c) => c.op === 'acquire').map((c) => c.atMs);
    expect(acquires[0]).toBe(0);
    expect(acquires[1]).toBe(4251);
    expect(acquires.at(-1)).toBe(6001);
    for (let i = 2; i < acquires.length; i++) expect((acquires[i] ?? 0) - (acquires[i - 1] ?? 0)).toBe(250);
    await elector.stop({ release: false });
  });

  it('reports a new leader seen in the record once per leader, at most once per renew interval', async () => {
    const world = new FakeWorld();
    world.owner = 'other';
    world.expiresAtMs = 60_000;
    world.records = {
      workerId: 'other',
      taskArn: null,
      fencingToken: 7,
      acquiredAt: new Date(T0).toISOString(),
      renewedAt: new Date(T0).toISOString(),
      leaseTtlMs: 60_000,
      releasedAt: null,
    };
    const config = electorConfig(world, 'a');
    const read = vi.spyOn(config.recordStore, 'read');
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(2999);
    expect(config.callbacks.events).toEqual([{ what: 'new-leader', atMs: 0, token: 7 }]);
    expect(read.mock.calls.length).toBe(3); // at 0, 1000, 2000 -- not on each of the 12 retries
    world.records = { ...world.records, workerId: 'next', fencingToken: 8 };
    await vi.advanceTimersByTimeAsync(1000);
    expect(config.callbacks.events.map((e) => e.token)).toEqual([7, 8]);
    await elector.stop({ release: true });
  });
});

describe('LeaderElector renew deadline', () => {
  it('steps down exactly at the deadline when renewals keep failing, before the TTL could lapse', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(1000); // acquired at 0, renewed at 1000 -> deadline 3000, lease until 4000
    config.lease.extendFailure = 'unavailable';
    await vi.advanceTimersByTimeAsync(1999);
    expect(elector.isLeader).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(elector.isLeader).toBe(false);
    const stopped = config.callbacks.events.find((e) => e.what === 'stopped');
    expect(stopped).toEqual({ what: 'stopped', atMs: 3000, reason: 'renew-deadline-missed' });
    // The lease held on "Redis" since the last success lasts until 1000 + TTL = 4000: stepped down 1 s before.
    expect(world.expiresAtMs).toBe(4000);
    // Failed renewals were retried every leaseRetryMs after the regular one at 2000.
    const extends_ = config.lease.calls.filter((c) => c.op === 'extend').map((c) => c.atMs);
    expect(extends_).toEqual([1000, 2000, 2250, 2500, 2750]);
    expect(config.lines.filter((l) => l.event === 'leader.renew_failed')).toHaveLength(4);
    expect(config.lines.find((l) => l.event === 'leader.lost')).toMatchObject({
      reason: 'renew-deadline-missed',
    });
    await elector.stop({ release: false });
  });

  it('recovers when a failed renewal is followed by a successful retry before the deadline', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    const elector = new LeaderElector(config);
    elector.start();
    config.lease.extendFailures = ['unavailable', 'unavailable'];
    await vi.advanceTimersByTimeAsync(1600);
    // 1000 fails, 1250 fails, 1500 succeeds: deadline = 1500 + 2000.
    expect(elector.current(now())?.deadlineMs).toBe(3500);
    await vi.advanceTimersByTimeAsync(5000);
    expect(elector.isLeader).toBe(true);
    expect(config.callbacks.events.some((e) => e.what === 'stopped')).toBe(false);
    await elector.stop({ release: false });
  });

  it('current() is undefined once the deadline has passed even though no timer ran (paused process)', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(0);
    const grant = elector.current(now());
    expect(grant?.deadlineMs).toBe(2000);

    vi.setSystemTime(T0 + 2500); // the clock jumps; no timer has fired (SIGSTOP, long GC pause)
    expect(config.lease.count('extend')).toBe(0);
    expect(elector.current(now())).toBeUndefined();
    expect(elector.current(1999)).toBe(grant);
    expect(elector.isLeader).toBe(false);
    expect(config.callbacks.events.some((e) => e.what === 'stopped')).toBe(false);

    // When the timers finally run (the renewal due 1 s after the acquire), leadership ends without
    // a useless renewal.
    await vi.advanceTimersByTimeAsync(1000);
    expect(config.lease.count('extend')).toBe(0);
    expect(config.callbacks.events.at(-1)).toMatchObject({
      what: 'stopped',
      reason: 'renew-deadline-missed',
    });
    expect(grant?.signal.aborted).toBe(true);
    await elector.stop({ release: false });
  });

  it('steps down at the deadline while a slow renewal is still in flight, and releases after it settles', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(0);
    config.lease.extendLatencyMs = 1500; // the renewal started at 1000 answers at 2500
    await vi.advanceTimersByTimeAsync(2000);
    expect(config.callbacks.events.at(-1)).toEqual({
      what: 'stopped',
      atMs: 2000,
      reason: 'renew-deadline-missed',
    });
    expect(config.lease.count('release')).toBe(0);
    await vi.advanceTimersByTimeAsync(501);
    expect(config.lease.calls.find((c) => c.op === 'release')?.atMs).toBe(2501); // 0 ms timer = 1 ms
    expect(elector.isLeader).toBe(false);
    await elector.stop({ release: false });
  });

  it('gives the lease back when the acquire itself took longer than the renew deadline', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    config.lease.acquireLatencyMs = 2100;
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(2100);
    expect(elector.isLeader).toBe(false);
    expect(config.callbacks.events.some((e) => e.what === 'started')).toBe(false);
    expect(config.lease.count('release')).toBe(1);
    config.lease.acquireLatencyMs = 0;
    await vi.advanceTimersByTimeAsync(300);
    expect(elector.isLeader).toBe(true);
    await elector.stop({ release: false });
  });
});

describe('LeaderElector and its LeadershipState', () => {
  it('keeps the grant only in the state it was given: the gate and the elector see one grant through a term', async () => {
    const world = new FakeWorld();
    const state = new LeadershipState();
    const config = electorConfig(world, 'a', { state });
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(0);
    const acquired = state.current(now());
    expect(acquired?.deadlineMs).toBe(2000);
    expect(elector.current(now())).toBe(acquired);
    await vi.advanceTimersByTimeAsync(1000); // renewed at 1000 -> deadline 3000, in the state
    const renewed = state.current(now());
    expect(renewed?.deadlineMs).toBe(3000);
    expect(renewed?.fencingToken).toBe(acquired?.fencingToken);
    expect(renewed?.signal).toBe(acquired?.signal);
    expect(elector.current(now())).toBe(renewed);
    // The deadline timer follows the renewed deadline it reads back from the state.
    config.lease.extendFailure = 'unavailable';
    await vi.advanceTimersByTimeAsync(1999);
    expect(state.current(now())).toBe(renewed);
    await vi.advanceTimersByTimeAsync(1);
    expect(config.callbacks.events.at(-1)).toEqual({
      what: 'stopped',
      atMs: 3000,
      reason: 'renew-deadline-missed',
    });
    expect(state.published()).toBeUndefined();
    expect(elector.current(now())).toBeUndefined();
    expect(renewed?.signal.aborted).toBe(true);
    await elector.stop({ release: false });
  });
});

describe('LeaderElector retries and hand-over', () => {
  it('keeps follower retries within leaseRetryMs +- 10 %', async () => {
    const world = new FakeWorld();
    world.owner = 'other';
    world.expiresAtMs = 1_000_000;
    const randoms = [0, 0.999_999, 0.25, 0.75, 0.1, 0.9, 0.5, 0.33];
    let i = 0;
    const config = electorConfig(world, 'a', { random: () => randoms[i++ % randoms.length] as number });
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(20_000);
    const at = config.lease.calls.filter((c) => c.op === 'acquire').map((c) => c.atMs);
    const gaps = at.slice(1).map((t, k) => t - (at[k] ?? 0));
    expect(gaps.length).toBeGreaterThan(60);
    expect(Math.min(...gaps)).toBe(225);
    expect(Math.max(...gaps)).toBe(275);
    expect(new Set(gaps).size).toBeGreaterThan(4);
    await elector.stop({ release: false });
  });

  it('a follower acquires at once when the leader announces its release', async () => {
    const world = new FakeWorld();
    // A long retry period: only the released message can explain an immediate take-over.
    const timings = { ...DEFAULT_TIMINGS, leaseRetryMs: 2500 };
    const a = electorConfig(world, 'a', { timings });
    const b = electorConfig(world, 'b', { timings });
    const leader = new LeaderElector(a);
    const follower = new LeaderElector(b);
    leader.start();
    await vi.advanceTimersByTimeAsync(0);
    follower.start();
    await vi.advanceTimersByTimeAsync(1700); // the follower's next retry is due at 2500
    expect(leader.isLeader).toBe(true);
    expect(follower.isLeader).toBe(false);

    const stopped = leader.stop({ release: true });
    await vi.advanceTimersByTimeAsync(0);
    await stopped;
    expect(world.published).toEqual([
      { workerId: 'a', fencingToken: 1, releasedAt: new Date(T0 + 1700).toISOString() },
    ]);
    expect(follower.isLeader).toBe(true);
    expect(b.callbacks.events.find((e) => e.what === 'started')).toEqual({
      what: 'started',
      atMs: 1700,
      token: 2,
    });
    await follower.stop({ release: false });
  });

  it('retries at once when the release arrives while an attempt is in flight', async () => {
    const world = new FakeWorld();
    const timings = { ...DEFAULT_TIMINGS, leaseRetryMs: 2500 };
    const a = electorConfig(world, 'a', { timings });
    const b = electorConfig(world, 'b', { timings });
    const leader = new LeaderElector(a);
    leader.start();
    await vi.advanceTimersByTimeAsync(0);
    b.lease.acquireLatencyMs = 50;
    const follower = new LeaderElector(b);
    follower.start(); // attempt from 0 to 50: the lease is still held when it checks
    await vi.advanceTimersByTimeAsync(10);
    const stopped = leader.stop({ release: true });
    await vi.advanceTimersByTimeAsync(40);
    await stopped;
    expect(follower.isLeader).toBe(false);
    await vi.advanceTimersByTimeAsync(51); // the immediate second attempt (0 ms timer = 1 ms)
    expect(follower.isLeader).toBe(true);
    expect(b.lease.calls.filter((c) => c.op === 'acquire').map((c) => c.atMs)).toEqual([0, 51]);
    await follower.stop({ release: false });
  });

  it('ignores its own release announcements and messages after stop', async () => {
    const world = new FakeWorld();
    world.owner = 'other';
    world.expiresAtMs = 1_000_000;
    const config = electorConfig(world, 'a');
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(100);
    await config.releasedChannel.publish({ workerId: 'a', fencingToken: 1, releasedAt: '' });
    await vi.advanceTimersByTimeAsync(0);
    expect(config.lease.count('acquire')).toBe(1);
    await elector.stop({ release: false });
    expect(world.listenerCount()).toBe(0);
  });

  it('only tries to acquire while canLead() is true', async () => {
    const world = new FakeWorld();
    let covered = false;
    const config = electorConfig(world, 'a', { canLead: () => covered });
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(2000);
    expect(config.lease.count('acquire')).toBe(0);
    covered = true;
    await vi.advanceTimersByTimeAsync(250);
    expect(elector.isLeader).toBe(true);
    await elector.stop({ release: false });
  });
});

describe('LeaderElector stop()', () => {
  it('is idempotent and ordered: abort + callback, then release, record, publish, log', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    const order: string[] = [];
    const { lease, recordStore, callbacks } = config;
    vi.spyOn(lease, 'release').mockImplementation(async () => {
      order.push('release');
      world.owner = undefined;
    });
    const write = recordStore.write.bind(recordStore);
    vi.spyOn(recordStore, 'write').mockImplementation(async (record) => {
      if (record.releasedAt !== null) order.push('record');
      return write(record);
    });
    const channel = config.releasedChannel;
    const publish = channel.publish.bind(channel);
    vi.spyOn(channel, 'publish').mockImplementation(async (message) => {
      order.push('publish');
      return publish(message);
    });
    const stoppedLeading = callbacks.onStoppedLeading.bind(callbacks);
    vi.spyOn(callbacks, 'onStoppedLeading').mockImplementation((reason) => {
      order.push(`stopped:${reason}:${callbacks.signal?.aborted}`);
      stoppedLeading(reason);
    });

    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(1500);
    const first = elector.stop({ release: true });
    const second = elector.stop({ release: false });
    expect(second).toBe(first);
    expect(elector.isLeader).toBe(false); // synchronously, before any Redis round trip
    await first;
    await elector.stop({ release: true });
    expect(order).toEqual(['stopped:released:true', 'release', 'record', 'publish']);
    expect(config.lines.at(-1)).toMatchObject({ event: 'leader.released', fencingToken: 1 });
    expect(world.records).toMatchObject({ fencingToken: 1, releasedAt: new Date(T0 + 1500).toISOString() });
    expect(config.gauges.at(-1)).toBe(0);

    // Nothing runs after stop: no renewal, no acquire.
    const calls = lease.calls.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(lease.calls.length).toBe(calls);
    elector.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(lease.calls.length).toBe(calls);
  });

  it('without release: reason "stopping", the lease is left to expire and nothing is published', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(0);
    await elector.stop({ release: false });
    expect(config.callbacks.events.at(-1)).toMatchObject({ what: 'stopped', reason: 'stopping' });
    expect(config.lease.count('release')).toBe(0);
    expect(world.published).toHaveLength(0);
    expect(world.isHeldBy(world.owner ?? '')).toBe(true);
    expect(config.lines.find((l) => l.event === 'leader.lost')).toMatchObject({ reason: 'stopping' });
  });

  it('waits for an acquire in flight and gives back what it got, without ever leading', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    config.lease.acquireLatencyMs = 100;
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(10);
    const stopped = elector.stop({ release: true });
    await vi.advanceTimersByTimeAsync(100);
    await stopped;
    expect(config.callbacks.events).toEqual([]);
    expect(config.lease.count('release')).toBe(1);
    expect(world.owner).toBeUndefined();
    expect(world.published).toHaveLength(0);
  });

  it('before start: resolves and leaves the elector stopped', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a');
    const elector = new LeaderElector(config);
    await elector.stop({ release: true });
    elector.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(config.lease.count('acquire')).toBe(0);
  });

  it('survives callbacks that throw', async () => {
    const world = new FakeWorld();
    const config = electorConfig(world, 'a', {
      callbacks: {
        onStartedLeading: () => {
          throw new Error('boom');
        },
        onStoppedLeading: () => {
          throw new Error('boom');
        },
      },
    });
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(1500);
    expect(elector.isLeader).toBe(true);
    await elector.stop({ release: true });
    expect(config.lines.filter((l) => l.event === 'leader.callback_failed')).toHaveLength(2);
    expect(world.owner).toBeUndefined();
  });
});
