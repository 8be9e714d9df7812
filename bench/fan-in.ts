import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type Summary, summarize } from '../local/runner/statistics.ts';
import { burstSizes, type FanInResult, matchFanIn } from './analysis.ts';
import type { BenchSettings } from './bench-options.ts';
import { CpuMeter, type CpuShare } from './cpu-usage.ts';
import type { BenchHarness } from './harness.ts';
import { BUNDLED_WORKER_SCRIPT } from './worker-bundle.ts';

/**
 * Fan-in: a steady rate of expirations across every primary; the keys the leader processed
 * (`key.processed`) against the keys bare per-primary subscribers received in the same run, matched by
 * key, and the latency the worker adds on top of the bare subscriber (see analysis.ts, FanInResult).
 */

export interface FanInReport {
  readonly keysPerSecond: number;
  readonly durationS: number;
  readonly workers: number;
  readonly generated: number;
  readonly skipped: number;
  readonly failed: number;
  readonly result: FanInResult;
  /** p99 of the bench process's own event-loop delay: how late its receipt stamps can be. */
  readonly benchLoopDelayP99Ms: number;
  /** Where the CPU went while the keys were generated. */
  readonly cpu: readonly CpuShare[];
  /** Events the worker received (EMF EventsReceived; includes the project's own keys, a handful). */
  readonly workerReceived: number;
  /** `subscription.down` lines of the worker during the run. */
  readonly subscriptionDrops: number;
  /** Events per burst at the bare subscribers (receipts less than BURST_GAP_MS apart). */
  readonly burstSize: Summary | undefined;
}

export const BURST_GAP_MS = 2;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runFanIn(harness: BenchHarness, settings: BenchSettings): Promise<FanInReport> {
  const { keysPerSecond, durationS, workers } = settings.fanIn;
  harness.log(`fan-in: ${keysPerSecond} keys/s for ${durationS} s, ${workers} worker(s), HANDLER=log`);
  const group = harness.workers({
    script: BUNDLED_WORKER_SCRIPT,
    count: workers,
    leaderName: 'bench-fan-in',
    env: { HANDLER: 'log', LOG_LEVEL: 'info' },
    replace: false,
    idPrefix: 'fanin-',
  });
  try {
    await group.waitStable(60_000);
    const recorder = harness.recorder('bench:fan-in:');
    const generator = harness.generator('bench:fan-in:', keysPerSecond, settings.keyTtlMs);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const nodes = harness.cluster.nodes;
    const meter = new CpuMeter(
      new Map([
        ['bench process (generator, bare subscribers, log parsing)', [process.pid]],
        [`worker${workers > 1 ? 's' : ''} (the leader)`, group.pids()],
        [
          'redis primaries',
          nodes.filter((n) => n.role === 'primary' && n.pid !== undefined).map((n) => n.pid as number),
        ],
        [
          'redis replicas',
          nodes.filter((n) => n.role === 'replica' && n.pid !== undefined).map((n) => n.pid as number),
        ],
      ]),
    );
    generator.start();
    await sleep(durationS * 1000);
    const cpu = meter.stop();
    await generator.stop();
    await sleep(settings.keyTtlMs + 2000);
    loop.disable();
    harness.release(recorder);
    // Its last EMF flush (EventsReceived) comes with its shutdown.
    await harness.stopWorkers(group);
    const counts = generator.counts();
    const result = matchFanIn(recorder.reference, recorder.processed);
    return {
      workerReceived: group.totals().eventsReceived,
      subscriptionDrops: group.subscriptionDrops,
      keysPerSecond,
      durationS,
      workers,
      generated: counts.sent,
      skipped: counts.skipped,
      failed: counts.failed,
      result,
      benchLoopDelayP99Ms: loop.percentile(99) / 1e6,
      cpu,
      burstSize: summarize(burstSizes(recorder.reference.values(), BURST_GAP_MS)),
    };
  } finally {
    await harness.stopWorkers(group);
  }
}
