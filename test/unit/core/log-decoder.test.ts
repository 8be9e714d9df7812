import { describe, expect, it } from 'vitest';
import { decodeLogLine, decodeLogRecord, loggedErrorMessage } from '../../../core/log-decoder.ts';
import { LOG_EVENT_NAMES } from '../../../core/log-events.ts';
import { createLineLogger, createLogger } from '../../../core/logger.ts';
import { EmfMetrics } from '../../../core/metrics.ts';
import { EXAMPLE_EVENTS, exampleLine } from '../../support/log-examples.ts';

function written(write: (logger: ReturnType<typeof createLogger>) => void): string {
  const lines: string[] = [];
  write(createLogger({ base: { workerId: 'w1' }, write: (line) => lines.push(line) }));
  expect(lines).toHaveLength(1);
  return lines[0] as string;
}

const processedFields = {
  key: 'k:1',
  node: '127.0.0.1:7000',
  fencingToken: 3,
  eventId: 'n1:7',
  latencyMs: 1.5,
  handlerMs: 0.2,
  replayed: false,
};

describe('decodeLogLine', () => {
  it('turns a line the logger wrote into the typed record of its event', () => {
    const line = written((logger) => logger.info('key.processed', processedFields));
    const decoded = decodeLogLine(line);
    expect(decoded).toEqual({ kind: 'event', record: JSON.parse(line) });
    const record = decodeLogRecord(line);
    // Narrowed by `event`: the fields are typed (a compile error otherwise).
    if (record?.event !== 'key.processed') throw new Error('not key.processed');
    const { key, fencingToken, replayed, workerId } = record;
    expect({ key, fencingToken, replayed, workerId }).toEqual({
      key: 'k:1',
      fencingToken: 3,
      replayed: false,
      workerId: 'w1',
    });
  });

  it('accepts an absent optional field, null where the catalog allows it, and keeps extra base fields', () => {
    const line = written((logger) =>
      logger.child({ runId: 'r1', extra: 1 }).info('leader.reported', {
        state: 'none',
        leaderWorkerId: null,
        fencingToken: null,
        noLeaderSince: null,
      }),
    );
    expect(decodeLogLine(line)).toMatchObject({ kind: 'event', record: { runId: 'r1', extra: 1 } });
  });

  it('accepts every example line of the tests (test/support/log-examples.ts)', () => {
    expect(EXAMPLE_EVENTS.length).toBeGreaterThan(10);
    for (const event of EXAMPLE_EVENTS)
      expect(decodeLogLine(exampleLine(event, 0))).toMatchObject({ kind: 'event' });
  });

  it('refuses half a line, a JSON value that is not an object, and a line without event', () => {
    const line = written((logger) => logger.info('key.processed', processedFields));
    expect(decodeLogLine(line.slice(0, 40))).toMatchObject({ kind: 'invalid', reason: 'not-json' });
    expect(decodeLogLine('[1,2]')).toMatchObject({ kind: 'invalid', reason: 'not-an-object' });
    expect(decodeLogLine('{"time":"x","level":"info"}')).toMatchObject({
      kind: 'invalid',
      reason: 'no-event',
    });
  });

  it('refuses an event outside the catalog but hands back its object (a handler module’s own line)', () => {
    const lines: string[] = [];
    createLineLogger({ write: (line) => lines.push(line) }).error('handler.own_event', {
      error: new Error('x'),
    });
    const decoded = decodeLogLine(lines[0] as string);
    expect(decoded).toMatchObject({
      kind: 'invalid',
      reason: 'unknown-event',
      value: { event: 'handler.own_event' },
    });
  });

  it('refuses a level the event is not written at, a missing required field and a field of the wrong kind', () => {
    const base = { time: new Date(0).toISOString(), workerId: 'w1', event: 'key.processed' };
    const line = (fields: Record<string, unknown>) => JSON.stringify({ ...base, level: 'info', ...fields });
    expect(decodeLogLine(JSON.stringify({ ...base, level: 'warn', ...processedFields }))).toMatchObject({
      kind: 'invalid',
      reason: 'wrong-level',
    });
    const { eventId: _, ...withoutId } = processedFields;
    expect(decodeLogLine(line(withoutId))).toMatchObject({
      kind: 'invalid',
      reason: 'wrong-field',
      detail: 'key.processed: eventId is missing',
    });
    expect(decodeLogLine(line({ ...processedFields, fencingToken: '3' }))).toMatchObject({
      kind: 'invalid',
      reason: 'wrong-field',
      detail: 'key.processed: fencingToken is not number',
    });
    expect(decodeLogLine(line({ ...processedFields, keyBase64: 5 }))).toMatchObject({
      reason: 'wrong-field',
    });
    expect(decodeLogLine(line({ ...processedFields, node: null }))).toMatchObject({ reason: 'wrong-field' });
    expect(
      decodeLogLine(JSON.stringify({ ...base, level: 'info', time: 5, ...processedFields, time2: 1 })),
    ).toMatchObject({
      reason: 'wrong-field',
    });
  });

  it('tells EMF metric documents apart', () => {
    const lines: string[] = [];
    const metrics = new EmfMetrics({
      namespace: 'Test',
      leaderName: 'test',
      write: (line) => lines.push(line),
    });
    metrics.count('EventsReceived', 1);
    metrics.flush();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(decodeLogLine(line).kind).toBe('metrics');
  });

  it('knows every catalogued name, and reads an error field’s message', () => {
    expect(LOG_EVENT_NAMES.length).toBeGreaterThan(70);
    expect(new Set(LOG_EVENT_NAMES).size).toBe(LOG_EVENT_NAMES.length);
    expect(loggedErrorMessage({ name: 'Error', message: 'boom' })).toBe('boom');
    expect(loggedErrorMessage('text')).toBe('text');
    expect(loggedErrorMessage(undefined)).toBeUndefined();
  });
});
