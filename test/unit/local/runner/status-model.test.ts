import { describe, expect, it } from 'vitest';
import { type Note, StatusModel } from '../../../../local/runner/status-model.ts';
import { exampleLine } from '../../../support/log-examples.ts';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');

// Complete catalog lines (test/support/log-examples.ts): the model reads them through the decoder.
const line = exampleLine;

function emf(fields: Record<string, unknown>): string {
  return JSON.stringify({
    _aws: {
      Timestamp: T0,
      CloudWatchMetrics: [
        {
          Namespace: 'KeyspaceLeader',
          Dimensions: [['LeaderName']],
          Metrics: [{ Name: 'SubscribedPrimaries', Unit: 'Count' }],
        },
      ],
    },
    LeaderName: 'local',
    ...fields,
  });
}

function model(notes: Note[] = []) {
  return new StatusModel({
    startedAtMs: T0,
    settings: { keysPerSecond: 50, keyTtlMs: 1000, primaries: 3, replicasPerPrimary: 1, leaderName: 'local' },
    isTrackedKey: (key) => key.startsWith('demo:'),
    settleMs: 5000,
    onNote: (note) => notes.push(note),
  });
}

/** Three workers started, subscribed to the three primaries; worker-1 leads with token 1. */
function running() {
  const m = model();
  for (const [i, id] of ['worker-1', 'worker-2', 'worker-3'].entries()) {
    m.workerSpawned(id, 100 + i, T0);
    m.workerLine(id, line('topology.changed', T0 + 100, { primaries: ['a:1', 'b:2', 'c:3'] }), T0 + 100);
    for (const node of ['a:1', 'b:2', 'c:3'])
      m.workerLine(id, line('subscription.up', T0 + 200, { node }), T0 + 200);
    m.workerLine(id, line('worker.started', T0 + 300), T0 + 300);
  }
  m.workerLine('worker-1', line('leader.acquired', T0 + 500, { fencingToken: 1 }), T0 + 500);
  return m;
}

describe('StatusModel', () => {
  it('counts primary subscriptions only: replicas subscribed in advance count once promoted', () => {
    const m = running();
    const at = T0 + 600;
    m.workerLine('worker-2', line('subscription.up', at, { node: 'r:4', role: 'replica' }), at);
    expect(m.snapshot(at).workers.find((w) => w.id === 'worker-2')?.subscribedPrimaries).toBe(3);
    m.workerLine(
      'worker-2',
      line('subscription.role_changed', at + 1, { node: 'r:4', role: 'primary', subscribed: true }),
      at + 1,
    );
    expect(m.snapshot(at + 1).workers.find((w) => w.id === 'worker-2')?.subscribedPrimaries).toBe(4);
  });

  it("knows the one leader, its fencing token and each worker's role and coverage from the log lines", () => {
    const s = running().snapshot(T0 + 1000);
    expect(s.leaders.map((l) => [l.id, l.fencingToken])).toEqual([['worker-1', 1]]);
    expect(s.workers.map((w) => [w.id, w.role, w.state, w.subscribedPrimaries, w.knownPrimaries])).toEqual([
      ['worker-1', 'leader', 'running', 3, 3],
      ['worker-2', 'follower', 'running', 3, 3],
      ['worker-3', 'follower', 'running', 3, 3],
    ]);
    expect(s.handovers).toEqual([
      {
        from: undefined,
        to: 'worker-1',
        fencingToken: 1,
        acquiredAtMs: T0 + 500,
        cause: 'initial',
        gapMs: undefined,
      },
    ]);
  });

  it('counts subscriptions going down and back up', () => {
    const m = running();
    m.workerLine('worker-2', line('subscription.down', T0 + 600, { node: 'b:2' }), T0 + 600);
    expect(m.snapshot(T0 + 700).workers[1]?.subscribedPrimaries).toBe(2);
    m.workerLine('worker-2', line('subscription.up', T0 + 800, { node: 'b:2' }), T0 + 800);
    expect(m.snapshot(T0 + 900).workers[1]?.subscribedPrimaries).toBe(3);
  });

  it('falls back to the SubscribedPrimaries metric when a worker writes no subscription events', () => {
    const m = model();
    m.workerSpawned('w', 1, T0);
    m.workerLine('w', emf({ SubscribedPrimaries: 2, IsLeader: 0 }), T0 + 10);
    expect(m.snapshot(T0 + 20).workers[0]?.subscribedPrimaries).toBe(2);
  });

  it('measures a graceful hand-over from leader.released to the next leader.acquired', () => {
    const m = running();
    m.workerLine('worker-1', line('leader.released', T0 + 2000, { fencingToken: 1 }), T0 + 2001);
    m.workerLine('worker-2', line('leader.acquired', T0 + 2040, { fencingToken: 2 }), T0 + 2041);
    m.workerExited('worker-1', 0, null, T0 + 2100);
    const s = m.snapshot(T0 + 3000);
    expect(s.leaders.map((l) => l.id)).toEqual(['worker-2']);
    expect(s.handovers.at(-1)).toEqual({
      from: 'worker-1',
      to: 'worker-2',
      fencingToken: 2,
      acquiredAtMs: T0 + 2040,
      cause: 'released',
      gapMs: 40,
    });
    expect(s.workers.find((w) => w.id === 'worker-1')).toMatchObject({ state: 'exited', exit: 'code 0' });
    expect(s.workers.find((w) => w.id === 'worker-1')?.lastChange).toMatchObject({
      kind: 'released',
      fencingToken: 1,
    });
  });

  it("does not call it an overlap when the release line is read after the successor's acquisition", () => {
    const m = running();
    m.workerLine('worker-2', line('leader.acquired', T0 + 2003, { fencingToken: 2 }), T0 + 2004);
    m.workerLine('worker-1', line('leader.released', T0 + 2001, { fencingToken: 1 }), T0 + 2005);
    const s = m.snapshot(T0 + 3000);
    expect(s.leaders.map((l) => l.id)).toEqual(['worker-2']);
    expect(s.handovers.at(-1)).toMatchObject({
      from: 'worker-1',
      to: 'worker-2',
      cause: 'released',
      gapMs: 2,
    });
    // The next hand-over is measured from worker-2's end, not from this release.
    m.workerLine('worker-2', line('leader.released', T0 + 9000, { fencingToken: 2 }), T0 + 9000);
    m.workerLine('worker-3', line('leader.acquired', T0 + 9010, { fencingToken: 3 }), T0 + 9010);
    expect(m.snapshot(T0 + 9100).handovers.at(-1)).toMatchObject({
      from: 'worker-2',
      cause: 'released',
      gapMs: 10,
    });
  });

  it('keeps a real overlap: a release far after the successor acquired', () => {
    const m = running();
    m.workerLine('worker-2', line('leader.acquired', T0 + 2000, { fencingToken: 2 }), T0 + 2000);
    m.workerLine('worker-1', line('leader.released', T0 + 6000, { fencingToken: 1 }), T0 + 6000);
    expect(m.snapshot(T0 + 7000).handovers.at(-1)).toMatchObject({ cause: 'overlap', gapMs: undefined });
  });

  it('measures a crash hand-over from the SIGKILL the runner sent', () => {
    const m = running();
    m.workerSignalled('worker-1', 'SIGKILL', T0 + 5000);
    m.workerExited('worker-1', null, 'SIGKILL', T0 + 5010);
    expect(m.snapshot(T0 + 5500).leaders).toEqual([]);
    m.workerLine('worker-3', line('leader.acquired', T0 + 8250, { fencingToken: 2 }), T0 + 8251);
    const last = m.snapshot(T0 + 9000).handovers.at(-1);
    expect(last).toMatchObject({ from: 'worker-1', to: 'worker-3', cause: 'killed', gapMs: 3250 });
  });

  it('treats a leader that exits without a word as an ended leadership', () => {
    const m = running();
    m.workerExited('worker-1', 1, null, T0 + 4000);
    m.workerLine('worker-2', line('leader.acquired', T0 + 4300, { fencingToken: 2 }), T0 + 4300);
    expect(m.snapshot(T0 + 5000).handovers.at(-1)).toMatchObject({ cause: 'exited', gapMs: 300 });
  });

  it('records leader.lost with its reason, and shows two leaders when both claim it', () => {
    const m = running();
    m.workerLine('worker-2', line('leader.acquired', T0 + 600, { fencingToken: 2 }), T0 + 600);
    const s = m.snapshot(T0 + 700);
    expect(s.leaders.map((l) => l.id).sort()).toEqual(['worker-1', 'worker-2']);
    expect(s.handovers.at(-1)).toMatchObject({ cause: 'overlap', from: 'worker-1', to: 'worker-2' });
    m.workerLine('worker-1', line('leader.lost', T0 + 800, { reason: 'renew-deadline-missed' }), T0 + 800);
    const after = m.snapshot(T0 + 900);
    expect(after.leaders.map((l) => l.id)).toEqual(['worker-2']);
    expect(after.workers[0]?.lastChange).toMatchObject({ kind: 'lost', detail: 'renew-deadline-missed' });
    expect(after.workers[0]?.role).toBe('follower');
  });

  it('counts processed keys per worker and matches them against the reference subscribers', () => {
    const m = running();
    for (let i = 1; i <= 4; i++) {
      m.keySet('a:1');
      m.referenceEvent(`demo:${i}`, 'a:1', T0 + 1000 + i);
    }
    m.referenceEvent('{kl:local:c0}:canary:x', 'a:1', T0 + 1000);
    for (let i = 1; i <= 3; i++) {
      m.workerLine(
        'worker-1',
        line('key.processed', T0 + 1002 + i, {
          key: `demo:${i}`,
          node: 'a:1',
          fencingToken: 1,
          latencyMs: 0.4,
          replayed: false,
        }),
        T0 + 1002 + i,
      );
    }
    const s = m.snapshot(T0 + 2000);
    expect(s.workers[0]?.processed).toBe(3);
    expect(s.totals).toMatchObject({ expected: 4, processed: 3, matched: 3, pending: 1, missing: 0 });
    expect(s.addedLatency).toMatchObject({ p50: 2, samples: 3 });
    expect(s.primaries).toEqual([{ node: 'a:1', keysSet: 4, published: 4 }]);
    const settled = m.snapshot(T0 + 10_000);
    expect(settled.totals).toMatchObject({ missing: 1, pending: 0 });
  });

  it('ignores lines that are not JSON objects and tells a crash from a requested exit in its notes', () => {
    const notes: Note[] = [];
    const m = model(notes);
    m.workerSpawned('w', 7, T0);
    expect(m.workerLine('w', 'not json', T0)).toBe(false);
    expect(m.workerLine('w', '[1,2]', T0)).toBe(false);
    m.workerStderr('w', 'Error: boom', T0 + 1);
    m.workerExited('w', 1, null, T0 + 2);
    expect(notes.map((n) => [n.level, n.text])).toEqual([
      ['info', 'w started (pid 7)'],
      ['warn', 'w stderr: Error: boom'],
      ['warn', 'w exited (code 1)'],
    ]);
    expect(m.snapshot(T0 + 3).workers[0]).toMatchObject({ state: 'exited', lastError: 'Error: boom' });
  });

  it('computes rates over the last seconds of snapshots', () => {
    const m = running();
    m.snapshot(T0 + 1000);
    for (let i = 0; i < 100; i++) m.referenceEvent(`demo:${i}`, 'a:1', T0 + 1500);
    expect(m.snapshot(T0 + 3000).rates.expected).toBeCloseTo(50, 5);
  });
});
