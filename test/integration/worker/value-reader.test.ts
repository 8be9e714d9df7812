import fc from 'fast-check';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerAccessString } from '../../../core/acl.ts';
import type { RedisConnectionConfig } from '../../../core/config.ts';
import { VALUE_READ_DEFAULTS } from '../../../core/defaults.ts';
import { keySlot } from '../../../core/key-slot.ts';
import { silentLogger } from '../../../core/logger.ts';
import { closeQuietly, createClusterClient } from '../../../core/redis-client.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { expiredValueSize } from '../../../worker/expiry/expired-value.ts';
import { ValueReader, type ValueReadResult } from '../../../worker/expiry/value-reader.ts';
import type { ExpiredValue } from '../../../worker/handlers/expiry-handler.ts';
import { scriptsOn } from '../../../worker/scripts/registry.ts';
import { valuesRead } from '../../../worker/scripts/value-read.ts';
import { randomSuffix, scoreText, testClient, writeValue } from './helpers.ts';

/**
 * The value reader on a real 3-primary cluster (issue 14), as a user with the worker's ACL: read-only
 * rights on the test's keys (`%R~<prefix>*`), so the read must go through EVALSHA_RO. A property
 * test writes random values of the five types (binary and empty members, sizes around the bounds,
 * every kind of score) with a known deadline (PXAT), reads them, and checks each comes back
 * byte-identical with its deadline, or with the reason the bounds give; then the cases around it:
 * no TTL, no key, a stream, a batch with non-UTF-8 keys, the default bounds +/- 1, writes paused,
 * memory full, a flushed script cache.
 */

const READER = { name: 'kl-value-reader', password: `pw-${randomSuffix()}` };
/** Small bounds for the property: sizes on both sides of them come up often. */
const SMALL = { maxBytes: 64, maxElements: 6 };

const b = (text: string) => Buffer.from(text);
const hex = (bytes: Buffer) => bytes.toString('hex');
const byBytes = (a: Buffer, c: Buffer) => Buffer.compare(a, c);

/** The value in the order Redis gives it back, where that order is defined (lists, sorted sets). */
function canonical(value: ExpiredValue): unknown {
  switch (value.type) {
    case 'string':
      return { type: 'string', bytes: hex(value.bytes) };
    case 'list':
      return { type: 'list', items: value.items.map(hex) };
    case 'hash':
      return {
        type: 'hash',
        fields: [...value.fields].sort(([a], [c]) => byBytes(a, c)).map(([f, v]) => [hex(f), hex(v)]),
      };
    case 'set':
      return { type: 'set', members: [...value.members].sort(byBytes).map(hex) };
    case 'zset':
      return {
        type: 'zset',
        members: [...value.members]
          .sort(([ma, sa], [mc, sc]) => (sa === sc ? byBytes(ma, mc) : sa - sc))
          .map(([m, s]) => [hex(m), scoreText(s === 0 ? 0 : s)]),
      };
  }
}

const elementsOf = (value: ExpiredValue) => expiredValueSize(value).elements;

/** What a read must find for `value` written with `deadlineMs`, under `bounds` and `limit`. */
function expected(
  value: ExpiredValue,
  deadlineMs: number,
  bounds: { maxBytes: number; maxElements: number },
  limit: number,
): unknown {
  const { bytes } = expiredValueSize(value);
  const tooLarge =
    bytes > bounds.maxBytes || (value.type !== 'string' && elementsOf(value) > bounds.maxElements);
  if (tooLarge) return { kind: 'missing', deadlineMs, reason: 'too-large' };
  if (bytes > Math.min(limit, bounds.maxBytes)) return { kind: 'missing', deadlineMs, reason: 'over-budget' };
  return { kind: 'value', deadlineMs, value: canonical(value), bytes };
}

function observed(result: ValueReadResult | Error): unknown {
  if (result instanceof Error) return { error: result.message };
  return result.kind === 'value' ? { ...result, value: canonical(result.value) } : result;
}

// Values: bytes of every kind (non-UTF-8 included), empty ones often, sizes around SMALL's bounds.
const bytesArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)) },
);
const uniqueBytes = (maxLength: number) =>
  fc.uniqueArray(bytesArb, { minLength: 1, maxLength, selector: hex });
const scoreArb = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    0.1,
    -2.5,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    1e300,
    -5e-324,
  ),
  fc.double({ noNaN: true }),
  fc.integer({ min: -1000, max: 1000 }),
);
const valueArb: fc.Arbitrary<ExpiredValue> = fc.oneof(
  fc
    .oneof(
      fc.integer({ min: SMALL.maxBytes - 1, max: SMALL.maxBytes + 1 }).map((n) => Buffer.alloc(n, 0xfe)),
      fc.uint8Array({ maxLength: SMALL.maxBytes + 8 }).map((a) => Buffer.from(a)),
    )
    .map((bytes) => ({ type: 'string' as const, bytes })),
  fc
    .tuple(uniqueBytes(SMALL.maxElements + 1), fc.array(bytesArb, { minLength: SMALL.maxElements + 1 }))
    .map(([fields, values]) => ({
      type: 'hash' as const,
      fields: fields.map((f, i) => [f, values[i] as Buffer] as const),
    })),
  fc
    .array(bytesArb, { minLength: 1, maxLength: SMALL.maxElements + 1 })
    .map((items) => ({ type: 'list' as const, items })),
  uniqueBytes(SMALL.maxElements + 1).map((members) => ({ type: 'set' as const, members })),
  fc
    .tuple(uniqueBytes(SMALL.maxElements + 1), fc.array(scoreArb, { minLength: SMALL.maxElements + 1 }))
    .map(([members, scores]) => ({
      type: 'zset' as const,
      members: members.map((m, i) => [m, scores[i] as number] as const),
    })),
);
/** The read's limit: anywhere up to past maxBytes, or the value's own bytes -1, +0 or +1. */
const limitArb: fc.Arbitrary<(bytes: number) => number> = fc.oneof(
  fc.integer({ min: 0, max: SMALL.maxBytes + 4 }).map((limit) => () => limit),
  fc.integer({ min: -1, max: 1 }).map((delta) => (bytes: number) => Math.max(0, bytes + delta)),
);
/** Keys: text, or bytes that are not UTF-8 (the read then bypasses auto-pipelining). */
const keyTailArb = fc.oneof(
  fc.stringMatching(/^[a-z0-9]{1,8}$/).map(b),
  fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => Buffer.from([0xff, ...a])),
);

describe('value reader on a real cluster (worker ACL, read-only)', () => {
  const prefix = `vr-${randomSuffix()}`;
  let cluster: LocalRedisCluster;
  let client: Cluster;
  let readerCluster: Cluster;
  let reader: ValueReader;
  let small: ValueReader;
  let admins: Redis[] = [];
  let counter = 0;
  const freshKey = (tail: Buffer = b('k')) => Buffer.concat([b(`${prefix}:${counter++}:`), tail]);
  const deadlineIn = (ms: number) => Date.now() + ms;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      primaries: 3,
      replicasPerPrimary: 0,
      nodeTimeoutMs: 1000,
      users: [
        {
          ...READER,
          access: workerAccessString(`itvr-${randomSuffix()}`, { keyPattern: `${prefix}*` }),
        },
      ],
    });
    client = testClient(cluster);
    const redis: RedisConnectionConfig = {
      nodes: cluster.seeds,
      tls: false,
      tlsCaFile: undefined,
      username: READER.name,
      password: READER.password,
    };
    readerCluster = createClusterClient(redis, {
      logger: silentLogger,
      name: 'value-reader-test',
      commandTimeoutMs: 2000,
      autoPipelining: true,
    });
    reader = new ValueReader({ cluster: readerCluster });
    small = new ValueReader({ cluster: readerCluster, ...SMALL });
    admins = (await cluster.primaries()).map((p) => cluster.nodeClient(p.port));
  });

  afterAll(async () => {
    await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
    client?.disconnect();
    if (readerCluster) await closeQuietly(readerCluster);
    await cluster?.stop();
  });

  it('property: every value comes back byte-identical with its deadline, or with the reason its sizes give', async () => {
    await fc.assert(
      fc.asyncProperty(valueArb, keyTailArb, limitArb, async (value, tail, limitOf) => {
        const key = freshKey(tail);
        const deadlineMs = deadlineIn(60_000);
        const limit = limitOf(expiredValueSize(value).bytes);
        await writeValue(client, key, value, deadlineMs);
        const [result] = await small.read([key], [limit]);
        expect(observed(result as ValueReadResult)).toEqual(expected(value, deadlineMs, SMALL, limit));
      }),
      { numRuns: 150 },
    );
  });

  it('a batch of many keys at once (some not UTF-8), mixed with no TTL, no key and a stream', async () => {
    const deadlineMs = deadlineIn(60_000);
    const samples = fc.sample(fc.tuple(valueArb, keyTailArb), { numRuns: 60, seed: 14 });
    const keys = samples.map(([, tail]) => freshKey(tail));
    await Promise.all(samples.map(([value], i) => writeValue(client, keys[i] as Buffer, value, deadlineMs)));
    const persistent = freshKey();
    await client.set(persistent, 'no ttl');
    const missing = freshKey(Buffer.from([0xc3, 0x28]));
    const stream = freshKey();
    await client.xadd(stream, '*', 'f', 'v');
    await client.pexpireat(stream, deadlineMs);
    const results = await small.read(
      [...keys, persistent, missing, stream],
      [...keys.map(() => 40), 64, 64, 64],
    );
    expect(results.slice(0, keys.length).map(observed)).toEqual(
      samples.map(([value]) => expected(value, deadlineMs, SMALL, 40)),
    );
    expect(results.slice(keys.length)).toEqual([
      { kind: 'no-ttl' },
      { kind: 'gone' },
      { kind: 'missing', deadlineMs, reason: 'unsupported-type' },
    ]);
  });

  it('batched per primary (values-read on its own connection): the same results as one by one, deferred keys and a wrongly routed batch included', async () => {
    const primaries = await cluster.primaries();
    const nodes = new Map(primaries.map((p) => [p.id, cluster.nodeClient(p.port, { user: READER.name })]));
    const ownerOf = (key: Buffer) =>
      primaries.find((p) => p.slots.some(([first, last]) => keySlot(key) >= first && keySlot(key) <= last))
        ?.id;
    const calls: string[] = [];
    let misroute: Buffer | undefined;
    const batched = new ValueReader({
      cluster: readerCluster,
      ...SMALL,
      nodes: {
        // One key is sent to another primary: its whole call fails and its keys are read one by one.
        ownerOf: (key) =>
          key === misroute ? primaries.find((p) => p.id !== ownerOf(key))?.id : ownerOf(key),
        read: (nodeId, args) => {
          calls.push(nodeId);
          return scriptsOn(nodes.get(nodeId) as Redis).runBuffer(valuesRead, [], args);
        },
      },
    });
    try {
      const deadlineMs = deadlineIn(60_000);
      // Collections of up to SMALL.maxElements elements: a call's element budget (the same number)
      // is spent after a few of them, so the rest are deferred and sent again.
      const samples = fc.sample(fc.tuple(valueArb, keyTailArb), { numRuns: 80, seed: 41 });
      const keys = samples.map(([, tail]) => freshKey(tail));
      await Promise.all(
        samples.map(([value], i) => writeValue(client, keys[i] as Buffer, value, deadlineMs)),
      );
      misroute = keys[7];
      const limits = keys.map(() => 40);
      const [one, many] = await Promise.all([small.read(keys, limits), batched.read(keys, limits)]);
      expect(many.map((r) => observed(r as ValueReadResult))).toEqual(
        one.map((r) => observed(r as ValueReadResult)),
      );
      expect(many.map((r) => observed(r as ValueReadResult))).toEqual(
        samples.map(([value]) => expected(value, deadlineMs, SMALL, 40)),
      );
      // Fewer calls than keys, more than primaries (deferred keys are sent again).
      expect(calls.length).toBeGreaterThan(primaries.length);
      expect(calls.length).toBeLessThan(keys.length);
    } finally {
      for (const node of nodes.values()) node.disconnect();
    }
  });

  it('the default bounds: 65,536 payload bytes are read, 65,537 are too large, for every type; 8,192 elements and one more', async () => {
    const max = VALUE_READ_DEFAULTS.maxBytes;
    const maxElements = VALUE_READ_DEFAULTS.maxElements;
    const id = (i: number, width: number) => b(i.toString(16).padStart(width, '0'));
    const at = (extra: number): ExpiredValue[] => [
      { type: 'string', bytes: Buffer.alloc(max + extra, 0x80) },
      // 8,192 fields of 4 + 4 bytes; 8,192 items and members of 8; 4,096 members of 8 + a score.
      {
        type: 'hash',
        fields: Array.from(
          { length: maxElements },
          (_, i) => [id(i, 4), id(i, i === 0 ? 4 + extra : 4)] as const,
        ),
      },
      { type: 'list', items: Array.from({ length: maxElements }, (_, i) => id(i, i === 0 ? 8 + extra : 8)) },
      { type: 'set', members: Array.from({ length: maxElements }, (_, i) => id(i, i === 0 ? 8 + extra : 8)) },
      {
        type: 'zset',
        members: Array.from(
          { length: max / 16 },
          (_, i) => [id(i, i === 0 ? 8 + extra : 8), i / 3 - 100] as const,
        ),
      },
      // One big element: the memory check lets it through to the exact count.
      { type: 'list', items: [Buffer.alloc(max + extra, 1)] },
    ];
    const values = [...at(0), ...at(1)];
    const deadlineMs = deadlineIn(60_000);
    const keys = values.map(() => freshKey());
    for (const [i, value] of values.entries()) await writeValue(client, keys[i] as Buffer, value, deadlineMs);
    const results = await reader.read(
      keys,
      keys.map(() => max),
    );
    expect(results.map(observed)).toEqual(
      values.map((v) => expected(v, deadlineMs, VALUE_READ_DEFAULTS, max)),
    );
    expect(
      results.slice(0, values.length / 2).every((r) => !(r instanceof Error) && r.kind === 'value'),
    ).toBe(true);

    // More elements than maxElements, whatever their bytes (empty items cost none); large elements
    // that the memory check refuses before reading.
    const tooMany = freshKey();
    await client.rpush(tooMany, ...Array.from({ length: maxElements + 1 }, () => ''));
    await client.pexpireat(tooMany, deadlineMs);
    const exactlyMax = freshKey();
    await client.rpush(exactlyMax, ...Array.from({ length: maxElements }, () => ''));
    await client.pexpireat(exactlyMax, deadlineMs);
    const big = freshKey();
    await client.sadd(big, ...Array.from({ length: 64 }, (_, i) => Buffer.alloc(16_384, i)));
    await client.pexpireat(big, deadlineMs);
    expect(await reader.read([tooMany, exactlyMax, big], [max, max, max])).toEqual([
      { kind: 'missing', deadlineMs, reason: 'too-large' },
      {
        kind: 'value',
        deadlineMs,
        value: { type: 'list', items: Array.from({ length: maxElements }, () => Buffer.alloc(0)) },
        bytes: 0,
      },
      { kind: 'missing', deadlineMs, reason: 'too-large' },
    ]);
  });

  it('over the budget but within maxBytes: over-budget; the deadline moves with the TTL', async () => {
    const key = freshKey();
    const first = deadlineIn(30_000);
    await writeValue(client, key, { type: 'string', bytes: Buffer.alloc(100, 7) }, first);
    expect(await reader.read([key, key, key], [99, 100, 0])).toEqual([
      { kind: 'missing', deadlineMs: first, reason: 'over-budget' },
      {
        kind: 'value',
        deadlineMs: first,
        value: { type: 'string', bytes: Buffer.alloc(100, 7) },
        bytes: 100,
      },
      { kind: 'missing', deadlineMs: first, reason: 'over-budget' },
    ]);
    const second = first + 12_345;
    await client.pexpireat(key, second);
    expect(await reader.read([key], [100])).toMatchObject([{ kind: 'value', deadlineMs: second }]);
  });

  it('runs while writes are paused (CLIENT PAUSE WRITE) and while memory is full, and needs EVALSHA_RO', async () => {
    const deadlineMs = deadlineIn(60_000);
    const keys = [freshKey(), freshKey(Buffer.from([0xff])), freshKey(b('x'))];
    const value: ExpiredValue = { type: 'hash', fields: [[b('f'), Buffer.from([0, 0xff])]] };
    for (const key of keys) await writeValue(client, key, value, deadlineMs);
    const found = keys.map(() => ({ kind: 'value', deadlineMs, value: canonical(value), bytes: 3 }));

    await Promise.all(admins.map((a) => a.client('PAUSE', 3000, 'WRITE')));
    try {
      const blockedWrite = client.set(freshKey(), '1').then(() => 'written');
      const startedAt = Date.now();
      const results = await reader.read(keys, [64, 64, 64]);
      expect(Date.now() - startedAt).toBeLessThan(1000);
      expect(results.map(observed)).toEqual(found);
      // The pause holds writes: the SET is still waiting.
      expect(
        await Promise.race([blockedWrite, new Promise((r) => setTimeout(() => r('blocked'), 100))]),
      ).toBe('blocked');
    } finally {
      await Promise.all(admins.map((a) => a.client('UNPAUSE')));
    }

    await Promise.all(admins.map((a) => a.config('SET', 'maxmemory', '1')));
    try {
      await expect(client.set(keys[0] as Buffer, '1')).rejects.toThrow(/OOM/);
      expect((await reader.read(keys, [64, 64, 64])).map(observed)).toEqual(found);
    } finally {
      await Promise.all(admins.map((a) => a.config('SET', 'maxmemory', '0')));
    }

    // EVALSHA (the script's defined command) declares its keys read-write: refused to this user.
    scriptsOn(readerCluster);
    const commands = readerCluster as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const evalsha = commands.klValueReadBuffer as (...args: unknown[]) => Promise<unknown>;
    await expect(evalsha.call(readerCluster, keys[0], 64, 64, 8)).rejects.toThrow(/NOPERM/);
  });

  it('after the script cache is flushed, a batch sends the text once per primary and every read succeeds', async () => {
    const deadlineMs = deadlineIn(60_000);
    const keys = Array.from({ length: 300 }, () => freshKey());
    await Promise.all(keys.map((key) => client.set(key, key, 'PXAT', deadlineMs)));
    await Promise.all(admins.map((a) => a.script('FLUSH').then(() => a.config('RESETSTAT'))));
    const results = await reader.read(
      keys,
      keys.map(() => 1000),
    );
    expect(results.map(observed)).toEqual(
      keys.map((key) => ({
        kind: 'value',
        deadlineMs,
        value: { type: 'string', bytes: hex(key) },
        bytes: key.length,
      })),
    );
    const loads = await Promise.all(
      admins.map(async (a) =>
        Number(/cmdstat_eval_ro:calls=(\d+)/.exec(await a.info('commandstats'))?.[1] ?? 0),
      ),
    );
    expect(loads).toEqual(admins.map(() => 1));
  });
});
