import { describe, expect, it } from 'vitest';
import { keySlot } from '../../../../core/key-slot.ts';
import type { ClusterNode, Topology } from '../../../../core/topology.ts';
import { VolatileKeys, type VolatileKeysNode } from '../../../../local/runner/volatile-keys.ts';

function node(id: string): ClusterNode {
  return { id, host: '127.0.0.1', port: 7000, role: 'primary', health: 'online' };
}

const TOPOLOGY: Topology = {
  shards: [
    { slots: [[0, 8191]], primary: node('a'), replicas: [] },
    { slots: [[8192, 16383]], primary: node('b'), replicas: [] },
  ],
};

/** Two primaries' keyspaces; a command for a key of the other primary's slots answers MOVED. */
function fakeCluster() {
  const stores = new Map<string, Map<string, number>>([
    ['a', new Map()],
    ['b', new Map()],
  ]);
  const pipelines: { nodeId: string; size: number }[] = [];
  const closed: string[] = [];
  const owner = (key: string) => (keySlot(key) <= 8191 ? 'a' : 'b');
  const connect = (n: ClusterNode): VolatileKeysNode => ({
    exec: async (commands) => {
      pipelines.push({ nodeId: n.id, size: commands.length });
      const store = stores.get(n.id) as Map<string, number>;
      return commands.map(([name, key, , , ttl]) => {
        const k = String(key);
        if (owner(k) !== n.id) return new Error('MOVED');
        if (name === 'SET') {
          store.set(k, Number(ttl));
          return 'OK';
        }
        if (name === 'DEL') return store.delete(k) ? 1 : 0;
        return store.has(k) ? 1 : 0;
      });
    },
    close: () => closed.push(n.id),
  });
  return { stores, pipelines, closed, connect };
}

describe('VolatileKeys', () => {
  it('sets volatile:1..N with the TTL, each on the primary owning its slot, in pipelines of batchSize', async () => {
    const fake = fakeCluster();
    const keys = new VolatileKeys({
      count: 2500,
      prefix: 'volatile:',
      ttlMs: 3_600_000,
      batchSize: 500,
      discover: async () => TOPOLOGY,
      connect: fake.connect,
    });
    await expect(keys.load()).resolves.toEqual({ set: 2500, failed: 0, firstError: undefined });
    const a = fake.stores.get('a') as Map<string, number>;
    const b = fake.stores.get('b') as Map<string, number>;
    expect(a.size + b.size).toBe(2500);
    expect(a.size).toBeGreaterThan(1000);
    expect(b.size).toBeGreaterThan(1000);
    expect([...a.values(), ...b.values()].every((ttl) => ttl === 3_600_000)).toBe(true);
    expect(a.has('volatile:1') || b.has('volatile:1')).toBe(true);
    expect(fake.pipelines.every((p) => p.size <= 500)).toBe(true);
    expect(fake.pipelines.reduce((sum, p) => sum + p.size, 0)).toBe(2500);
    expect(fake.closed.sort()).toEqual(['a', 'b']);
  });

  it('deletes every key and says how many are left (none)', async () => {
    const fake = fakeCluster();
    const keys = new VolatileKeys({
      count: 1200,
      prefix: 'volatile:',
      ttlMs: 3_600_000,
      discover: async () => TOPOLOGY,
      connect: fake.connect,
    });
    await keys.load();
    await expect(keys.deleteAll()).resolves.toEqual({ deleted: 1200, left: 0 });
    expect(fake.stores.get('a')?.size).toBe(0);
    expect(fake.stores.get('b')?.size).toBe(0);
  });

  it('counts failures, and a key whose check failed as left: a failover between load and delete', async () => {
    const fake = fakeCluster();
    let topology = TOPOLOGY;
    const keys = new VolatileKeys({
      count: 100,
      prefix: 'volatile:',
      ttlMs: 1000,
      discover: async () => topology,
      connect: fake.connect,
    });
    await keys.load();
    // A slot map without shard b: its keys have no primary.
    topology = { shards: [TOPOLOGY.shards[0] as Topology['shards'][number]] };
    const result = await keys.deleteAll();
    const onB = fake.stores.get('b')?.size ?? 0;
    expect(onB).toBeGreaterThan(0);
    expect(result).toEqual({ deleted: 100 - onB, left: onB });
  });

  it('a pipeline that fails as a whole fails each of its keys', async () => {
    const keys = new VolatileKeys({
      count: 10,
      prefix: 'volatile:',
      ttlMs: 1000,
      discover: async () => TOPOLOGY,
      connect: () => ({
        exec: async () => {
          throw new Error('connection lost');
        },
        close: () => {},
      }),
    });
    await expect(keys.load()).resolves.toEqual({ set: 0, failed: 10, firstError: 'connection lost' });
  });

  it('count 0 does nothing', async () => {
    const keys = new VolatileKeys({
      count: 0,
      prefix: 'volatile:',
      ttlMs: 1000,
      discover: async () => {
        throw new Error('not called');
      },
      connect: () => {
        throw new Error('not called');
      },
    });
    await expect(keys.load()).resolves.toEqual({ set: 0, failed: 0, firstError: undefined });
    await expect(keys.deleteAll()).resolves.toEqual({ deleted: 0, left: 0 });
  });
});
