import { createHash } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisConnectionConfig } from '../../../core/config.ts';
import { keySlot } from '../../../core/key-slot.ts';
import { silentLogger } from '../../../core/logger.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { RedisScanConnection } from '../../../worker/expiry/scan-connection.ts';
import { keyDeadlines } from '../../../worker/scripts/key-deadlines.ts';
import { scriptsOn } from '../../../worker/scripts/registry.ts';
import { valuesRead } from '../../../worker/scripts/value-read.ts';
import { keysInRanges, randomSuffix, testClient, timeOf, WorkerProcess, workerEnv } from './helpers.ts';

/**
 * On-time expiry (docs/precise-expiry.md): with BACKGROUND_KEYS volatile keys on one primary, Redis'
 * own expiry cycle reaches a due key only after about BACKGROUND_KEYS / 200 s (~100 s here,
 * README.md, "On-time expiry"), so a test that waits at most a few seconds fails without the feature.
 * Both sources of deadlines are covered: probes written before the worker started (found by the
 * keyspace scan) and probes written after it was ready (announced by their `expire` events). The test
 * waits on the readiness signal, the scan's first pass over the loaded primary, never on a sleep.
 */

/** Volatile keys (1 h TTL) on the probes' primary, all under one hash tag. */
const BACKGROUND_KEYS = 20_000;
/** Probes per source (scan and events). */
const PROBES_PER_SOURCE = 100;
/** The bound of the issue: every probe reaches the handler within this of its deadline. */
const EXPIRY_LAG_BOUND_MS = 2000;
/** Bound on the worker's start, its first acquisition and its first scan pass. */
const READY_BOUND_MS = 20_000;
/** The scan-path probes' deadline, from their writing: after the worker is ready. */
const SCAN_PROBE_TTL_MS = 12_000;
/** How long a new connection may take to load the value reads' script (it connects first). */
const SCRIPT_LOAD_BOUND_MS = 3000;
/** The event-path probes' deadline, from their writing (after readiness). */
const EVENT_PROBE_TTL_MS = 1500;
/** Scan pace of the test worker: a pass over the loaded primary takes about a second. */
const SCAN_KEYS_PER_S = 60_000;

describe('on-time expiry: every probe within 2 s of its deadline among 20,000 volatile keys', () => {
  const leaderName = `itpe-${randomSuffix()}`;
  const prefix = `pe-${randomSuffix()}`;
  /** One hash tag: background and probes on one primary. */
  const tag = `{${prefix}}`;
  let cluster: LocalRedisCluster;
  let client: Cluster;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      primaries: 3,
      replicasPerPrimary: 0,
      nodeTimeoutMs: 1000,
      notifyKeyspaceEvents: 'Egx',
    });
    client = testClient(cluster);
  });

  afterAll(async () => {
    client?.disconnect();
    await worker?.kill();
    await cluster?.stop();
  });

  it('probes found by the scan and probes announced by expire events expire on time', async () => {
    const write = async (keys: readonly string[], args: (key: string) => (string | number)[]) => {
      for (let i = 0; i < keys.length; i += 1000) {
        const pipeline = client.pipeline();
        for (const key of keys.slice(i, i + 1000)) pipeline.set(key, '1', ...(args(key) as ['PX', number]));
        await pipeline.exec();
      }
    };
    const background = Array.from({ length: BACKGROUND_KEYS }, (_, i) => `${prefix}:${tag}:bg:${i}`);
    await write(background, () => ['PX', 3_600_000]);
    const scanProbes = Array.from({ length: PROBES_PER_SOURCE }, (_, i) => `${prefix}:${tag}:scan:${i}`);
    const scanDeadlineMs = Date.now() + SCAN_PROBE_TTL_MS;
    await write(scanProbes, () => ['PXAT', scanDeadlineMs]);
    const slot = keySlot(tag);
    const primaryId = (await cluster.primaries()).find((primary) =>
      primary.slots.some(([first, last]) => slot >= first && slot <= last),
    )?.id;
    expect(primaryId).toBeDefined();

    worker = WorkerProcess.start(
      'pe1',
      workerEnv(cluster, {
        LEADER_NAME: leaderName,
        KEY_PATTERN: `${prefix}:*`,
        EXPIRY_SCAN_KEYS_PER_S: String(SCAN_KEYS_PER_S),
      }),
    );
    await worker.waitForEvent('leader.acquired', READY_BOUND_MS);
    // Readiness: the first pass over the loaded primary has every key set before the start.
    const ready = await worker.waitFor(
      (w) => w.events('expiry.scan_completed').find((line) => line.nodeId === primaryId && line.round === 1),
      READY_BOUND_MS,
      'the first scan pass over the loaded primary',
    );
    expect(ready.trackedKeys).toBeGreaterThanOrEqual(BACKGROUND_KEYS + PROBES_PER_SOURCE);
    expect(Date.now()).toBeLessThan(scanDeadlineMs); // else the test proves nothing about the scan path

    const eventProbes = Array.from({ length: PROBES_PER_SOURCE }, (_, i) => `${prefix}:${tag}:event:${i}`);
    const eventDeadlineMs = Date.now() + EVENT_PROBE_TTL_MS;
    await write(eventProbes, () => ['PXAT', eventDeadlineMs]);

    const deadlineOf = new Map<string, number>([
      ...scanProbes.map((key) => [key, scanDeadlineMs] as const),
      ...eventProbes.map((key) => [key, eventDeadlineMs] as const),
    ]);
    const handled = (w: WorkerProcess) =>
      w.events('key.processed').filter((line) => deadlineOf.has(line.key as string));
    await worker.waitFor(
      (w) => handled(w)[deadlineOf.size - 1],
      SCAN_PROBE_TTL_MS + EXPIRY_LAG_BOUND_MS + 1000,
      'every probe handled',
    );
    const lines = handled(worker);
    expect(new Set(lines.map((line) => line.key)).size).toBe(deadlineOf.size);
    const lateProbes = lines
      .map((line) => ({
        key: line.key as string,
        lagMs: timeOf(line) - (deadlineOf.get(line.key as string) ?? 0),
      }))
      .filter((probe) => probe.lagMs > EXPIRY_LAG_BOUND_MS);
    expect(lateProbes).toEqual([]);
    // Each was tracked: its line carries its deadline (the primary's clock) and the lag.
    for (const line of lines) {
      expect(line.deadlineMs).toBe(deadlineOf.get(line.key as string));
      expect(typeof line.lagMs).toBe('number');
    }
  });

  it('a primary answers a batch of its keys of many slots in one call; a due key expires and is published', async () => {
    const [primary, other] = await cluster.primaries();
    if (primary === undefined || other === undefined) throw new Error('3 primaries expected');
    const redis: RedisConnectionConfig = {
      nodes: cluster.seeds,
      tls: false,
      tlsCaFile: undefined,
      username: undefined,
      password: undefined,
    };
    const node = {
      id: primary.id,
      host: '127.0.0.1',
      port: primary.port,
      role: 'primary',
      health: 'online',
    } as const;
    const connection = new RedisScanConnection(node, redis, silentLogger);
    const subscriber = new Redis({ port: primary.port, ...cluster.clientOptions() });
    try {
      // Keys of many slots of this primary (cross-slot on purpose), one of another primary's; outside
      // the first test's KEY_PATTERN, so its worker (still running) never touches them.
      const batchPrefix = `pe-batch-${randomSuffix()}`;
      const own = keysInRanges(`${batchPrefix}:own`, primary.slots, 20);
      expect(new Set(own.map((key) => keySlot(key))).size).toBeGreaterThan(10);
      const [foreign] = keysInRanges(`${batchPrefix}:foreign`, other.slots, 1);
      const deadlineMs = Date.now() + 300;
      for (const key of own) await client.set(key, '1', 'PXAT', deadlineMs);
      await client.set(foreign as string, '1', 'PX', 60_000);
      const alive = await connection.deadlines(
        own.map((key) => Buffer.from(key)),
        true,
      );
      expect(alive).toEqual(own.map(() => deadlineMs));
      // The script itself answers for keys of many slots (not only the per-key fallback).
      expect(await scriptsOn(subscriber).run(keyDeadlines, [], own)).toEqual(own.map(() => deadlineMs));

      const expired: string[] = [];
      subscriber.on('message', (_channel, key) => expired.push(key));
      await subscriber.subscribe('__keyevent@0__:expired');
      await new Promise((resolve) => setTimeout(resolve, deadlineMs - Date.now() + 5));
      const due = await connection.deadlines(
        own.map((key) => Buffer.from(key)),
        true,
      );
      expect(due).toEqual(own.map(() => -2));
      // Published by the lookups themselves: Redis' own cycle samples 20 keys per 100 ms among 20,000.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(new Set(expired)).toEqual(new Set(own));

      // A key this node does not serve fails the script; the keys are looked up one by one instead,
      // and only that key answers an error (MOVED), for the Cluster client to follow.
      const mixed = await connection.deadlines(
        [Buffer.from(foreign as string), Buffer.from(own[0] as string)],
        true,
      );
      expect(mixed[0]).toBeInstanceOf(Error);
      expect(mixed[1]).toBe(-2);
    } finally {
      connection.close();
      subscriber.disconnect();
    }
  });
  it("a primary's connection loads the value reads' script once it is ready: a first burst's reads need no NOSCRIPT round trip", async () => {
    // A read-only script is sent as EVALSHA_RO, and on NOSCRIPT (a new or restarted primary, a promoted
    // replica: their script cache is empty) sent again with its text: a second round trip, which a cold
    // worker took so late in a first burst that the keys had expired (their values `read-late`).
    const [primary] = await cluster.primaries();
    if (primary === undefined) throw new Error('a primary expected');
    const admin = new Redis({ port: primary.port, ...cluster.clientOptions() });
    const sha = createHash('sha1').update(valuesRead.lua).digest('hex');
    await admin.script('FLUSH');
    expect(await admin.script('EXISTS', sha)).toEqual([0]);
    const connection = new RedisScanConnection(
      { id: primary.id, host: '127.0.0.1', port: primary.port, role: 'primary', health: 'online' },
      { nodes: cluster.seeds, tls: false, tlsCaFile: undefined, username: undefined, password: undefined },
      silentLogger,
    );
    try {
      const loadedBy = Date.now() + SCRIPT_LOAD_BOUND_MS;
      let loaded = false;
      while (!loaded && Date.now() < loadedBy) {
        loaded = ((await admin.script('EXISTS', sha)) as number[])[0] === 1;
        if (!loaded) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(loaded).toBe(true);
    } finally {
      connection.close();
      admin.disconnect();
    }
  });
});
