import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot } from '../../../core/key-slot.ts';
import { KeyspaceKeys } from '../../../core/keys.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import type { ExpiredValue, HandlerContext, HandlerEvent } from '../../../worker/handlers/expiry-handler.ts';
import { UnsettledHandlerError } from '../../../worker/handlers/handler-errors.ts';
import { decodeOutboxValue } from '../../../worker/handlers/outbox-value.ts';
import {
  clusterOutboxRedis,
  createStreamHandler,
  outboxPartition,
  type StreamHandlerOptions,
} from '../../../worker/handlers/stream-handler.ts';
import { MarkStore } from '../../../worker/replay/mark-store.ts';
import { outboxAppend } from '../../../worker/scripts/outbox-append.ts';
import { scriptsOn } from '../../../worker/scripts/registry.ts';
import { captureLogger, captureMetrics } from '../../unit/worker/support/fakes.ts';
import { randomSuffix, testClient } from './helpers.ts';

/**
 * Sequence 9: the `stream` outbox on a real cluster (3 primaries, 1 replica each). An append settles
 * only once WAIT saw a replica take it; with the replica frozen it is left unsettled after its retries
 * (one copy in the stream, not one per attempt); trimming never drops entries a consumer group has
 * not read without counting them, and without any group the length bound's drops are counted too.
 * Issue 14: entries carry the deadline and the captured value, byte-identical after the round trip, and
 * a retry's search for its earlier copy stops at its byte bound among entries that carry values.
 */

/** Bound of each WAIT in these tests: short, so the unconfirmed case stays quick. */
const REPLICA_ACK_TIMEOUT_MS = 200;
const APPEND_ATTEMPTS = 3;
/** Small stream nodes so that `MAXLEN ~` trims at the small lengths of these tests. */
const STREAM_NODE_MAX_ENTRIES = 5;
const TEST_MAX_LENGTH = 20;
const TRIM_EVERY_APPENDS = 10;

function ctx(fencingToken: number): HandlerContext {
  const log = captureLogger().logger;
  return { fencingToken, signal: new AbortController().signal, leaseValid: () => true, log };
}

function event(key: string, seq: number): HandlerEvent {
  return {
    id: `node-it:${seq}`,
    key,
    keyBytes: Buffer.from(key),
    node: '127.0.0.1:0',
    nodeId: 'node-it',
    seq,
    receivedAt: Date.now(),
    replayed: false,
  };
}

describe('sequence 9: stream outbox durability and trimming', () => {
  let cluster: LocalRedisCluster;
  let client: Cluster;
  let outboxClient: Cluster;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({ primaries: 3, replicasPerPrimary: 1, nodeTimeoutMs: 1000 });
    await cluster.configSetAll('stream-node-max-entries', String(STREAM_NODE_MAX_ENTRIES));
    client = testClient(cluster);
    outboxClient = testClient(cluster);
    await outboxClient.ping();
  });

  afterAll(async () => {
    client?.disconnect();
    outboxClient?.disconnect();
    await cluster?.stop();
  });

  function handlerFor(leaderName: string, overrides: Partial<StreamHandlerOptions> = {}) {
    const log = captureLogger();
    const { metrics, totals } = captureMetrics();
    const handler = createStreamHandler({
      redis: clusterOutboxRedis(outboxClient),
      keys: new KeyspaceKeys(leaderName),
      logger: log.logger,
      metrics,
      replicaAckTimeoutMs: REPLICA_ACK_TIMEOUT_MS,
      appendAttempts: APPEND_ATTEMPTS,
      ...overrides,
    });
    return { handler, totals, ...log };
  }

  /** The node serving `key`'s slot and its replica, from the primary's own ROLE. */
  async function nodesOf(key: string): Promise<{ primary: Redis; primaryPort: number; replicaPort: number }> {
    const slot = keySlot(key);
    const primaries = await cluster.primaries();
    const owner = primaries.find((p) => p.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!owner) throw new Error(`no primary serves slot ${slot}`);
    const primary = cluster.nodeClient(owner.port);
    const role = (await primary.role()) as [string, number, [string, string, string][]];
    const replica = role[2][0];
    if (!replica) throw new Error(`primary :${owner.port} has no replica`);
    return { primary, primaryPort: owner.port, replicaPort: Number(replica[1]) };
  }

  async function waitCalls(node: Redis): Promise<number> {
    const stats = await node.info('commandstats');
    return Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  }

  /** Entries of `stream` whose `id` field is `eventId`. */
  async function copiesOf(stream: string, eventId: string): Promise<number> {
    const entries = await client.xrange(stream, '-', '+');
    return entries.filter(([, fields]) => fields[0] === 'id' && fields[1] === eventId).length;
  }

  it('sequence 9: an append settles after WAIT on its own primary; with its replica frozen it is left unsettled, one copy', async () => {
    const leaderName = `ob-${randomSuffix()}`;
    const keys = new KeyspaceKeys(leaderName);
    const { handler, totals } = handlerFor(leaderName);
    const key = `ob:${randomSuffix()}`;
    const stream = keys.outbox(outboxPartition(Buffer.from(key)));
    const { primary, replicaPort } = await nodesOf(stream);
    let paused = false;
    try {
      // Healthy: settles, and the WAIT ran on the stream's primary (the keyless WAIT followed the
      // keyed read in the pipeline). The first append on a connection sends the script text (EVAL).
      await handler(event(key, 0), ctx(5));
      const waitsBefore = await waitCalls(primary);
      await handler(event(key, 1), ctx(5));
      expect(await waitCalls(primary)).toBe(waitsBefore + 1);
      expect(await copiesOf(stream, 'node-it:1')).toBe(1);
      // Appends in flight together share WAITs: the first sends one, the others join the next.
      const CONCURRENT_APPENDS = 16;
      const waitsBeforeBatch = await waitCalls(primary);
      await Promise.all(
        Array.from({ length: CONCURRENT_APPENDS }, (_, i) => handler(event(key, 100 + i), ctx(5))),
      );
      expect(await waitCalls(primary)).toBeLessThanOrEqual(waitsBeforeBatch + 2);

      // The replica frozen: no acknowledgement. The call is not settled: it throws an unsettled error
      // after its attempts, and the retries did not append further copies.
      cluster.pauseNode(replicaPort);
      paused = true;
      const startedMs = Date.now();
      await expect(handler(event(key, 2), ctx(5))).rejects.toBeInstanceOf(UnsettledHandlerError);
      expect(Date.now() - startedMs).toBeGreaterThanOrEqual(APPEND_ATTEMPTS * REPLICA_ACK_TIMEOUT_MS);
      expect(await copiesOf(stream, 'node-it:2')).toBe(1);
      expect(totals()).toMatchObject({ OutboxAppendsUnconfirmed: 1 });
    } finally {
      if (paused) cluster.resumeNode(replicaPort);
      primary.disconnect();
    }
    // Back: the next append settles again.
    await handler(event(key, 3), ctx(5));
    expect(await copiesOf(stream, 'node-it:3')).toBe(1);
  });

  it('recovers from a flushed script cache (SCRIPT FLUSH): direct and pipelined scripts run again, once', async () => {
    const leaderName = `ob-${randomSuffix()}`;
    const keys = new KeyspaceKeys(leaderName);
    const { handler } = handlerFor(leaderName);
    const key = `ob:${randomSuffix()}`;
    const stream = keys.outbox(outboxPartition(Buffer.from(key)));
    const marks = new MarkStore(outboxClient, keys, [0, 1, 2], 1000);
    const mark = {
      nodeId: 'n-it',
      seq: 1,
      tail: [],
      receivedAt: 0,
      fencingToken: 5,
      lineEnd: 1,
      reservedThrough: 1,
    };
    // Loaded on every connection first (EVAL once, EVALSHA after), then the cache flushed everywhere.
    await handler(event(key, 0), ctx(5));
    expect(await marks.write([mark])).toBe(3);
    const nodes = (await cluster.primaries()).map((p) => cluster.nodeClient(p.port));
    const noscripts = async () => {
      const stats = await Promise.all(nodes.map((n) => n.info('errorstats')));
      return stats.reduce(
        (sum, text) => sum + Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(text)?.[1] ?? 0),
        0,
      );
    };
    const before = await noscripts();
    await Promise.all(nodes.map((n) => n.script('FLUSH')));
    await handler(event(key, 1), ctx(5));
    expect(await marks.write([{ ...mark, seq: 2, lineEnd: 2, reservedThrough: 2 }])).toBe(3);
    // Each answered NOSCRIPT (the path was taken) and ran once with its text: one entry, marks written.
    expect(await noscripts()).toBeGreaterThanOrEqual(before + 4);
    expect(await copiesOf(stream, 'node-it:1')).toBe(1);
    expect((await marks.read(['n-it'])).marks.get('n-it')?.seq).toBe(2);
  });

  it('sequence 9: trimming with a consumer group that lags drops no unread entry without counting it', async () => {
    const leaderName = `ot-${randomSuffix()}`;
    const keys = new KeyspaceKeys(leaderName);
    const { handler, totals, events } = handlerFor(leaderName, {
      maxLength: TEST_MAX_LENGTH,
      trimEveryAppends: TRIM_EVERY_APPENDS,
    });
    const key = `ot:${randomSuffix()}`;
    const stream = keys.outbox(outboxPartition(Buffer.from(key)));
    const READ_BY_GROUP = 10;
    const APPENDED = 60;
    await client.xgroup('CREATE', stream, 'billing', '0', 'MKSTREAM');
    for (let seq = 1; seq <= READ_BY_GROUP; seq++) await handler(event(key, seq), ctx(1));
    // The group reads (and acknowledges) the first entries, then falls behind.
    const read = (await client.xreadgroup(
      'GROUP',
      'billing',
      'c1',
      'COUNT',
      READ_BY_GROUP,
      'STREAMS',
      stream,
      '>',
    )) as [string, [string, string[]][]][];
    const readIds = read[0]?.[1].map(([id]) => id) ?? [];
    expect(readIds).toHaveLength(READ_BY_GROUP);
    await client.xack(stream, 'billing', ...readIds);
    for (let seq = READ_BY_GROUP + 1; seq <= APPENDED; seq++) await handler(event(key, seq), ctx(1));

    const left = await client.xrange(stream, '-', '+');
    const lastRead = readIds[readIds.length - 1] as string;
    const unreadLeft = left.filter(([id]) => compareIds(id, lastRead) > 0).length;
    const unreadDropped = APPENDED - READ_BY_GROUP - unreadLeft;
    expect(left.length).toBeLessThan(APPENDED); // the bound did apply
    expect(unreadDropped).toBeGreaterThan(0);
    expect(totals().OutboxEntriesTrimmedUnread).toBe(unreadDropped);
    const lines = events('outbox.trimmed_unread');
    expect(lines.reduce((sum, l) => sum + Number(l.count), 0)).toBe(unreadDropped);
    expect(lines.every((l) => l.reason === 'consumer-group-behind')).toBe(true);
  });

  it('sequence 9: without a consumer group the length bound applies and what it drops is counted', async () => {
    const leaderName = `on-${randomSuffix()}`;
    const keys = new KeyspaceKeys(leaderName);
    const { handler, totals, events } = handlerFor(leaderName, {
      maxLength: TEST_MAX_LENGTH,
      trimEveryAppends: TRIM_EVERY_APPENDS,
    });
    const key = `on:${randomSuffix()}`;
    const stream = keys.outbox(outboxPartition(Buffer.from(key)));
    const APPENDED = 60;
    for (let seq = 1; seq <= APPENDED; seq++) await handler(event(key, seq), ctx(1));
    const length = await client.xlen(stream);
    // Trims run every TRIM_EVERY_APPENDS appends and `~` keeps up to one stream node more.
    expect(length).toBeLessThanOrEqual(TEST_MAX_LENGTH + STREAM_NODE_MAX_ENTRIES);
    expect(APPENDED - length).toBeGreaterThan(0);
    expect(totals().OutboxEntriesTrimmedUnread).toBe(APPENDED - length);
    const lines = events('outbox.trimmed_unread');
    expect(lines.reduce((sum, l) => sum + Number(l.count), 0)).toBe(APPENDED - length);
    expect(lines.every((l) => l.reason === 'no-consumer-group')).toBe(true);
  });

  it('issue 14: the deadline and a value of each type arrive in the stream byte-identical, a missing one as its reason', async () => {
    const leaderName = `ov-${randomSuffix()}`;
    const keys = new KeyspaceKeys(leaderName);
    const { handler } = handlerFor(leaderName);
    const key = `ov:${randomSuffix()}`;
    const stream = keys.outbox(outboxPartition(Buffer.from(key)));
    const binary = Buffer.from([0x00, 0xff, 0x2c, 0x3a, 0x0d, 0x0a]);
    const values: ExpiredValue[] = [
      { type: 'string', bytes: binary },
      { type: 'string', bytes: Buffer.alloc(0) },
      {
        type: 'hash',
        fields: [
          [binary, Buffer.alloc(0)],
          [Buffer.from('qty'), Buffer.from('3')],
        ],
      },
      { type: 'list', items: [Buffer.from('1:a,'), binary, Buffer.alloc(0)] },
      { type: 'set', members: [binary, Buffer.from('m')] },
      {
        type: 'zset',
        members: [
          [binary, Number.NEGATIVE_INFINITY],
          [Buffer.from('b'), -0],
          [Buffer.from('c'), 1 / 3],
          [Buffer.from('d'), Number.POSITIVE_INFINITY],
        ],
      },
    ];
    const deadlineMs = Date.now() - 5;
    for (const [seq, value] of values.entries())
      await handler({ ...event(key, seq), deadlineMs, value }, ctx(1));
    await handler({ ...event(key, values.length), valueMissing: 'not-tracked' }, ctx(1));

    const entries = (await client.xrangeBuffer(stream, '-', '+')) as [Buffer, Buffer[]][];
    const byName = entries.map(([, fields]) => {
      const entry = new Map<string, Buffer>();
      for (let i = 0; i < fields.length; i += 2) entry.set(String(fields[i]), fields[i + 1] as Buffer);
      return entry;
    });
    expect(byName).toHaveLength(values.length + 1);
    for (const [seq, value] of values.entries()) {
      const entry = byName[seq] as Map<string, Buffer>;
      expect(String(entry.get('id'))).toBe(`node-it:${seq}`);
      expect(Number(String(entry.get('deadlineMs')))).toBe(deadlineMs);
      expect(String(entry.get('valueType'))).toBe(value.type);
      expect(decodeOutboxValue(value.type, entry.get('value') as Buffer)).toEqual(value);
    }
    const last = byName[values.length] as Map<string, Buffer>;
    expect(String(last.get('valueMissing'))).toBe('not-tracked');
    expect([...last.keys()].filter((name) => name === 'value' || name === 'deadlineMs')).toEqual([]);
  });

  it("issue 14: a retry's search for its copy reads 16 entries at a time and stops at its byte bound", async () => {
    const leaderName = `ol-${randomSuffix()}`;
    const keys = new KeyspaceKeys(leaderName);
    const { handler } = handlerFor(leaderName);
    const key = `ol:${randomSuffix()}`;
    const stream = keys.outbox(outboxPartition(Buffer.from(key)));
    const fence = keys.outboxFence(outboxPartition(Buffer.from(key)));
    const VALUE_BYTES = 10_000;
    // The entry looked for, then 40 newer ones that each carry a 10 kB value (three XREVRANGE pages).
    await handler(event(key, 0), ctx(1));
    const big: ExpiredValue = { type: 'string', bytes: Buffer.alloc(VALUE_BYTES, 0x61) };
    for (let seq = 1; seq <= 40; seq++) await handler({ ...event(key, seq), value: big }, ctx(1));
    const retry = (lookbackBytes: number) =>
      scriptsOn(outboxClient).run(
        outboxAppend,
        [stream, fence],
        ['1', '256', '', String(lookbackBytes), 'id', 'node-it:0', 'key', key],
      );
    const [[firstId]] = (await client.xrange(stream, '-', '+', 'COUNT', 1)) as [[string, string[]]];
    // Within the byte bound: found below the 40 entries, nothing appended.
    expect(await retry(41 * (VALUE_BYTES + 200))).toEqual({ streamId: firstId, appended: false });
    expect(await client.xlen(stream)).toBe(41);
    // A bound of 20 entries' bytes: the search stops after two pages (32 entries), short of it, and appends.
    const appended = await retry(20 * VALUE_BYTES);
    expect(appended.appended).toBe(true);
    expect(await copiesOf(stream, 'node-it:0')).toBe(2);
  });
});

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}
