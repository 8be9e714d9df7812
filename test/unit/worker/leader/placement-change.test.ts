import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TopologyError } from '../../../../core/errors.ts';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import type { Shard, Topology } from '../../../../core/topology.ts';
import { createLeaderElection } from '../../../../worker/leader/create-leader-election.ts';
import { LeaderElector } from '../../../../worker/leader/leader-elector.ts';
import type { LeaseHold } from '../../../../worker/leader/lease.ts';
import { QuorumLease, type QuorumLeaseOptions } from '../../../../worker/leader/quorum-lease.ts';
import { placeQuorumMembers, samePlacement } from '../../../../worker/leader/quorum-placement.ts';
import { SingleKeyLease } from '../../../../worker/leader/single-key-lease.ts';
import { FakeCluster } from './fake-cluster.ts';
import { capturingLogger, DEFAULT_TIMINGS, electorConfig, FakeWorld, T0, testClock } from './fakes.ts';

/**
 * Sequence 6 of issue 11: never two leaders after a quorum placement change (a reshard that moves a
 * member's slot, a scale-in, or the CLUSTER SHARDS empty-slots bug of Redis 7.2.0-7.2.5).
 */

const keys = new KeyspaceKeys('unit');
const TTL = DEFAULT_TIMINGS.leaseTtlMs;
const CHECK_INTERVAL_MS = 1000;
/** The settle period with these timings: check interval + 2 TTL. */
const DEFAULT_SETTLE_MS = CHECK_INTERVAL_MS + 2 * TTL;
/** Step of the fake clock between two samples of who leads. */
const SAMPLE_MS = 50;
/** Leaderless time allowed at a placement change: the retry period with its jitter, one sample. */
const HANDOVER_GAP_BOUND_MS = DEFAULT_TIMINGS.leaseRetryMs * 1.1 + SAMPLE_MS;

function shard(id: string, slots: Shard['slots']): Shard {
  return { slots, primary: { id, host: 'h', port: 1, role: 'primary', health: 'online' }, replicas: [] };
}

function evenTopology(shardCount: number): Topology {
  const size = Math.floor(16384 / shardCount);
  return {
    shards: Array.from({ length: shardCount }, (_, i) =>
      shard(`p${i}`, [[i * size, i === shardCount - 1 ? 16383 : (i + 1) * size - 1]]),
    ),
  };
}

/** After a reshard: the fixed placement's members 0 and 1 now share the first shard. */
const resharded: Topology = {
  shards: [shard('a', [[0, 9000]]), shard('b', [[9001, 12000]]), shard('c', [[12001, 16383]])],
};

/**
 * CLUSTER SHARDS of Redis 7.2.0-7.2.5 / Valkey <= 7.2.5 can list a shard without its slots: here the
 * last of 4 even shards, so 3 "slot-owning" shards remain and the fixed member on the last quarter
 * looks unowned.
 */
function withSlotlessShard(): Topology {
  const even = evenTopology(4);
  return { shards: even.shards.map((s, i) => (i === 3 ? { ...s, slots: [] } : s)) };
}

function quorumLease(redis: FakeCluster, extra: Partial<QuorumLeaseOptions> = {}) {
  const { logger, lines } = capturingLogger();
  const lease = new QuorumLease({
    cluster: redis.asCluster(),
    keys,
    logger,
    placement: placeQuorumMembers(keys, evenTopology(3)),
    clock: testClock,
    placementCheckIntervalMs: CHECK_INTERVAL_MS,
    ...extra,
  });
  return { lease, lines };
}

/** Runs `promise` while advancing fake time until it settles (votes time out after 300 ms). */
async function settle<T>(promise: Promise<T>): Promise<T> {
  let done = false;
  const outcome = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  void outcome.then(() => {
    done = true;
  });
  for (let i = 0; i < 100 && !done; i++) await vi.advanceTimersByTimeAsync(10);
  const result = await outcome;
  if (!result.ok) throw result.error;
  return result.value;
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('quorum placement change (sequence 6)', () => {
  it('sequence 6: a follower that sees the members moved never acquires a new placement while the old one is held', async () => {
    const redis = new FakeCluster();
    // The holder cannot see the change (no topology check): it keeps renewing the old members.
    const holder = quorumLease(redis).lease;
    const held = await settle(holder.acquire(TTL));
    if (!held) throw new Error('not acquired');
    const follower = quorumLease(redis, { topology: async () => resharded }).lease;
    const followerHolds: LeaseHold[] = [];
    // 30 s of a follower retrying every 250 ms while the holder renews every second: after the
    // settle period the follower moves, wins the new members, finds the old ones held, gives back.
    for (let elapsedMs = 0; elapsedMs < 30_000; elapsedMs += 250) {
      const hold = await settle(follower.acquire(TTL));
      if (hold) followerHolds.push(hold);
      if (elapsedMs % 1000 === 0) await settle(holder.extend(held, TTL));
      await vi.advanceTimersByTimeAsync(250);
    }
    expect(followerHolds).toEqual([]);
    expect(follower.placement.strategy).toBe('topology');
    for (const m of follower.placement.members) expect(redis.store.get(m.leaseKey)).toBeNull();
  });

  it('sequence 6: a leader whose placement is stale asks to step down, and does not before', async () => {
    const redis = new FakeCluster();
    let view = evenTopology(3);
    const { lease, lines } = quorumLease(redis, { topology: async () => view });
    const held = await settle(lease.acquire(TTL));
    if (!held) throw new Error('not acquired');
    for (let i = 0; i < 3; i++) {
      await vi.advanceTimersByTimeAsync(CHECK_INTERVAL_MS);
      await settle(lease.extend(held, TTL));
    }
    expect(lease.stepDownReason?.()).toBeUndefined();
    view = resharded;
    await vi.advanceTimersByTimeAsync(CHECK_INTERVAL_MS);
    await settle(lease.extend(held, TTL)); // starts the check
    await vi.advanceTimersByTimeAsync(10);
    const staleSeenAtMs = testClock.monotonicMs();
    expect(lines.find((l) => l.event === 'lease.placement_stale')).toBeDefined();
    // Keeps leading through the settle period (nobody can move while its members are held) ...
    while (testClock.monotonicMs() < staleSeenAtMs + DEFAULT_SETTLE_MS - CHECK_INTERVAL_MS) {
      expect(lease.stepDownReason?.()).toBeUndefined();
      await settle(lease.extend(held, TTL));
      await vi.advanceTimersByTimeAsync(CHECK_INTERVAL_MS);
    }
    // ... then asks to hand over.
    await vi.advanceTimersByTimeAsync(CHECK_INTERVAL_MS);
    expect(lease.stepDownReason?.()).toBe('placement-changed');
  });

  it('sequence 6: two electors on a fake cluster never lead at once across a reshard that moves a member', async () => {
    const redis = new FakeCluster();
    const world = new FakeWorld(); // only the released channel and the record are used from it
    let view = evenTopology(3);
    const topology = async () => view;
    const workers = ['w1', 'w2'].map((name) => {
      const { lease } = quorumLease(redis, { topology });
      const config = electorConfig(world, name, { lease: lease as never });
      return { name, lease, config, elector: new LeaderElector(config) };
    });
    const [w1, w2] = workers as [(typeof workers)[number], (typeof workers)[number]];
    w1.elector.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(w1.elector.isLeader).toBe(true);
    w2.elector.start();
    await vi.advanceTimersByTimeAsync(3000);
    const oldPlacement = w1.lease.placement;
    view = resharded;
    let mostLeaders = 0;
    let leaderlessMs = 0;
    let longestLeaderlessMs = 0;
    let leaderAtEnd: (typeof workers)[number] | undefined;
    for (let elapsedMs = 0; elapsedMs < 40_000; elapsedMs += SAMPLE_MS) {
      await vi.advanceTimersByTimeAsync(SAMPLE_MS);
      const leaders = workers.filter((w) => w.elector.isLeader);
      mostLeaders = Math.max(mostLeaders, leaders.length);
      leaderlessMs = leaders.length === 0 ? leaderlessMs + SAMPLE_MS : 0;
      longestLeaderlessMs = Math.max(longestLeaderlessMs, leaderlessMs);
      leaderAtEnd = leaders[0];
    }
    expect(mostLeaders).toBe(1);
    // The stale leader led through the settle period, so the hand-over costs about one retry period.
    expect(longestLeaderlessMs).toBeLessThanOrEqual(HANDOVER_GAP_BOUND_MS);
    // The old leader handed over because its placement was stale ...
    expect(w1.config.callbacks.events).toContainEqual(
      expect.objectContaining({ what: 'stopped', reason: 'placement-changed' }),
    );
    // ... and somebody leads again, on the new placement, with a greater token.
    if (!leaderAtEnd) throw new Error('nobody leads after the placement change');
    expect(samePlacement(leaderAtEnd.lease.placement, oldPlacement)).toBe(false);
    expect(leaderAtEnd.lease.placement.strategy).toBe('topology');
    const tokens = workers.flatMap((w) =>
      w.config.callbacks.events.filter((e) => e.what === 'started').map((e) => e.token ?? 0),
    );
    expect(Math.max(...tokens)).toBeGreaterThan(1);
    for (const w of workers) await w.elector.stop({ release: true });
  });

  it('sequence 6: a shard listed without its slots changes nothing, for a follower or a leader', async () => {
    const redis = new FakeCluster();
    const topology = async () => withSlotlessShard();
    const { lease: leader } = quorumLease(redis, { topology });
    const { lease: follower, lines } = quorumLease(redis, { topology });
    const placement = leader.placement;
    const held = await settle(leader.acquire(TTL));
    if (!held) throw new Error('not acquired');
    for (let i = 0; i < 10; i++) {
      expect(await settle(follower.acquire(TTL))).toBeUndefined();
      await settle(leader.extend(held, TTL));
      await vi.advanceTimersByTimeAsync(CHECK_INTERVAL_MS);
    }
    expect(leader.stepDownReason?.()).toBeUndefined();
    expect(samePlacement(follower.placement, placement)).toBe(true);
    // Once the leader releases, the follower takes the SAME members.
    await settle(leader.release(held));
    expect(await settle(follower.acquire(TTL))).toBeDefined();
    expect(samePlacement(follower.placement, placement)).toBe(true);
    expect(lines.find((l) => l.event === 'lease.placement_changed')).toBeUndefined();
  });

  it('sequence 6: a follower competes on the old placement until the settle period passed, then moves', async () => {
    const redis = new FakeCluster();
    const settleMs = 5000;
    const { lease: follower, lines } = quorumLease(redis, {
      topology: async () => resharded,
      placementSettleMs: settleMs,
    });
    const before = follower.placement;
    const first = await settle(follower.acquire(TTL)); // starts the check
    if (!first) throw new Error('not acquired');
    await settle(follower.release(first));
    await vi.advanceTimersByTimeAsync(10);
    const staleSeenAtMs = testClock.monotonicMs();
    expect(lines.find((l) => l.event === 'lease.placement_stale')).toBeDefined();
    // Until the settle period has passed it still takes the old members (it may be the only worker).
    while (testClock.monotonicMs() < staleSeenAtMs + settleMs - 500) {
      const hold = await settle(follower.acquire(TTL));
      if (!hold) throw new Error('not acquired');
      expect(samePlacement(follower.placement, before)).toBe(true);
      await settle(follower.release(hold));
      await vi.advanceTimersByTimeAsync(250);
    }
    await vi.advanceTimersByTimeAsync(1000);
    const hold = await settle(follower.acquire(TTL));
    expect(hold?.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(follower.placement.strategy).toBe('topology');
    expect(lines.find((l) => l.event === 'lease.placement_changed')).toBeDefined();
  });

  it('sequence 6: a topology placement returns to the fixed one once the slot map allows it, by the same rules', async () => {
    const redis = new FakeCluster();
    let view = resharded;
    const topology = async () => view;
    const onResharded = placeQuorumMembers(keys, resharded);
    expect(onResharded.strategy).toBe('topology');
    const { lease: leader } = quorumLease(redis, { topology, placement: onResharded });
    const held = await settle(leader.acquire(TTL));
    if (!held) throw new Error('not acquired');
    view = evenTopology(3); // what a worker started now would place on: the fixed members
    await vi.advanceTimersByTimeAsync(CHECK_INTERVAL_MS);
    await settle(leader.extend(held, TTL)); // starts the check
    await vi.advanceTimersByTimeAsync(10);
    expect(leader.stepDownReason?.()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(DEFAULT_SETTLE_MS);
    expect(leader.stepDownReason?.()).toBe('placement-changed');
    await settle(leader.release(held));
    const again = await settle(leader.acquire(TTL));
    expect(again?.fencingToken).toBe(2);
    expect(leader.placement.strategy).toBe('fixed');
  });

  it('sequence 6: a worker never acquires while a placement it derived recently is held, even after the move was called off', async () => {
    const redis = new FakeCluster();
    // F moved to the resharded placement earlier and leads there; it cannot see the topology.
    const onResharded = placeQuorumMembers(keys, resharded);
    const f = quorumLease(redis, { placement: onResharded }).lease;
    const fHold = await settle(f.acquire(TTL));
    if (!fHold) throw new Error('not acquired');
    // G, on the fixed placement (held by H for now), sees the resharded map, then the map goes back
    // to even.
    const h = quorumLease(redis).lease;
    const hHold = await settle(h.acquire(TTL));
    if (!hHold) throw new Error('not acquired');
    let view = resharded;
    const g = quorumLease(redis, { topology: async () => view }).lease;
    expect(await settle(g.acquire(TTL))).toBeUndefined(); // starts the check: G derives F's placement
    await vi.advanceTimersByTimeAsync(10);
    view = evenTopology(3);
    await settle(h.release(hHold));
    const gHolds: LeaseHold[] = [];
    for (let elapsedMs = 0; elapsedMs < 3 * DEFAULT_SETTLE_MS; elapsedMs += 250) {
      const hold = await settle(g.acquire(TTL));
      if (hold) gHolds.push(hold);
      if (elapsedMs % 1000 === 0) await settle(f.extend(fHold, TTL));
      await vi.advanceTimersByTimeAsync(250);
    }
    expect(gHolds).toEqual([]);
    // Once F gives its placement back, G leads on the fixed one.
    await settle(f.release(fHold));
    const hold = await settle(g.acquire(TTL));
    expect(hold).toBeDefined();
    expect(g.placement.strategy).toBe('fixed');
  });

  it('sequence 6: a reshard in steps (targets sharing members) still ends with a leader on the last one', async () => {
    const redis = new FakeCluster();
    const step = (boundary: number): Topology => ({
      shards: [
        shard('a', [[0, boundary]]),
        shard('b', [[boundary + 1, 12000]]),
        shard('c', [[12001, 16383]]),
      ],
    });
    const first = placeQuorumMembers(keys, step(9000));
    // A later step of the same reshard: another placement that keeps the member on shard c.
    let boundary = 9001;
    while (samePlacement(placeQuorumMembers(keys, step(boundary)), first)) boundary++;
    const last = placeQuorumMembers(keys, step(boundary));
    expect(last.members.some((m) => first.members.some((f) => f.partitionIndex === m.partitionIndex))).toBe(
      true,
    );
    let view = step(9000);
    const { lease } = quorumLease(redis, { topology: async () => view });
    const held = await settle(lease.acquire(TTL)); // starts the check: target `first`
    if (!held) throw new Error('not acquired');
    await settle(lease.release(held));
    view = step(boundary);
    await vi.advanceTimersByTimeAsync(CHECK_INTERVAL_MS);
    expect(await settle(lease.acquire(TTL))).toBeDefined(); // starts the check: target `last`
    await vi.advanceTimersByTimeAsync(DEFAULT_SETTLE_MS + CHECK_INTERVAL_MS);
    const hold = await settle(lease.acquire(TTL));
    expect(hold).toBeDefined();
    expect(samePlacement(lease.placement, last)).toBe(true);
  });
});

describe('lease mode from an unreadable topology (sequence 6)', () => {
  it('sequence 6: createLeaderElection refuses a slot map that does not add up instead of picking a mode from it', async () => {
    const redis = new FakeCluster();
    // 3 shards, one listed without its slots: read as is, this would be a 2-shard, single-key cluster.
    const even = evenTopology(3);
    const slotless: Topology = { shards: even.shards.map((s, i) => (i === 2 ? { ...s, slots: [] } : s)) };
    const { logger } = capturingLogger();
    await expect(
      createLeaderElection({
        cluster: redis.asCluster(),
        redis: { nodes: [], tls: false, tlsCaFile: undefined, username: undefined, password: undefined },
        keys,
        logger,
        topology: async () => slotless,
      }),
    ).rejects.toBeInstanceOf(TopologyError);
  });
});

describe('across the single-key/quorum boundary (sequence 6)', () => {
  it('sequence 6: a single-key worker and a quorum worker of one LEADER_NAME never hold at once', async () => {
    const redis = new FakeCluster(); // no replicas attached: single-key writes need no WAIT
    const single = new SingleKeyLease({ cluster: redis.asCluster(), keys, knownReplicas: () => 0 });
    const quorum = quorumLease(redis).lease;
    const first = await settle(single.acquire(TTL));
    if (!first) throw new Error('not acquired');
    expect(await settle(quorum.acquire(TTL))).toBeUndefined();
    await settle(single.release(first));
    const second = await settle(quorum.acquire(TTL));
    if (!second) throw new Error('not acquired');
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(await settle(single.acquire(TTL))).toBeUndefined();
    // What a refused attempt took is given back at once: nothing of it blocks the next holder.
    expect(redis.store.get(keys.lease)).toBeNull();
    await settle(quorum.release(second));
    const third = await settle(single.acquire(TTL));
    expect(third?.fencingToken).toBeGreaterThan(second.fencingToken);
  });
});
