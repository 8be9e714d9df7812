import { crashLossRates, type HandoverRun, medianAndWorst } from './analysis.ts';
import type { BenchSettings } from './bench-options.ts';
import { type FixedStepResult, runFixedStep } from './fixed-step.ts';
import { runHandover } from './hand-over.ts';
import type { BenchHarness } from './harness.ts';

/**
 * Issue 7: what the delivery guarantees deliver and what they cost.
 * - crash-loss: events lost and handled twice when the leader is SIGKILLed, at two rates, ours next
 *   to the seed's algorithm (the hand-over machinery, crash runs only);
 * - cost: one fixed-rate step per variant (replay on, the default; REPLAY_WINDOW_MS=0; HANDLER=stream),
 *   the leader alone;
 * - resources: worker CPU and RSS per 1,000 events with three workers (leader and followers), replay
 *   on and off;
 * - three-workers: rising steps with all three workers running; the ratio to the bare subscribers at
 *   the highest rate sustained.
 */

export interface CrashLossRate {
  readonly keysPerSecond: number;
  /** Set on the rate taken from the measured maximum: that maximum (three-workers, same run). */
  readonly measuredMaxPerSecond?: number | undefined;
  readonly algorithm: 'keyspace-leader' | 'seed';
  readonly runs: readonly HandoverRun[];
  readonly lost: { median: number; worst: number };
  readonly duplicates: { median: number; worst: number };
  readonly expected: { median: number; worst: number };
  readonly gapMs: { median: number; worst: number };
  /** Acquisition to the last event of the fault window handled, over the runs that handled all of it. */
  readonly catchUpMs: { median: number; worst: number };
  /** Runs won by the replacement worker (started after the kill, with an empty window). */
  readonly wonByReplacement: number;
}

export async function runCrashLoss(
  harness: BenchHarness,
  settings: BenchSettings,
  measuredMaxPerSecond?: number,
): Promise<CrashLossRate[]> {
  const { runs, ratesPerSecond, workers } = settings.crashLoss;
  const results: CrashLossRate[] = [];
  for (const rate of crashLossRates(ratesPerSecond, measuredMaxPerSecond)) {
    const { keysPerSecond } = rate;
    for (const algorithm of ['keyspace-leader', 'seed'] as const) {
      const report = await runHandover(harness, settings, algorithm, {
        runs,
        keysPerSecond,
        workers,
        graceful: false,
      });
      const done = report.crashRuns;
      results.push({
        keysPerSecond,
        measuredMaxPerSecond: rate.measuredMaxPerSecond,
        algorithm,
        runs: done,
        lost: medianAndWorst(done.map((r) => r.lost)),
        duplicates: medianAndWorst(done.map((r) => r.duplicates)),
        expected: medianAndWorst(done.map((r) => r.expected)),
        gapMs: medianAndWorst(done.map((r) => r.gapMs).filter((g): g is number => g !== undefined)),
        catchUpMs: medianAndWorst(done.map((r) => r.catchUpMs).filter((c): c is number => c !== undefined)),
        wonByReplacement: done.filter((r) => r.newLeaderStartedAfterSignal === true).length,
      });
    }
  }
  return results;
}

export interface CostVariant {
  readonly variant: 'replay on (default)' | 'replay off' | 'stream handler';
  readonly env: Readonly<Record<string, string>>;
  readonly step: FixedStepResult;
}

export async function runCost(harness: BenchHarness, settings: BenchSettings): Promise<CostVariant[]> {
  const { keysPerSecond, durationS } = settings.cost;
  const variants: { variant: CostVariant['variant']; tag: string; env: Record<string, string> }[] = [
    { variant: 'replay on (default)', tag: 'on', env: { HANDLER: 'log' } },
    { variant: 'replay off', tag: 'off', env: { HANDLER: 'log', REPLAY_WINDOW_MS: '0' } },
    { variant: 'stream handler', tag: 'stream', env: { HANDLER: 'stream' } },
  ];
  const results: CostVariant[] = [];
  for (const v of variants) {
    harness.log(`cost (${v.variant}): ${keysPerSecond} keys/s for ${durationS} s, 1 worker`);
    const step = await runFixedStep(harness, {
      name: `cost-${v.tag}`,
      workers: 1,
      env: v.env,
      keysPerSecond,
      durationS,
      keyTtlMs: settings.keyTtlMs,
    });
    harness.log(
      `  processed ${step.fanIn.matched} of ${step.expected} (${(step.fanIn.ratio * 100).toFixed(2)}%), ` +
        `added p50/p99 ${step.fanIn.addedMs?.p50.toFixed(1) ?? '-'} / ${step.fanIn.addedMs?.p99.toFixed(1) ?? '-'} ms: ${step.verdict}`,
    );
    results.push({ variant: v.variant, env: v.env, step });
  }
  return results;
}

export interface ResourcesVariant {
  readonly variant: 'replay on (default)' | 'replay off' | typeof RSS_GOAL_VARIANT;
  readonly step: FixedStepResult;
}

/** The rate of issue 12's RSS goal (worker RSS at 20,000/s <= RSS_GOAL_MIB). */
export const RSS_GOAL_KEYS_PER_S = 20_000;
/** Issue 12's goal for one worker's RSS at RSS_GOAL_KEYS_PER_S, replay on and on-time expiry off. */
export const RSS_GOAL_MIB = 150;
export const RSS_GOAL_VARIANT = 'one leader at 20,000/s, replay on, on-time expiry off';

export async function runResources(
  harness: BenchHarness,
  settings: BenchSettings,
): Promise<ResourcesVariant[]> {
  const { durationS } = settings.resources;
  const results: ResourcesVariant[] = [];
  const { keysPerSecond: rate, workers: count } = settings.resources;
  for (const [variant, tag, env, keysPerSecond, workers] of [
    ['replay on (default)', 'on', { HANDLER: 'log' }, rate, count],
    ['replay off', 'off', { HANDLER: 'log', REPLAY_WINDOW_MS: '0' }, rate, count],
    // Issue 12's memory goal: one leader at 20,000/s, replay on, on-time expiry off (its index states
    // its own memory, docs/precise-expiry.md).
    [RSS_GOAL_VARIANT, 'rss', { HANDLER: 'log', PRECISE_EXPIRY: 'false' }, RSS_GOAL_KEYS_PER_S, 1],
  ] as const) {
    harness.log(`resources (${variant}): ${keysPerSecond} keys/s for ${durationS} s, ${workers} workers`);
    const step = await runFixedStep(harness, {
      name: `resources-${tag}`,
      workers,
      env,
      keysPerSecond,
      durationS,
      keyTtlMs: settings.keyTtlMs,
    });
    for (const u of step.usage) {
      harness.log(
        `  ${u.id} (${u.role}): ${u.cpuMsPerThousandEvents.toFixed(1)} ms CPU per 1,000 events, ` +
          `RSS ${Math.round((u.rssBeforeKiB ?? 0) / 1024)} -> ${Math.round((u.rssAfterKiB ?? 0) / 1024)} MiB`,
      );
    }
    results.push({ variant, step });
  }
  return results;
}

export interface ThreeWorkersReport {
  readonly steps: readonly FixedStepResult[];
  readonly sustainedPerSecond: number | undefined;
}

export async function runThreeWorkers(
  harness: BenchHarness,
  settings: BenchSettings,
): Promise<ThreeWorkersReport> {
  const { stepsPerSecond, stepS, workers } = settings.threeWorkers;
  const steps: FixedStepResult[] = [];
  for (const rate of stepsPerSecond) {
    harness.log(`three-workers: ${rate} keys/s for ${stepS} s, ${workers} workers, HANDLER=log`);
    const step = await runFixedStep(harness, {
      name: `three-${rate}`,
      workers,
      env: { HANDLER: 'log' },
      keysPerSecond: rate,
      durationS: stepS,
      keyTtlMs: settings.keyTtlMs,
    });
    steps.push(step);
    harness.log(
      `  processed ${step.fanIn.matched} of ${step.expected} (${(step.fanIn.ratio * 100).toFixed(2)}%): ${step.verdict} (${step.reason})`,
    );
    if (step.verdict !== 'sustained') break;
  }
  const sustained = steps.filter((s) => s.verdict === 'sustained').map((s) => s.keysPerSecond);
  return { steps, sustainedPerSecond: sustained.length > 0 ? Math.max(...sustained) : undefined };
}
