import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LEASE_TIMINGS } from '../../../../core/config.ts';
import { LocalRedisCluster } from '../../../../local/cluster.ts';
import { SingleKeyLease } from '../../../../worker/leader/single-key-lease.ts';
import { randomLeaderName, sleep, startWorker, type TestWorker, waitFor } from './helpers.ts';

// A cluster of fewer than 3 shards: one primary with one replica. The lease is one key plus WAIT.

const { leaseTtlMs, leaseRenewDeadlineMs, leaseRenewIntervalMs } = DEFAULT_LEASE_TIMINGS;
/** Past one TTL by this much, a lease nobody renewed would have expired: only renewals keep it. */
const BEYOND_TTL_MS = 500;
/** Acquire attempts a contender must have made (and lost) before its "never led" counts. */
const MIN_REFUSED_ATTEMPTS = 3;
/** Bound on waiting for those attempts: retries run every ~250 ms, this leaves room for a busy machine. */
const ATTEMPTS_BOUND_MS = 4 * leaseTtlMs;

describe('leader election on one key with WAIT (1 primary + 1 replica, real cluster)', () => {
  let cluster: LocalRedisCluster;
  const workers: TestWorker[] = [];
  const spawn = async (name: string, id: string) => {
    const worker = await startWorker(cluster, name, id);
    workers.push(worker);
    return worker;
  };

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({ primaries: 1, replicasPerPrimary: 1, nodeTimeoutMs: 1000 });
  });

  afterEach(async () => {
    for (const node of cluster.nodes) if (node.state === 'paused') cluster.resumeNode(node.port);
    await Promise.all(workers.splice(0).map((w) => w.close()));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('takes keys.lease, fences with INCR keys.epoch, and hands over with a greater token', async () => {
    const name = randomLeaderName();
    const a = await spawn(name, 'a');
    expect(await waitFor(() => a.elector.isLeader, 2000)).toBeDefined();
    expect(a.election.lease).toBeInstanceOf(SingleKeyLease);
    const token = a.started.at(-1)?.token ?? 0;
    expect(Number(await a.client.get(a.keys.epoch))).toBe(token);
    expect(await a.client.get(a.keys.lease)).toMatch(/^[0-9a-f]{32}$/);
    // What the primary wrote, its replica has (WAIT acknowledged it before the grant).
    const replica = cluster.nodes.find((n) => n.role === 'replica');
    if (!replica) throw new Error('no replica');
    const replicaClient = cluster.nodeClient(replica.port);
    try {
      await replicaClient.call('READONLY');
      expect(Number(await replicaClient.get(a.keys.epoch))).toBe(token);
    } finally {
      replicaClient.disconnect();
    }

    const b = await spawn(name, 'b');
    const bSpawnedAt = performance.now();
    // Absence with a positive signal: b competed, and for longer than one TTL of a's lease.
    const contended = await waitFor(
      () =>
        b.acquireAttempts() >= MIN_REFUSED_ATTEMPTS &&
        performance.now() - bSpawnedAt > leaseTtlMs + BEYOND_TTL_MS,
      ATTEMPTS_BOUND_MS,
    );
    expect(contended, `b made ${b.acquireAttempts()} attempts`).toBeDefined();
    expect(b.started).toEqual([]);
    expect(a.stopped).toEqual([]);
    const releasedAt = performance.now();
    await a.elector.stop({ release: true });
    expect(await waitFor(() => b.elector.isLeader, 3000)).toBeDefined();
    const handOverMs = (b.started.at(-1)?.atMs ?? Number.NaN) - releasedAt;
    console.log(`single-key graceful hand-over: ${handOverMs.toFixed(1)} ms`);
    expect(handOverMs).toBeLessThan(300);
    expect(b.started.at(-1)?.token).toBe(token + 1);
  });

  it('steps down at the renew deadline when the replica stops acknowledging, and nobody else leads meanwhile', async () => {
    const name = randomLeaderName();
    const a = await spawn(name, 'a');
    expect(await waitFor(() => a.elector.isLeader, 2000)).toBeDefined();
    const b = await spawn(name, 'b');
    await sleep(leaseRenewIntervalMs / 2);
    const replica = cluster.nodes.find((n) => n.role === 'replica');
    if (!replica) throw new Error('no replica');
    const pausedAt = performance.now();
    cluster.pauseNode(replica.port); // still attached for the primary, but acknowledges nothing

    expect(await waitFor(() => a.stopped.length > 0, 2 * leaseRenewDeadlineMs)).toBeDefined();
    const stepDownMs = (a.stopped[0]?.atMs ?? Number.NaN) - pausedAt;
    console.log(`single-key: replica paused -> leader stepped down after ${stepDownMs.toFixed(0)} ms`);
    expect(a.stopped[0]?.reason).toBe('renew-deadline-missed');
    // Its last successful renewal started at most one interval before the pause.
    expect(stepDownMs).toBeLessThan(leaseRenewDeadlineMs + 500);
    expect(a.logs.some((l) => l.event === 'leader.renew_failed')).toBe(true);
    expect(a.logs.find((l) => l.event === 'leader.lost')).toMatchObject({ reason: 'renew-deadline-missed' });

    // No acquisition can be acknowledged either: nobody leads while the replica is frozen. Absence with
    // a positive signal: both workers tried again (each attempt waits for the frozen replica's WAIT).
    const attemptsAtStepDown = [a.acquireAttempts(), b.acquireAttempts()] as const;
    const bothTried = await waitFor(
      () =>
        a.acquireAttempts() - attemptsAtStepDown[0] >= MIN_REFUSED_ATTEMPTS &&
        b.acquireAttempts() - attemptsAtStepDown[1] >= MIN_REFUSED_ATTEMPTS,
      ATTEMPTS_BOUND_MS,
    );
    expect(
      bothTried,
      `attempts while frozen: a ${a.acquireAttempts()}, b ${b.acquireAttempts()}`,
    ).toBeDefined();
    expect(b.started).toEqual([]);
    expect(a.elector.isLeader || b.elector.isLeader).toBe(false);

    cluster.resumeNode(replica.port);
    expect(await waitFor(() => a.elector.isLeader || b.elector.isLeader, 2 * leaseTtlMs)).toBeDefined();
    const tokens = [...a.started, ...b.started].sort((x, y) => x.atMs - y.atMs).map((s) => s.token);
    expect(tokens).toHaveLength(2);
    expect(tokens[1]).toBeGreaterThan(tokens[0] as number);
  });
});
