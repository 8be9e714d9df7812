import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../core/clock.ts';
import type { RedisConnectionConfig } from '../../../core/config.ts';
import { createLogger } from '../../../core/logger.ts';
import { EmfMetrics } from '../../../core/metrics.ts';
import { closeQuietly, createClusterClient } from '../../../core/redis-client.ts';
import { discoverTopology } from '../../../core/topology.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import type { ExpiryEvent } from '../../../worker/expiry/expiry-event.ts';
import { FanIn } from '../../../worker/expiry/fan-in.ts';
import { nodeSubscriberFactory } from '../../../worker/expiry/node-subscriber.ts';
import { SubscriberPool } from '../../../worker/expiry/subscriber-pool.ts';
import { TopologyWatcher } from '../../../worker/expiry/topology-watcher.ts';
import { decodeStrict } from '../../support/log-capture.ts';
import { keysInRanges, type LogLine, randomSuffix, sleep, testClient } from './helpers.ts';

/**
 * The fan-in pipeline in-process (TopologyWatcher -> SubscriberPool of NodeSubscribers -> FanIn) on a
 * real cluster: every primary's events arrive with exact key bytes, a new shard's node is subscribed
 * in advance (replica role) and counted as a primary within 5 s of owning slots, one that leaves is
 * dropped. (Fail-over is covered with real
 * workers in workers.test.ts.)
 */
describe('fan-in follows the topology', () => {
  let cluster: LocalRedisCluster;
  let client: Cluster;
  let workerCluster: Cluster;
  let watcher: TopologyWatcher;
  let pool: SubscriberPool;
  const events: ExpiryEvent[] = [];
  const logs: LogLine[] = [];
  const prefix = `tf-${randomSuffix()}`;
  const figures: Record<string, number> = {};

  const waitFor = async <T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms`);
      await sleep(50);
    }
  };
  const logged = (event: string, node: string) => logs.find((l) => l.event === event && l.node === node);

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      primaries: 3,
      replicasPerPrimary: 0,
      nodeTimeoutMs: 1000,
      notifyKeyspaceEvents: 'Ex',
    });
    client = testClient(cluster);
    const redis: RedisConnectionConfig = {
      nodes: cluster.seeds,
      tls: false,
      tlsCaFile: undefined,
      username: undefined,
      password: undefined,
    };
    const logger = createLogger({
      write: (line) => logs.push(decodeStrict(line) as LogLine),
      base: { workerId: 'in-process' },
    });
    const metrics = new EmfMetrics({ namespace: 'Test', leaderName: 'test', write: () => {} });
    workerCluster = createClusterClient(redis, { logger, name: 'test' });
    const fanIn = new FanIn({
      clock: systemClock,
      metrics,
      accepts: () => true,
      sink: (event) => events.push(event),
    });
    pool = new SubscriberPool({
      connect: nodeSubscriberFactory({ redis, logger, clock: systemClock }),
      logger,
      metrics,
    });
    pool.onEvent((node, key) => fanIn.push(node, key));
    watcher = new TopologyWatcher({
      discover: () =>
        discoverTopology((command, ...args) => workerCluster.call(command, ...args), { preferTls: false }),
      onPrimaries: (primaries, replicas) => pool.sync(primaries, replicas),
      clock: systemClock,
      logger,
    });
    pool.onTrouble(() => watcher.requestSync());
    watcher.start();
    await waitFor(
      () => (pool.coverage().complete && pool.coverage().known === 3 ? true : undefined),
      15_000,
      'coverage 3/3',
    );
  });

  afterAll(async () => {
    await watcher?.stop();
    await pool?.close();
    if (workerCluster) await closeQuietly(workerCluster);
    client?.disconnect();
    await cluster?.stop();
    console.log(`[topology figures] ${JSON.stringify(figures)}`);
  });

  it("receives every primary's events with the exact key bytes, indexed per node in receipt order", async () => {
    const keys = Array.from({ length: 60 }, (_, i) =>
      Buffer.concat([Buffer.from(`${prefix}:${i}:`), Buffer.from([0xff, i])]),
    );
    for (const key of keys) await client.set(key, '1', 'PX', 50);
    const received = () => events.filter((e) => e.key.subarray(0, prefix.length).toString() === prefix);
    await waitFor(() => (received().length >= keys.length ? true : undefined), 10_000, 'all 60 events');
    const got = received();
    expect(got.map((e) => e.key.toString('hex')).sort()).toEqual(keys.map((k) => k.toString('hex')).sort());
    const primaries = (await cluster.primaries()).map((p) => `${p.host}:${p.port}`).sort();
    expect([...new Set(got.map((e) => e.node))].sort()).toEqual(primaries);
    for (const node of primaries) {
      const indexes = events.filter((e) => e.node === node).map((e) => e.receivedIndex);
      expect(indexes).toEqual(indexes.map((_, i) => i + 1));
    }
  });

  it('subscribes to a new shard in advance, counts it as a primary within 5 s of it owning slots, and drops one that leaves', async () => {
    // From the start of the node (a new redis-server, CLUSTER MEET) to its subscription.
    const joinStartedAt = Date.now();
    const newPort = await cluster.addPrimary({ timeoutMs: 30_000 });
    const node = `127.0.0.1:${newPort}`;
    // Joined, no slots yet: subscribed in advance in the replica role, not counted as a primary.
    const standby = await waitFor(() => logged('subscription.up', node), 10_000, `subscription.up ${node}`);
    figures.newShardSubscribedMs = Date.parse(standby.time) - joinStartedAt;
    expect(standby.role).toBe('replica');
    expect(figures.newShardSubscribedMs).toBeLessThan(5000);
    expect(pool.coverage()).toMatchObject({ known: 3, subscribed: 3, complete: true });

    const source = (await cluster.primaries())[0];
    if (!source) throw new Error('no primary');
    const moved = await cluster.moveSlots(source.port, newPort, 200, { timeoutMs: 30_000 });
    const movedAt = Date.now();
    const promoted = await waitFor(
      () =>
        logs.find((l) => l.event === 'subscription.role_changed' && l.node === node && l.role === 'primary'),
      10_000,
      `subscription.role_changed ${node} to primary`,
    );
    figures.scaleOutSubscribedMs = Date.parse(promoted.time) - movedAt;
    expect(figures.scaleOutSubscribedMs).toBeLessThan(5000);
    // Subscribed throughout: its first events as a primary reached a subscription already there.
    expect(promoted.subscribed).toBe(true);
    expect(pool.coverage()).toMatchObject({ known: 4, subscribed: 4, complete: true });

    const keys = keysInRanges(`${prefix}-moved`, moved, 10);
    for (const key of keys) await client.set(key, '1', 'PX', 50);
    await waitFor(
      () =>
        keys.every((k) => events.some((e) => e.node === node && e.key.toString() === k)) ? true : undefined,
      10_000,
      'events from the new primary',
    );

    const removedAt = Date.now();
    await cluster.removePrimary(newPort, { timeoutMs: 30_000 });
    // removePrimary empties the node, kills it and makes the others forget it: the subscription goes
    // down (connection closed, or removed if the topology said so first) and the node leaves the pool.
    await waitFor(() => logged('subscription.down', node), 10_000, `subscription.down ${node}`);
    await waitFor(
      () => (pool.coverage().known === 3 && pool.coverage().complete ? true : undefined),
      5000,
      `coverage 3/3 (now ${JSON.stringify(pool.coverage())})`,
    );
    figures.removedDroppedMs = Date.now() - removedAt;
    expect(logs.filter((l) => l.event === 'topology.changed').length).toBeGreaterThanOrEqual(3);
  });
});
