import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../local/runner/statistics.ts';
import {
  duplicatesInWindow,
  type HandoverRun,
  type HandoverSummary,
  keysInWindow,
  lostInWindow,
  summarizeHandovers,
} from './analysis.ts';
import type { BenchSettings } from './bench-options.ts';
import type { BenchHarness, Recorder, WorkerGroup } from './harness.ts';
import { BUNDLED_WORKER_SCRIPT } from './worker-bundle.ts';

/**
 * Hand-over: three workers and a steady 200 keys/s; the leader is stopped gracefully (SIGTERM) N
 * times, then killed (SIGKILL) N times; a replacement worker is started after each exit, as ECS would.
 * - graceful gap: the old leader's `leader.released` line to the new leader's `leader.acquired` line
 *   (both `time` fields, ms resolution);
 * - crash gap: the SIGKILL (stamped by the bench) to the new leader's `leader.acquired`;
 * - lost events: keys the bare subscribers received from 1 s before the signal to 1 s after the new
 *   leader's acquisition that no worker processed.
 * The same runs are made with the seed's algorithm (bench/seed-baseline.ts) as the baseline.
 */

export const SEED_SCRIPT = fileURLToPath(new URL('./seed-baseline.ts', import.meta.url));

export interface HandoverReport {
  readonly algorithm: 'keyspace-leader' | 'seed';
  readonly keysPerSecond: number;
  readonly workers: number;
  readonly graceful: HandoverSummary;
  readonly crash: HandoverSummary;
  /** SIGTERM to the new leader's acquisition (graceful runs), median. */
  readonly gracefulSignalToAcquiredMedianMs: number;
  readonly gracefulRuns: readonly HandoverRun[];
  readonly crashRuns: readonly HandoverRun[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const NEW_LEADER_TIMEOUT_MS = 30_000;
const WINDOW_MARGIN_MS = 1000;
/** How long the bench waits for a new leader's replay of the fault window to finish, at most. */
const CATCH_UP_BOUND_MS = 30_000;
/** The replay counts as over (what is left is lost) when the window's unprocessed count stood still this long. */
const CATCH_UP_STALL_MS = 2000;
const CATCH_UP_POLL_MS = 100;

/** Waits until `unprocessed()` is 0, or stood still for CATCH_UP_STALL_MS, or CATCH_UP_BOUND_MS passed. */
async function waitForCatchUp(unprocessed: () => number): Promise<void> {
  const startedMs = Date.now();
  let last = unprocessed();
  let lastChangeMs = startedMs;
  while (
    last > 0 &&
    Date.now() - startedMs < CATCH_UP_BOUND_MS &&
    Date.now() - lastChangeMs < CATCH_UP_STALL_MS
  ) {
    await sleep(CATCH_UP_POLL_MS);
    const now = unprocessed();
    if (now !== last) lastChangeMs = Date.now();
    last = now;
  }
}

/**
 * When the last expected key of the window was handled (its `key.processed` line arrived), in ms after
 * `acquiredAtMs`; undefined when some expected key was never handled.
 */
function lastHandledAfterMs(
  recorder: Recorder,
  fromMs: number,
  toMs: number,
  acquiredAtMs: number,
): number | undefined {
  let lastArrivalMs = Number.NEGATIVE_INFINITY;
  for (const [key] of keysInWindow(recorder.reference, fromMs, toMs)) {
    const processed = recorder.processed.get(key);
    if (!processed) return undefined;
    lastArrivalMs = Math.max(lastArrivalMs, processed.arrivalMs);
  }
  return Number.isFinite(lastArrivalMs) ? lastArrivalMs - acquiredAtMs : undefined;
}

/** `--dump`: the run's lost keys (ms after the signal, key) and its workers' lines, for a post-mortem. */
function dumpRun(
  dir: string,
  group: WorkerGroup,
  recorder: Recorder,
  window: { fromMs: number; toMs: number; signalAtMs: number; acquiredAtMs: number },
): string {
  mkdirSync(dir, { recursive: true });
  const lost: string[] = [];
  for (const [key, receivedAtMs] of keysInWindow(recorder.reference, window.fromMs, window.toMs)) {
    if (!recorder.processed.has(key)) lost.push(`${(receivedAtMs - window.signalAtMs).toFixed(1)} ${key}`);
  }
  writeFileSync(join(dir, 'lost.txt'), lost.length > 0 ? `${lost.join('\n')}\n` : '');
  writeFileSync(
    join(dir, 'lines.txt'),
    `# signal at ${window.signalAtMs.toFixed(1)}, acquired at ${window.acquiredAtMs.toFixed(1)}\n` +
      `${group.diagnosticLines.join('\n')}\n`,
  );
  return dir;
}

/** What to run; defaults to settings.handover with graceful and crash runs. */
export interface HandoverPlan {
  readonly runs: number;
  readonly keysPerSecond: number;
  readonly workers: number;
  /** false: crash (SIGKILL) runs only. */
  readonly graceful: boolean;
}

export async function runHandover(
  harness: BenchHarness,
  settings: BenchSettings,
  algorithm: 'keyspace-leader' | 'seed',
  plan: HandoverPlan = { ...settings.handover, graceful: true },
): Promise<HandoverReport> {
  const { runs, keysPerSecond, workers } = plan;
  const tag = `${algorithm === 'seed' ? 'seed' : 'kl'}${plan.graceful ? '' : `-crash-${keysPerSecond}`}`;
  harness.log(
    `hand-over (${algorithm}): ${workers} workers, ${keysPerSecond} keys/s, ${plan.graceful ? runs : 0} graceful + ${runs} crash runs`,
  );
  const group = harness.workers({
    script: algorithm === 'seed' ? SEED_SCRIPT : BUNDLED_WORKER_SCRIPT,
    count: workers,
    leaderName: `bench-handover-${tag}`,
    env:
      algorithm === 'seed'
        ? { SEED_LOCK_NAME: `bench-handover-seed-lock-${Date.now()}` }
        : { HANDLER: 'log', LOG_LEVEL: 'info' },
    replace: true,
    idPrefix: `${tag}-`,
  });
  const prefix = `bench:handover:${tag}:`;
  const recorder = harness.recorder(prefix);
  const generator = harness.generator(prefix, keysPerSecond, settings.keyTtlMs);
  const signalToAcquired: number[] = [];
  let dumped = 0;
  try {
    await group.waitStable(60_000);
    generator.start();
    await sleep(2000);
    const measure = async (kind: 'graceful' | 'crash'): Promise<HandoverRun> => {
      const leader = await group.waitStable(60_000);
      await sleep(1500);
      const before = group.handoverCount();
      const signalAt = group.signal(leader.id, kind === 'graceful' ? 'SIGTERM' : 'SIGKILL');
      const next = await group.waitNewLeader(before, NEW_LEADER_TIMEOUT_MS);
      if (!next) {
        harness.log(`  ${kind}: no new leader within ${NEW_LEADER_TIMEOUT_MS} ms`);
        return { gapMs: undefined, lost: 0, expected: 0, duplicates: 0 };
      }
      if (kind === 'graceful') signalToAcquired.push(next.acquiredAtMs - signalAt);
      // Keys received just before the acquisition expire within a TTL; wait for them to be handled.
      await sleep(settings.keyTtlMs + 2000);
      const from = signalAt - WINDOW_MARGIN_MS;
      const to = next.acquiredAtMs + WINDOW_MARGIN_MS;
      // At a high rate the new leader's replay of the gap may still be running: a late event is not a
      // lost one. Wait while the window's unprocessed count keeps falling, up to CATCH_UP_BOUND_MS.
      await waitForCatchUp(() => lostInWindow(recorder.reference, recorder.processed, from, to).lost);
      const catchUpMs = lastHandledAfterMs(recorder, from, to, next.acquiredAtMs);
      // The old leader's `leader.released` line may have been read after the new `leader.acquired`.
      const final = group.handoverAt(before) ?? next;
      const { expected, lost } = lostInWindow(recorder.reference, recorder.processed, from, to);
      const duplicates = duplicatesInWindow(recorder.reference, recorder.processed, from, to);
      if (harness.dumpDir !== undefined) {
        const dir = join(harness.dumpDir, `${tag}-${kind}-${++dumped}`);
        harness.log(
          `  dumped to ${dumpRun(dir, group, recorder, { fromMs: from, toMs: to, signalAtMs: signalAt, acquiredAtMs: next.acquiredAtMs })}`,
        );
      }
      const fresh = (group.spawnedAtMs.get(next.id) ?? 0) > signalAt;
      harness.log(
        `  ${kind}: ${leader.id} -> ${next.id}${fresh ? ' (the replacement)' : ''}, ` +
          `${final.gapMs === undefined ? '?' : Math.round(final.gapMs)} ms without a leader ` +
          `(previous leader ${final.cause}), ${lost} of ${expected} events lost, ${duplicates} duplicates` +
          (catchUpMs === undefined
            ? ''
            : `, the window's last event handled ${Math.round(catchUpMs)} ms after the acquisition`),
      );
      return {
        gapMs: final.gapMs,
        lost,
        expected,
        duplicates,
        newLeaderStartedAfterSignal: fresh,
        catchUpMs,
      };
    };
    const gracefulRuns: HandoverRun[] = [];
    for (let i = 0; i < (plan.graceful ? runs : 0); i++) gracefulRuns.push(await measure('graceful'));
    const crashRuns: HandoverRun[] = [];
    for (let i = 0; i < runs; i++) crashRuns.push(await measure('crash'));
    return {
      algorithm,
      keysPerSecond,
      workers,
      graceful: summarizeHandovers(gracefulRuns),
      crash: summarizeHandovers(crashRuns),
      gracefulSignalToAcquiredMedianMs: median(signalToAcquired),
      gracefulRuns,
      crashRuns,
    };
  } finally {
    await generator.stop();
    harness.release(recorder);
    await harness.stopWorkers(group);
  }
}
