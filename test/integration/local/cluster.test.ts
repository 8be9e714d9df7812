import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot } from '../../../core/key-slot.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { isProcessAlive } from '../../../local/process-alive.ts';
import {
  eventually,
  infoField,
  keysInSlots,
  randomKeyPrefix,
  withClusterClient,
  withNodeClient,
} from './helpers.ts';

// One default cluster (3 primaries, 1 replica each, no persistence) for the whole file; the tests
// run in order and each leaves the cluster healthy for the next.

type SlotsReply = [number, number, ...[string, number, string][]][];

describe('LocalRedisCluster (3 primaries x 1 replica)', () => {
  let cluster: LocalRedisCluster;
  const prefix = randomKeyPrefix();

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('starts within 20 s with cluster_state ok everywhere, replicas attached and one slot map', async () => {
    expect(cluster.startupMs).toBeLessThan(20_000);
    expect(cluster.nodes).toHaveLength(6);
    const slotMaps: string[] = [];
    for (const node of cluster.nodes) {
      await withNodeClient(cluster, node.port, async (client) => {
        expect(infoField(String(await client.call('CLUSTER', 'INFO')), 'cluster_state')).toBe('ok');
        const replication = String(await client.call('INFO', 'replication'));
        expect(infoField(replication, 'role')).toBe(node.role === 'primary' ? 'master' : 'slave');
        if (node.role === 'replica') expect(infoField(replication, 'master_link_status')).toBe('up');
        else expect(infoField(replication, 'connected_slaves')).toBe('1');
        const slots = (await client.call('CLUSTER', 'SLOTS')) as SlotsReply;
        // Primary + its replica per range, with node ids: the whole map, as this node sees it.
        slotMaps.push(
          JSON.stringify(
            slots
              .map(([first, last, ...holders]) => [first, last, holders.map(([, port, id]) => [port, id])])
              .sort(),
          ),
        );
      });
    }
    expect(new Set(slotMaps).size).toBe(1);
    const agreed = JSON.parse(slotMaps[0] as string) as [number, number, [number, string][]][];
    expect(agreed.reduce((sum, [first, last]) => sum + last - first + 1, 0)).toBe(16384);
    expect(agreed.every(([, , holders]) => holders.length === 2)).toBe(true);

    const primaries = await cluster.primaries();
    expect(primaries.map((p) => p.slots)).toEqual([[[0, 5461]], [[5462, 10922]], [[10923, 16383]]]);
    expect(primaries.map((p) => p.port).sort()).toEqual(
      agreed.map(([, , holders]) => holders[0]?.[0]).sort(),
    );
  });

  it('serves a Cluster client built from seeds and clientOptions()', async () => {
    await withClusterClient(cluster, async (client) => {
      for (let i = 0; i < 60; i++) await client.set(`${prefix}:a:${i}`, `v${i}`);
      const values = await Promise.all(Array.from({ length: 60 }, (_, i) => client.get(`${prefix}:a:${i}`)));
      expect(values).toEqual(Array.from({ length: 60 }, (_, i) => `v${i}`));
    });
  });

  it('failover() promotes the replica of a shard and demotes the old primary', async () => {
    const [first] = await cluster.primaries();
    if (!first) throw new Error('no primary');
    const oldReplica = cluster.nodes.find((n) => n.primaryId === first.id);
    const newPort = await cluster.failover(first.port);
    expect(newPort).toBe(oldReplica?.port);
    await withNodeClient(cluster, newPort, async (client) => {
      expect(infoField(String(await client.call('INFO', 'replication')), 'role')).toBe('master');
    });
    await withNodeClient(cluster, first.port, async (client) => {
      const replication = String(await client.call('INFO', 'replication'));
      expect(infoField(replication, 'role')).toBe('slave');
      expect(infoField(replication, 'master_port')).toBe(String(newPort));
    });
    const primaries = await cluster.primaries();
    expect(primaries.find((p) => p.port === newPort)?.slots).toEqual(first.slots);
    await withClusterClient(cluster, async (client) => {
      expect(await client.get(`${prefix}:a:0`)).toBe('v0');
    });
  });

  it('after killNode() of a primary, waitForPromotion() resolves with its replica as primary', async () => {
    const victim = (await cluster.primaries())[1];
    if (!victim) throw new Error('no primary');
    const replica = cluster.nodes.find((n) => n.primaryId === victim.id);
    const pid = cluster.nodes.find((n) => n.port === victim.port)?.pid as number;
    const killedAt = performance.now();
    await cluster.killNode(victim.port);
    expect(isProcessAlive(pid)).toBe(false);
    const promoted = await cluster.waitForPromotion(victim.port);
    const tookMs = performance.now() - killedAt;
    expect(promoted).toBe(replica?.port);
    // node timeout 1000 ms: detection + election take a few seconds, far below Redis' default 15 s+.
    expect(tookMs).toBeLessThan(15_000);
    const primaries = await cluster.primaries();
    expect(primaries.find((p) => p.port === promoted)?.slots).toEqual(victim.slots);
    expect(primaries.some((p) => p.port === victim.port)).toBe(false);
    await withClusterClient(cluster, async (client) => {
      const values = await Promise.all(Array.from({ length: 60 }, (_, i) => client.get(`${prefix}:a:${i}`)));
      expect(values).toEqual(Array.from({ length: 60 }, (_, i) => `v${i}`));
    });

    // The killed node comes back on its port and rejoins as a replica of the promoted one.
    await cluster.restartNode(victim.port);
    const restarted = cluster.nodes.find((n) => n.port === victim.port);
    expect(restarted?.state).toBe('running');
    expect(restarted?.role).toBe('replica');
    expect(restarted?.primaryId).toBe(cluster.nodes.find((n) => n.port === promoted)?.id);
    await withNodeClient(cluster, victim.port, async (client) => {
      const replication = String(await client.call('INFO', 'replication'));
      expect(infoField(replication, 'master_link_status')).toBe('up');
      expect(infoField(replication, 'master_port')).toBe(String(promoted));
    });
  });

  it('pauseNode() freezes a node and resumeNode() brings it back', async () => {
    const replica = cluster.nodes.find((n) => n.role === 'replica');
    if (!replica) throw new Error('no replica');
    cluster.pauseNode(replica.port);
    const paused = cluster.nodeClient(replica.port);
    try {
      await expect(
        Promise.race([
          paused.ping(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), 500)),
        ]),
      ).rejects.toThrow('no answer');
      cluster.resumeNode(replica.port);
      expect(await paused.ping()).toBe('PONG');
    } finally {
      paused.disconnect();
    }
    await cluster.waitForClusterOk();
  });

  it('addPrimary() + moveSlots() move slots with their keys; without persistence a restart empties the node', async () => {
    const source = (await cluster.primaries())[2];
    if (!source) throw new Error('no primary');
    const newPort = await cluster.addPrimary();
    expect(cluster.nodes.find((n) => n.port === newPort)).toMatchObject({
      role: 'primary',
      state: 'running',
    });
    expect((await cluster.primaries()).find((p) => p.port === newPort)?.slots).toEqual([]);

    const [, sourceLast] = source.slots[source.slots.length - 1] as [number, number];
    const moving = keysInSlots(`${prefix}:m`, sourceLast - 99, sourceLast, 40, keySlot);
    const staying = keysInSlots(`${prefix}:s`, sourceLast - 400, sourceLast - 100, 20, keySlot);
    await withClusterClient(cluster, async (client) => {
      for (const key of [...moving, ...staying]) await client.set(key, `value-of-${key}`);
    });

    const moved = await cluster.moveSlots(source.port, newPort, 100);
    expect(moved).toEqual([[sourceLast - 99, sourceLast]]);
    const primaries = await cluster.primaries();
    expect(primaries.find((p) => p.port === newPort)?.slots).toEqual([[sourceLast - 99, sourceLast]]);
    expect(primaries.find((p) => p.port === source.port)?.slots.at(-1)?.[1]).toBe(sourceLast - 100);
    const keysInMovedSlots = async (port: number) =>
      withNodeClient(cluster, port, async (client) => {
        let total = 0;
        for (let slot = sourceLast - 99; slot <= sourceLast; slot++) {
          total += Number(await client.call('CLUSTER', 'COUNTKEYSINSLOT', slot));
        }
        return total;
      });
    // Other keys of this file may hash into the moved slots too: count at least ours.
    expect(await keysInMovedSlots(source.port)).toBe(0);
    expect(await keysInMovedSlots(newPort)).toBeGreaterThanOrEqual(moving.length);
    await withNodeClient(cluster, newPort, async (client) => {
      for (const key of moving) expect(await client.exists(key)).toBe(1);
    });
    await withClusterClient(cluster, async (client) => {
      for (const key of [...moving, ...staying]) expect(await client.get(key)).toBe(`value-of-${key}`);
    });

    // Negative control for the persistence test of the TLS file: persistence 'off' and no replica,
    // so nothing can bring the keys back; the node keeps its slots (nodes.conf) but not its data.
    await cluster.restartNode(newPort);
    await withNodeClient(cluster, newPort, async (client) => {
      expect(await client.dbsize()).toBe(0);
    });
    expect((await cluster.primaries()).find((p) => p.port === newPort)?.slots).toEqual(moved);
  });

  it('removePrimary() moves its slots and keys away, then forgets and stops it', async () => {
    const added = cluster.nodes.find(
      (n) => n.role === 'primary' && !cluster.nodes.some((r) => r.primaryId === n.id),
    );
    if (!added) throw new Error('no replica-less primary');
    const addedSlots = (await cluster.primaries()).find((p) => p.port === added.port)?.slots ?? [];
    const [first, last] = addedSlots[0] as [number, number];
    const keys = keysInSlots(`${prefix}:r`, first, last, 25, keySlot);
    await withClusterClient(cluster, async (client) => {
      for (const key of keys) await client.set(key, key);
    });
    await cluster.removePrimary(added.port);

    expect(isProcessAlive(added.pid as number)).toBe(false);
    expect(cluster.nodes.some((n) => n.port === added.port)).toBe(false);
    const primaries = await cluster.primaries();
    expect(primaries).toHaveLength(3);
    expect(primaries.reduce((sum, p) => sum + p.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0)).toBe(
      16384,
    );
    for (const node of cluster.nodes) {
      await withNodeClient(cluster, node.port, async (client) => {
        expect(String(await client.call('CLUSTER', 'NODES'))).not.toContain(added.id);
      });
    }
    await withClusterClient(cluster, async (client) => {
      for (const key of keys) expect(await client.get(key)).toBe(key);
    });
  });

  it('configSetAll() sets a parameter on every node, and restarted nodes keep it', async () => {
    await cluster.configSetAll('notify-keyspace-events', 'Ex');
    const replica = cluster.nodes.find((n) => n.role === 'replica');
    if (!replica) throw new Error('no replica');
    await cluster.restartNode(replica.port);
    for (const node of cluster.nodes) {
      await withNodeClient(cluster, node.port, async (client) => {
        expect(await client.config('GET', 'notify-keyspace-events')).toEqual([
          'notify-keyspace-events',
          'xE',
        ]);
      });
    }
  });

  it('stop() leaves no process and no folder behind, and is idempotent', async () => {
    const pids = cluster.nodes.map((n) => n.pid).filter((pid): pid is number => pid !== undefined);
    const guardPid = cluster.crashGuardPid as number;
    expect(pids).toHaveLength(6);
    expect(existsSync(cluster.folder)).toBe(true);
    await Promise.all([cluster.stop(), cluster.stop()]);
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(false);
    expect(existsSync(cluster.folder)).toBe(false);
    expect(await eventually(() => !isProcessAlive(guardPid), 3000)).toBe(true);
    await cluster.stop();
    await expect(cluster.primaries()).rejects.toThrow(/stopped/);
  });
});
