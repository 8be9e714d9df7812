import { describe, expect, it } from 'vitest';
import type { ChaosAccount } from '../../../../local/chaos/chaos-accounting.ts';
import {
  type BackpressureFigures,
  DEFAULT_BACKPRESSURE_BOUNDS,
  evaluateGuarantees,
  type GuaranteeExpectations,
  handoverDuplicateBound,
  MARK_LAG_SANITY_MS,
  PAUSED_IN_FLIGHT_BOUND,
} from '../../../../local/chaos/chaos-guarantees.ts';

const clean: ChaosAccount = {
  generated: 2000,
  setFailures: 0,
  published: 2000,
  republished: 0,
  excluded: { primaryDown: 0, unsubscribed: 0 },
  excludedProcessed: 0,
  unpublished: { faultedPrimary: 0, other: 0 },
  expected: 2000,
  processed: 2000,
  processedUnexpected: 0,
  missing: 0,
  shed: 0,
  shedByReason: {},
  shedDropped: 0,
  failedUnprocessed: 0,
  lost: 0,
  duplicates: 0,
  duplicatesAfterMark: 0,
  duplicatesExcluded: 0,
  idsNamingTwoKeys: 0,
  idsNamingTwoKeysSample: [],
  handlerCalls: 2000,
  replayed: 0,
  handlerFailures: 0,
  maxDelayMs: 0,
  maxDelayNode: undefined,
  longestGapMs: 100,
  longestGapStartOffsetMs: 1000,
  leaderChanges: 1,
  fencingTokens: [1, 2],
  faults: [
    {
      name: 'SIGKILL leader',
      detail: 'w1',
      atOffsetMs: 2000,
      newLeaderAfterMs: 2500,
      processingAfterMs: 2510,
    },
  ],
  fencing: { ok: true, violations: 0, example: undefined },
  pausedLeaders: [],
  coverageViolations: [],
  unexpectedExits: [],
  subscriptionDowns: 0,
  missingSample: [],
  missingWhen: { noLeader: 0, leaderUnsubscribed: 0, leaderSubscribed: 0 },
};

const handover: GuaranteeExpectations = {
  loss: 'no-loss',
  duplicates: 'handover',
  leaderChange: true,
  pausedLeaderIdle: false,
  allPublished: true,
  unsubscribedSeconds: 0,
};

const failed = (account: ChaosAccount, expectations = handover, rate = 200) =>
  evaluateGuarantees(account, expectations, { rate })
    .filter((v) => !v.ok)
    .map((v) => v.name);

describe('evaluateGuarantees', () => {
  it('passes a clean hand-over', () => {
    expect(failed(clean)).toEqual([]);
  });

  it('fails on any missing key in a no-loss scenario, even when it was shed', () => {
    expect(failed({ ...clean, missing: 3, shed: 3, shedDropped: 3, lost: 0 })).toEqual(['no loss']);
  });

  it('bounds duplicates by max(2, 0.1%) after a hand-over and by 0 in steady state', () => {
    expect(handoverDuplicateBound(100)).toBe(2);
    expect(handoverDuplicateBound(20_000)).toBe(20);
    expect(failed({ ...clean, duplicates: 2 })).toEqual([]);
    expect(failed({ ...clean, duplicates: 3 })).toEqual(['duplicates']);
    expect(failed({ ...clean, duplicates: 1 }, { ...handover, duplicates: 'steady' })).toEqual([
      'duplicates',
    ]);
  });

  it('allows the duplicates a stopped leader handled after its last mark, within the mark-lag sanity bound', () => {
    // 200 keys/s: the sanity bound is 200 * MARK_LAG_SANITY_MS / 1000.
    const sanity = Math.ceil((200 * MARK_LAG_SANITY_MS) / 1000);
    expect(failed({ ...clean, duplicates: 9, duplicatesAfterMark: 9 })).toEqual([]);
    expect(failed({ ...clean, duplicates: 9 + 2, duplicatesAfterMark: 9 })).toEqual([]);
    expect(failed({ ...clean, duplicates: 9 + 3, duplicatesAfterMark: 9 })).toEqual(['duplicates']);
    expect(failed({ ...clean, duplicates: sanity + 1, duplicatesAfterMark: sanity + 1 })).toEqual([
      'duplicates',
    ]);
    expect(
      failed({ ...clean, duplicates: 1, duplicatesAfterMark: 1 }, { ...handover, duplicates: 'steady' }),
    ).toEqual(['duplicates']);
  });

  it('fails on any event id that names two keys, in every scenario', () => {
    const reused = { ...clean, idsNamingTwoKeys: 1, idsNamingTwoKeysSample: ['n1:1: k1, k2'] };
    expect(failed(reused)).toEqual(['ids naming two keys']);
    expect(failed(reused, { ...handover, duplicates: 'steady' })).toEqual(['ids naming two keys']);
  });

  it('requires a takeover when the scenario moves leadership', () => {
    const faults = [
      { ...clean.faults[0], newLeaderAfterMs: undefined, processingAfterMs: undefined },
    ] as ChaosAccount['faults'];
    expect(failed({ ...clean, faults })).toEqual(['leadership moved']);
    expect(failed({ ...clean, faults }, { ...handover, leaderChange: false })).toEqual([]);
  });

  it('fails fencing, coverage, crashes, and an empty run', () => {
    expect(
      failed({
        ...clean,
        expected: 0,
        fencing: { ok: false, violations: 1, example: 'x' },
        coverageViolations: [
          { workerId: 'w1', atOffsetMs: 0, subscribed: 1, known: 3, coveredPeers: ['w2'] },
        ],
        unexpectedExits: ['w3 exited (code 1)'],
      }),
    ).toEqual(['keys flowed', 'fencing order', 'coverage', 'no worker crashed']);
  });

  it('requires a paused leader to be observed and idle after resume', () => {
    const expectations = { ...handover, pausedLeaderIdle: true };
    expect(failed(clean, expectations)).toEqual(['paused leader idle after resume']);
    const paused = {
      workerId: 'w1',
      fencingToken: 1,
      pausedMs: 6000,
      processedAfterResume: 0,
      inFlightAtPause: 0,
    };
    expect(failed({ ...clean, pausedLeaders: [paused] }, expectations)).toEqual([]);
    expect(
      failed({ ...clean, pausedLeaders: [{ ...paused, processedAfterResume: 4 }] }, expectations),
    ).toEqual(['paused leader idle after resume']);
    // Calls running when it was frozen may complete after SIGCONT, up to the concurrency.
    expect(
      failed(
        { ...clean, pausedLeaders: [{ ...paused, inFlightAtPause: PAUSED_IN_FLIGHT_BOUND }] },
        expectations,
      ),
    ).toEqual([]);
    expect(
      failed(
        { ...clean, pausedLeaders: [{ ...paused, inFlightAtPause: PAUSED_IN_FLIGHT_BOUND + 1 }] },
        expectations,
      ),
    ).toEqual(['paused leader idle after resume']);
  });

  it('allows keys published while no worker was subscribed only in scenarios that change the topology', () => {
    const account = { ...clean, excluded: { primaryDown: 0, unsubscribed: 5 } };
    expect(failed(account)).toEqual(['workers subscribed']);
    expect(failed(account, { ...handover, unsubscribedSeconds: 5 })).toEqual([]);
  });

  it('under overload, requires every unprocessed key to be shed or a failed call, and something shed', () => {
    const overload: GuaranteeExpectations = { ...handover, loss: 'shed-accounts', leaderChange: false };
    const base = {
      ...clean,
      processed: 1000,
      missing: 1000,
      shed: 995,
      shedDropped: 990,
      failedUnprocessed: 10,
      lost: 0,
    };
    expect(failed(base, overload)).toEqual([]);
    expect(failed({ ...base, failedUnprocessed: 9, lost: 1 }, overload)).toEqual([
      'every loss is accounted for',
    ]);
    expect(failed({ ...clean }, overload)).toEqual(['every loss is accounted for']);
  });

  it('judges memory growth after the first shed and subscribers that were cut off', () => {
    const figures: BackpressureFigures = {
      rssAtFirstShedKb: 130_000,
      maxRssAfterShedKb: 140_000,
      maxRssKb: 140_000,
      outputBufferDisconnects: 0,
      maxSubscriberOmem: 0,
      subscribersAtEnd: [3, 3, 3],
      liveWorkersAtEnd: 3,
    };
    const judge = (f: BackpressureFigures, downs = 0) =>
      evaluateGuarantees(
        { ...clean, subscriptionDowns: downs },
        { ...handover, leaderChange: false },
        {
          rate: 2000,
          backpressure: { figures: f, bounds: DEFAULT_BACKPRESSURE_BOUNDS },
        },
      )
        .filter((v) => !v.ok)
        .map((v) => v.name);
    expect(judge(figures)).toEqual([]);
    expect(judge({ ...figures, maxRssAfterShedKb: 130_000 + 200 * 1024 })).toEqual(['memory bounded']);
    expect(judge({ ...figures, rssAtFirstShedKb: undefined })).toEqual(['memory bounded']);
    expect(judge({ ...figures, outputBufferDisconnects: 1 })).toEqual(['subscribers never cut off']);
    expect(judge({ ...figures, subscribersAtEnd: [3, 2, 3] })).toEqual(['subscribers never cut off']);
    expect(judge(figures, 1)).toEqual(['subscribers never cut off']);
  });
});
