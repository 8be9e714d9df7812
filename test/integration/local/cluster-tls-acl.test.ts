import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot } from '../../../core/key-slot.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { infoField, keysInSlots, randomKeyPrefix, withClusterClient, withNodeClient } from './helpers.ts';

// One TLS-only cluster with ACL users, the default user disabled and AOF persistence: what the
// security work builds on. It also runs resharding and restarts through TLS + ACL (MIGRATE AUTH2,
// replication as the internal admin user).

const READER = {
  name: 'reader',
  password: 'reader-secret-1',
  // Reads of the project's keys only, plus what a Cluster client needs to find its way. Note the
  // pattern: `~{kl:*}` would only match keys that end with '}' (ACL patterns are globs).
  access: '~{kl:* &__keyevent@0__:expired +@read +ping +info +cluster|slots +cluster|info +cluster|shards',
};

/** A client expected to fail: no retries, no ready check; connection errors are collected. */
function bareClient(port: number, extra: RedisOptions): { client: Redis; errors: Error[] } {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    protocol: 2,
    enableReadyCheck: false,
    connectTimeout: 1500,
    commandTimeout: 1500,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...extra,
  });
  const errors: Error[] = [];
  client.on('error', (error: Error) => errors.push(error));
  return { client, errors };
}

describe('LocalRedisCluster with tls, ACL users and AOF persistence', () => {
  let cluster: LocalRedisCluster;
  const prefix = randomKeyPrefix();

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      tls: true,
      users: [READER],
      disableDefaultUser: true,
      persistence: 'aof',
      notifyKeyspaceEvents: 'Ex',
    });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('listens on TLS only, with replication over TLS and notify-keyspace-events set', async () => {
    expect(cluster.startupMs).toBeLessThan(20_000);
    expect(cluster.caFile).toBeDefined();
    expect(cluster.clientOptions().tls?.ca).toBe(readFileSync(cluster.caFile as string, 'utf8'));
    for (const node of cluster.nodes) {
      await withNodeClient(cluster, node.port, async (client) => {
        expect(await client.config('GET', 'port')).toEqual(['port', '0']);
        expect(await client.config('GET', 'tls-port')).toEqual(['tls-port', String(node.port)]);
        expect(await client.config('GET', 'notify-keyspace-events')).toEqual([
          'notify-keyspace-events',
          'xE',
        ]);
        if (node.role === 'replica') {
          expect(infoField(String(await client.call('INFO', 'replication')), 'master_link_status')).toBe(
            'up',
          );
        }
      });
    }
    const [first] = cluster.nodes;
    if (!first) throw new Error('no node');
    // A plain TCP client speaks RESP to a TLS port: the server drops it, no reply.
    const plain = bareClient(first.port, {});
    try {
      await expect(plain.client.connect().then(() => plain.client.ping())).rejects.toThrow();
    } finally {
      plain.client.disconnect();
    }
    // A TLS client that does not trust the local CA fails certificate verification.
    const untrusting = bareClient(first.port, { tls: {} });
    try {
      await expect(untrusting.client.connect()).rejects.toThrow();
      expect(untrusting.errors.map((e) => e.message).join(' ')).toMatch(/certificate/i);
    } finally {
      untrusting.client.disconnect();
    }
  });

  it('refuses the default user and lets an ACL user do only what its rules allow (NOPERM)', async () => {
    const [first] = cluster.nodes;
    if (!first) throw new Error('no node');
    const anonymous = bareClient(first.port, { tls: { ca: cluster.clientOptions().tls?.ca as string } });
    try {
      await anonymous.client.connect();
      await expect(anonymous.client.ping()).rejects.toThrow(/^NOAUTH/);
    } finally {
      anonymous.client.disconnect();
    }

    const key = `{kl:${prefix}}:lease`;
    await withClusterClient(cluster, async (admin) => {
      await admin.set(key, 'holder-1');
    });
    await withClusterClient(
      cluster,
      async (reader) => {
        expect(await reader.get(key)).toBe('holder-1');
        await expect(reader.set(key, 'intruder')).rejects.toThrow(/^NOPERM/);
        await expect(reader.get(`${prefix}:outside-pattern`)).rejects.toThrow(/^NOPERM/);
        await expect(reader.call('CONFIG', 'GET', 'port')).rejects.toThrow(/^NOPERM/);
      },
      { user: 'reader' },
    );
  });

  it('moves slots with keys to an added primary, and the primary keeps them across restarts (aof)', async () => {
    const source = (await cluster.primaries())[0];
    if (!source) throw new Error('no primary');
    const newPort = await cluster.addPrimary();
    const [, last] = source.slots[source.slots.length - 1] as [number, number];
    const keys = keysInSlots(`${prefix}:p`, last - 49, last, 30, keySlot);
    await withClusterClient(cluster, async (client) => {
      for (const k of keys) await client.set(k, `v-${k}`);
    });
    const moved = await cluster.moveSlots(source.port, newPort, 50);
    expect(moved).toEqual([[last - 49, last]]);
    await withNodeClient(cluster, newPort, async (client) => {
      for (const k of keys) expect(await client.get(k)).toBe(`v-${k}`);
    });

    // The added primary has no replica: after a graceful restart its keys can only come from its AOF.
    await cluster.restartNode(newPort);
    await withNodeClient(cluster, newPort, async (client) => {
      for (const k of keys) expect(await client.get(k)).toBe(`v-${k}`);
    });

    // SIGKILL: acknowledged writes were written to the AOF before the reply, so they survive too.
    await withClusterClient(cluster, async (client) => {
      for (const k of keys) await client.set(k, `w-${k}`);
    });
    await cluster.killNode(newPort);
    await cluster.restartNode(newPort);
    await withClusterClient(cluster, async (client) => {
      for (const k of keys) expect(await client.get(k)).toBe(`w-${k}`);
    });
    expect((await cluster.primaries()).find((p) => p.port === newPort)?.slots).toEqual(moved);
  });
});
