import { quantile } from '../local/runner/statistics.ts';
import { judgeStep, latencyTrend, matchFanIn, type StepVerdict } from './analysis.ts';
import type { BenchSettings } from './bench-options.ts';
import type { BenchHarness } from './harness.ts';
import { BUNDLED_WORKER_SCRIPT, NOOP_HANDLER } from './worker-bundle.ts';

/**
 * The highest expiration rate the leader sustains, in steps of rising rate, for two handler set-ups:
 * - `log`: HANDLER=log, LOG_LEVEL=info: one `key.processed` JSON line per event (the default set-up;
 *   the log handler itself does nothing, that line is its output). Counted per key.
 * - `no-op`: HANDLER=bench/noop-handler.ts, LOG_LEVEL=warn: no line per event, so this is the
 *   processor alone. Counted with the worker's EMF `EventsProcessed`, flushed when it stops.
 * Each step runs a fresh single worker (it leads alone, with the CPU to itself), so counts never mix.
 * A step is sustained when the leader processed >= 99% of what the bare subscribers received and its
 * delay did not grow within the step (analysis.ts, judgeStep). Stepping stops at the first step that
 * is not sustained, or when the generator cannot produce the rate (then the limit is not the leader's).
 */

export interface RateStep {
  readonly targetPerSecond: number;
  readonly generatedPerSecond: number;
  /** What the bare subscribers received, per second. */
  readonly bareReceivedPerSecond: number;
  /** What the worker received (its EMF EventsReceived), per second. */
  readonly workerReceivedPerSecond: number;
  readonly subscriptionDrops: number;
  readonly processedPerSecond: number;
  readonly ratio: number;
  /** Upper bound of the added latency (log set-up only), p99. */
  readonly addedP99Ms: number | undefined;
  /** The worker's own receipt-to-done p99. */
  readonly workerP99Ms: number | undefined;
  readonly verdict: StepVerdict;
  readonly reason: string;
}

export interface RateVariantReport {
  readonly variant: 'log' | 'no-op';
  readonly steps: readonly RateStep[];
  /** Highest sustained target rate; undefined when even the first step was not sustained. */
  readonly sustainedPerSecond: number | undefined;
  /** Highest rate the bare subscribers received in any step of this variant. */
  readonly bareMaxPerSecond: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function runStep(
  harness: BenchHarness,
  settings: BenchSettings,
  variant: 'log' | 'no-op',
  rate: number,
): Promise<RateStep> {
  const stepS = settings.maxRate.stepS;
  const leaderName = `bench-rate-${variant}-${rate}`;
  const group = harness.workers({
    script: BUNDLED_WORKER_SCRIPT,
    count: 1,
    leaderName,
    env:
      variant === 'log'
        ? { HANDLER: 'log', LOG_LEVEL: 'info' }
        : { HANDLER: NOOP_HANDLER, LOG_LEVEL: 'warn' },
    replace: false,
    idPrefix: `rate-${variant}-${rate}-`,
  });
  const prefix = `bench:rate:${variant}:${rate}:`;
  const recorder = harness.recorder(prefix);
  try {
    await group.waitLeaderRecord(60_000);
    const generator = harness.generator(prefix, rate, settings.keyTtlMs);
    generator.start();
    await sleep(stepS * 1000);
    await generator.stop();
    await sleep(settings.keyTtlMs + 2000);
    // Stop the worker before counting: its last EMF flush comes with its shutdown.
    await harness.stopWorkers(group);
    harness.release(recorder);
    const counts = generator.counts();
    const expected = recorder.reference.size;
    const metrics = group.totals();
    let processed: number;
    let addedP99Ms: number | undefined;
    let workerP99Ms: number | undefined;
    let trend: ReturnType<typeof latencyTrend>;
    if (variant === 'log') {
      const fanIn = matchFanIn(recorder.reference, recorder.processed);
      processed = fanIn.matched;
      addedP99Ms = fanIn.addedMs?.p99;
      workerP99Ms = fanIn.workerLatencyMs?.p99;
      trend = latencyTrend(recorder.reference, recorder.processed);
    } else {
      processed = metrics.eventsProcessed;
      workerP99Ms = metrics.latencySamples.length > 0 ? quantile(metrics.latencySamples, 0.99) : undefined;
    }
    const judged = judgeStep({
      targetPerSecond: rate,
      durationS: stepS,
      generated: counts.sent,
      expected,
      processed,
      trend,
      workerP99Ms,
      shed: metrics.eventsShed,
    });
    return {
      targetPerSecond: rate,
      generatedPerSecond: counts.sent / stepS,
      bareReceivedPerSecond: expected / stepS,
      workerReceivedPerSecond: metrics.eventsReceived / stepS,
      subscriptionDrops: group.subscriptionDrops,
      processedPerSecond: processed / stepS,
      ratio: expected === 0 ? 0 : processed / expected,
      addedP99Ms,
      workerP99Ms,
      verdict: judged.verdict,
      reason: judged.reason,
    };
  } finally {
    harness.release(recorder);
    await harness.stopWorkers(group);
  }
}

export async function runMaxRate(
  harness: BenchHarness,
  settings: BenchSettings,
): Promise<RateVariantReport[]> {
  const reports: RateVariantReport[] = [];
  for (const variant of ['log', 'no-op'] as const) {
    const steps: RateStep[] = [];
    for (const rate of settings.maxRate.stepsPerSecond) {
      harness.log(`max-rate (${variant}): ${rate} keys/s for ${settings.maxRate.stepS} s`);
      const step = await runStep(harness, settings, variant, rate);
      steps.push(step);
      harness.log(
        `  bare ${Math.round(step.bareReceivedPerSecond)}/s, processed ${Math.round(step.processedPerSecond)}/s ` +
          `(${(step.ratio * 100).toFixed(2)}%): ${step.verdict} (${step.reason})`,
      );
      if (step.verdict !== 'sustained') break;
    }
    const sustained = steps.filter((s) => s.verdict === 'sustained').map((s) => s.targetPerSecond);
    reports.push({
      variant,
      steps,
      sustainedPerSecond: sustained.length > 0 ? Math.max(...sustained) : undefined,
      bareMaxPerSecond: Math.max(0, ...steps.map((s) => s.bareReceivedPerSecond)),
    });
  }
  return reports;
}
