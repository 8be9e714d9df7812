import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../../../core/clock.ts';
import { createLogger } from '../../../../core/logger.ts';
import type { ExpiryEvent } from '../../../../worker/expiry/expiry-event.ts';
import type { EventMeta } from '../../../../worker/expiry/processor.ts';
import type { ProcessedMark } from '../../../../worker/replay/processed-mark.ts';
import { ReplayCoordinator } from '../../../../worker/replay/replay-coordinator.ts';
import { ReplayWindow } from '../../../../worker/replay/replay-window.ts';

let now = 0;
const clock: Clock = { monotonicMs: () => now, wallMs: () => 1_000_000 + now };

function event(key: string, nodeId = 'n1'): ExpiryEvent {
  now += 1;
  return {
    key: Buffer.from(key),
    node: '127.0.0.1:7000',
    nodeId,
    receivedAt: clock.wallMs(),
    receivedAtMono: now,
    seq: now,
  };
}

/** A coordinator wired to an in-memory mark store and a processor that records what it is offered. */
function setup(
  options: { refuse?: (key: string) => boolean; readMarks?: () => Promise<Map<string, ProcessedMark>> } = {},
) {
  const stored = new Map<string, ProcessedMark>();
  const offered: { key: string; meta: EventMeta; event: ExpiryEvent }[] = [];
  const lines: Record<string, unknown>[] = [];
  const marks = {
    read: vi.fn(
      options.readMarks ??
        (async (ids: readonly string[]) =>
          new Map(ids.filter((id) => stored.has(id)).map((id) => [id, stored.get(id) as ProcessedMark]))),
    ),
    write: vi.fn(async (written: readonly ProcessedMark[]) => {
      for (const mark of written) stored.set(mark.nodeId, mark);
    }),
  };
  const coordinator = new ReplayCoordinator({
    window: new ReplayWindow({
      windowMs: 10_000,
      maxEventsPerPrimary: 1000,
      timeToleranceMs: 0,
      onShed: () => {},
    }),
    marks,
    processor: {
      offer: (e, meta) => {
        if (options.refuse?.(e.key.toString())) return 'filtered';
        offered.push({ key: e.key.toString(), meta, event: e });
        return 'queued';
      },
      clearQueue: () => 0,
      room: () => Number.MAX_SAFE_INTEGER,
      onRoom: () => {},
      stats: () => ({ queued: 0 }),
    },
    clock,
    logger: createLogger({ write: (l) => lines.push(JSON.parse(l)) }),
    markIntervalMs: 10,
    tailLength: 4,
    markReadTimeoutMs: 100,
  });
  const settleAll = () => {
    for (const o of offered.splice(0)) coordinator.onDone(o.event, o.meta, 'processed');
  };
  return { coordinator, offered, stored, marks, lines, settleAll };
}

beforeEach(() => {
  vi.useFakeTimers();
  now = 0;
});
afterEach(() => vi.useRealTimers());

describe('ReplayCoordinator', () => {
  it('followers only fill the window; a first leader replays it (no mark), then goes live', async () => {
    const { coordinator, offered, lines } = setup();
    coordinator.onEvent(event('a'));
    coordinator.onEvent(event('b'));
    expect(offered).toEqual([]);
    coordinator.onStartedLeading(new AbortController().signal, 1);
    expect(coordinator.isCatchingUp).toBe(true);
    coordinator.onEvent(event('c')); // arrives while the marks are read: must not be lost nor doubled
    await vi.advanceTimersByTimeAsync(0);
    coordinator.onEvent(event('d'));
    expect(offered.map((o) => [o.key, o.meta.seq, o.meta.replayed])).toEqual([
      ['a', 1, true],
      ['b', 2, true],
      ['c', 3, true],
      ['d', 4, false],
    ]);
    expect(lines.find((l) => l.event === 'replay.completed')).toMatchObject({
      replayed: 3,
      primaries: { 'no-mark': 1 },
    });
    coordinator.close();
  });

  it('a successor replays exactly what the crashed leader had not settled, with the same identities', async () => {
    const old = setup();
    const next = setup();
    next.stored.clear();
    // Both workers receive the same stream; the old one leads.
    old.coordinator.onStartedLeading(new AbortController().signal, 1);
    await vi.advanceTimersByTimeAsync(0);
    const stream = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
    for (const key of stream.slice(0, 4)) {
      const e = event(key);
      old.coordinator.onEvent(e);
      next.coordinator.onEvent({ ...e });
    }
    old.settleAll();
    await vi.advanceTimersByTimeAsync(20); // marks written
    for (const key of stream.slice(4)) {
      const e = event(key);
      old.coordinator.onEvent(e); // offered, never settled: the leader crashes now
      next.coordinator.onEvent({ ...e });
    }
    // The successor reads the same store.
    for (const [id, mark] of old.stored) next.stored.set(id, mark);
    next.coordinator.onStartedLeading(new AbortController().signal, 2);
    await vi.advanceTimersByTimeAsync(0);
    expect(next.offered.map((o) => [o.key, o.meta.seq, o.meta.replayed])).toEqual([
      ['k5', 5, true],
      ['k6', 6, true],
    ]);
    expect(old.offered.map((o) => [o.key, o.meta.seq])).toEqual([
      ['k5', 5],
      ['k6', 6],
    ]);
    old.coordinator.close();
    next.coordinator.close();
  });

  it('abandons refused events so the processed mark keeps advancing', async () => {
    const { coordinator, offered, stored, settleAll } = setup({ refuse: (k) => k.startsWith('{kl:') });
    coordinator.onStartedLeading(new AbortController().signal, 3);
    await vi.advanceTimersByTimeAsync(0);
    coordinator.onEvent(event('x'));
    coordinator.onEvent(event('{kl:own}:lease'));
    coordinator.onEvent(event('y'));
    settleAll();
    await vi.advanceTimersByTimeAsync(20);
    expect(offered).toEqual([]);
    expect(stored.get('n1')).toMatchObject({ seq: 3, fencingToken: 3 });
    coordinator.close();
  });

  it('replays the whole window when the marks cannot be read (duplicates rather than loss)', async () => {
    const { coordinator, offered, lines } = setup({
      readMarks: () => Promise.reject(new Error('CLUSTERDOWN')),
    });
    coordinator.onEvent(event('a'));
    coordinator.onStartedLeading(new AbortController().signal, 1);
    await vi.advanceTimersByTimeAsync(0);
    expect(offered.map((o) => o.key)).toEqual(['a']);
    expect(lines.map((l) => l.event)).toContain('replay.marks_unavailable');
    coordinator.close();
  });

  it('stops numbering when leadership ends, and a flush writes the last marks', async () => {
    const { coordinator, offered, stored, settleAll, marks } = setup();
    coordinator.onStartedLeading(new AbortController().signal, 5);
    await vi.advanceTimersByTimeAsync(0);
    coordinator.onEvent(event('a'));
    settleAll();
    await coordinator.flushMarks();
    expect(stored.get('n1')).toMatchObject({ seq: 1, fencingToken: 5 });
    coordinator.onStoppedLeading();
    coordinator.onEvent(event('b'));
    expect(offered).toEqual([]);
    const writes = marks.write.mock.calls.length;
    await vi.advanceTimersByTimeAsync(100);
    expect(marks.write.mock.calls.length).toBe(writes);
    coordinator.close();
  });

  it('a suspended primary keeps its mark at the gap; resuming hands out what waited in the window', async () => {
    const { coordinator, offered, stored, settleAll } = setup();
    coordinator.onStartedLeading(new AbortController().signal, 1);
    await vi.advanceTimersByTimeAsync(0);
    coordinator.onEvent(event('a'));
    settleAll();
    coordinator.suspend('n1'); // the subscription dropped: events after it wait
    coordinator.onEvent(event('b'));
    coordinator.onEvent(event('c'));
    expect(offered).toEqual([]);
    await vi.advanceTimersByTimeAsync(20);
    expect(stored.get('n1')).toMatchObject({ seq: 1 }); // a successor would replay b and c
    coordinator.resumeSuspended(); // nobody had them: handle them here after all
    expect(offered.map((o) => [o.key, o.meta.seq, o.meta.replayed])).toEqual([
      ['b', 2, true],
      ['c', 3, true],
    ]);
    coordinator.onEvent(event('d'));
    expect(offered.map((o) => o.key)).toEqual(['b', 'c', 'd']);
    coordinator.close();
  });

  it('events the gate or a cleared queue handed back stay unsettled: the mark stops before them', async () => {
    const { coordinator, offered, stored } = setup();
    coordinator.onStartedLeading(new AbortController().signal, 1);
    await vi.advanceTimersByTimeAsync(0);
    for (const key of ['a', 'b', 'c']) coordinator.onEvent(event(key));
    const [a, b, c] = offered.splice(0);
    coordinator.onDone(a?.event as ExpiryEvent, a?.meta as EventMeta, 'processed');
    coordinator.onDone(b?.event as ExpiryEvent, b?.meta as EventMeta, 'cleared');
    coordinator.onDone(c?.event as ExpiryEvent, c?.meta as EventMeta, 'gated');
    await vi.advanceTimersByTimeAsync(20);
    expect(stored.get('n1')).toMatchObject({ seq: 1 }); // b and c will be replayed by a successor
    coordinator.close();
  });
});
