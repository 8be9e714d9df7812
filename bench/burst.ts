import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantile } from '../local/runner/statistics.ts';
import type { BenchSettings } from './bench-options.ts';
import type { BenchHarness } from './harness.ts';
import { BUNDLED_WORKER_SCRIPT, BURST_HANDLER } from './worker-bundle.ts';

/**
 * A burst (issue 12): `keys` keys set with one shared deadline (`SET k 1 PXAT t`, a batch of sessions
 * created together), one worker leading alone, for two handlers:
 * - `no-op`: bench/burst-handler.ts, LOG_LEVEL=warn (the pipeline without per-event lines); counted
 *   and timed by the handler itself (it writes its call count and last call time to a file);
 * - `log`: HANDLER=log, LOG_LEVEL=info; counted and timed per key from the `key.processed` lines.
 * Measured: how many of the keys the bare subscribers and the worker got, how long after the
 * deadline each received / handled the last one (drain), the worker's shed events, and its lease
 * renewals during the burst (`LeaseRenewLatencyMs`, and any `leader.lost`).
 * Goal: all handled, drained within 1.1x the bare subscribers' time (no-op), no renewal missing its
 * deadline.
 */

export interface BurstVariant {
  readonly variant: 'no-op' | 'log';
  readonly keys: number;
  /** Keys set within the lead time before the deadline. */
  readonly set: number;
  readonly bareReceived: number;
  /** Deadline to the bare subscribers' last event. */
  readonly bareDrainMs: number | undefined;
  readonly handled: number;
  /** Deadline to the worker's last handled event. */
  readonly workerDrainMs: number | undefined;
  readonly shed: number;
  readonly renewals: number;
  readonly renewLatencyP99Ms: number | undefined;
  readonly renewLatencyMaxMs: number | undefined;
  /** `leader.lost` lines during the burst (any reason): each one is a renewal that missed. */
  readonly leadershipLost: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const now = () => performance.timeOrigin + performance.now();
/** Time to set every key before the shared deadline (pipelined, ~50-100k SETs/s here). */
const SET_LEAD_MS = 6000;
/** The burst counts as drained when nothing new arrived for this long. */
const QUIET_MS = 3000;
/** At most this long after the deadline. */
const DRAIN_BOUND_MS = 90_000;
const SET_BATCH = 1000;

export async function runBurst(harness: BenchHarness, settings: BenchSettings): Promise<BurstVariant[]> {
  const results: BurstVariant[] = [];
  for (const variant of ['no-op', 'log'] as const) results.push(await runVariant(harness, settings, variant));
  return results;
}

async function runVariant(
  harness: BenchHarness,
  settings: BenchSettings,
  variant: 'no-op' | 'log',
): Promise<BurstVariant> {
  const keys = settings.burst.keys;
  const tag = `burst-${variant}`;
  const outFile = join(tmpdir(), `kl-bench-${tag}-${process.pid}.json`);
  rmSync(outFile, { force: true });
  harness.log(`burst (${variant}): ${keys} keys sharing one deadline, 1 worker`);
  const group = harness.workers({
    script: BUNDLED_WORKER_SCRIPT,
    count: 1,
    leaderName: `bench-${tag}-${Date.now()}`,
    env:
      variant === 'no-op'
        ? { HANDLER: BURST_HANDLER, LOG_LEVEL: 'warn', BENCH_BURST_OUT: outFile }
        : { HANDLER: 'log', LOG_LEVEL: 'info' },
    replace: false,
    idPrefix: `${tag}-`,
  });
  const prefix = `bench:${tag}:`;
  const recorder = harness.recorder(prefix);
  try {
    // LOG_LEVEL=warn (no-op) writes no leader.acquired line: the leader record tells.
    if (variant === 'no-op') await group.waitLeaderRecord(60_000);
    else await group.waitStable(60_000);
    await sleep(1000);
    const lostBefore = group.leadershipLosses;
    const deadlineMs = Math.round(Date.now() + SET_LEAD_MS);
    let set = 0;
    for (let i = 0; i < keys; i += SET_BATCH) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(keys, i + SET_BATCH); j++)
        batch.push(harness.client.set(`${prefix}${j}`, '1', 'PXAT', deadlineMs));
      const replies = await Promise.allSettled(batch);
      set += replies.filter((r) => r.status === 'fulfilled').length;
    }
    if (Date.now() >= deadlineMs) harness.log(`  setting ${keys} keys overran the ${SET_LEAD_MS} ms lead`);
    const handledNow = (): { count: number; lastAtMs: number } => {
      if (variant === 'log')
        return { count: recorder.processed.size, lastAtMs: recorder.lastProcessedArrivalMs };
      if (!existsSync(outFile)) return { count: 0, lastAtMs: 0 };
      try {
        const parsed = JSON.parse(readFileSync(outFile, 'utf8')) as { calls: number; lastCallAtMs: number };
        return { count: parsed.calls, lastAtMs: parsed.lastCallAtMs };
      } catch {
        return { count: 0, lastAtMs: 0 }; // read while being written: the next poll reads it whole
      }
    };
    // Wait past the deadline until both the bare subscribers and the worker stood still for QUIET_MS.
    await sleep(Math.max(0, deadlineMs - Date.now()));
    let lastChange = now();
    let lastSeen = '';
    while (now() - deadlineMs < DRAIN_BOUND_MS && now() - lastChange < QUIET_MS) {
      await sleep(100);
      // One read per poll (the no-op variant's count is a file).
      const handledCount = handledNow().count;
      const seen = `${recorder.reference.size}/${handledCount}`;
      if (seen !== lastSeen) lastChange = now();
      lastSeen = seen;
      if (recorder.reference.size >= set && handledCount >= set) break;
    }
    let bareLastMs = 0;
    for (const at of recorder.reference.values()) bareLastMs = Math.max(bareLastMs, at);
    const handled = handledNow();
    const lost = group.leadershipLosses - lostBefore;
    harness.release(recorder);
    await harness.stopWorkers(group);
    const totals = group.totals();
    const renew = totals.renewLatencySamples;
    const result: BurstVariant = {
      variant,
      keys,
      set,
      bareReceived: recorder.reference.size,
      bareDrainMs: bareLastMs > 0 ? bareLastMs - deadlineMs : undefined,
      handled: handled.count,
      workerDrainMs: handled.lastAtMs > 0 ? handled.lastAtMs - deadlineMs : undefined,
      shed: totals.eventsShed,
      renewals: renew.length,
      renewLatencyP99Ms: renew.length > 0 ? quantile(renew, 0.99) : undefined,
      renewLatencyMaxMs: renew.length > 0 ? Math.max(...renew) : undefined,
      leadershipLost: lost,
    };
    harness.log(
      `  bare ${result.bareReceived} of ${set} in ${fmt(result.bareDrainMs)}; worker handled ${result.handled} in ` +
        `${fmt(result.workerDrainMs)}, shed ${result.shed}; renewals ${result.renewals}, p99 ${fmt(result.renewLatencyP99Ms)}, ` +
        `max ${fmt(result.renewLatencyMaxMs)}, leadership lost ${result.leadershipLost}`,
    );
    return result;
  } finally {
    harness.release(recorder);
    await harness.stopWorkers(group);
    rmSync(outFile, { force: true });
  }
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? '-' : `${Math.round(ms)} ms`;
}
