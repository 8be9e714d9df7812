import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExpiryEvent } from '../../../../worker/expiry/expiry-event.ts';
import { type DoneOutcome, type EventMeta, Processor } from '../../../../worker/expiry/processor.ts';
import type { ExpiryHandler } from '../../../../worker/handlers/expiry-handler.ts';
import type { ProcessedMark } from '../../../../worker/replay/processed-mark.ts';
import { ReplayCoordinator } from '../../../../worker/replay/replay-coordinator.ts';
import { ReplayWindow } from '../../../../worker/replay/replay-window.ts';
import { ShedReporter } from '../../../../worker/replay/shed-reporter.ts';
import { FakeSuspensions } from '../support/fake-suspensions.ts';
import { captureLogger, captureMetrics, FakeLeadership, fakeClock } from '../support/fakes.ts';

/**
 * The replay coordinator wired to a real Processor with a small queue, as worker/main.ts wires them:
 * the hand-out path (back-pressure, window retention) and the outcomes that must stay unsettled.
 */

const T0 = 1_700_000_000_000;
/** Far beyond any deadline the tests reach: leadership never lapses unless a test says so. */
const LEASE_MS = 3_600_000;
/** Time for every timer-driven call of a test to finish (generous: fake time costs nothing). */
const SETTLE_MS = 60_000;
const MARK_INTERVAL_MS = 10;
const counters = new Map<string, number>();

function event(key: string, nodeId = 'n1'): ExpiryEvent {
  const receivedIndex = (counters.get(nodeId) ?? 0) + 1;
  counters.set(nodeId, receivedIndex);
  return {
    key: Buffer.from(key),
    node: `host-${nodeId}:7000`,
    nodeId,
    receivedAt: Date.now(),
    receivedAtMono: Date.now(),
    receivedIndex,
  };
}

interface Options {
  readonly queueCapacity: number;
  readonly concurrency: number;
  readonly handler: ExpiryHandler;
  readonly windowMs?: number;
  readonly maxEventsPerPrimary?: number;
  /** The subscriber pool's primaries (worker/main.ts wiring): their marks are read at acquisition. */
  readonly knownPrimaryIds?: readonly string[];
  /** The mark copies, shared by the workers of one family (each test gets its own by default). */
  readonly stored?: Map<string, ProcessedMark>;
}

function setup(options: Options) {
  const log = captureLogger();
  const { metrics, totals } = captureMetrics();
  const leadership = new FakeLeadership();
  const stored = options.stored ?? new Map<string, ProcessedMark>();
  const outcomes: { id: string; outcome: DoneOutcome }[] = [];
  const windowShed: number[] = [];
  const backlogShed = new ShedReporter('backlog-full', log.logger, metrics);
  const processor = new Processor({
    handler: options.handler,
    leadership,
    clock: fakeClock,
    logger: log.logger,
    metrics,
    concurrency: options.concurrency,
    handlerTimeoutMs: SETTLE_MS,
    queueCapacity: options.queueCapacity,
  });
  processor.onDone((e: ExpiryEvent, meta: EventMeta, outcome: DoneOutcome) => {
    outcomes.push({ id: `${e.nodeId}:${meta.seq}`, outcome });
  });
  const window = new ReplayWindow({
    windowMs: options.windowMs ?? 600_000,
    maxEventsPerPrimary: options.maxEventsPerPrimary ?? 100_000,
    timeToleranceMs: 0,
    onShed: (count) => windowShed.push(count),
  });
  const suspensions = new FakeSuspensions();
  const coordinator = new ReplayCoordinator({
    suspensions,
    window,
    marks: {
      copies: 1,
      read: async (ids) => ({
        marks: new Map(ids.filter((id) => stored.has(id)).map((id) => [id, stored.get(id) as ProcessedMark])),
        copiesAnswered: 1,
        copies: 1,
      }),
      write: async (marks) => {
        for (const mark of marks) stored.set(mark.nodeId, mark);
        return 1;
      },
    },
    processor,
    clock: fakeClock,
    logger: log.logger,
    knownPrimaryIds: () => options.knownPrimaryIds ?? ['n1', 'n2'],
    onBacklogShed: (count, nodeId) => backlogShed.note(count, { nodeId }),
    markIntervalMs: MARK_INTERVAL_MS,
    tailLength: 4,
    markReadTimeoutMs: 100,
  });
  /** Leads under `token`, then lets the acquisition's reads of the marks run (0 ms of fake time). */
  const lead = async (token: number) => {
    const grant = leadership.lead(token, Date.now() + LEASE_MS);
    coordinator.onStartedLeading(grant.signal, token);
    await vi.advanceTimersByTimeAsync(0);
  };
  return {
    coordinator,
    suspensions,
    processor,
    window,
    leadership,
    stored,
    outcomes,
    windowShed,
    totals,
    lead,
    ...log,
  };
}

/** How long a call of the slow handler takes (fake time): most tests build a backlog behind it. */
const SLOW_CALL_MS = 10;

/**
 * The wiring most tests start from: a handler taking SLOW_CALL_MS per call, one call at a time, a
 * 2-slot queue, so that a backlog builds in the window; `options` adds or overrides.
 */
function slowHandlerSetup(options: Partial<Options> = {}) {
  const { handler, handled } = timedHandler(SLOW_CALL_MS);
  return { ...setup({ queueCapacity: 2, concurrency: 1, handler, ...options }), handled };
}

/** A handler that takes `delayMs` of (fake) time per call and records the ids it handled. */
function timedHandler(delayMs: number): { handler: ExpiryHandler; handled: string[] } {
  const handled: string[] = [];
  const handler: ExpiryHandler = (e) =>
    new Promise<void>((resolve) => {
      setTimeout(() => {
        handled.push(`${e.key}`);
        resolve();
      }, delayMs);
    });
  return { handler, handled };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  counters.clear();
});
afterEach(() => vi.useRealTimers());

describe('replay hand-out (back-pressure)', () => {
  it('sequence 3: a replay plan larger than the queue is handled completely, in order, nothing shed', async () => {
    const { handler, handled } = timedHandler(1);
    const { coordinator, lead, totals, events, stored } = setup({
      queueCapacity: 4,
      concurrency: 2,
      handler,
    });
    // A follower's window: 50 events of n1 and 30 of n2 that the previous leader never handled.
    const keys = { n1: [] as string[], n2: [] as string[] };
    for (let i = 0; i < 50; i++) {
      keys.n1.push(`a${i}`);
      coordinator.onEvent(event(`a${i}`, 'n1'));
      if (i < 30) {
        keys.n2.push(`b${i}`);
        coordinator.onEvent(event(`b${i}`, 'n2'));
      }
    }
    await lead(1);
    // Live events arrive while the replay is still being handled: they wait behind it.
    for (let i = 50; i < 60; i++) {
      keys.n1.push(`a${i}`);
      coordinator.onEvent(event(`a${i}`, 'n1'));
    }
    await vi.advanceTimersByTimeAsync(SETTLE_MS);

    expect(handled.filter((k) => k.startsWith('a'))).toEqual(keys.n1);
    expect(handled.filter((k) => k.startsWith('b'))).toEqual(keys.n2);
    expect(totals().EventsShed ?? 0).toBe(0);
    expect(events('events.shed')).toEqual([]);
    expect(stored.get('n1')).toMatchObject({ seq: 60 });
    expect(stored.get('n2')).toMatchObject({ seq: 30 });
    coordinator.close();
  });

  it('sequence 3: a live backlog behind a slow handler is kept past the window time bound and handled in order', async () => {
    // 10 ms per call, one at a time, a 2-slot queue, a 200 ms window: 100 events in 100 ms take 1 s.
    const { coordinator, lead, totals, stored, handled } = slowHandlerSetup({ windowMs: 200 });
    await lead(1);
    const keys: string[] = [];
    for (let i = 0; i < 100; i++) {
      keys.push(`k${i}`);
      coordinator.onEvent(event(`k${i}`));
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(handled).toEqual(keys);
    expect(totals().EventsShed ?? 0).toBe(0);
    expect(stored.get('n1')).toMatchObject({ seq: 100 });
    coordinator.close();
  });

  it('sequence 3: a backlog beyond REPLAY_MAX_EVENTS is shed from the window, counted, logged, and settled', async () => {
    const { coordinator, lead, totals, events, stored, handled } = slowHandlerSetup({
      maxEventsPerPrimary: 20,
    });
    await lead(1);
    for (let i = 0; i < 100; i++) coordinator.onEvent(event(`k${i}`)); // all at once: the backlog overflows
    await vi.advanceTimersByTimeAsync(SETTLE_MS);

    const shed = totals().EventsShed ?? 0;
    expect(shed).toBeGreaterThan(0);
    expect(handled.length + shed).toBe(100);
    // What was handled kept its order; the newest events were not the ones shed.
    expect(handled).toEqual([...handled].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
    expect(handled.at(-1)).toBe('k99');
    expect(events('events.shed').map((r) => r.reason)).toContain('backlog-full');
    // A shed event is settled: the mark moves past it, so the successor does not replay it.
    expect(stored.get('n1')).toMatchObject({ seq: 100 });
    coordinator.close();
  });
  it('sequence 3 with sequence 2: a held primary (mark not read yet) sheds its overflow unnumbered; its ids start above the reservation', async () => {
    const { coordinator, lead, totals, stored, outcomes, handled } = slowHandlerSetup({
      maxEventsPerPrimary: 20,
      knownPrimaryIds: ['n1'],
    });
    // A previous leader numbered `promoted` through 7 and reserved through 500.
    stored.set('promoted', {
      nodeId: 'promoted',
      seq: 7,
      tail: [],
      receivedAt: 0,
      fencingToken: 1,
      lineEnd: 500,
      reservedThrough: 500,
    });
    await lead(2);
    // First seen while leading, all at once: the window overflows before its mark has been read.
    for (let i = 0; i < 100; i++) coordinator.onEvent(event(`p${i}`, 'promoted'));
    await vi.advanceTimersByTimeAsync(SETTLE_MS);

    const shed = totals().EventsShed ?? 0;
    expect(shed).toBe(80);
    expect(handled).toEqual(Array.from({ length: 20 }, (_, i) => `p${80 + i}`));
    const seqs = outcomes.map((o) => Number(o.id.split(':')[1]));
    expect(Math.min(...seqs)).toBe(501); // nothing numbered below the reservation it read
    expect(stored.get('promoted')).toMatchObject({ seq: 520, fencingToken: 2 });
    coordinator.close();
  });
});

describe('replay hand-out across a gap of the leader window', () => {
  it('sequence 2 with sequence 3: a backlog before the gap keeps its line, what follows the gap starts a new one', async () => {
    const { coordinator, suspensions, lead, outcomes, handled } = slowHandlerSetup();
    await lead(1);
    for (let i = 0; i < 10; i++) coordinator.onEvent(event(`k${i}`)); // a backlog behind a slow handler
    suspensions.gap('n1'); // the leader's subscription dropped; most of the backlog waits still
    for (let i = 10; i < 15; i++) coordinator.onEvent(event(`k${i}`));
    suspensions.keep('n1'); // no follower covered the gap
    await vi.advanceTimersByTimeAsync(SETTLE_MS);

    expect(handled).toEqual(Array.from({ length: 15 }, (_, i) => `k${i}`));
    const seqs = outcomes.map((o) => Number(o.id.split(':')[1]));
    // The events before the gap stay consecutive in the first line (a successor continuing it gives
    // them the same ids); the ones after it are numbered above every reservation.
    expect(seqs.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(Math.min(...seqs.slice(10))).toBeGreaterThan(1_000_000);
    coordinator.close();
  });

  it('sequence 3: while a primary is suspended, what the window sheds beyond the gap does not move the mark past it', async () => {
    const { coordinator, suspensions, lead, totals, stored, handled } = slowHandlerSetup({
      maxEventsPerPrimary: 20,
    });
    await lead(1);
    for (let i = 0; i < 5; i++) coordinator.onEvent(event(`k${i}`));
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(handled).toHaveLength(5);
    suspensions.gap('n1');
    // 50 after the gap, 20 kept; a mark write runs between arrivals.
    for (let i = 5; i < 55; i++) {
      coordinator.onEvent(event(`k${i}`));
      await vi.advanceTimersByTimeAsync(MARK_INTERVAL_MS);
    }
    await vi.advanceTimersByTimeAsync(SETTLE_MS);

    expect(totals().EventsShed ?? 0).toBe(30);
    expect(handled).toHaveLength(5);
    // A follower covered through the gap replays from here: nothing after the gap counts as settled.
    expect(stored.get('n1')).toMatchObject({ seq: 5 });
    coordinator.close();
  });
});

describe('replay outcomes that stay unsettled', () => {
  it('sequence 5: a call aborted at shutdown stays unsettled: drain, then flushMarks writes a mark before it', async () => {
    const pending: string[] = [];
    const handler: ExpiryHandler = (e) =>
      e.key === 'hangs'
        ? new Promise<void>((resolve) => {
            pending.push(e.key);
            void resolve; // never settles on its own
          })
        : undefined;
    const { coordinator, processor, lead, stored, outcomes, events } = setup({
      queueCapacity: 10,
      concurrency: 4,
      handler,
    });
    await lead(1);
    for (const key of ['a', 'hangs', 'c']) coordinator.onEvent(event(key));
    await vi.advanceTimersByTimeAsync(0);
    expect(pending).toEqual(['hangs']);

    // worker/main.ts `stop`: drain (bounded), then flushMarks, then the release.
    const drainBoundMs = 100;
    const drained = processor.drain(drainBoundMs);
    await vi.advanceTimersByTimeAsync(drainBoundMs);
    await expect(drained).resolves.toMatchObject({ drained: false, abortedCalls: 1 });
    await coordinator.flushMarks();

    expect(outcomes).toContainEqual({ id: 'n1:2', outcome: 'unsettled' });
    expect(events('handler.failed')).toHaveLength(1);
    // 'c' completed, but the mark stops before the aborted call: the successor replays n1:2 and n1:3.
    expect(stored.get('n1')).toMatchObject({ seq: 1 });
    coordinator.close();
  });
});

describe('REPLAY_WINDOW_MS=0: the same path, a window with time bound 0', () => {
  /** A handler that records the id and key of every call. */
  function recordingHandler(): { handler: ExpiryHandler; calls: { id: string; key: string }[] } {
    const calls: { id: string; key: string }[] = [];
    return { handler: (e) => void calls.push({ id: e.id, key: e.key }), calls };
  }

  it('a follower keeps nothing and hands nothing to the handler; two successive leaders never give one id to two keys', async () => {
    const stored = new Map<string, ProcessedMark>();
    const first = recordingHandler();
    const second = recordingHandler();
    const a = setup({ queueCapacity: 10, concurrency: 2, handler: first.handler, windowMs: 0, stored });
    const b = setup({ queueCapacity: 10, concurrency: 2, handler: second.handler, windowMs: 0, stored });
    const both = (key: string, nodeId = 'n1') => {
      a.coordinator.onEvent(event(key, nodeId));
      b.coordinator.onEvent(event(key, nodeId));
    };
    // b receives from the start, a only later: their receipt counts differ (the old replay-off ids did).
    for (let i = 0; i < 7; i++) b.coordinator.onEvent(event(`early${i}`));
    await a.lead(1);
    for (let i = 0; i < 20; i++) both(`k${i}`);
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(first.calls.map((c) => c.key)).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
    expect(second.calls).toEqual([]); // the follower offers nothing
    expect(b.window.size()).toBe(0); // and keeps nothing

    // A hand-over: a stops leading (its last marks are written), b leads with an empty window.
    a.leadership.stepDown();
    a.coordinator.onStoppedLeading();
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    const reserved = stored.get('n1')?.reservedThrough ?? 0;
    expect(reserved).toBeGreaterThanOrEqual(20);
    await b.lead(2);
    for (let i = 20; i < 40; i++) both(`k${i}`);
    await vi.advanceTimersByTimeAsync(SETTLE_MS);

    expect(first.calls).toHaveLength(20); // nothing more once it stopped leading
    expect(second.calls.map((c) => c.key)).toEqual(Array.from({ length: 20 }, (_, i) => `k${20 + i}`));
    // Nothing to replay, no tail to align on: a fresh line above every reservation.
    const secondSeqs = second.calls.map((c) => Number(c.id.split(':')[1]));
    expect(Math.min(...secondSeqs)).toBeGreaterThan(reserved);
    const keyById = new Map<string, string>();
    for (const call of [...first.calls, ...second.calls]) {
      expect(keyById.get(call.id) ?? call.key).toBe(call.key);
      keyById.set(call.id, call.key);
    }
    expect(keyById.size).toBe(40);
    a.coordinator.close();
    b.coordinator.close();
  });

  it('the leader holds its own backlog and a primary first seen while leading: nothing is lost to the 0 time bound', async () => {
    const { coordinator, lead, totals, stored, handled } = slowHandlerSetup({
      windowMs: 0,
      knownPrimaryIds: ['n1'],
    });
    await lead(1);
    const keys: string[] = [];
    for (let i = 0; i < 50; i++) {
      keys.push(`k${i}`);
      coordinator.onEvent(event(`k${i}`));
      // `fresh` is not among the known primaries: held from its first event, its mark read then.
      if (i === 10) coordinator.onEvent(event('fresh-first', 'fresh'));
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(handled.filter((k) => k.startsWith('k'))).toEqual(keys);
    expect(handled).toContain('fresh-first');
    expect(totals().EventsShed ?? 0).toBe(0);
    expect(stored.get('n1')).toMatchObject({ seq: 50 });
    expect(stored.get('fresh')).toMatchObject({ seq: 1 });
    coordinator.close();
  });
});
