import { describe, expect, it } from 'vitest';
import { clip, KEY_HELP, renderLiveView } from '../../../../local/runner/live-view.ts';
import {
  parseSummaryLine,
  renderPlainBlock,
  renderSummaryLine,
} from '../../../../local/runner/plain-view.ts';
import { StatusModel } from '../../../../local/runner/status-model.ts';
import { exampleLine } from '../../../support/log-examples.ts';

const T0 = Date.parse('2025-01-01T12:00:00.000Z');

// Complete catalog lines (test/support/log-examples.ts): the model reads them through the decoder.
const line = exampleLine;

/** worker-1 led (token 1) and released; worker-2 leads with token 2; worker-3 follows. */
function snapshot() {
  const m = new StatusModel({
    startedAtMs: T0,
    settings: { keysPerSecond: 50, keyTtlMs: 1000, primaries: 3, replicasPerPrimary: 1, leaderName: 'local' },
    isTrackedKey: (key) => key.startsWith('demo:'),
  });
  for (const [i, id] of ['worker-1', 'worker-2', 'worker-3'].entries()) {
    m.workerSpawned(id, 4000 + i, T0);
    for (const node of ['127.0.0.1:20001', '127.0.0.1:20002', '127.0.0.1:20003']) {
      m.workerLine(id, line('subscription.up', T0 + 100, { node }), T0 + 100);
    }
    m.workerLine(id, line('worker.started', T0 + 200), T0 + 200);
  }
  m.knownPrimaries(['127.0.0.1:20001', '127.0.0.1:20002', '127.0.0.1:20003']);
  m.workerLine('worker-1', line('leader.acquired', T0 + 300, { fencingToken: 1 }), T0 + 300);
  m.workerLine('worker-1', line('leader.released', T0 + 5000, { fencingToken: 1 }), T0 + 5000);
  m.workerLine('worker-2', line('leader.acquired', T0 + 5037, { fencingToken: 2 }), T0 + 5037);
  m.workerExited('worker-1', 0, null, T0 + 5100);
  for (let i = 1; i <= 10; i++) {
    m.keySet('127.0.0.1:20002');
    m.referenceEvent(`demo:${i}`, '127.0.0.1:20002', T0 + 6000 + i);
    m.workerLine(
      'worker-2',
      line('key.processed', T0 + 6001 + i, { key: `demo:${i}`, fencingToken: 2 }),
      T0 + 6001 + i,
    );
  }
  return m.snapshot(T0 + 65_000);
}

describe('renderLiveView', () => {
  const text = renderLiveView(snapshot(), { columns: 200, color: false }).join('\n');

  it('shows the leader with its fencing token and the last hand-over with its gap', () => {
    expect(text).toContain('Leader: worker-2 (pid 4001)   fencing token 2   since 12:00:05.037');
    expect(text).toContain(
      'Last hand-over: worker-1 -> worker-2 at 12:00:05.037, previous leader released, 37 ms without a leader',
    );
    expect(text).toContain('up 01:05');
  });

  it('has a row per worker with role, primaries subscribed of known, processed and last change', () => {
    const rows = text.split('\n').filter((l) => l.startsWith('worker-'));
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/^worker-2\s+4001\s+LEADER\s+3\/3\s+10\s+acquired 12:00:05.037 \(token 2\)$/);
    expect(rows[1]).toMatch(/^worker-3\s+4002\s+follower\s+3\/3\s+0\s+-$/);
    expect(rows[2]).toMatch(
      /^worker-1\s+4000\s+exited \(code 0\)\s+-\s+0\s+released 12:00:05.000 \(token 1\)$/,
    );
  });

  it('has a row per primary and the totals expected vs processed', () => {
    expect(text).toMatch(/127\.0\.0\.1:20002\s+10\s+10/);
    expect(text).toMatch(/127\.0\.0\.1:20001\s+0\s+0/);
    expect(text).toContain('expected 10   processed 10 (100.00% of expected)   missing 0   duplicates 0');
    expect(text).toContain(KEY_HELP);
  });

  it('uses colour escapes only when asked, and clips lines to the terminal width without counting escapes', () => {
    expect(text).not.toContain('\u001b[');
    const coloured = renderLiveView(snapshot(), { columns: 200, color: true });
    expect(coloured.join('\n')).toContain('\u001b[32m');
    const narrow = renderLiveView(snapshot(), { columns: 30, color: true });
    const ansiStyle = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*m`, 'g');
    for (const l of narrow) expect(l.replace(ansiStyle, '').length).toBeLessThanOrEqual(30);
    expect(clip('\u001b[1mabcdef\u001b[0m', 3)).toBe('\u001b[1mabc\u001b[0m');
  });

  it('says loudly when no worker or several workers lead', () => {
    const m = new StatusModel({
      startedAtMs: T0,
      settings: { keysPerSecond: 0, keyTtlMs: 1000, primaries: 1, replicasPerPrimary: 0, leaderName: 'x' },
      isTrackedKey: () => true,
    });
    expect(renderLiveView(m.snapshot(T0), { columns: 120, color: false }).join('\n')).toContain(
      'Leader: none',
    );
    m.workerSpawned('a', 1, T0);
    m.workerSpawned('b', 2, T0);
    m.workerLine('a', line('leader.acquired', T0, { fencingToken: 1 }), T0);
    m.workerLine('b', line('leader.acquired', T0, { fencingToken: 2 }), T0);
    expect(renderLiveView(m.snapshot(T0), { columns: 120, color: false }).join('\n')).toContain(
      'Leader: 2 workers claim leadership: a, b',
    );
  });
});

describe('plain view', () => {
  it('prints a status block: summary line, a line per worker, the primaries', () => {
    const block = renderPlainBlock(snapshot());
    expect(block[0]).toMatch(
      /^\[01:05\] leader worker-2 \(token 2\) \| expected 10 processed 10 \(100\.00%\) missing 0 duplicates 0/,
    );
    expect(block.filter((l) => l.startsWith('  worker-'))).toHaveLength(3);
    expect(block.at(-1)).toMatch(
      /^ {2}primaries: 127\.0\.0\.1:20001 set 0 expired 0 \| 127\.0\.0\.1:20002 set 10 expired 10/,
    );
  });

  it('writes a summary line that parses back', () => {
    const summary = renderSummaryLine(snapshot());
    expect(summary).toMatch(
      /^summary: leaders=1 leader=worker-2 fencingToken=2 expected=10 processed=10 matched=10 missing=0/,
    );
    expect(parseSummaryLine(summary)).toMatchObject({
      leaders: '1',
      leader: 'worker-2',
      expected: '10',
      processed: '10',
      handovers: '2',
    });
    expect(parseSummaryLine('something else')).toBeUndefined();
  });
});

describe('security in the views (--tls)', () => {
  function model(security: string | undefined) {
    return new StatusModel({
      startedAtMs: T0,
      settings: {
        keysPerSecond: 50,
        keyTtlMs: 1000,
        primaries: 3,
        replicasPerPrimary: 1,
        leaderName: 'local',
        security,
      },
      isTrackedKey: () => true,
    });
  }

  it('names TLS and the ACL users in the live header and the plain block when set', () => {
    const snap = model('TLS, ACL users worker/check').snapshot(T0);
    const header = renderLiveView(snap, { columns: 200, color: false })[0];
    expect(header).toContain('cluster 3 primaries x 1 replica(s) (TLS, ACL users worker/check)');
    expect(renderPlainBlock(snap)[0]).toMatch(/ \| TLS, ACL users worker\/check$/);
  });

  it('says nothing about TLS when it is off', () => {
    const snap = model(undefined).snapshot(T0);
    expect(renderLiveView(snap, { columns: 200, color: false })[0]).not.toContain('TLS');
    expect(renderPlainBlock(snap)[0]).not.toContain('TLS');
  });
});

describe('expiry lag and --volatile in the views', () => {
  /** demo:1..4 tracked (lag 2, 4, 6, 8 ms from their lines), demo:5 native (19 s after its deadline). */
  function lagSnapshot(volatileKeys: number, left: number | undefined) {
    const m = new StatusModel({
      startedAtMs: T0,
      settings: {
        keysPerSecond: 50,
        keyTtlMs: 1000,
        primaries: 3,
        replicasPerPrimary: 1,
        leaderName: 'local',
        volatileKeys,
      },
      isTrackedKey: (key) => key.startsWith('demo:'),
    });
    if (volatileKeys > 0) m.volatileKeys({ loaded: volatileKeys, left });
    m.workerSpawned('worker-1', 4000, T0);
    for (let i = 1; i <= 5; i++) m.keyDeadline(`demo:${i}`, T0 + 1000);
    for (let i = 1; i <= 4; i++) {
      m.workerLine(
        'worker-1',
        line('key.processed', T0 + 1100, {
          key: `demo:${i}`,
          fencingToken: 1,
          deadlineMs: T0 + 1000,
          lagMs: 2 * i,
        }),
        T0 + 1100,
      );
    }
    m.workerLine(
      'worker-1',
      line('key.processed', T0 + 20_000, { key: 'demo:5', fencingToken: 1 }),
      T0 + 20_000,
    );
    return m.snapshot(T0 + 21_000);
  }

  it('the live view shows tracked and native lag, and the background keys', () => {
    const text = renderLiveView(lagSnapshot(20_000, undefined), { columns: 250, color: false }).join('\n');
    expect(text).toContain(
      'Expiry lag (deadline -> handler): tracked p50 4.0 ms p99 8.0 ms (4 keys)   native p50 19.0 s p99 19.0 s (1 key)   volatile keys 20,000 (TTL 1 h)',
    );
    const without = renderLiveView(lagSnapshot(0, undefined), { columns: 250, color: false }).join('\n');
    expect(without).not.toContain('volatile keys');
  });

  it('the plain block has an expiry lag line; the summary line the counts, percentiles and keys left', () => {
    const snap = lagSnapshot(20_000, 0);
    expect(renderPlainBlock(snap)[1]).toBe(
      '  expiry lag: tracked p50 4.0 ms p99 8.0 ms (4 keys) | native p50 19.0 s p99 19.0 s (1 key) | volatile keys 20,000 (TTL 1 h), 0 left',
    );
    expect(parseSummaryLine(renderSummaryLine(snap))).toMatchObject({
      lagTracked: '4',
      lagTrackedP50: '4',
      lagTrackedP99: '8',
      lagNative: '1',
      lagNativeP50: '19000',
      lagNativeP99: '19000',
      volatileKeys: '20000',
      volatileLeft: '0',
    });
    expect(parseSummaryLine(renderSummaryLine(lagSnapshot(0, undefined)))).toMatchObject({
      volatileKeys: '0',
      volatileLeft: '-',
    });
  });
});

describe('captured values in the views (sizes, never contents)', () => {
  function valuesSnapshot(withValues: boolean) {
    const m = new StatusModel({
      startedAtMs: T0,
      settings: {
        keysPerSecond: 50,
        keyTtlMs: 1000,
        primaries: 3,
        replicasPerPrimary: 1,
        leaderName: 'local',
      },
      isTrackedKey: (key) => key.startsWith('demo:'),
    });
    m.workerSpawned('worker-1', 4000, T0);
    const fields = withValues
      ? [
          { valueType: 'string' as const, valueBytes: 12 },
          { valueType: 'string' as const, valueBytes: 40 },
          { valueType: 'hash' as const, valueBytes: 2048 },
          { valueMissing: 'not-tracked' as const },
          { valueMissing: 'read-late' as const },
          { valueMissing: 'not-tracked' as const },
        ]
      : [{}, {}];
    for (const [i, value] of fields.entries())
      m.workerLine(
        'worker-1',
        line('key.processed', T0 + 100 + i, { key: `demo:${i}`, fencingToken: 1, ...value }),
        T0 + 100 + i,
      );
    return m.snapshot(T0 + 1000);
  }

  it('the live view shows the count per type, the sizes, and the missing ones per reason', () => {
    const text = renderLiveView(valuesSnapshot(true), { columns: 250, color: false }).join('\n');
    expect(text).toContain(
      'Values (sizes, never contents): captured 3 (string 2, hash 1) size p50 40 B max 2.0 KiB   missing 3 (not-tracked 2, read-late 1)',
    );
  });

  it('the plain block has a values line, the summary the counts; lines without value fields say so', () => {
    const snap = valuesSnapshot(true);
    expect(renderPlainBlock(snap)).toContain(
      '  values: captured 3 (string 2, hash 1) size p50 40 B max 2.0 KiB | missing 3 (not-tracked 2, read-late 1)',
    );
    expect(parseSummaryLine(renderSummaryLine(snap))).toMatchObject({
      valuesCaptured: '3',
      valuesMissing: '3',
    });
    const none = valuesSnapshot(false);
    expect(renderPlainBlock(none)).toContain(
      '  values: none reported (no value capture on the key.processed lines)',
    );
    expect(parseSummaryLine(renderSummaryLine(none))).toMatchObject({
      valuesCaptured: '0',
      valuesMissing: '0',
    });
  });
});
