import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../../core/clock.ts';
import type { LogLine, LogRecord } from '../../../../core/log-events.ts';
import { createLogger } from '../../../../core/logger.ts';
import type { ExpiryEvent } from '../../../../worker/expiry/expiry-event.ts';
import {
  type CapturedValue,
  type DoneListener,
  type EventMeta,
  Processor,
  type ProcessorOptions,
} from '../../../../worker/expiry/processor.ts';
import type {
  ExpiredValue,
  ExpiryHandler,
  HandlerContext,
  HandlerEvent,
} from '../../../../worker/handlers/expiry-handler.ts';
import {
  HandlerAbortedError,
  HandlerTimeoutError,
  UnsettledHandlerError,
} from '../../../../worker/handlers/handler-errors.ts';
import { decodeStrict } from '../../../support/log-capture.ts';
import { captureLogger, captureMetrics, FakeLeadership, fakeClock } from '../support/fakes.ts';

const T0 = 1_700_000_000_000;
let seq = 0;

/** An event and its meta as the replay coordinator offers them (the processor never numbers). */
function numbered(key: string | Buffer, node = '127.0.0.1:7000'): [ExpiryEvent, EventMeta] {
  seq++;
  const event: ExpiryEvent = {
    key: typeof key === 'string' ? Buffer.from(key) : key,
    node,
    nodeId: `id-${node}`,
    receivedAt: Date.now(),
    receivedAtMono: Date.now(),
    receivedIndex: seq,
  };
  return [event, { seq, replayed: false }];
}

interface Call {
  readonly event: HandlerEvent;
  readonly ctx: HandlerContext;
  resolve(): void;
  reject(error: unknown): void;
}

/** A handler whose calls stay pending until the test settles them. */
function controllableHandler(): { handler: ExpiryHandler; calls: Call[] } {
  const calls: Call[] = [];
  const handler: ExpiryHandler = (e, ctx) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ event: e, ctx, resolve, reject });
    });
  return { handler, calls };
}

function setup({ onDone, ...overrides }: Partial<ProcessorOptions> & { onDone?: DoneListener } = {}) {
  const log = captureLogger();
  const { metrics, totals } = captureMetrics();
  const leadership = new FakeLeadership();
  const processor = new Processor({
    handler: () => {},
    leadership,
    clock: fakeClock,
    logger: log.logger,
    metrics,
    concurrency: 2,
    handlerTimeoutMs: 1000,
    queueCapacity: 100,
    ...overrides,
  });
  if (onDone) processor.onDone(onDone);
  return { processor, leadership, totals, ...log };
}

describe('Processor', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sequence 10: ctx.leaseValid() is false once the monotonic deadline passed, before any timer fired', async () => {
    const { handler, calls } = controllableHandler();
    const { processor, leadership } = setup({ handler });
    const LEASE_DEADLINE_MS = 2000;
    /** How far past the deadline the (paused) process finds the clock when it resumes. */
    const PAUSE_OVERSHOOT_MS = 500;
    leadership.lead(3, T0 + LEASE_DEADLINE_MS);
    processor.offer(...numbered('paused'));
    await vi.advanceTimersByTimeAsync(0);
    const ctx = calls[0]?.ctx as HandlerContext;
    expect(ctx.leaseValid()).toBe(true);

    // A pause (SIGSTOP, GC, CPU throttling): the clock jumps, no timer has run yet, so the signal that
    // the deadline timer would abort is still quiet. The synchronous check must not be.
    vi.setSystemTime(T0 + LEASE_DEADLINE_MS + PAUSE_OVERSHOOT_MS);
    expect(ctx.signal.aborted).toBe(false);
    expect(ctx.leaseValid()).toBe(false);

    // A renewal of the same term makes it valid again; a new term never does for this call.
    leadership.renew(T0 + 10 * LEASE_DEADLINE_MS);
    expect(ctx.leaseValid()).toBe(true);
    leadership.lead(4, T0 + 10 * LEASE_DEADLINE_MS);
    expect(ctx.leaseValid()).toBe(false);
    calls[0]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
  });

  it('key.processed and handler.failed carry handlerMs: a call that spans a pause shows it started before it', async () => {
    const { handler, calls } = controllableHandler();
    const { processor, leadership, events } = setup({ handler });
    /** How long the call runs, a pause of the process included (SIGSTOP in leader-sigstop). */
    const CALL_SPAN_MS = 6000;
    leadership.lead(3, T0 + 10 * CALL_SPAN_MS);
    processor.offer(...numbered('spans-a-pause'));
    processor.offer(...numbered('fails-after-a-pause'));
    await vi.advanceTimersByTimeAsync(0);
    vi.setSystemTime(T0 + CALL_SPAN_MS);
    calls[0]?.resolve();
    calls[1]?.reject(new Error('downstream refused'));
    await vi.advanceTimersByTimeAsync(0);
    expect(events('key.processed')).toMatchObject([{ key: 'spans-a-pause', handlerMs: CALL_SPAN_MS }]);
    expect(events('handler.failed')).toMatchObject([{ key: 'fails-after-a-pause', handlerMs: CALL_SPAN_MS }]);
  });

  it('sequence 10: ctx.leaseValid() is false once the grant signal aborted (stepped down)', async () => {
    const { handler, calls } = controllableHandler();
    const { processor, leadership } = setup({ handler });
    leadership.lead(5, T0 + 2000);
    processor.offer(...numbered('stepping-down'));
    await vi.advanceTimersByTimeAsync(0);
    const ctx = calls[0]?.ctx as HandlerContext;
    expect(ctx.leaseValid()).toBe(true);
    leadership.stepDown();
    expect(ctx.leaseValid()).toBe(false);
    calls[0]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
  });

  it('the one gate policy: a stale deadline holds events queued until a renewal, clearQueue hands them back', async () => {
    const seen: string[] = [];
    const done: string[] = [];
    const { processor, leadership } = setup({
      handler: (e) => void seen.push(e.key),
      onDone: (e, _meta, outcome) => done.push(`${e.key.toString()}:${outcome}`),
    });
    leadership.lead(1, fakeClock.monotonicMs() - 1); // leading, but the deadline is already past (a pause)
    expect(processor.offer(...numbered('held'))).toBe('queued');
    await vi.advanceTimersByTimeAsync(100);
    expect(seen).toEqual([]);
    leadership.renew(fakeClock.monotonicMs() + 10_000);
    await vi.advanceTimersByTimeAsync(50);
    expect(seen).toEqual(['held']);
    leadership.renew(fakeClock.monotonicMs() - 1);
    processor.offer(...numbered('back'));
    expect(processor.clearQueue()).toBe(1);
    expect(done).toEqual(['held:processed', 'back:cleared']);
  });

  // Contract change (one gate policy): an event offered while the gate is closed is held, not dropped
  // (only the coordinator offers, and only while leading). Nothing reaches the handler while not leading.
  it('hands events to the handler only while leading, and logs key.processed per completed call', async () => {
    const seen: string[] = [];
    const { processor, leadership, totals, events } = setup({ handler: (e) => void seen.push(e.key) });
    processor.offer(...numbered('before-leading'));
    await vi.advanceTimersByTimeAsync(100);
    expect(seen).toEqual([]); // held while not leading
    leadership.lead(7, T0 + 2000);
    processor.offer(...numbered('while-leading'));
    await vi.advanceTimersByTimeAsync(50);
    leadership.stepDown();
    processor.offer(...numbered('after-stepping-down'));
    await vi.advanceTimersByTimeAsync(100);

    expect(seen).toEqual(['before-leading', 'while-leading']);
    expect(processor.stats()).toMatchObject({ queued: 1, inFlight: 0 }); // held, never handled
    expect(processor.clearQueue()).toBe(1);
    const processed = events('key.processed');
    expect(processed.map((r) => r.key)).toEqual(['before-leading', 'while-leading']);
    expect(processed[1]).toMatchObject({
      level: 'info',
      key: 'while-leading',
      node: '127.0.0.1:7000',
      fencingToken: 7,
      replayed: false,
    });
    expect(processed[1]?.latencyMs).toBeTypeOf('number');
    expect(totals()).toMatchObject({ EventsProcessed: 2, ProcessingLatencyMs: 2 });
  });

  it('on-time expiry: a tracked event gives the handler its deadline; key.processed and ExpiryLagMs carry the lag', async () => {
    const seen: HandlerEvent[] = [];
    const { processor, leadership, totals, events } = setup({ handler: (e) => void seen.push(e) });
    leadership.lead(7, T0 + 10_000);
    const [tracked, trackedMeta] = numbered('tracked');
    // Deadline 30 ms before now in this worker's clock (the primary's clock is 5 ms ahead of it).
    processor.offer({ ...tracked, deadlineMs: T0 - 25, deadlineLocalMs: T0 - 30 }, trackedMeta);
    processor.offer(...numbered('native'));
    await vi.advanceTimersByTimeAsync(10);
    expect(seen.map((e) => [e.key, e.deadlineMs])).toEqual([
      ['tracked', T0 - 25],
      ['native', undefined],
    ]);
    const [trackedLine, nativeLine] = events('key.processed');
    expect(trackedLine).toMatchObject({ key: 'tracked', deadlineMs: T0 - 25, lagMs: 30 });
    expect(nativeLine?.deadlineMs).toBeUndefined();
    expect(nativeLine?.lagMs).toBeUndefined();
    expect(totals().ExpiryLagMs).toBe(1); // one sample: the native event has no deadline
  });

  it('value capture: the handler gets value or valueMissing as takeValue gave them at the call start; key.processed only the size or the reason', async () => {
    const seen: HandlerEvent[] = [];
    // Raw lines (each also decoded strictly against the catalog), to search them as text.
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', write: (line) => void lines.push(line) });
    const captured = new Map<string, CapturedValue>();
    const { processor, leadership } = setup({
      handler: (e) => void seen.push(e),
      logger,
      takeValue: (event) => captured.get(event.key.toString()) as CapturedValue,
    });
    leadership.lead(7, T0 + 10_000);
    const value: ExpiredValue = {
      type: 'hash',
      fields: [
        [Buffer.from('cart-item'), Buffer.from('VALUE-MARK-1')],
        [Buffer.from([0xff, 0x00]), Buffer.alloc(0)],
      ],
    };
    const [withValue, withValueMeta] = numbered('with-value');
    const [without, withoutMeta] = numbered('without');
    captured.set('with-value', { value });
    captured.set('without', { valueMissing: 'over-budget' });
    processor.offer(withValue, withValueMeta);
    processor.offer(without, withoutMeta);
    processor.offer(...numbered('neither'));
    await vi.advanceTimersByTimeAsync(10);
    expect(seen.map((e) => [e.key, e.value, e.valueMissing])).toEqual([
      ['with-value', value, undefined],
      ['without', undefined, 'over-budget'],
      ['neither', undefined, undefined],
    ]);
    expect(seen[0]?.value).toBe(value); // the very object: the handler gets the exact bytes
    const processed = lines
      .map(decodeStrict)
      .filter((r): r is LogLine<'key.processed'> & LogRecord => r.event === 'key.processed');
    expect(processed.map((l) => [l.key, l.valueType, l.valueBytes, l.valueMissing])).toEqual([
      ['with-value', 'hash', 9 + 12 + 2 + 0, undefined], // payload bytes (expiredValueSize)
      ['without', undefined, undefined, 'over-budget'],
      ['neither', undefined, undefined, undefined],
    ]);
    // Nothing of the contents, in any encoding.
    const text = lines.join('\n');
    for (const secret of ['VALUE-MARK-1', 'cart-item', Buffer.from('VALUE-MARK-1').toString('base64')])
      expect(text).not.toContain(secret);
  });

  it("value capture: a call whose event's value is still being read waits for the read, in order, at most valueWaitMs", async () => {
    const seen: string[] = [];
    const reads = new Map<string, () => void>();
    const captured = new Map<string, CapturedValue>();
    const { processor, leadership } = setup({
      handler: (e) => void seen.push(`${e.key}:${e.value === undefined ? e.valueMissing : 'value'}`),
      concurrency: 4,
      valueWaitMs: 500,
      takeValue: (event) => captured.get(event.key.toString()) ?? { valueMissing: 'read-late' },
      valueReady: (event) => {
        const key = event.key.toString();
        if (captured.has(key) || !reads.has(key)) return undefined;
        return new Promise<void>((resolve) => reads.set(key, resolve));
      },
    });
    leadership.lead(7, T0 + 10_000);
    reads.set('slow', () => {});
    reads.set('lost', () => {});
    processor.offer(...numbered('slow'));
    processor.offer(...numbered('behind'));
    await vi.advanceTimersByTimeAsync(50);
    // The read of `slow` is out: its call waits, and the events behind it keep their place.
    expect(seen).toEqual([]);
    captured.set('slow', { value: { type: 'string', bytes: Buffer.from('v') } });
    reads.get('slow')?.();
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual(['slow:value', 'behind:read-late']);
    // A read that never answers holds its event valueWaitMs at most; takeValue then decides.
    processor.offer(...numbered('lost'));
    await vi.advanceTimersByTimeAsync(499);
    expect(seen).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2);
    expect(seen).toEqual(['slow:value', 'behind:read-late', 'lost:read-late']);
  });

  // Contract change (one gate policy): the queued events are held, no longer dropped (`gated` is gone).
  it('checks the gate at dequeue: events queued while leading are held once the deadline has passed', async () => {
    const { handler, calls } = controllableHandler();
    const done: string[] = [];
    const { processor, leadership, events } = setup({
      handler,
      concurrency: 1,
      onDone: (e, _meta, outcome) => done.push(`${e.key.toString()}:${outcome}`),
    });
    leadership.lead(3, T0 + 500);
    processor.offer(...numbered('first'));
    processor.offer(...numbered('queued-1'));
    processor.offer(...numbered('queued-2'));
    expect(calls).toHaveLength(1);
    expect(processor.stats()).toMatchObject({ queued: 2, inFlight: 1 });

    // A pause past the deadline (no renewal happened): the first call finishes afterwards.
    vi.setSystemTime(T0 + 600);
    calls[0]?.resolve();
    await vi.advanceTimersByTimeAsync(0);

    expect(calls).toHaveLength(1);
    expect(processor.stats()).toMatchObject({ queued: 2, inFlight: 0 });
    expect(events('key.processed').map((r) => r.key)).toEqual(['first']);
    // Leadership ended: the coordinator hands the queue back, unsettled, for the successor.
    expect(processor.clearQueue()).toBe(2);
    expect(done).toEqual(['first:processed', 'queued-1:cleared', 'queued-2:cleared']);
    expect(calls).toHaveLength(1);
  });

  it('runs at most `concurrency` calls at once and starts the next as one completes', async () => {
    const { handler, calls } = controllableHandler();
    const { processor, leadership } = setup({ handler, concurrency: 3 });
    leadership.lead(1, T0 + 60_000);
    for (let i = 0; i < 10; i++) processor.offer(...numbered(`k${i}`));
    expect(calls).toHaveLength(3);
    expect(processor.stats()).toMatchObject({ inFlight: 3, queued: 7 });
    calls[1]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.event.key)).toEqual(['k0', 'k1', 'k2', 'k3']);
    expect(processor.stats().inFlight).toBe(3);
  });

  it('fails a call at the timeout: aborts its signal, logs handler.failed, frees the slot, keeps going', async () => {
    const { handler, calls } = controllableHandler();
    const { processor, leadership, events, totals } = setup({
      handler,
      concurrency: 1,
      handlerTimeoutMs: 1000,
    });
    leadership.lead(4, T0 + 60_000);
    processor.offer(...numbered('hangs'));
    processor.offer(...numbered('next'));
    const hung = calls[0];
    expect(hung?.ctx.signal.aborted).toBe(false);

    await vi.advanceTimersByTimeAsync(999);
    expect(events('handler.failed')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);

    expect(hung?.ctx.signal.aborted).toBe(true);
    expect(hung?.ctx.signal.reason).toBeInstanceOf(HandlerTimeoutError);
    const failed = events('handler.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      key: 'hangs',
      fencingToken: 4,
      error: { name: 'HandlerTimeoutError', code: 'HANDLER_TIMEOUT' },
    });
    expect(calls.map((c) => c.event.key)).toEqual(['hangs', 'next']);
    expect(processor.stats().abandonedCalls).toBe(1);

    // The hung call settling late changes nothing but the abandoned count.
    hung?.resolve();
    calls[1]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(processor.stats().abandonedCalls).toBe(0);
    expect(events('key.processed').map((r) => r.key)).toEqual(['next']);
    expect(totals()).toMatchObject({ HandlerFailures: 1, EventsProcessed: 1 });
  });

  it('logs and counts a handler that throws or rejects, and carries on', async () => {
    const handler: ExpiryHandler = (e) => {
      if (e.key === 'throws') throw new Error('boom');
      if (e.key === 'rejects') return Promise.reject(new TypeError('bad'));
    };
    const { processor, leadership, events, totals } = setup({ handler });
    leadership.lead(9, T0 + 60_000);
    for (const key of ['throws', 'ok-1', 'rejects', 'ok-2']) processor.offer(...numbered(key));
    await vi.advanceTimersByTimeAsync(0);
    expect(events('handler.failed').map((r) => [r.key, (r.error as { message: string }).message])).toEqual([
      ['throws', 'boom'],
      ['rejects', 'bad'],
    ]);
    expect(events('key.processed').map((r) => r.key)).toEqual(['ok-1', 'ok-2']);
    expect(totals()).toMatchObject({ HandlerFailures: 2, EventsProcessed: 2 });
  });

  it("aborts a running call's signal when leadership is lost", async () => {
    const { handler, calls } = controllableHandler();
    const { processor, leadership } = setup({ handler });
    leadership.lead(2, T0 + 60_000);
    processor.offer(...numbered('k'));
    leadership.stepDown();
    expect(calls[0]?.ctx.signal.aborted).toBe(true);
    expect(calls[0]?.ctx.signal.reason).toBeInstanceOf(HandlerAbortedError);
    calls[0]?.reject(calls[0].ctx.signal.reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(processor.stats()).toMatchObject({ inFlight: 0, abandonedCalls: 0 });
  });

  it('sequence 5: a handler that throws an UnsettledHandlerError (or a subclass) is reported failed but left unsettled', async () => {
    class NotReplicatedError extends UnsettledHandlerError {
      constructor() {
        super('OUTBOX_NOT_REPLICATED', 'no replica confirmed the append');
      }
    }
    const outcomes: string[] = [];
    const { processor, leadership, events, totals } = setup({
      handler: (e) => {
        if (e.key === 'unsettled') throw new NotReplicatedError();
        if (e.key === 'base') return Promise.reject(new UnsettledHandlerError('UNSETTLED', 'not sure'));
        if (e.key === 'failed') throw new Error('boom');
      },
      onDone: (e, _meta, outcome) => outcomes.push(`${e.key.toString()}:${outcome}`),
    });
    leadership.lead(1, T0 + 60_000);
    for (const key of ['unsettled', 'base', 'failed', 'ok']) processor.offer(...numbered(key));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcomes.sort()).toEqual([
      'base:unsettled',
      'failed:failed',
      'ok:processed',
      'unsettled:unsettled',
    ]);
    expect(
      events('handler.failed')
        .map((r) => r.key)
        .sort(),
    ).toEqual(['base', 'failed', 'unsettled']);
    expect(totals()).toMatchObject({ HandlerFailures: 3, EventsProcessed: 1 });
  });

  it('gives a non-UTF-8 key to the handler as bytes and logs it with keyBase64', async () => {
    const received: HandlerEvent[] = [];
    const { processor, leadership, events } = setup({ handler: (e) => void received.push(e) });
    leadership.lead(1, T0 + 60_000);
    const bytes = Buffer.from([0x6b, 0xff, 0xfe]);
    processor.offer(...numbered(bytes));
    await vi.advanceTimersByTimeAsync(0);
    expect(received[0]?.keyBytes.equals(bytes)).toBe(true);
    const line = events('key.processed')[0];
    expect(line?.key).toBe('k\ufffd\ufffd');
    expect(Buffer.from(String(line?.keyBase64), 'base64').equals(bytes)).toBe(true);
  });

  it('sheds by tail drop when the queue is full, counts EventsShed and rate-limits events.shed', async () => {
    const { handler, calls } = controllableHandler();
    const { processor, leadership, events, totals } = setup({
      handler,
      concurrency: 1,
      queueCapacity: 3,
      shedLogIntervalMs: 1000,
    });
    leadership.lead(1, T0 + 60_000);
    for (let i = 0; i < 10; i++) processor.offer(...numbered(`k${i}`)); // 1 running + 3 queued + 6 shed
    expect(processor.stats()).toMatchObject({ inFlight: 1, queued: 3 });
    // The first shed after a quiet period is logged at once; the rest are summed per interval.
    expect(events('events.shed').map((r) => [r.count, r.reason])).toEqual([[1, 'queue-full']]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(events('events.shed').map((r) => [r.count, r.reason])).toEqual([
      [1, 'queue-full'],
      [5, 'queue-full'],
    ]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(events('events.shed')).toHaveLength(2);
    expect(totals().EventsShed).toBe(6);

    // Queued events keep their order: the oldest are handled, the newest were dropped.
    for (let i = 0; i < 4; i++) {
      calls[i]?.resolve();
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(calls.map((c) => c.event.key)).toEqual(['k0', 'k1', 'k2', 'k3']);
  });

  it('never grows past its capacity whatever the arrival rate', () => {
    const { handler } = controllableHandler();
    const { processor, leadership, totals } = setup({ handler, concurrency: 4, queueCapacity: 1000 });
    leadership.lead(1, T0 + 60_000);
    for (let i = 0; i < 50_000; i++) processor.offer(...numbered(`k${i}`));
    expect(processor.stats()).toMatchObject({ inFlight: 4, queued: 1000 });
    expect(totals().EventsShed).toBe(50_000 - 1004);
  });

  // Contract change (one gate policy): followers no longer offer and drop at the gate (the coordinator
  // offers only while leading); what a closed gate holds stays within the queue's bound.
  it('a closed gate hands nothing to the handler and holds no more than the queue capacity', async () => {
    const seen: string[] = [];
    const { processor, totals } = setup({ handler: (e) => void seen.push(e.key), queueCapacity: 10 });
    for (let i = 0; i < 1000; i++) processor.offer(...numbered(`k${i}`));
    await vi.advanceTimersByTimeAsync(100);
    expect(seen).toEqual([]);
    expect(processor.stats()).toMatchObject({ queued: 10, inFlight: 0 });
    expect(totals().EventsShed).toBe(990);
  });

  describe('drain (shutdown)', () => {
    it('stops intake, lets running calls and the queue finish within the bound', async () => {
      const { handler, calls } = controllableHandler();
      const { processor, leadership, events } = setup({ handler, concurrency: 1 });
      leadership.lead(5, T0 + 60_000);
      processor.offer(...numbered('running'));
      processor.offer(...numbered('queued'));
      const drained = processor.drain(2000);
      processor.offer(...numbered('after-intake-stopped'));
      calls[0]?.resolve();
      await vi.advanceTimersByTimeAsync(0);
      calls[1]?.resolve();
      await vi.advanceTimersByTimeAsync(0);
      await expect(drained).resolves.toEqual({ drained: true, abortedCalls: 0, droppedEvents: 0 });
      expect(events('key.processed').map((r) => r.key)).toEqual(['running', 'queued']);
      // What a leader could not take after intake stopped is counted, not silently lost.
      expect(events('events.shed').map((r) => [r.count, r.reason])).toEqual([[1, 'shutdown']]);
    });

    it('aborts calls still running at the bound and drops what is queued', async () => {
      const { handler, calls } = controllableHandler();
      const { processor, leadership, events, totals } = setup({
        handler,
        concurrency: 2,
        handlerTimeoutMs: 60_000,
      });
      leadership.lead(5, T0 + 60_000);
      for (const key of ['a', 'b', 'c']) processor.offer(...numbered(key));
      const drained = processor.drain(2000);
      await vi.advanceTimersByTimeAsync(2000);
      await expect(drained).resolves.toEqual({ drained: false, abortedCalls: 2, droppedEvents: 1 });
      expect(calls).toHaveLength(2);
      expect(
        calls.every((c) => c.ctx.signal.aborted && c.ctx.signal.reason instanceof HandlerAbortedError),
      ).toBe(true);
      expect(events('handler.failed').map((r) => (r.error as { code: string }).code)).toEqual([
        'HANDLER_ABORTED',
        'HANDLER_ABORTED',
      ]);
      expect(totals()).toMatchObject({ HandlerFailures: 2, EventsShed: 1 });
      expect(processor.stats()).toMatchObject({ inFlight: 0, queued: 0 });
    });

    it('sequence 5: a call aborted at the drain bound is reported unsettled, not failed', async () => {
      const { handler, calls } = controllableHandler();
      const outcomes: string[] = [];
      const { processor, leadership, events, totals } = setup({
        handler,
        handlerTimeoutMs: 60_000,
        onDone: (e, _meta, outcome) => outcomes.push(`${e.key.toString()}:${outcome}`),
      });
      leadership.lead(5, T0 + 60_000);
      processor.offer(...numbered('done'));
      processor.offer(...numbered('hangs'));
      calls[0]?.resolve();
      await vi.advanceTimersByTimeAsync(0);
      const drained = processor.drain(100);
      await vi.advanceTimersByTimeAsync(100);
      await expect(drained).resolves.toMatchObject({ drained: false, abortedCalls: 1 });
      expect(outcomes).toEqual(['done:processed', 'hangs:unsettled']);
      // Reported like a failure all the same.
      expect(events('handler.failed').map((r) => (r.error as { code: string }).code)).toEqual([
        'HANDLER_ABORTED',
      ]);
      expect(totals()).toMatchObject({ HandlerFailures: 1 });
    });

    it('resolves at once when idle', async () => {
      const { processor } = setup();
      await expect(processor.drain(2000)).resolves.toEqual({
        drained: true,
        abortedCalls: 0,
        droppedEvents: 0,
      });
    });
  });
});

describe('Processor: PROCESSED_LOG', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Keys `ok-1`..`ok-<n>` completed, with a failing call after every third: `fail-3`, `fail-6`, ... */
  async function runMixed(processedLog: ProcessorOptions['processedLog'], completed: number) {
    const linesAtDone: { key: string; outcome: string; processedLines: number }[] = [];
    const handler: ExpiryHandler = (e) => {
      if (e.key.startsWith('fail-')) throw new Error('refused');
    };
    const ctx = setup({ handler, concurrency: 1, ...(processedLog ? { processedLog } : {}) });
    // As the replay coordinator does before it computes a processed mark: flush, then count the lines.
    ctx.processor.onDone((e, _meta, outcome) => {
      ctx.logger.flush();
      linesAtDone.push({
        key: e.key.toString(),
        outcome,
        processedLines: ctx.events('key.processed').filter((r) => r.key === e.key.toString()).length,
      });
    });
    ctx.leadership.lead(1, T0 + 60_000);
    const failing: string[] = [];
    for (let i = 1; i <= completed; i++) {
      ctx.processor.offer(...numbered(`ok-${i}`));
      if (i % 3 === 0) {
        failing.push(`fail-${i}`);
        ctx.processor.offer(...numbered(`fail-${i}`));
      }
      await vi.advanceTimersByTimeAsync(0);
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(linesAtDone).toHaveLength(completed + failing.length);
    return {
      processedKeys: ctx.events('key.processed').map((r) => r.key),
      failedKeys: ctx.events('handler.failed').map((r) => r.key),
      failing,
      totals: ctx.totals(),
      linesAtDone,
    };
  }

  const okKeys = (indexes: number[]) => indexes.map((i) => `ok-${i}`);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  it('all (the default): one key.processed line per completed call, out by the time onDone listeners hear of it', async () => {
    for (const policy of [undefined, { mode: 'all' } as const]) {
      const run = await runMixed(policy, 10);
      expect(run.processedKeys).toEqual(okKeys(range(10)));
      expect(run.failedKeys).toEqual(run.failing);
      for (const done of run.linesAtDone.filter((d) => d.outcome === 'processed')) {
        expect(done.processedLines).toBe(1);
      }
    }
  });

  it('failures: no key.processed line, every handler.failed line, the metrics count every call', async () => {
    const run = await runMixed({ mode: 'failures' }, 10);
    expect(run.processedKeys).toEqual([]);
    expect(run.failedKeys).toEqual(['fail-3', 'fail-6', 'fail-9']);
    expect(run.totals.EventsProcessed).toBe(10);
    expect(run.totals.ProcessingLatencyMs).toBe(10);
    expect(run.totals.HandlerFailures).toBe(3);
    expect(run.linesAtDone.filter((d) => d.outcome === 'processed')).toHaveLength(10);
  });

  it('sample:N: the line of the 1st, N+1st, 2N+1st ... completed call (failed calls not counted)', async () => {
    const run = await runMixed({ mode: 'sample', everyN: 4 }, 10);
    expect(run.processedKeys).toEqual(okKeys([1, 5, 9]));
    expect(run.failedKeys).toEqual(['fail-3', 'fail-6', 'fail-9']);
    expect(run.totals.EventsProcessed).toBe(10);
    expect(run.totals.ProcessingLatencyMs).toBe(10);
    // A sampled call's line is out by the time the onDone listeners hear of it, as with `all`.
    for (const done of run.linesAtDone.filter((d) => run.processedKeys.includes(d.key))) {
      expect(done.processedLines).toBe(1);
    }
  });

  it('sample:1 writes every line, like all', async () => {
    const run = await runMixed({ mode: 'sample', everyN: 1 }, 7);
    expect(run.processedKeys).toEqual(okKeys(range(7)));
  });
});

describe('Processor on a long queue (real timers and clock)', () => {
  /** Calls queued at once: far more work than one slice of the event loop. */
  const QUEUED_CALLS = 5000;

  it('yields to the event loop while it works through calls that complete at once (lease renewals run meanwhile)', async () => {
    let handled = 0;
    const { processor, leadership } = setup({
      handler: () => {
        handled++;
      },
      clock: systemClock,
      concurrency: 16,
      queueCapacity: QUEUED_CALLS,
    });
    leadership.lead(1, performance.now() + 60_000);
    // A synchronous handler's call settles in a microtask, and each settle starts the next call: without
    // a yield the whole queue runs before any timer or socket read (a renewal's reply) gets a turn.
    let handledWhenTimerRan: number | undefined;
    setTimeout(() => {
      handledWhenTimerRan = handled;
    }, 0);
    for (let i = 0; i < QUEUED_CALLS; i++) processor.offer(...numbered(`long-${i}`));
    const drained = await processor.drain(30_000);
    expect(drained).toMatchObject({ drained: true, droppedEvents: 0 });
    expect(handled).toBe(QUEUED_CALLS);
    expect(handledWhenTimerRan).toBeDefined();
    expect(handledWhenTimerRan).toBeLessThan(QUEUED_CALLS);
  });
});
