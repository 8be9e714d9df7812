import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyspaceKeys } from '../../../core/keys.ts';
import { createLogger, type Logger } from '../../../core/logger.ts';
import { EmfMetrics } from '../../../core/metrics.ts';
import type { ExpiryEvent } from '../../../worker/expiry/expiry-event.ts';
import { type EventMeta, Processor } from '../../../worker/expiry/processor.ts';
import type { ExpiredValue, ExpiryHandler } from '../../../worker/handlers/expiry-handler.ts';
import { logHandler } from '../../../worker/handlers/log-handler.ts';
import {
  type AppendReply,
  createStreamHandler,
  type OutboxRedis,
} from '../../../worker/handlers/stream-handler.ts';
import { FencedTokenError } from '../../../worker/scripts/script-errors.ts';
import { decodeStrict } from '../../support/log-capture.ts';
import { FakeLeadership, fakeClock } from '../worker/support/fakes.ts';

/**
 * Values are user data (docs/security.md, "Values"): a known value marker, in every type and every
 * position a value has (string bytes, hash field and value, list item, set member, zset member), goes
 * through the processor and the built-in handlers, on their success and failure paths, at LOG_LEVEL
 * debug; no stdout line (log or EMF document) may hold it in any encoding the logger could produce.
 * The outbox does get it (that is its job), which shows the value really went through.
 *
 * Unit level: the capture itself (the leader reading values before the deadline) is wired elsewhere;
 * test/integration/security/acl-tls.test.ts greps a real worker's output for secrets and is the
 * place for the same check end to end once values flow there.
 */

const T0 = 1_700_000_000_000;
const MARKER = `VALUE-SECRET-${randomUUID()}`;

/** The marker as a logger could print it: raw, hex, a Buffer's JSON bytes, base64 at each alignment. */
function encodedForms(text: string): string[] {
  const bytes = Buffer.from(text);
  const forms = [text, bytes.toString('hex'), bytes.toJSON().data.join(',')];
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64');
    // The characters that depend on the marker alone (not on the padding before it or the end).
    forms.push(b64.slice(pad === 0 ? 0 : 4, -4));
  }
  return forms;
}

function valuesWithMarker(): ExpiredValue[] {
  const m = Buffer.from(MARKER);
  return [
    { type: 'string', bytes: m },
    { type: 'hash', fields: [[Buffer.from('token'), m]] },
    { type: 'hash', fields: [[m, Buffer.from('1')]] },
    { type: 'list', items: [Buffer.from('a'), m] },
    { type: 'set', members: [m] },
    { type: 'zset', members: [[m, 42]] },
  ];
}

/** A worker's processor and handler writing to one stdout, as in the process (worker/main.ts). */
function worker(
  makeHandler: (logger: Logger, metrics: EmfMetrics) => ExpiryHandler,
  handlerTimeoutMs = 1000,
) {
  const stdout: string[] = [];
  const logger = createLogger({
    level: 'debug',
    base: { workerId: 'w-secrecy' },
    write: (line) => {
      decodeStrict(line); // every line is a catalog line
      stdout.push(line);
    },
  });
  const metrics = new EmfMetrics({ namespace: 'Test', leaderName: 'test', write: (l) => stdout.push(l) });
  const leadership = new FakeLeadership();
  leadership.lead(3, T0 + 60_000);
  const processor = new Processor({
    handler: makeHandler(logger, metrics),
    leadership,
    clock: fakeClock,
    logger,
    metrics,
    concurrency: 4,
    handlerTimeoutMs,
    queueCapacity: 100,
    // Value capture's hand-out at the call's start (precise-expiry.ts takeValue in the worker).
    takeValue: (event) => {
      const value = values.get(event.key.toString());
      return value === undefined ? { valueMissing: 'not-tracked' } : { value };
    },
  });
  const values = new Map<string, ExpiredValue>();
  let seq = 0;
  const offer = (value: ExpiredValue, replayed = false) => {
    seq++;
    const event: ExpiryEvent = {
      key: Buffer.from(`session:${seq}`),
      node: '127.0.0.1:7000',
      nodeId: 'node-a',
      receivedAt: Date.now(),
      receivedAtMono: Date.now(),
      receivedIndex: seq,
      deadlineMs: T0 - 5,
      deadlineLocalMs: T0 - 5,
    };
    values.set(event.key.toString(), value);
    const meta: EventMeta = { seq, replayed };
    expect(processor.offer(event, meta)).toBe('queued');
  };
  const output = () => {
    metrics.flush();
    return stdout.join('\n');
  };
  return { offer, output, stdout };
}

function fakeOutbox(replies: (() => Promise<AppendReply>)[]) {
  const appended: (string | Buffer)[][] = [];
  const redis: OutboxRedis = {
    hasReplicas: () => true,
    append: (_stream, _fence, args) => {
      appended.push([...args]);
      return (replies.shift() ?? (async () => ({ script: { streamId: '1-0', appended: true }, acked: 1 })))();
    },
    trim: async () => {
      throw new Error('NOPERM no permissions');
    },
  };
  return { redis, appended };
}

describe('a known value never reaches a log line', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('HANDLER=log: key.processed of every type carries its size, never the marker', async () => {
    const { offer, output, stdout } = worker(() => logHandler);
    for (const value of valuesWithMarker()) offer(value);
    offer(valuesWithMarker()[0] as ExpiredValue, true);
    await vi.advanceTimersByTimeAsync(10);
    const processed = stdout.map((l) => JSON.parse(l)).filter((l) => l.event === 'key.processed');
    expect(processed.map((l) => l.valueType)).toEqual([
      'string',
      'hash',
      'hash',
      'list',
      'set',
      'zset',
      'string',
    ]);
    expect(processed.every((l) => typeof l.valueBytes === 'number' && l.valueBytes >= MARKER.length)).toBe(
      true,
    );
    const text = output();
    for (const form of encodedForms(MARKER)) expect(text).not.toContain(form);
  });

  it('HANDLER=stream: the outbox gets the marker; no line does, on success, trim failure, fenced, unconfirmed, lost replies and timeouts', async () => {
    const unconfirmed = async (): Promise<AppendReply> => ({
      script: { streamId: '9-0', appended: true },
      acked: 0,
    });
    const { redis, appended } = fakeOutbox([
      // 6 values, one appended each (a trim after each fails and is logged) ...
      ...Array.from(
        { length: 6 },
        () => async (): Promise<AppendReply> => ({
          script: { streamId: '1-0', appended: true },
          acked: 1,
        }),
      ),
      // ... then a fenced append, an unconfirmed one (3 attempts), lost replies, an error reply ...
      async () => ({
        script: new FencedTokenError({ cause: new Error('FENCED token 3 is below 4') }),
        acked: undefined,
      }),
      unconfirmed,
      unconfirmed,
      unconfirmed,
      async () => Promise.reject(new Error('Connection is closed.')),
      async () => ({ script: new Error('CLUSTERDOWN The cluster is down'), acked: undefined }),
      async () => Promise.reject(new Error('Connection is closed.')),
      // ... and one that never answers (the call times out).
      () => new Promise<AppendReply>(() => {}),
    ]);
    const { offer, output, stdout } = worker(
      (logger, metrics) =>
        createStreamHandler({
          redis,
          keys: new KeyspaceKeys('secrecy'),
          logger,
          metrics,
          trimEveryAppends: 1,
          sleep: async () => {},
        }),
      500,
    );
    const values = valuesWithMarker();
    for (const value of values) offer(value);
    await vi.advanceTimersByTimeAsync(10);
    for (let i = 0; i < 4; i++) {
      offer(values[i % values.length] as ExpiredValue);
      await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(1000); // the last call times out
    const records = stdout.filter((l) => !l.includes('"_aws"')).map((l) => JSON.parse(l));
    expect(records.filter((l) => l.event === 'key.processed')).toHaveLength(6);
    expect(records.filter((l) => l.event === 'outbox.trim_failed')).toHaveLength(6);
    expect(records.filter((l) => l.event === 'handler.failed').map((l) => l.error?.name)).toEqual([
      'FencedAppendError',
      'OutboxUnconfirmedError',
      'OutboxUnconfirmedError',
      'HandlerTimeoutError',
    ]);
    // The value did go through: the outbox's appends hold the marker (in the `value` field).
    expect(appended.some((args) => args.some((a) => Buffer.from(a).includes(MARKER)))).toBe(true);
    const text = output();
    for (const form of encodedForms(MARKER)) expect(text).not.toContain(form);
  });

  it("the stream handler's own lines (trim failures, warnings) hold no value either", async () => {
    const lines: string[] = [];
    const { redis } = fakeOutbox([]);
    const handler = createStreamHandler({
      redis: { ...redis, hasReplicas: () => false },
      keys: new KeyspaceKeys('secrecy'),
      logger: createLogger({
        level: 'debug',
        write: (line) => {
          decodeStrict(line);
          lines.push(line);
        },
      }),
      metrics: new EmfMetrics({ namespace: 'Test', leaderName: 'test', write: (l) => void lines.push(l) }),
      trimEveryAppends: 1,
      sleep: async () => {},
    });
    const ctx = {
      fencingToken: 1,
      signal: new AbortController().signal,
      leaseValid: () => true,
      log: createLogger({ write: (l) => void lines.push(l) }).lines(),
    };
    for (const value of valuesWithMarker())
      await handler(
        {
          id: 'node-a:1',
          key: 'k',
          keyBytes: Buffer.from('k'),
          node: 'n',
          nodeId: 'node-a',
          seq: 1,
          receivedAt: T0,
          replayed: false,
          value,
        },
        ctx,
      );
    const text = lines.join('\n');
    expect(text).toContain('outbox.unreplicated');
    expect(text).toContain('outbox.trim_failed');
    for (const form of encodedForms(MARKER)) expect(text).not.toContain(form);
  });
});
