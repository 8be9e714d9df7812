import { expect } from 'vitest';
import {
  DEFAULT_BACKPRESSURE_BOUNDS,
  handoverDuplicateBound,
  MARK_LAG_SANITY_MS,
  PAUSED_IN_FLIGHT_BOUND,
} from '../../../local/chaos/chaos-guarantees.ts';
import { ChaosHarness } from '../../../local/chaos/chaos-harness.ts';
import { formatChaosReport } from '../../../local/chaos/chaos-report.ts';
import { type ChaosResult, defaultRunSettings } from '../../../local/chaos/chaos-run.ts';
import { CLUSTER_PROFILES, type ClusterProfileName } from '../../../local/chaos/chaos-scenario.ts';
import { findScenario } from '../../../local/chaos/chaos-scenarios.ts';

/**
 * Shared by the chaos integration files: one harness (cluster) per file, one scenario per test, and
 * the guarantees of docs/chaos.md asserted one by one (soft, so a run reports every broken guarantee).
 * The files declare their session and tests through chaos-setup.ts.
 */

/** Per test: a scenario runs 6-11 s of keys plus ~6 s of setup, drain and repair. */
export const SCENARIO_TIMEOUT_MS = 90_000;
export const HARNESS_TIMEOUT_MS = 60_000;

export class ChaosSession {
  readonly progress: string[] = [];
  harness: ChaosHarness | undefined;

  async start(profile: ClusterProfileName): Promise<void> {
    this.harness = await ChaosHarness.start(CLUSTER_PROFILES[profile], {
      log: (line) => this.progress.push(line),
    });
  }

  /** Runs a scenario for `durationS` seconds of keys at its default rate, prints its report. */
  async run(name: string, durationS: number): Promise<ChaosResult> {
    const scenario = findScenario(name);
    if (!scenario) throw new Error(`no scenario ${name}`);
    if (!this.harness) throw new Error('harness not started');
    this.progress.length = 0;
    let result: ChaosResult;
    try {
      result = await this.harness.run(scenario, defaultRunSettings(scenario, { durationS }));
    } catch (error) {
      console.info(this.progress.join('\n'));
      throw error;
    }
    console.info([...this.progress, ...formatChaosReport(result)].join('\n'));
    return result;
  }

  async close(): Promise<void> {
    await this.harness?.close();
  }
}

/** Asserts what the scenario promises (its GuaranteeExpectations), each figure on its own. */
export function expectGuarantees(result: ChaosResult): void {
  const scenario = findScenario(result.scenario);
  if (!scenario) throw new Error(`no scenario ${result.scenario}`);
  const e = scenario.expectations;
  const a = result.account;
  const { rate, durationS } = result.settings;
  const where = `missing keys published: ${JSON.stringify(a.missingWhen)}, first ${a.missingSample.slice(0, 5).join(' ')}`;

  // At least half the keys the schedule asked for were expected (primary faults exclude some).
  expect.soft(a.expected, 'expected keys').toBeGreaterThan(rate * durationS * 0.5);
  if (e.loss === 'no-loss') {
    expect.soft(a.missing, `expected keys never processed (${where})`).toBe(0);
  } else {
    expect.soft(a.shedDropped, 'events shed (the queue overflowed)').toBeGreaterThan(0);
    expect
      .soft(a.missing, 'unprocessed keys = shed + failed calls')
      .toBe(a.shedDropped + a.failedUnprocessed);
  }
  // What a stopped leader handled after its last mark is replayed by design (docs/chaos.md): bounded
  // by the mark-lag sanity bound; every other duplicate by the hand-over bound.
  const duplicateBound = e.duplicates === 'handover' ? handoverDuplicateBound(a.expected) : 0;
  const afterMarkBound = e.duplicates === 'handover' ? Math.ceil((rate * MARK_LAG_SANITY_MS) / 1000) : 0;
  expect
    .soft(a.duplicatesAfterMark, 'duplicates handled by a stopped leader after its last mark')
    .toBeLessThanOrEqual(afterMarkBound);
  expect
    .soft(a.duplicates - a.duplicatesAfterMark, 'other handler calls beyond the first per key')
    .toBeLessThanOrEqual(duplicateBound);
  expect
    .soft(
      a.idsNamingTwoKeys,
      `event ids naming two different keys (${a.idsNamingTwoKeysSample.slice(0, 3).join('; ')})`,
    )
    .toBe(0);
  expect.soft(a.fencing.violations, a.fencing.example ?? 'fencing').toBe(0);
  expect.soft(a.coverageViolations, 'leaders that took the lease uncovered').toEqual([]);
  expect.soft(a.unexpectedExits, 'workers that exited on their own').toEqual([]);
  expect
    .soft(a.excluded.unsubscribed, 'keys published while no worker was subscribed to their primary')
    .toBeLessThanOrEqual(Math.ceil(rate * e.unsubscribedSeconds));
  if (e.leaderChange) {
    expect
      .soft(
        a.faults.some((f) => f.newLeaderAfterMs !== undefined),
        'a new leader took over',
      )
      .toBe(true);
  }
  if (e.pausedLeaderIdle) {
    expect.soft(a.pausedLeaders.length, 'paused leaders observed').toBeGreaterThan(0);
    for (const paused of a.pausedLeaders) {
      expect
        .soft(
          paused.processedAfterResume,
          `${paused.workerId}: calls with token ${paused.fencingToken} started after SIGCONT`,
        )
        .toBe(0);
      expect
        .soft(
          paused.inFlightAtPause,
          `${paused.workerId}: calls running when frozen, completed after SIGCONT`,
        )
        .toBeLessThanOrEqual(PAUSED_IN_FLIGHT_BOUND);
    }
  }
  if (e.allPublished) {
    expect
      .soft(a.unpublished, 'keys set but never published (the harness missed events)')
      .toEqual({ faultedPrimary: 0, other: 0 });
  }
  const bp = result.backpressure;
  if (scenario.backpressure) {
    expect(bp).toBeDefined();
    if (!bp) return;
    expect.soft(bp.rssAtFirstShedKb, 'leader RSS sampled at the first shed').toBeDefined();
    expect.soft(bp.maxRssAfterShedKb, 'leader RSS sampled after the first shed').toBeDefined();
    const growth = (bp.maxRssAfterShedKb ?? Number.POSITIVE_INFINITY) - (bp.rssAtFirstShedKb ?? 0);
    expect
      .soft(growth, 'leader RSS growth after the queue overflowed (kB)')
      .toBeLessThanOrEqual(DEFAULT_BACKPRESSURE_BOUNDS.maxRssGrowthAfterShedKb);
    expect
      .soft(bp.maxRssKb ?? Number.POSITIVE_INFINITY, 'leader max RSS (kB)')
      .toBeLessThanOrEqual(DEFAULT_BACKPRESSURE_BOUNDS.maxRssKb);
    expect.soft(bp.outputBufferDisconnects, 'clients closed by Redis for their output buffer').toBe(0);
    expect.soft(a.subscriptionDowns, 'subscription.down during the run').toBe(0);
    expect
      .soft(bp.subscribersAtEnd.length, 'primaries answering CLIENT LIST at the end')
      .toBe(result.cluster.primaries);
    for (const count of bp.subscribersAtEnd) {
      expect.soft(count, 'worker subscriber connections on a primary at the end').toBe(bp.liveWorkersAtEnd);
    }
  }
  // The CLI's verdicts agree with the assertions above.
  expect.soft(result.verdicts.filter((v) => !v.ok).map((v) => `${v.name}: ${v.detail}`)).toEqual([]);
}
