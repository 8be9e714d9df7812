import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExpiryEvent } from '../../../../worker/expiry/expiry-event.ts';
import { compileKeyPattern } from '../../../../worker/expiry/key-pattern.ts';
import { type DoneOutcome, type EventMeta, Processor } from '../../../../worker/expiry/processor.ts';
import type { ExpiryHandler } from '../../../../worker/handlers/expiry-handler.ts';
import type { ProcessedMark } from '../../../../worker/replay/processed-mark.ts';
import { ReplayCoordinator } from '../../../../worker/replay/replay-coordinator.ts';
import { ReplayWindow } from '../../../../worker/replay/replay-window.ts';
import { ShedReporter } from '../../../../worker/replay/shed-reporter.ts';
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
const counters = new Map<string, number>();

function event(key: string, nodeId = 'n1'): ExpiryEvent {
  const seq = (counters.get(nodeId) ?? 0) + 1;
  counters.set(nodeId, seq);
  return {
    key: Buffer.from(key),
    node: `host-${nodeId}:7000`,
    nodeId,
    receivedAt: Date.now(),
    receivedAtMono: Date.now(),
    seq,
  };
}

interface Options {
  readonly queueCapacity: number;
  readonly concurrency: number;
  readonly handler: ExpiryHandler;
  readonly windowMs?: number;
  readonly maxEventsPerPrimary?: number;
}

function setup(options: Options) {
  const log = captureLogger();
  const { metrics, totals } = captureMetrics();
  const leadership = new FakeLeadership();
  const stored = new Map<string, ProcessedMark>();
  const outcomes: { id: string; outcome: DoneOutcome }[] = [];
  const windowShed: number[] = [];
  let coordinator: ReplayCoordinator | undefined;
  const backlogShed = new ShedReporter('backlog-full', log.logger, metrics);
  const processor = new Processor({
    handler: options.handler,
    leadership,
    keyMatcher: compileKeyPattern('*'),
    clock: fakeClock,
    logger: log.logger,
    metrics,
    concurrency: options.concurrency,
    handlerTimeoutMs: SETTLE_MS,
    queueCapacity: options.queueCapacity,
    holdWhenGateClosed: true,
    onDone: (e: ExpiryEvent, meta: EventMeta, outcome: DoneOutcome) => {
      outcomes.push({ id: `${e.nodeId}:${meta.seq}`, outcome });
      coordinator?.onDone(e, meta, outcome);
    },
  });
  coordinator = new ReplayCoordinator({
    window: new ReplayWindow({
      windowMs: options.windowMs ?? 600_000,
      maxEventsPerPrimary: options.maxEventsPerPrimary ?? 100_000,
      timeToleranceMs: 0,
      onShed: (count) => windowShed.push(count),
    }),
    marks: {
      read: async (ids) =>
        new Map(ids.filter((id) => stored.has(id)).map((id) => [id, stored.get(id) as ProcessedMark])),
      write: async (marks) => {
        for (const mark of marks) stored.set(mark.nodeId, mark);
      },
    },
    processor,
    clock: fakeClock,
    logger: log.logger,
    onBacklogShed: (count, nodeId) => backlogShed.note(count, { nodeId }),
    markIntervalMs: 10,
    tailLength: 4,
    markReadTimeoutMs: 100,
  });
  const lead = (token: number) => {
    const grant = leadership.lead(token, Date.now() + LEASE_MS);
    coordinator?.onStartedLeading(grant.signal, token);
  };
  return { coordinator, processor, leadership, stored, outcomes, windowShed, totals, lead, ...log };
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
    lead(1);
    await vi.advanceTimersByTimeAsync(0);
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
    const { handler, handled } = timedHandler(10);
    const { coordinator, lead, totals, stored } = setup({
      queueCapacity: 2,
      concurrency: 1,
      handler,
      windowMs: 200,
    });
    lead(1);
    await vi.advanceTimersByTimeAsync(0);
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
    const { handler, handled } = timedHandler(10);
    const { coordinator, lead, totals, events, stored } = setup({
      queueCapacity: 2,
      concurrency: 1,
      handler,
      maxEventsPerPrimary: 20,
    });
    lead(1);
    await vi.advanceTimersByTimeAsync(0);
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
    lead(1);
    await vi.advanceTimersByTimeAsync(0);
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
