import { describe, expect, it } from 'vitest';
import type { LogEventName } from '../../../../core/log-events.ts';
import {
  type ChaosObservations,
  checkFencing,
  computeChaosAccount,
  type GeneratedKey,
  type LifecycleEvent,
  longestGap,
  type Publication,
  type WorkerRecord,
  type WorkerRecordOf,
} from '../../../../local/chaos/chaos-accounting.ts';
import { exampleRecord, type GivenFields } from '../../../support/log-examples.ts';

const A = '127.0.0.1:7001';
const B = '127.0.0.1:7002';
const T0 = 1_000_000;
const TTL = 1000;

// Complete catalog records (test/support/log-examples.ts), as the fleet decodes them.
const record = <E extends LogEventName>(
  workerId: string,
  atMs: number,
  event: E,
  fields?: GivenFields<E>,
): WorkerRecordOf<E> =>
  ({ workerId, atMs, event, fields: exampleRecord(event, atMs, fields) }) as unknown as WorkerRecordOf<E>;
const processed = (workerId: string, atMs: number, key: string, fencingToken = 1, replayed = false) =>
  record(workerId, atMs, 'key.processed', { key, fencingToken, replayed });
const subscribed = (workerId: string, atMs: number, nodes = [A, B]): WorkerRecord[] => [
  record(workerId, atMs, 'topology.changed', { primaries: nodes }),
  ...nodes.map((node) => record(workerId, atMs, 'subscription.up', { node })),
];
const spawned = (workerId: string, atMs = T0 - 5000): LifecycleEvent => ({ workerId, kind: 'spawned', atMs });
const gen = (key: string, setAtMs: number, owner = A): GeneratedKey => ({ key, setAtMs, owner });
const pub = (key: string, atMs: number, node = A): Publication => ({ key, node, atMs });

/** Two workers (w1 leads with token 1), subscribed to A and B since before the run. */
function observations(overrides: Partial<ChaosObservations> = {}): ChaosObservations {
  return {
    trackedPrefix: 'chaos:r:',
    ttlMs: TTL,
    generatorStartMs: T0,
    generatorStopMs: T0 + 10_000,
    generated: [],
    setFailures: 0,
    publications: [],
    records: [
      ...subscribed('w1', T0 - 3000),
      ...subscribed('w2', T0 - 3000),
      record('w1', T0 - 2000, 'leader.acquired', { fencingToken: 1 }),
    ],
    lifecycle: [spawned('w1'), spawned('w2')],
    outages: [],
    faults: [],
    ...overrides,
  };
}

/** n keys set 5 ms apart from T0, each published at its deadline + 50 ms on A. */
function flow(n: number): { generated: GeneratedKey[]; publications: Publication[] } {
  const generated = Array.from({ length: n }, (_, i) => gen(`chaos:r:${i}`, T0 + i * 5));
  return { generated, publications: generated.map((g) => pub(g.key, g.setAtMs + TTL + 50)) };
}

describe('computeChaosAccount: expected, processed, missing, duplicates', () => {
  it('counts every published key processed once as expected and processed, with nothing lost', () => {
    const { generated, publications } = flow(3);
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      generated,
      publications,
      records: [...base.records, ...publications.map((p) => processed('w1', p.atMs + 2, p.key))],
    });
    expect(account).toMatchObject({
      generated: 3,
      published: 3,
      expected: 3,
      processed: 3,
      missing: 0,
      lost: 0,
      duplicates: 0,
      handlerCalls: 3,
      excluded: { primaryDown: 0, unsubscribed: 0 },
      unpublished: { faultedPrimary: 0, other: 0 },
    });
    expect(account.fencing.ok).toBe(true);
  });

  it('counts handler calls beyond the first per key as duplicates, not as more processed keys', () => {
    const { generated, publications } = flow(2);
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      generated,
      publications,
      records: [
        ...base.records,
        processed('w1', T0 + 1100, 'chaos:r:0'),
        processed('w2', T0 + 1200, 'chaos:r:0', 2, true),
        processed('w2', T0 + 1201, 'chaos:r:0', 2, true),
        processed('w1', T0 + 1100, 'chaos:r:1'),
      ],
    });
    expect(account).toMatchObject({ processed: 2, duplicates: 2, handlerCalls: 4, replayed: 2 });
  });

  it('counts as after-mark duplicates only second calls of events a stopped leader numbered above its last mark', () => {
    const { generated, publications } = flow(3);
    const base = observations();
    const call = (workerId: string, atMs: number, key: string, token: number, eventId: string) =>
      record(workerId, atMs, 'key.processed', { key, fencingToken: token, replayed: token === 2, eventId });
    const account = computeChaosAccount({
      ...base,
      generated,
      publications,
      records: [
        ...base.records,
        // Token 1 handled seq 10 (covered by its mark 10), 11 (after it) and, on node n2 with no mark, 5.
        call('w1', T0 + 1100, 'chaos:r:0', 1, 'n1:10'),
        call('w1', T0 + 1101, 'chaos:r:1', 1, 'n1:11'),
        call('w1', T0 + 1102, 'chaos:r:2', 1, 'n2:5'),
        call('w2', T0 + 4000, 'chaos:r:0', 2, 'n1:10'),
        call('w2', T0 + 4001, 'chaos:r:1', 2, 'n1:11'),
        call('w2', T0 + 4002, 'chaos:r:2', 2, 'n2:5'),
      ],
      markSnapshots: [
        { fencingToken: 1, atMs: T0 + 1300, seqByNode: { n1: 10 } },
        // Another leader's marks say nothing about token 1's calls.
        { fencingToken: 3, atMs: T0 + 1300, seqByNode: { n2: 0 } },
      ],
    });
    expect(account).toMatchObject({ duplicates: 3, duplicatesAfterMark: 1 });
  });

  it('max delay: the largest publication -> first key.processed of an expected key, and its node', () => {
    const generated = [gen('chaos:r:0', T0), gen('chaos:r:1', T0 + 5, B)];
    const publications = [pub('chaos:r:0', T0 + 1050), pub('chaos:r:1', T0 + 1055, B)];
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      generated,
      publications,
      records: [
        ...base.records,
        processed('w1', T0 + 1060, 'chaos:r:0'),
        processed('w2', T0 + 4055, 'chaos:r:1', 2, true),
        // A later duplicate does not count: the first call decides.
        processed('w2', T0 + 9000, 'chaos:r:0', 2, true),
      ],
    });
    expect(account).toMatchObject({ maxDelayMs: 3000, maxDelayNode: B });
  });

  it('counts event ids that name two different keys (a reused id), not the same key under two ids', () => {
    const { generated, publications } = flow(3);
    const base = observations();
    const call = (workerId: string, atMs: number, key: string, eventId: string) =>
      record(workerId, atMs, 'key.processed', { key, fencingToken: 1, replayed: false, eventId });
    const account = computeChaosAccount({
      ...base,
      generated,
      publications,
      records: [
        ...base.records,
        call('w1', T0 + 1100, 'chaos:r:0', 'n1:1'),
        call('w2', T0 + 1200, 'chaos:r:0', 'n1:1'), // a duplicate under the same id: fine
        call('w2', T0 + 1201, 'chaos:r:0', 'n1:900'), // a duplicate under a fresh id: fine
        call('w2', T0 + 1300, 'chaos:r:1', 'n1:1'), // another key under n1:1: reused
        call('w1', T0 + 1300, 'chaos:r:2', 'n1:2'),
      ],
    });
    expect(account.idsNamingTwoKeys).toBe(1);
    expect(account.idsNamingTwoKeysSample).toEqual(['n1:1: chaos:r:0, chaos:r:1']);
  });

  it('ignores keys of other runs (another prefix)', () => {
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      generated: [gen('chaos:other:1', T0)],
      publications: [pub('chaos:other:1', T0 + 1050), pub('{kl:x:c0}:canary:1', T0 + 10)],
      records: [...base.records, processed('w1', T0 + 1060, 'chaos:other:1')],
    });
    expect(account).toMatchObject({ generated: 0, published: 0, expected: 0, handlerCalls: 0 });
  });

  it('accounts missing keys by shed (except replay-window-full) and by failed calls; lost is the rest', () => {
    const { generated, publications } = flow(6);
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      generated,
      publications,
      records: [
        ...base.records,
        processed('w1', T0 + 1100, 'chaos:r:0'),
        record('w1', T0 + 1200, 'events.shed', { count: 2, reason: 'queue-full' }),
        record('w2', T0 + 1200, 'events.shed', { count: 5, reason: 'replay-window-full' }),
        record('w1', T0 + 1300, 'handler.failed', { key: 'chaos:r:3', fencingToken: 1 }),
      ],
    });
    expect(account).toMatchObject({
      expected: 6,
      processed: 1,
      missing: 5,
      shed: 7,
      shedByReason: { 'queue-full': 2, 'replay-window-full': 5 },
      shedDropped: 2,
      failedUnprocessed: 1,
      lost: 2,
      handlerFailures: 1,
    });
    expect(account.missingSample).toEqual(['chaos:r:1', 'chaos:r:2', 'chaos:r:3', 'chaos:r:4', 'chaos:r:5']);
  });

  it('counts a key published twice by Redis once, and reports the republication', () => {
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      generated: [gen('chaos:r:1', T0)],
      publications: [pub('chaos:r:1', T0 + 1050, A), pub('chaos:r:1', T0 + 2050, B)],
      records: [...base.records, processed('w1', T0 + 1060, 'chaos:r:1')],
    });
    expect(account).toMatchObject({ published: 1, republished: 1, expected: 1, processed: 1 });
  });

  it('a key Redis published twice (an AOF restart restored it) may be handled twice: one call per publication is no duplicate', () => {
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      generated: [gen('chaos:r:1', T0), gen('chaos:r:2', T0)],
      publications: [pub('chaos:r:1', T0 + 1050), pub('chaos:r:1', T0 + 2050), pub('chaos:r:2', T0 + 1050)],
      records: [
        ...base.records,
        processed('w1', T0 + 1060, 'chaos:r:1'),
        processed('w1', T0 + 2060, 'chaos:r:1'),
        processed('w1', T0 + 1060, 'chaos:r:2'),
        processed('w1', T0 + 1070, 'chaos:r:2'), // a real duplicate: published once, handled twice
      ],
    });
    expect(account).toMatchObject({ republished: 1, duplicates: 1 });
  });
});

describe('computeChaosAccount: exclusions', () => {
  it('excludes keys whose primary was down at their deadline (outage widened by the margin)', () => {
    const outage = { node: A, fromMs: T0 + 3000, toMs: T0 + 5000 };
    const keys = [
      gen('chaos:r:before', T0), // deadline T0+1000: more than 1 s before the outage
      gen('chaos:r:edge', T0 + 1500), // deadline T0+2500: within the 1 s margin
      gen('chaos:r:inside', T0 + 3000), // deadline T0+4000
      gen('chaos:r:other-primary', T0 + 3000, B),
      gen('chaos:r:after', T0 + 5500), // deadline T0+6500: more than 1 s after
    ];
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      outages: [outage],
      generated: keys,
      publications: keys.map((k) => pub(k.key, k.setAtMs + TTL + 50, k.owner)),
      records: [...base.records, processed('w1', T0 + 6000, 'chaos:r:inside')],
    });
    expect(account.excluded.primaryDown).toBe(2);
    expect(account.expected).toBe(3);
    expect(account.excludedProcessed).toBe(1);
    expect(account.processedUnexpected).toBe(1);
    expect(account.missing).toBe(3);
  });

  it('excludes keys published while no live worker had a confirmed subscription to that primary', () => {
    const NEW = '127.0.0.1:7003';
    const base = observations();
    const keys = [
      gen('chaos:r:early', T0, B),
      gen('chaos:r:racing', T0 + 200, B),
      gen('chaos:r:late', T0 + 500, B),
    ];
    const account = computeChaosAccount({
      ...base,
      generated: keys,
      // All three published by a new primary NEW; w2 subscribes to it at T0 + 1240.
      publications: [
        pub('chaos:r:early', T0 + 1050, NEW),
        pub('chaos:r:racing', T0 + 1300, NEW), // 60 ms after the subscription: within the 100 ms tolerance
        pub('chaos:r:late', T0 + 1550, NEW),
      ],
      records: [...base.records, record('w2', T0 + 1240, 'subscription.up', { node: NEW })],
    });
    expect(account.excluded.unsubscribed).toBe(2);
    expect(account.expected).toBe(1);
    expect(account.missing).toBe(1);
  });

  it('ends the subscriptions of a worker at its SIGKILL, not at the exit the harness saw later', () => {
    const base = observations({
      records: [
        ...subscribed('w1', T0 - 3000),
        record('w1', T0 - 2000, 'leader.acquired', { fencingToken: 1 }),
      ],
      lifecycle: [
        spawned('w1'),
        { workerId: 'w1', kind: 'signalled', atMs: T0 + 500, signal: 'SIGKILL' },
        { workerId: 'w1', kind: 'exited', atMs: T0 + 900, signal: 'SIGKILL' },
      ],
    });
    const account = computeChaosAccount({
      ...base,
      generated: [gen('chaos:r:1', T0 - 400)],
      publications: [pub('chaos:r:1', T0 + 700)],
    });
    expect(account.excluded.unsubscribed).toBe(1);
    expect(account.unexpectedExits).toEqual([]);
  });

  it('classifies keys never published: those of a faulted primary apart from the others', () => {
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      outages: [{ node: A, fromMs: T0 + 2000, toMs: T0 + 4000 }],
      generated: [gen('chaos:r:lost-with-primary', T0 + 1500), gen('chaos:r:never-seen', T0 + 1500, B)],
      publications: [],
    });
    expect(account.unpublished).toEqual({ faultedPrimary: 1, other: 1 });
    expect(account.expected).toBe(0);
  });
});

describe('longestGap', () => {
  it('is the longest interval between processing instants within the publication window, edges included', () => {
    expect(longestGap([100, 200, 1000], [150, 300, 900])).toEqual({ gapMs: 600, startMs: 300 });
  });

  it('counts processing that stopped for good up to the last publication', () => {
    expect(longestGap([0, 10_000], [100, 200])).toEqual({ gapMs: 9800, startMs: 200 });
  });

  it('is 0 without publications', () => {
    expect(longestGap([], [1, 2])).toEqual({ gapMs: 0, startMs: undefined });
  });
});

describe('checkFencing', () => {
  it('accepts tokens that never go down in time order', () => {
    const check = checkFencing([
      processed('w1', 10, 'k1', 1),
      processed('w2', 20, 'k2', 2),
      processed('w2', 30, 'k3', 2),
    ]);
    expect(check).toEqual({ ok: true, violations: 0, example: undefined });
  });

  it('flags a lower token after a higher one at an earlier millisecond', () => {
    const check = checkFencing([
      processed('w2', 20, 'k2', 2),
      processed('w1', 25, 'chaos:r:late', 1),
      processed('w1', 10, 'k1', 1),
    ]);
    expect(check.ok).toBe(false);
    expect(check.violations).toBe(1);
    expect(check.example).toContain('w1 processed chaos:r:late with token 1');
    expect(check.example).toContain('after w2 had processed with token 2');
  });

  it('does not order lines of the same millisecond', () => {
    expect(checkFencing([processed('w2', 20, 'k2', 2), processed('w1', 20, 'k1', 1)]).ok).toBe(true);
  });
});

describe('computeChaosAccount: leadership', () => {
  it('measures the takeover after a fault, and attributes it to the latest fault before it', () => {
    const base = observations();
    const account = computeChaosAccount({
      ...base,
      faults: [
        { name: 'SIGTERM follower', atMs: T0 + 1000, detail: 'w3' },
        { name: 'SIGKILL leader', atMs: T0 + 2000, detail: 'w1' },
      ],
      records: [
        ...base.records,
        record('w2', T0 + 4500, 'leader.acquired', { fencingToken: 2 }),
        processed('w2', T0 + 4510, 'chaos:r:x', 2, true),
      ],
    });
    expect(account.faults.map((f) => [f.name, f.newLeaderAfterMs, f.processingAfterMs])).toEqual([
      ['SIGTERM follower', undefined, undefined],
      ['SIGKILL leader', 2500, 2510],
    ]);
    expect(account.leaderChanges).toBe(1);
    expect(account.fencingTokens).toEqual([1, 2]);
  });

  it('ignores a leader.acquired after the harness began stopping the workers', () => {
    const base = observations({ workersStopMs: T0 + 12_000 });
    const account = computeChaosAccount({
      ...base,
      faults: [{ name: 'CLIENT KILL subscribers', atMs: T0 + 2000, detail: 'w1' }],
      records: [...base.records, record('w2', T0 + 12_050, 'leader.acquired', { fencingToken: 2 })],
    });
    expect(account.leaderChanges).toBe(0);
    expect(account.faults[0]?.newLeaderAfterMs).toBeUndefined();
  });

  it('counts calls of a paused leader with its old token after SIGCONT, and none with a newer one', () => {
    const base = observations({
      lifecycle: [
        spawned('w1'),
        spawned('w2'),
        { workerId: 'w1', kind: 'signalled', atMs: T0 + 1000, signal: 'SIGSTOP' },
        { workerId: 'w1', kind: 'signalled', atMs: T0 + 7000, signal: 'SIGCONT' },
      ],
    });
    const account = computeChaosAccount({
      ...base,
      records: [
        ...base.records,
        processed('w1', T0 + 900, 'chaos:r:a', 1),
        record('w2', T0 + 3800, 'leader.acquired', { fencingToken: 2 }),
        processed('w1', T0 + 7001, 'chaos:r:b', 1),
        record('w1', T0 + 7100, 'leader.acquired', { fencingToken: 3 }),
        processed('w1', T0 + 7200, 'chaos:r:c', 3),
      ],
    });
    expect(account.pausedLeaders).toEqual([
      { workerId: 'w1', fencingToken: 1, pausedMs: 6000, processedAfterResume: 1, inFlightAtPause: 0 },
    ]);
  });

  it('tells calls that were running when the leader was frozen (handlerMs spans the pause) from calls started after SIGCONT', () => {
    const base = observations({
      lifecycle: [
        spawned('w1'),
        spawned('w2'),
        { workerId: 'w1', kind: 'signalled', atMs: T0 + 1000, signal: 'SIGSTOP' },
        { workerId: 'w1', kind: 'signalled', atMs: T0 + 7000, signal: 'SIGCONT' },
      ],
    });
    const call = (atMs: number, key: string, token: number, handlerMs: number) =>
      record('w1', atMs, 'key.processed', { key, fencingToken: token, handlerMs });
    const account = computeChaosAccount({
      ...base,
      records: [
        ...base.records,
        record('w2', T0 + 3800, 'leader.acquired', { fencingToken: 2 }),
        processed('w2', T0 + 3900, 'chaos:r:new', 2),
        // Started at T0 + 999.5 (before SIGSTOP), completed on resume: in flight at the pause.
        call(T0 + 7001, 'chaos:r:running', 1, 6001.5),
        // Started on resume with the old token: the gate let it through, a violation.
        call(T0 + 7003, 'chaos:r:started-late', 1, 1),
      ],
    });
    expect(account.pausedLeaders).toEqual([
      { workerId: 'w1', fencingToken: 1, pausedMs: 6000, processedAfterResume: 1, inFlightAtPause: 1 },
    ]);
    // The running call is ordered at its start, before token 2: no fencing violation from it; the
    // late start is one.
    expect(account.fencing.violations).toBe(1);
    expect(account.fencing.example).toContain('chaos:r:started-late');
  });

  it('flags a leader that took the lease uncovered while a live, running peer covered every primary', () => {
    const base = observations({
      records: [
        record('w1', T0 - 3000, 'topology.changed', { primaries: [A, B] }),
        record('w1', T0 - 3000, 'subscription.up', { node: A }),
        ...subscribed('w2', T0 - 3000),
        record('w1', T0 + 100, 'leader.acquired', { fencingToken: 1 }),
      ],
    });
    const account = computeChaosAccount(base);
    expect(account.coverageViolations).toEqual([
      { workerId: 'w1', atOffsetMs: 100, subscribed: 1, known: 2, coveredPeers: ['w2'] },
    ]);
  });

  it('allows an uncovered leader when no peer is covered, or the covered one is paused', () => {
    const uncovered = [
      record('w1', T0 - 3000, 'topology.changed', { primaries: [A, B] }),
      record('w1', T0 - 3000, 'subscription.up', { node: A }),
      record('w1', T0 + 100, 'leader.acquired', { fencingToken: 1 }),
    ];
    const noPeer = computeChaosAccount(
      observations({
        records: [
          ...uncovered,
          record('w2', T0 - 3000, 'topology.changed', { primaries: [A, B] }),
          record('w2', T0 - 3000, 'subscription.up', { node: B }),
        ],
      }),
    );
    expect(noPeer.coverageViolations).toEqual([]);
    const pausedPeer = computeChaosAccount(
      observations({
        records: [...uncovered, ...subscribed('w2', T0 - 3000)],
        lifecycle: [
          spawned('w1'),
          spawned('w2'),
          { workerId: 'w2', kind: 'signalled', atMs: T0, signal: 'SIGSTOP' },
        ],
      }),
    );
    expect(pausedPeer.coverageViolations).toEqual([]);
  });

  it('tells where missing keys fell: no leader, leader not subscribed, leader subscribed', () => {
    const base = observations({
      records: [
        ...subscribed('w1', T0 - 3000),
        ...subscribed('w2', T0 - 3000),
        record('w1', T0 - 2000, 'leader.acquired', { fencingToken: 1 }),
        record('w1', T0 + 1000, 'subscription.down', { node: A, reason: 'connection-closed' }),
        record('w1', T0 + 1300, 'subscription.up', { node: A }),
        record('w1', T0 + 2000, 'leader.lost', { reason: 'renew-deadline-missed', fencingToken: 1 }),
      ],
    });
    const account = computeChaosAccount({
      ...base,
      generated: [gen('chaos:r:1', T0 - 500), gen('chaos:r:2', T0), gen('chaos:r:3', T0 + 1500)],
      publications: [pub('chaos:r:1', T0 + 550), pub('chaos:r:2', T0 + 1100), pub('chaos:r:3', T0 + 2600)],
    });
    expect(account.missingWhen).toEqual({ noLeader: 1, leaderUnsubscribed: 1, leaderSubscribed: 1 });
  });

  it('lists workers that exited without a signal from the harness, and worker.crashed lines', () => {
    const base = observations({
      lifecycle: [
        spawned('w1'),
        spawned('w2'),
        { workerId: 'w1', kind: 'signalled', atMs: T0 + 100, signal: 'SIGTERM' },
        { workerId: 'w1', kind: 'exited', atMs: T0 + 200, code: 0 },
        { workerId: 'w2', kind: 'exited', atMs: T0 + 300, code: 1 },
      ],
    });
    const account = computeChaosAccount({
      ...base,
      records: [...base.records, record('w2', T0 + 290, 'worker.crashed', { kind: 'uncaught-exception' })],
    });
    expect(account.unexpectedExits).toEqual(['w2 exited (code 1)', 'w2 worker.crashed (uncaught-exception)']);
  });
});
