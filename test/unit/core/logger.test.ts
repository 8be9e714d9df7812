import { describe, expect, it } from 'vitest';
import { createLineLogger, createLogger } from '../../../core/logger.ts';

// The mechanics (levels, secrets, serialisation) are the same for any event name: these tests write
// through the untyped LineLogger so their fields need not be a catalogued event's.
function capture(options: Parameters<typeof createLineLogger>[0] = {}) {
  const lines: string[] = [];
  const logger = createLineLogger({ ...options, write: (line) => lines.push(line), now: () => new Date(0) });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logger', () => {
  it('writes one JSON object per line with event, time, level and base fields', () => {
    const { logger, records } = capture({ base: { workerId: 'w1' } });
    logger.info('leader.acquired', { fencingToken: 7 });
    expect(records()).toEqual([
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'info',
        event: 'leader.acquired',
        workerId: 'w1',
        fencingToken: 7,
      },
    ]);
  });

  it('filters by level', () => {
    const { logger, lines } = capture({ level: 'warn' });
    logger.info('a');
    logger.debug('b');
    logger.warn('c');
    expect(lines).toHaveLength(1);
  });

  it('never writes a secret: by field name at any depth and by value anywhere', () => {
    const secret = 'S3cr3t-auth-token-value';
    const { logger, lines } = capture({ secrets: [secret] });
    const config = { redis: { password: secret, username: 'u', nodes: [] }, authToken: 'other-token-xyz' };
    logger.info('worker.started', { config, note: `connecting with ${secret}` });
    logger.error('redis.error', {
      error: new Error(`WRONGPASS for ${secret}`, { cause: new Error(secret) }),
    });
    const text = lines.join('\n');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('other-token-xyz');
    expect(text).toContain('[redacted]');
    // A fencing token is not a secret.
    logger.info('leader.acquired', { fencingToken: 3 });
    expect(JSON.parse(lines.at(-1) ?? '{}')).toMatchObject({ fencingToken: 3 });
  });

  it("keeps an AggregateError's member errors (a lease vote's failures are the members of its cause)", () => {
    const secret = 'S3cr3t-auth-token-value';
    const { logger, records, lines } = capture({ secrets: [secret] });
    const votes = new AggregateError([
      new Error('vote timed out after 300 ms'),
      new Error(`NOAUTH ${secret}`),
    ]);
    logger.warn('leader.renew_failed', {
      error: new Error('lease extend: 0 refused, 2 failed of 2', { cause: votes }),
    });
    expect(records()[0]).toMatchObject({
      error: {
        cause: {
          name: 'AggregateError',
          errors: [
            { name: 'Error', message: 'vote timed out after 300 ms' },
            { name: 'Error', message: 'NOAUTH [redacted]' },
          ],
        },
      },
    });
    expect(lines.join('\n')).not.toContain(secret);
  });

  it('serializes errors, bigints, buffers and cycles safely', () => {
    const { logger, records } = capture();
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    logger.info('x', { error: new TypeError('bad'), big: 10n, buf: Buffer.from([0xff]), cyclic });
    expect(records()[0]).toMatchObject({
      error: { name: 'TypeError', message: 'bad' },
      big: '10',
      buf: { base64: '/w==' },
      cyclic: { a: 1, self: '[circular]' },
    });
  });

  it('child loggers add fields and share secrets', () => {
    const { logger, records } = capture({ secrets: ['abcdef-secret'] });
    logger.child({ node: '127.0.0.1:7000' }).warn('subscription.down', { detail: 'abcdef-secret' });
    expect(records()[0]).toMatchObject({ node: '127.0.0.1:7000', detail: '[redacted]' });
  });

  it('the catalog-typed logger writes the same line as the untyped one', () => {
    const typed: string[] = [];
    const untyped: string[] = [];
    const options = { base: { workerId: 'w1' }, now: () => new Date(0) };
    createLogger({ ...options, write: (line) => typed.push(line) }).info('leader.acquired', {
      fencingToken: 7,
      mode: 'quorum',
    });
    createLineLogger({ ...options, write: (line) => untyped.push(line) }).info('leader.acquired', {
      fencingToken: 7,
      mode: 'quorum',
    });
    expect(typed).toEqual(untyped);
    expect(typed).toHaveLength(1);
  });

  it('refuses at compile time what the catalog does not list (checked by tsc --noEmit)', () => {
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => lines.push(line), level: 'debug' });
    // @ts-expect-error a misspelt event
    logger.info('leader.aquired', { fencingToken: 1, mode: 'quorum' });
    // @ts-expect-error a required field missing
    logger.info('leader.acquired', { fencingToken: 1 });
    // @ts-expect-error a field the event does not have
    logger.info('leader.released', { fencingToken: 1, extra: true });
    // @ts-expect-error an event at a level it is not written at
    logger.error('key.processed', {
      key: 'k',
      node: 'n',
      fencingToken: 1,
      eventId: 'e',
      latencyMs: 1,
      handlerMs: 1,
      replayed: false,
    });
    // The lines are still written: the check is the compiler's, not the logger's.
    expect(lines).toHaveLength(4);
  });

  it('lines() writes events outside the catalog with the same base fields and secrets', () => {
    const lines: string[] = [];
    const logger = createLogger({
      base: { workerId: 'w1' },
      secrets: ['abcdef-secret'],
      write: (l) => lines.push(l),
    });
    logger.child({ node: 'n1' }).lines().info('handler.own_event', { note: 'abcdef-secret' });
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      event: 'handler.own_event',
      workerId: 'w1',
      node: 'n1',
      note: '[redacted]',
    });
  });
  it('writes the line a record of the same fields gives, a later field winning, whatever the names', () => {
    // Lines are written as text; the record (head, base fields, then the line's fields, a repeated
    // name keeping its first place and taking the last value) is the contract. Random field sets,
    // names drawn so that they repeat the head's and the base's.
    let seed = 11;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const names = ['count', 'node', 'workerId', 'event', 'time', 'level', 'password', 'ratio', 'note', 'ok'];
    const values = [
      1,
      -0,
      2.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1e21,
      true,
      false,
      null,
      undefined,
      'plain',
      'has "quotes" \\ and \n',
      'my-secret-value x',
      'é😀',
      'lone \ud800 surrogate',
    ];
    const base = { workerId: 'w1', node: 'n0' };
    const { logger, lines } = capture({ base, secrets: ['my-secret-value'] });
    const expected: string[] = [];
    for (let i = 0; i < 500; i++) {
      const fields: Record<string, unknown> = {};
      const count = next() % 5;
      for (let j = 0; j < count; j++)
        fields[names[next() % names.length] as string] = values[next() % values.length];
      logger.info('some.event', fields);
      const record: Record<string, unknown> = {
        time: '1970-01-01T00:00:00.000Z',
        level: 'info',
        event: 'some.event',
      };
      for (const source of [base, fields]) {
        for (const [name, value] of Object.entries(source)) {
          record[name] =
            name === 'password' && value !== null && value !== undefined
              ? '[redacted]'
              : typeof value === 'string'
                ? value.split('my-secret-value').join('[redacted]')
                : value;
        }
      }
      expected.push(JSON.stringify(record));
    }
    expect(lines).toEqual(expected);
  });

  it("writes a class instance's own fields, not what its toJSON would give", () => {
    // A line written straight as text is one JSON.stringify of the fields, which would call a
    // prototype's toJSON; the record (the contract) holds the instance's own enumerable fields.
    class Fields {
      readonly count = 3;
      readonly note = 'n';
      toJSON() {
        return { replaced: true };
      }
    }
    const { logger, records } = capture();
    logger.info('a', new Fields() as unknown as Record<string, unknown>);
    expect(records()).toEqual([
      { time: '1970-01-01T00:00:00.000Z', level: 'info', event: 'a', count: 3, note: 'n' },
    ]);
  });

  it('writes base fields that are objects as they are at each line', () => {
    const state = { round: 1 };
    const { logger, records } = capture({ base: { state } });
    logger.info('a');
    state.round = 2;
    logger.info('b');
    expect(records().map((r) => r.state)).toEqual([{ round: 1 }, { round: 2 }]);
  });
});
