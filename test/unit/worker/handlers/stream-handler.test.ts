import { describe, expect, it, vi } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { silentLogger } from '../../../../core/logger.ts';
import type {
  ExpiredValue,
  HandlerContext,
  HandlerEvent,
} from '../../../../worker/handlers/expiry-handler.ts';
import { UnsettledHandlerError } from '../../../../worker/handlers/handler-errors.ts';
import { decodeOutboxValue } from '../../../../worker/handlers/outbox-value.ts';
import {
  type AppendReply,
  createStreamHandler,
  FencedAppendError,
  OUTBOX_PARTITIONS,
  OutboxLeaseEndedError,
  type OutboxRedis,
  OutboxUnconfirmedError,
  outboxPartition,
  type StreamHandlerOptions,
  type TrimReply,
} from '../../../../worker/handlers/stream-handler.ts';
import { FencedTokenError } from '../../../../worker/scripts/script-errors.ts';
import { captureLogger, captureMetrics } from '../support/fakes.ts';

const event = (keyBytes: Buffer): HandlerEvent => ({
  id: 'node-a:7',
  key: keyBytes.toString(),
  keyBytes,
  node: '10.0.0.1:6379',
  nodeId: 'node-a',
  seq: 7,
  receivedAt: 1234,
  replayed: true,
});

const ctx = (fencingToken: number, leaseValid: () => boolean = () => true): HandlerContext => ({
  fencingToken,
  signal: new AbortController().signal,
  leaseValid,
  log: silentLogger,
});

const confirmed = (streamId = '1-0', acked = 1): AppendReply => ({
  script: { streamId, appended: true },
  acked,
});

type AppendCall = [string, string, readonly (string | Buffer)[], number | undefined];

function fakeRedis(options: {
  replies?: (() => Promise<AppendReply>)[];
  hasReplicas?: boolean;
  trim?: (stream: string, maxLength: number) => Promise<TrimReply>;
}) {
  const replies = [...(options.replies ?? [])];
  const appends: AppendCall[] = [];
  const trims: [string, number][] = [];
  const redis: OutboxRedis = {
    hasReplicas: () => options.hasReplicas ?? true,
    append: (stream, fence, args, waitMs) => {
      appends.push([stream, fence, args, waitMs]);
      return (replies.shift() ?? (async () => confirmed()))();
    },
    trim: (stream, maxLength) => {
      trims.push([stream, maxLength]);
      return (
        options.trim?.(stream, maxLength) ?? Promise.resolve({ groups: 0, trimmedRead: 0, trimmedUnread: 0 })
      );
    },
  };
  return { redis, appends, trims };
}

function setup(redis: OutboxRedis, overrides: Partial<StreamHandlerOptions> = {}) {
  const log = captureLogger();
  const { metrics, totals } = captureMetrics();
  const handler = createStreamHandler({
    redis,
    keys: new KeyspaceKeys('orders'),
    logger: log.logger,
    metrics,
    sleep: async () => {},
    ...overrides,
  });
  return { handler, totals, ...log };
}

describe('stream handler (outbox)', () => {
  it('appends identity, exact key bytes, node, sequence, token and receipt time to the key partition, then WAITs', async () => {
    const { redis, appends } = fakeRedis({});
    const { handler } = setup(redis, { replicaAckTimeoutMs: 300 });
    const keyBytes = Buffer.from([0x6b, 0xff]);
    await handler(event(keyBytes), ctx(42));
    const p = outboxPartition(keyBytes);
    expect(appends).toEqual([
      [
        `{kl:orders:o${p}}:outbox`,
        `{kl:orders:o${p}}:fence`,
        [
          '42',
          '0', // first attempt: no lookup of an earlier copy
          '',
          '0',
          'id',
          'node-a:7',
          'key',
          keyBytes,
          'node',
          '10.0.0.1:6379',
          'nodeId',
          'node-a',
          'seq',
          '7',
          'fencingToken',
          '42',
          'receivedAt',
          '1234',
          'replayed',
          '1',
        ],
        300,
      ],
    ]);
  });

  it('spreads keys over every partition', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(outboxPartition(Buffer.from(`key:${i}`)));
    expect(seen.size).toBe(OUTBOX_PARTITIONS);
  });

  it('turns the script refusal into a typed FencedAppendError, without retrying', async () => {
    // OutboxRedis reports the fence's refusal typed (worker/scripts/outbox-append.ts maps the reply).
    const refusal = new FencedTokenError({ cause: new Error('FENCED token 3 is below 4') });
    const { redis, appends } = fakeRedis({
      replies: [async () => ({ script: refusal, acked: 0 })],
    });
    const { handler } = setup(redis);
    await expect(handler(event(Buffer.from('k')), ctx(3))).rejects.toBeInstanceOf(FencedAppendError);
    expect(appends).toHaveLength(1);
  });

  it('sequence 10: appends nothing once the lease is no longer valid, and leaves the event unsettled', async () => {
    const { redis, appends } = fakeRedis({});
    const { handler } = setup(redis);
    // A pause: the deadline timer has not fired yet, the signal is quiet, the lease is over.
    const call = handler(
      event(Buffer.from('k')),
      ctx(3, () => false),
    );
    await expect(call).rejects.toBeInstanceOf(OutboxLeaseEndedError);
    await expect(call).rejects.toBeInstanceOf(UnsettledHandlerError);
    expect(appends).toEqual([]);
  });

  it('sequence 9: an unconfirmed append is retried with the stream id it got (no second copy), then left unsettled', async () => {
    const { redis, appends } = fakeRedis({
      replies: [
        async () => confirmed('5-1', 0),
        async () => confirmed('5-1', 0),
        async () => confirmed('5-1', 0),
      ],
    });
    const { handler, totals } = setup(redis, { appendAttempts: 3, dedupeLookback: 64 });
    const call = handler(event(Buffer.from('k')), ctx(9));
    await expect(call).rejects.toBeInstanceOf(OutboxUnconfirmedError);
    await expect(call).rejects.toBeInstanceOf(UnsettledHandlerError);
    expect(appends.map(([, , args]) => args.slice(0, 4))).toEqual([
      ['9', '0', '', '0'],
      ['9', '64', '5-1', '4194304'],
      ['9', '64', '5-1', '4194304'],
    ]);
    expect(totals()).toMatchObject({ OutboxAppendsUnconfirmed: 1 });
  });

  it('sequence 9: a retry after a lost reply looks the entry up by event id; a later confirmation settles', async () => {
    const { redis, appends } = fakeRedis({
      replies: [
        async () => {
          throw new Error('Connection is closed.');
        },
        async () => ({ script: { streamId: '8-0', appended: false }, acked: 1 }),
      ],
    });
    const { handler, totals } = setup(redis, { dedupeLookback: 64, dedupeLookbackBytes: 1000 });
    await handler(event(Buffer.from('k')), ctx(9));
    expect(appends.map(([, , args]) => args.slice(0, 4))).toEqual([
      ['9', '0', '', '0'],
      ['9', '64', '', '1000'],
    ]);
    expect(totals().OutboxAppendsUnconfirmed ?? 0).toBe(0);
  });

  it('sequence 9: a lease that ends between attempts stops the retries, unsettled', async () => {
    let valid = true;
    const { redis, appends } = fakeRedis({
      replies: [
        async () => {
          valid = false;
          return confirmed('5-1', 0);
        },
      ],
    });
    const { handler } = setup(redis);
    await expect(
      handler(
        event(Buffer.from('k')),
        ctx(9, () => valid),
      ),
    ).rejects.toBeInstanceOf(OutboxUnconfirmedError);
    expect(appends).toHaveLength(1);
  });

  it('sequence 9: a cluster without replicas: no WAIT, settled, warned once and counted', async () => {
    const { redis, appends } = fakeRedis({ hasReplicas: false });
    const { handler, totals, events } = setup(redis);
    await handler(event(Buffer.from('a')), ctx(1));
    await handler(event(Buffer.from('b')), ctx(1));
    expect(appends.map(([, , , waitMs]) => waitMs)).toEqual([undefined, undefined]);
    expect(events('outbox.unreplicated')).toHaveLength(1);
    expect(totals()).toMatchObject({ OutboxAppendsUnreplicated: 2 });
  });

  it('sequence 9: trims a partition every N confirmed appends; unread drops are counted and logged', async () => {
    const { redis, trims } = fakeRedis({
      trim: async () => ({ groups: 1, trimmedRead: 4, trimmedUnread: 3 }),
    });
    const { handler, totals, events } = setup(redis, { trimEveryAppends: 2, maxLength: 50 });
    const key = Buffer.from('same-partition');
    for (let i = 0; i < 5; i++) await handler(event(key), ctx(1));
    const stream = new KeyspaceKeys('orders').outbox(outboxPartition(key));
    expect(trims).toEqual([
      [stream, 50],
      [stream, 50],
    ]);
    expect(totals()).toMatchObject({ OutboxEntriesTrimmedUnread: 6 });
    expect(events('outbox.trimmed_unread')).toEqual([
      expect.objectContaining({ level: 'warn', stream, count: 3, reason: 'consumer-group-behind' }),
      expect.objectContaining({ count: 3 }),
    ]);
  });

  it('a failed trim never fails the append', async () => {
    const { redis } = fakeRedis({
      trim: async () => {
        throw new Error('NOPERM');
      },
    });
    const { handler, events } = setup(redis, { trimEveryAppends: 1 });
    await handler(event(Buffer.from('k')), ctx(1));
    expect(events('outbox.trim_failed')).toHaveLength(1);
  });

  it('a script error other than FENCED (MOVED, CLUSTERDOWN) is retried after the delay', async () => {
    const sleep = vi.fn(async () => {});
    const { redis, appends } = fakeRedis({
      replies: [async () => ({ script: new Error('CLUSTERDOWN The cluster is down'), acked: undefined })],
    });
    const { handler } = setup(redis, { sleep, retryDelayMs: 70 });
    await handler(event(Buffer.from('k')), ctx(1));
    expect(appends).toHaveLength(2);
    expect(sleep).toHaveBeenCalledWith(70);
  });
});

describe('stream handler: deadline and values (issue 14)', () => {
  /** The entry's fields as name -> value (the args after token, lookback, stream id, lookback bytes). */
  function entryOf(args: readonly (string | Buffer)[]): Map<string, string | Buffer> {
    const fields = args.slice(4);
    const entry = new Map<string, string | Buffer>();
    for (let i = 0; i < fields.length; i += 2) entry.set(String(fields[i]), fields[i + 1] as string | Buffer);
    expect(entry.size * 2).toBe(fields.length); // no field twice
    return entry;
  }

  async function appendOf(handlerEvent: HandlerEvent, overrides: Partial<StreamHandlerOptions> = {}) {
    const { redis, appends } = fakeRedis({});
    const { handler } = setup(redis, overrides);
    await handler(handlerEvent, ctx(1));
    expect(appends).toHaveLength(1);
    return { entry: entryOf(appends[0]?.[2] ?? []) };
  }

  const tracked = (value: Pick<HandlerEvent, 'value' | 'valueMissing'>): HandlerEvent => ({
    ...event(Buffer.from('cart:1')),
    deadlineMs: 1_700_000_000_123,
    ...value,
  });

  it("carries the deadline and a string value's exact bytes (not copied), after the identity fields", async () => {
    const bytes = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x2c, 0x3a]);
    const { entry } = await appendOf(tracked({ value: { type: 'string', bytes } }));
    expect([...entry.keys()]).toEqual([
      'id',
      'key',
      'node',
      'nodeId',
      'seq',
      'fencingToken',
      'receivedAt',
      'replayed',
      'deadlineMs',
      'valueType',
      'value',
    ]);
    expect(entry.get('deadlineMs')).toBe('1700000000123');
    expect(entry.get('valueType')).toBe('string');
    expect(entry.get('value')).toBe(bytes);
  });

  it('carries a collection as one binary field of netstrings that decodes back to the same value', async () => {
    const value: ExpiredValue = {
      type: 'zset',
      members: [
        [Buffer.from([0xff, 0x2c]), Number.NEGATIVE_INFINITY],
        [Buffer.alloc(0), 1.5],
        [Buffer.from('m'), Number.POSITIVE_INFINITY],
      ],
    };
    const { entry } = await appendOf(tracked({ value }));
    const field = entry.get('value') as Buffer;
    expect(
      field.equals(
        Buffer.concat([
          Buffer.from('2:'),
          Buffer.from([0xff, 0x2c]),
          Buffer.from(',4:-inf,0:,3:1.5,1:m,3:inf,'),
        ]),
      ),
    ).toBe(true);
    expect(decodeOutboxValue(String(entry.get('valueType')), field)).toEqual(value);
  });

  it("an event without a value carries its reason; one without either carries neither; an untracked key's entry has no deadline", async () => {
    const missing = await appendOf(tracked({ valueMissing: 'read-late' }));
    expect(missing.entry.get('valueMissing')).toBe('read-late');
    expect(missing.entry.has('value')).toBe(false);
    expect(missing.entry.has('valueType')).toBe(false);
    const bare = await appendOf(event(Buffer.from('k')));
    expect([...bare.entry.keys()]).not.toEqual(expect.arrayContaining(['deadlineMs']));
    expect([...bare.entry.keys()].filter((k) => k.startsWith('value'))).toEqual([]);
  });

  it('the bound: a value whose encoding is over maxValueBytes is not carried, the entry says too-large; at the bound it is', async () => {
    // 3 items of 1 byte: 3 x "1:x," = 12 bytes encoded.
    const value: ExpiredValue = { type: 'list', items: ['a', 'b', 'c'].map((c) => Buffer.from(c)) };
    const at = await appendOf(tracked({ value }), { maxValueBytes: 12 });
    expect(String(at.entry.get('value'))).toBe('1:a,1:b,1:c,');
    const over = await appendOf(tracked({ value }), { maxValueBytes: 11 });
    expect(over.entry.get('valueMissing')).toBe('too-large');
    expect(over.entry.has('value')).toBe(false);
    expect(over.entry.has('valueType')).toBe(false);
  });

  it('writes nothing of a value to its logs, on success or failure', async () => {
    const marker = 'VALUE-SECRET-outbox-7f3a';
    const value: ExpiredValue = { type: 'hash', fields: [[Buffer.from('token'), Buffer.from(marker)]] };
    const unconfirmed = async () => confirmed('2-0', 0);
    const { redis } = fakeRedis({
      replies: [async () => confirmed('1-0', 1), unconfirmed, unconfirmed, unconfirmed],
      trim: async () => {
        throw new Error('NOPERM');
      },
    });
    const { handler, records, events } = setup(redis, { trimEveryAppends: 1 });
    await handler(tracked({ value }), ctx(1)); // appended; its trim fails and is logged
    expect(events('outbox.trim_failed')).toHaveLength(1);
    const error = await Promise.resolve(handler(tracked({ value }), ctx(1))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxUnconfirmedError);
    expect(JSON.stringify(records)).not.toContain(marker);
    expect(`${String(error)} ${JSON.stringify(error)} ${String((error as Error).cause)}`).not.toContain(
      marker,
    );
  });
});
