import {
  type FanInResult,
  judgeStep,
  latencyTrend,
  matchFanIn,
  perThousandEvents,
  type StepVerdict,
} from './analysis.ts';
import { cpuSeconds, rssKiB } from './cpu-usage.ts';
import type { BenchHarness } from './harness.ts';
import { BUNDLED_WORKER_SCRIPT } from './worker-bundle.ts';

/**
 * One fixed-rate step on a fresh group of workers (LOG_LEVEL=info, so every handled event writes a
 * `key.processed` line and is counted per key): keys at `keysPerSecond` for `durationS`, then TTL +
 * 2 s for the last expiries, then the workers are stopped. Measures what the bare subscribers
 * received against what the leader processed, the added latency, and each worker's CPU (utime +
 * stime from /proc/<pid>/stat) and RSS (VmRSS from /proc/<pid>/status) from just before the first
 * key to the end of the drain.
 */

export interface WorkerUsage {
  readonly id: string;
  readonly role: 'leader' | 'follower';
  /** CPU seconds used from the first key to the end of the drain. */
  readonly cpuSeconds: number;
  readonly cpuMsPerThousandEvents: number;
  readonly rssBeforeKiB: number | undefined;
  readonly rssAfterKiB: number | undefined;
}

export interface FixedStepResult {
  readonly keysPerSecond: number;
  readonly durationS: number;
  readonly workers: number;
  readonly generated: number;
  /** Events the bare subscribers received. */
  readonly expected: number;
  readonly fanIn: FanInResult;
  readonly verdict: StepVerdict;
  readonly reason: string;
  readonly shed: number;
  readonly subscriptionDrops: number;
  readonly usage: readonly WorkerUsage[];
  /** The bench process's own CPU over the same window, share of one core in percent. */
  readonly benchCpuPercent: number;
}

export interface FixedStepOptions {
  /** Part of the key prefix, leader name and worker ids; unique per step. */
  readonly name: string;
  readonly workers: number;
  readonly env: Readonly<Record<string, string>>;
  readonly keysPerSecond: number;
  readonly durationS: number;
  readonly keyTtlMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runFixedStep(
  harness: BenchHarness,
  options: FixedStepOptions,
): Promise<FixedStepResult> {
  const { name, workers, keysPerSecond, durationS } = options;
  const group = harness.workers({
    script: BUNDLED_WORKER_SCRIPT,
    count: workers,
    leaderName: `bench-${name}-${Date.now()}`,
    env: { LOG_LEVEL: 'info', ...options.env },
    replace: false,
    idPrefix: `${name}-`,
  });
  const prefix = `bench:${name}:`;
  const recorder = harness.recorder(prefix);
  try {
    const leader = await group.waitStable(60_000);
    // Let start-up work (topology, first lease renewals, JIT) settle before the baseline sample.
    await sleep(1000);
    const rows = group.model.snapshot(Date.now()).workers.filter((w) => w.pid !== undefined);
    const before = rows.map((w) => ({
      id: w.id,
      pid: w.pid as number,
      cpu: cpuSeconds(w.pid as number),
      rss: rssKiB(w.pid as number),
    }));
    const benchBefore = cpuSeconds(process.pid) ?? 0;
    const startedAt = performance.now();
    const generator = harness.generator(prefix, keysPerSecond, options.keyTtlMs);
    generator.start();
    await sleep(durationS * 1000);
    await generator.stop();
    await sleep(options.keyTtlMs + 2000);
    const windowS = (performance.now() - startedAt) / 1000;
    const benchCpuPercent = (((cpuSeconds(process.pid) ?? 0) - benchBefore) / windowS) * 100;
    const expected = recorder.reference.size;
    const usage: WorkerUsage[] = before.map((b) => {
      const cpu = (cpuSeconds(b.pid) ?? Number.NaN) - (b.cpu ?? Number.NaN);
      return {
        id: b.id,
        role: b.id === leader.id ? 'leader' : 'follower',
        cpuSeconds: cpu,
        cpuMsPerThousandEvents: perThousandEvents(cpu * 1000, expected),
        rssBeforeKiB: b.rss,
        rssAfterKiB: rssKiB(b.pid),
      };
    });
    harness.release(recorder);
    // Stop before reading EventsShed: the last EMF flush comes with the shutdown.
    await harness.stopWorkers(group);
    const fanIn = matchFanIn(recorder.reference, recorder.processed);
    const shed = group.totals().eventsShed;
    const judged = judgeStep({
      targetPerSecond: keysPerSecond,
      durationS,
      generated: generator.counts().sent,
      expected,
      processed: fanIn.matched,
      trend: latencyTrend(recorder.reference, recorder.processed),
      shed,
    });
    return {
      keysPerSecond,
      durationS,
      workers,
      generated: generator.counts().sent,
      expected,
      fanIn,
      verdict: judged.verdict,
      reason: judged.reason,
      shed,
      subscriptionDrops: group.subscriptionDrops,
      usage,
      benchCpuPercent,
    };
  } finally {
    harness.release(recorder);
    await harness.stopWorkers(group);
  }
}
