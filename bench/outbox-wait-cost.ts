import { Cluster } from 'ioredis';
import { KeyspaceKeys } from '../core/keys.ts';
import { silentLogger } from '../core/logger.ts';
import { EmfMetrics } from '../core/metrics.ts';
import { LocalRedisCluster } from '../local/cluster.ts';
import type { HandlerContext, HandlerEvent } from '../worker/handlers/expiry-handler.ts';
import {
  clusterOutboxRedis,
  createStreamHandler,
  type OutboxRedis,
} from '../worker/handlers/stream-handler.ts';

/**
 * What the outbox's WAIT costs (docs/worker.md, "The stream outbox"): `npx tsx bench/outbox-wait-cost.ts`.
 * On an embedded cluster of 3 primaries with 1 replica each, the same appends are made with WAIT (the
 * default) and without (the path of a cluster without replicas), first one at a time (latency per
 * append: p50, p99), then `CONCURRENCY` at a time (appends/s, as HANDLER_CONCURRENCY allows).
 */

const APPENDS = 3000;
const CONCURRENCY = 16;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const cluster = await LocalRedisCluster.start({ primaries: 3, replicasPerPrimary: 1 });
  const client = new Cluster(cluster.seeds, { redisOptions: cluster.clientOptions() });
  client.on('error', () => {});
  try {
    await client.ping();
    const ctx: HandlerContext = {
      fencingToken: 1,
      signal: new AbortController().signal,
      leaseValid: () => true,
      log: silentLogger,
    };
    const metrics = new EmfMetrics({ namespace: 'Bench', leaderName: 'bench', write: () => {} });
    const withWait = clusterOutboxRedis(client);
    const withoutWait: OutboxRedis = { ...withWait, hasReplicas: () => false };
    let seq = 0;
    const event = (): HandlerEvent => {
      seq++;
      const key = `bench:${seq}`;
      return {
        id: `bench:${seq}`,
        key,
        keyBytes: Buffer.from(key),
        node: '127.0.0.1:0',
        nodeId: 'bench',
        seq,
        receivedAt: Date.now(),
        replayed: false,
      };
    };
    for (const [label, redis] of [
      ['without WAIT', withoutWait],
      ['with WAIT 1', withWait],
    ] as const) {
      const handler = createStreamHandler({
        redis,
        keys: new KeyspaceKeys(`bench-${label.replace(/\W/g, '')}`),
        logger: silentLogger,
        metrics,
      });
      for (let i = 0; i < 100; i++) await handler(event(), ctx); // warm-up: scripts loaded, connections up
      const latencies: number[] = [];
      for (let i = 0; i < APPENDS; i++) {
        const startedMs = performance.now();
        await handler(event(), ctx);
        latencies.push(performance.now() - startedMs);
      }
      latencies.sort((a, b) => a - b);
      const startedMs = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < APPENDS) await handler(event(), ctx);
        }),
      );
      const perSecond = APPENDS / ((performance.now() - startedMs) / 1000);
      console.log(
        `${label}: one at a time p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms; ` +
          `${CONCURRENCY} at a time ${Math.round(perSecond)} appends/s`,
      );
    }
  } finally {
    client.disconnect();
    await cluster.stop();
  }
}

await main();
