import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import type { LocalRedisCluster } from '../../../local/cluster.ts';

/** A key prefix unique to one test file run (guide: every integration test uses its own). */
export function randomKeyPrefix(): string {
  return `t-${randomBytes(4).toString('hex')}`;
}

/**
 * Runs `use` with a fresh Cluster client (fresh slot map: chaos operations change the topology) and
 * always disconnects it.
 */
export async function withClusterClient<T>(
  cluster: LocalRedisCluster,
  use: (client: Cluster) => Promise<T>,
  options: { user?: string } = {},
): Promise<T> {
  const client = new Cluster(cluster.seeds, {
    redisOptions: { ...cluster.clientOptions(options), connectTimeout: 2000 },
    // The seeds include stopped nodes; skip them quickly.
    clusterRetryStrategy: (times) => (times > 10 ? null : 100),
  });
  client.on('error', () => {});
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** Runs `use` with a client to one node (see LocalRedisCluster.nodeClient) and disconnects it. */
export async function withNodeClient<T>(
  cluster: LocalRedisCluster,
  port: number,
  use: (client: Redis) => Promise<T>,
  options: { user?: string } = {},
): Promise<T> {
  const client = cluster.nodeClient(port, options);
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** `key:value` fields of INFO / CLUSTER INFO text. */
export function infoField(text: string, field: string): string | undefined {
  const line = text.split('\r\n').find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 100 ms until it is true or `timeoutMs` passed; returns the last result. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

/** Keys whose hash slot lies in `[first, last]`, one per slot at most, `count` of them. */
export function keysInSlots(
  prefix: string,
  first: number,
  last: number,
  count: number,
  slotOf: (key: string) => number,
): string[] {
  const keys: string[] = [];
  const used = new Set<number>();
  for (let i = 0; keys.length < count && i < 2_000_000; i++) {
    const key = `${prefix}:${i}`;
    const slot = slotOf(key);
    if (slot >= first && slot <= last && !used.has(slot)) {
      used.add(slot);
      keys.push(key);
    }
  }
  return keys;
}
