import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import type { Topology } from '../../../../core/topology.ts';
import { LeaseLostError, LeaseUnavailableError } from '../../../../worker/leader/lease-errors.ts';
import { QuorumLease } from '../../../../worker/leader/quorum-lease.ts';
import { fixedPlacement, placeQuorumMembers } from '../../../../worker/leader/quorum-placement.ts';
import { SingleKeyLease } from '../../../../worker/leader/single-key-lease.ts';
import { epochRaise } from '../../../../worker/scripts/epoch-raise.ts';
import { SCRIPTS } from '../../../../worker/scripts/registry.ts';
import { FakeCluster, tagOf } from './fake-cluster.ts';
import { capturingLogger, T0, testClock } from './fakes.ts';

const keys = new KeyspaceKeys('unit');
const TTL = 3000;

function evenTopology(shardCount: number): Topology {
  const size = Math.floor(16384 / shardCount);
  return {
    shards: Array.from({ length: shardCount }, (_, i) => ({
      slots: [[i * size, i === shardCount - 1 ? 16383 : (i + 1) * size - 1] as const],
      primary: { id: `p${i}`, host: '127.0.0.1', port: 7000 + i, role: 'primary' as const, health: 'online' },
      replicas: [],
    })),
  };
}

function quorumLease(
  cluster: FakeCluster,
  extra: Partial<ConstructorParameters<typeof QuorumLease>[0]> = {},
) {
  const { logger, lines } = capturingLogger();
  const lease = new QuorumLease({
    cluster: cluster.asCluster(),
    keys,
    logger,
    placement: placeQuorumMembers(keys, evenTopology(3)),
    clock: testClock,
    ...extra,
  });
  return { lease, lines };
}

const memberTags = () => fixedPlacement(keys).members.map((m) => tagOf(m.leaseKey));

/** Runs `promise` while advancing fake time until it settles (votes time out after 300 ms). */
async function settle<T>(promise: Promise<T>): Promise<T> {
  let done = false;
  // Handled at once, so a rejection while time is being advanced is not reported as unhandled.
  const outcome = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  void outcome.then(() => {
    done = true;
  });
  for (let i = 0; i < 100 && !done; i++) await vi.advanceTimersByTimeAsync(50);
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

describe('QuorumLease', () => {
  it('acquires on all three members, refuses a second owner, hands over with a greater token', async () => {
    const redis = new FakeCluster();
    const a = quorumLease(redis).lease;
    const b = quorumLease(redis).lease;
    const held = await settle(a.acquire(TTL));
    expect(held?.fencingToken).toBe(1);
    for (const m of a.placement.members) {
      expect(redis.store.get(m.leaseKey)).not.toBeNull();
      expect(redis.store.get(m.epochKey)).toBe('1');
    }
    expect(redis.store.get(keys.epoch)).toBe('1');
    expect(await settle(b.acquire(TTL))).toBeUndefined();
    await settle(a.extend(held as NonNullable<typeof held>, TTL));
    await settle(a.release(held as NonNullable<typeof held>));
    for (const m of a.placement.members) expect(redis.store.get(m.leaseKey)).toBeNull();
    const next = await settle(b.acquire(TTL));
    expect(next?.fencingToken).toBe(2);
  });

  it('keeps leading and keeps excluding others while one member is down', async () => {
    const redis = new FakeCluster();
    const a = quorumLease(redis).lease;
    const b = quorumLease(redis).lease;
    const held = await settle(a.acquire(TTL));
    if (!held) throw new Error('not acquired');
    redis.down.add(memberTags()[1] as string);
    for (let i = 0; i < 5; i++) {
      const started = testClock.monotonicMs();
      await settle(a.extend(held, TTL));
      // Two of three votes answer at once; the dead member's vote is not waited for.
      expect(testClock.monotonicMs() - started).toBeLessThan(300);
      expect(await settle(b.acquire(TTL))).toBeUndefined();
    }
  });

  it('fails an acquire with two members down without leaving its value behind', async () => {
    const redis = new FakeCluster();
    const a = quorumLease(redis).lease;
    const [first, second, third] = memberTags();
    redis.down.add(first as string);
    redis.down.add(second as string);
    await expect(settle(a.acquire(TTL))).rejects.toBeInstanceOf(LeaseUnavailableError);
    const live = a.placement.members.find((m) => tagOf(m.leaseKey) === third);
    expect(redis.store.get(live?.leaseKey as string)).toBeNull();
  });

  it('reports lease-lost when another owner holds a majority, unavailable when members only time out', async () => {
    const redis = new FakeCluster();
    const a = quorumLease(redis).lease;
    const held = await settle(a.acquire(TTL));
    if (!held) throw new Error('not acquired');
    const [m0, m1] = a.placement.members;
    redis.store.set(m0?.leaseKey as string, 'someone-else', TTL);
    await settle(a.extend(held, TTL)); // one refusal: still a majority
    redis.store.set(m1?.leaseKey as string, 'someone-else', TTL);
    await expect(settle(a.extend(held, TTL))).rejects.toBeInstanceOf(LeaseLostError);

    const redis2 = new FakeCluster();
    const c = quorumLease(redis2).lease;
    const held2 = await settle(c.acquire(TTL));
    if (!held2) throw new Error('not acquired');
    redis2.down.add(memberTags()[0] as string);
    redis2.down.add(memberTags()[2] as string);
    await expect(settle(c.extend(held2, TTL))).rejects.toBeInstanceOf(LeaseUnavailableError);
  });

  it('renewals re-take a member that lost its data in a failover, and tokens still increase', async () => {
    const redis = new FakeCluster();
    const a = quorumLease(redis).lease;
    const b = quorumLease(redis).lease;
    const [t0, t1, t2] = memberTags();
    // Member 2 is down while A acquires: A's token reaches members 0 and 1 only.
    redis.down.add(t2 as string);
    const held = await settle(a.acquire(TTL));
    if (!held) throw new Error('not acquired');
    expect(held.fencingToken).toBe(1);
    redis.down.delete(t2 as string);
    // Back up (empty): the next renewal re-takes it and raises its epoch to A's token.
    await settle(a.extend(held, TTL));
    const member2 = a.placement.members[2];
    expect(redis.store.get(member2?.leaseKey as string)).not.toBeNull();
    expect(redis.store.get(member2?.epochKey as string)).toBe('1');
    // Member 0 fails over and loses everything; the family counter is lost too.
    redis.loseData(t0 as string);
    redis.store.del(keys.epoch);
    // A contender finds one free member only.
    expect(await settle(b.acquire(TTL))).toBeUndefined();
    await settle(a.release(held));
    // Whatever majority B reads, it includes member 1 or 2, which hold token 1.
    redis.down.add(t1 as string);
    const next = await settle(b.acquire(TTL));
    expect(next?.fencingToken).toBe(2);
  });

  it('fails and releases when the token cannot be written to a majority', async () => {
    const redis = new FakeCluster();
    const a = quorumLease(redis).lease;
    const tags = memberTags();
    // Let the lease votes through, then take two members down before the epoch writes.
    redis.intercept = (command, [key]) => {
      const tag = tagOf(String(key));
      const isEpochWrite = command === epochRaise.command;
      return isEpochWrite && (tag === tags[0] || tag === tags[1]) ? new Promise<never>(() => {}) : undefined;
    };
    await expect(settle(a.acquire(TTL))).rejects.toMatchObject({ operation: 'fence' });
    for (const m of a.placement.members) expect(redis.store.get(m.leaseKey)).toBeNull();
    redis.intercept = undefined;
    // The failed attempt's token is not reused by this process.
    const held = await settle(a.acquire(TTL));
    expect(held?.fencingToken).toBe(2);
  });

  it('moves to a new placement only before an acquire, after the settle period, when members share a shard', async () => {
    const redis = new FakeCluster();
    // A slot map where members 0 and 1 of the fixed placement share the first shard.
    const uneven: Topology = {
      shards: [
        {
          slots: [[0, 9000]],
          primary: { id: 'a', host: 'h', port: 1, role: 'primary', health: 'online' },
          replicas: [],
        },
        {
          slots: [[9001, 12000]],
          primary: { id: 'b', host: 'h', port: 2, role: 'primary', health: 'online' },
          replicas: [],
        },
        {
          slots: [[12001, 16383]],
          primary: { id: 'c', host: 'h', port: 3, role: 'primary', health: 'online' },
          replicas: [],
        },
      ],
    };
    const { lease, lines } = quorumLease(redis, {
      topology: async () => uneven,
      placementCheckIntervalMs: 1000,
    });
    const before = lease.placement.members.map((m) => m.partitionIndex);
    const held = await settle(lease.acquire(TTL)); // starts the background check
    if (!held) throw new Error('not acquired');
    await vi.advanceTimersByTimeAsync(10);
    expect(lease.placement.members.map((m) => m.partitionIndex)).toEqual(before); // not while holding
    await settle(lease.release(held));
    // Default settle period: check interval + 2 TTL from the read that showed the members moved.
    await vi.advanceTimersByTimeAsync(1000 + 2 * TTL);
    const again = await settle(lease.acquire(TTL));
    expect(lease.placement.strategy).toBe('topology');
    expect(lease.placement.members.map((m) => m.partitionIndex)).not.toEqual(before);
    expect(lines.find((l) => l.event === 'lease.placement_changed')).toBeDefined();
    // The old members' epochs are a floor for the new ones.
    expect(again?.fencingToken).toBe(2);
  });

  it("runs its scripts as commands defined once on the client (NOSCRIPT is ioredis's: stream-outbox integration test)", async () => {
    const redis = new FakeCluster();
    const a = quorumLease(redis).lease;
    const b = quorumLease(redis).lease;
    const held = await settle(a.acquire(TTL));
    expect(await settle(b.acquire(TTL))).toBeUndefined();
    if (!held) throw new Error('not acquired');
    await settle(a.extend(held, TTL));
    // Every registry script defined on this client, each once, with its declared number of keys.
    expect([...redis.defined]).toEqual(SCRIPTS.map((s) => [s.command, s.numberOfKeys]));
    const ran = new Set(redis.commands.map((c) => c.command));
    for (const command of ['klLeaseAcquire', 'klLeaseExtend', 'klLeaseRelease', 'klEpochRaise'])
      expect(ran.has(command), command).toBe(true);
    expect(ran.has('EVAL') || ran.has('EVALSHA')).toBe(false);
  });
});

describe('SingleKeyLease', () => {
  function singleKey(redis: FakeCluster, knownReplicas = 1) {
    return new SingleKeyLease({ cluster: redis.asCluster(), keys, knownReplicas: () => knownReplicas });
  }

  it('takes keys.lease and INCRs keys.epoch, both acknowledged by a replica', async () => {
    const redis = new FakeCluster();
    redis.attachedReplicas = 1;
    redis.ackingReplicas = 1;
    const a = singleKey(redis);
    const b = singleKey(redis);
    const held = await settle(a.acquire(TTL));
    expect(held?.fencingToken).toBe(1);
    expect(redis.store.get(keys.lease)).not.toBeNull();
    expect(await settle(b.acquire(TTL))).toBeUndefined();
    if (!held) throw new Error('not acquired');
    await settle(a.extend(held, TTL));
    await settle(a.release(held));
    expect((await settle(b.acquire(TTL)))?.fencingToken).toBe(2);
  });

  it("confirms a lease write with ROLE + WAIT sent after the script's reply, routed to the lease key's primary", async () => {
    const redis = new FakeCluster();
    redis.attachedReplicas = 1;
    redis.ackingReplicas = 1;
    const held = await settle(singleKey(redis).acquire(TTL));
    expect(held).toBeDefined();
    // The script first, then the pipeline (EXISTS keys.lease, ROLE, WAIT) on the same key's node: a
    // WAIT sent after the reply covers the write even when ioredis had to resend it after NOSCRIPT.
    expect(redis.commands.slice(0, 2)).toEqual([
      { command: 'klLeaseAcquire', key: keys.lease },
      { command: 'PIPELINE', key: keys.lease },
    ]);
  });

  it('counts a write no attached replica acknowledged as failed, and releases what it took', async () => {
    const redis = new FakeCluster();
    redis.attachedReplicas = 1;
    redis.ackingReplicas = 0;
    const a = singleKey(redis);
    await expect(settle(a.acquire(TTL))).rejects.toBeInstanceOf(LeaseUnavailableError);
    expect(redis.store.get(keys.lease)).toBeNull();

    redis.ackingReplicas = 1;
    const held = await settle(a.acquire(TTL));
    if (!held) throw new Error('not acquired');
    redis.ackingReplicas = 0;
    await expect(settle(a.extend(held, TTL))).rejects.toBeInstanceOf(LeaseUnavailableError);
  });

  it('needs no acknowledgement when the primary has no replica attached', async () => {
    const redis = new FakeCluster();
    const held = await settle(singleKey(redis).acquire(TTL));
    expect(held?.fencingToken).toBe(1);
  });

  it('falls back to the topology replica count when ROLE is refused', async () => {
    const redis = new FakeCluster();
    redis.roleRefused = true;
    expect((await settle(singleKey(redis, 0).acquire(TTL)))?.fencingToken).toBe(1);
    const other = new FakeCluster();
    other.roleRefused = true;
    await expect(settle(singleKey(other, 1).acquire(TTL))).rejects.toBeInstanceOf(LeaseUnavailableError);
  });
});
