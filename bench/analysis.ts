import { median, type Summary, summarize } from '../local/runner/statistics.ts';
import type { ExpiredValueType, ValueMissingReason } from '../worker/handlers/expiry-handler.ts';

/**
 * The pure arithmetic of the benchmarks: matching what the bare subscribers received against what the
 * leader processed, judging a rate step, summarising hand-overs. Unit-tested in test/unit/bench.
 */

/** One key as a worker processed it (its first `key.processed` line). */
export interface ProcessedRecord {
  /** The line's `time` (wall-clock ms; the field has millisecond resolution). */
  readonly lineMs: number;
  /** When the bench read the line from the worker's stdout (wall-clock ms, sub-ms). */
  readonly arrivalMs: number;
  /** The worker's own figure: its receipt of the event to the end of the handler call. */
  readonly latencyMs: number | undefined;
  readonly workerId: string;
  /** A tracked key's deadline (primary's clock) and the worker's deadline -> handler lag (on-time expiry). */
  readonly deadlineMs?: number | undefined;
  readonly lagMs?: number | undefined;
  /** Value capture (issue 14): the captured value's type and payload bytes, or why there was none. */
  readonly valueType?: ExpiredValueType | undefined;
  readonly valueBytes?: number | undefined;
  readonly valueMissing?: ValueMissingReason | undefined;
  calls: number;
}

export interface FanInResult {
  /** Keys the bare per-primary subscribers received. */
  readonly expected: number;
  /** Of those, keys the leader processed. */
  readonly matched: number;
  /** Processed keys no bare subscriber received (should be 0). */
  readonly unexpected: number;
  /** Handler calls beyond the first per key. */
  readonly duplicates: number;
  readonly ratio: number;
  /** Upper bound of the latency added by the worker: line `time` + 1 ms (its resolution) - bare receipt. */
  readonly addedMs: Summary | undefined;
  /** Same, with the line's arrival at the bench instead (adds the stdout pipe and the bench's own delays). */
  readonly addedArrivalMs: Summary | undefined;
  /** The worker's `latencyMs` (its receipt to the end of the handler call). */
  readonly workerLatencyMs: Summary | undefined;
}

/**
 * Sizes of the bursts in which events arrived: runs of receipts less than `gapMs` apart. Redis expires
 * keys in cycles (`hz`, 10 a second by default), so events come in bursts, not evenly; a worker that
 * spends time per event makes the last of a burst wait for the others.
 */
export function burstSizes(receiptsMs: Iterable<number>, gapMs: number): number[] {
  const sorted = [...receiptsMs].sort((a, b) => a - b);
  const sizes: number[] = [];
  let size = 0;
  let previous = Number.NEGATIVE_INFINITY;
  for (const at of sorted) {
    if (at - previous >= gapMs && size > 0) {
      sizes.push(size);
      size = 0;
    }
    size++;
    previous = at;
  }
  if (size > 0) sizes.push(size);
  return sizes;
}

/** Resolution of the `time` field of a log line. */
export const LINE_TIME_RESOLUTION_MS = 1;

export function matchFanIn(
  reference: ReadonlyMap<string, number>,
  processed: ReadonlyMap<string, ProcessedRecord>,
): FanInResult {
  const added: number[] = [];
  const addedArrival: number[] = [];
  const workerLatency: number[] = [];
  let matched = 0;
  let unexpected = 0;
  let duplicates = 0;
  for (const [key, record] of processed) {
    duplicates += record.calls - 1;
    const receivedAt = reference.get(key);
    if (receivedAt === undefined) {
      unexpected++;
      continue;
    }
    matched++;
    added.push(record.lineMs + LINE_TIME_RESOLUTION_MS - receivedAt);
    addedArrival.push(record.arrivalMs - receivedAt);
    if (record.latencyMs !== undefined) workerLatency.push(record.latencyMs);
  }
  return {
    expected: reference.size,
    matched,
    unexpected,
    duplicates,
    ratio: reference.size === 0 ? 0 : matched / reference.size,
    addedMs: summarize(added),
    addedArrivalMs: summarize(addedArrival),
    workerLatencyMs: summarize(workerLatency),
  };
}

/**
 * Median added latency (line time + resolution - bare receipt) of the keys received in the first and
 * in the last third of a step: a leader that falls behind shows a growing delay.
 */
export function latencyTrend(
  reference: ReadonlyMap<string, number>,
  processed: ReadonlyMap<string, ProcessedRecord>,
): { firstThirdMs: number; lastThirdMs: number } | undefined {
  const pairs: [number, number][] = [];
  for (const [key, record] of processed) {
    const receivedAt = reference.get(key);
    if (receivedAt !== undefined)
      pairs.push([receivedAt, record.lineMs + LINE_TIME_RESOLUTION_MS - receivedAt]);
  }
  if (pairs.length < 30) return undefined;
  pairs.sort((a, b) => a[0] - b[0]);
  const third = Math.floor(pairs.length / 3);
  return {
    firstThirdMs: median(pairs.slice(0, third).map((p) => p[1])),
    lastThirdMs: median(pairs.slice(pairs.length - third).map((p) => p[1])),
  };
}

export type StepVerdict = 'sustained' | 'behind' | 'generator-limited';

export interface StepInput {
  readonly targetPerSecond: number;
  readonly durationS: number;
  /** SETs acknowledged during the step. */
  readonly generated: number;
  /** Events the bare subscribers received. */
  readonly expected: number;
  /** Events the leader processed. */
  readonly processed: number;
  readonly trend?: { firstThirdMs: number; lastThirdMs: number } | undefined;
  /** The worker's own p99 (receipt to handler done), when the step has no per-key lines. */
  readonly workerP99Ms?: number | undefined;
  readonly shed?: number;
}

/** Below this share of the target rate the generator, not the leader, is the limit. */
export const GENERATOR_SHORTFALL = 0.9;
export const MIN_PROCESSED_RATIO = 0.99;
/** A median delay that grows by more than this (and doubles) between the thirds means a backlog. */
export const LATENCY_GROWTH_MS = 20;
/** Without a per-key trend: the worker's own p99 above this means events wait in its queue. */
export const WORKER_P99_LIMIT_MS = 100;

export function judgeStep(step: StepInput): { verdict: StepVerdict; reason: string } {
  const generatedPerSecond = step.generated / step.durationS;
  if (generatedPerSecond < step.targetPerSecond * GENERATOR_SHORTFALL) {
    return {
      verdict: 'generator-limited',
      reason: `the generator reached ${Math.round(generatedPerSecond)}/s of ${step.targetPerSecond}/s`,
    };
  }
  const ratio = step.expected === 0 ? 0 : step.processed / step.expected;
  if (ratio < MIN_PROCESSED_RATIO) {
    return { verdict: 'behind', reason: `processed ${(ratio * 100).toFixed(2)}% of the events (< 99%)` };
  }
  if ((step.shed ?? 0) > 0) return { verdict: 'behind', reason: `${step.shed} events shed` };
  if (step.trend) {
    const { firstThirdMs, lastThirdMs } = step.trend;
    if (lastThirdMs > firstThirdMs + LATENCY_GROWTH_MS && lastThirdMs > firstThirdMs * 2) {
      return {
        verdict: 'behind',
        reason: `added latency grew from ${firstThirdMs.toFixed(1)} ms to ${lastThirdMs.toFixed(1)} ms within the step`,
      };
    }
  }
  // Without per-key lines (no trend), a high p99 inside the worker is the sign of a growing queue.
  if (!step.trend && step.workerP99Ms !== undefined && step.workerP99Ms > WORKER_P99_LIMIT_MS) {
    return {
      verdict: 'behind',
      reason: `the worker's p99 was ${step.workerP99Ms} ms (> ${WORKER_P99_LIMIT_MS} ms)`,
    };
  }
  return { verdict: 'sustained', reason: `processed ${(ratio * 100).toFixed(2)}%` };
}

/**
 * The window of a fault: the keys the bare subscribers received (`reference`: key -> receipt instant,
 * ms) within [fromMs, toMs], both ends included, with their receipt instant, in the reference's order.
 * Every window count of the bench (lost, duplicates, catch-up, `--dump`) reads its keys here.
 */
export function* keysInWindow(
  reference: ReadonlyMap<string, number>,
  fromMs: number,
  toMs: number,
): Generator<[key: string, receivedAtMs: number]> {
  for (const [key, receivedAtMs] of reference) {
    if (receivedAtMs >= fromMs && receivedAtMs <= toMs) yield [key, receivedAtMs];
  }
}

/** Keys received by the bare subscribers within [fromMs, toMs] that nobody processed. */
export function lostInWindow(
  reference: ReadonlyMap<string, number>,
  processedKeys: ReadonlySet<string> | ReadonlyMap<string, unknown>,
  fromMs: number,
  toMs: number,
): { expected: number; lost: number } {
  let expected = 0;
  let lost = 0;
  for (const [key] of keysInWindow(reference, fromMs, toMs)) {
    expected++;
    if (!processedKeys.has(key)) lost++;
  }
  return { expected, lost };
}

export interface HandoverRun {
  /** Without a leader: previous leader's `leader.released` (graceful) or the SIGKILL (crash) to the next `leader.acquired`. */
  readonly gapMs: number | undefined;
  readonly lost: number;
  readonly expected: number;
  readonly duplicates: number;
  /** The new leader was a worker started after the signal (the replacement), not a warm follower. */
  readonly newLeaderStartedAfterSignal?: boolean;
  /** From the new leader's acquisition until every event of the fault window was handled (undefined: never). */
  readonly catchUpMs?: number | undefined;
}

export interface HandoverSummary {
  readonly runs: number;
  /** Runs without a measured gap: no new leader within the bound, or two leaders at once. */
  readonly failed: number;
  readonly medianGapMs: number;
  readonly worstGapMs: number;
  readonly lostTotal: number;
  readonly lostMedian: number;
  readonly lostWorst: number;
  readonly expectedTotal: number;
  readonly duplicatesTotal: number;
  /** Runs won by a worker started after the signal, and the events lost in those runs. */
  readonly wonByReplacement: number;
  readonly lostWhenWonByReplacement: number;
}

export function summarizeHandovers(runs: readonly HandoverRun[]): HandoverSummary {
  const gaps = runs.map((r) => r.gapMs).filter((g): g is number => g !== undefined);
  const lost = runs.map((r) => r.lost);
  return {
    runs: runs.length,
    failed: runs.length - gaps.length,
    medianGapMs: median(gaps),
    worstGapMs: gaps.length === 0 ? Number.NaN : Math.max(...gaps),
    lostTotal: lost.reduce((a, b) => a + b, 0),
    lostMedian: median(lost),
    lostWorst: lost.length === 0 ? Number.NaN : Math.max(...lost),
    expectedTotal: runs.reduce((a, r) => a + r.expected, 0),
    duplicatesTotal: runs.reduce((a, r) => a + r.duplicates, 0),
    wonByReplacement: runs.filter((r) => r.newLeaderStartedAfterSignal === true).length,
    lostWhenWonByReplacement: runs
      .filter((r) => r.newLeaderStartedAfterSignal === true)
      .reduce((a, r) => a + r.lost, 0),
  };
}

/** Median and worst (largest) of some runs' figures; NaN for no runs. */
export function medianAndWorst(values: readonly number[]): { median: number; worst: number } {
  return {
    median: median(values),
    worst: values.length === 0 ? Number.NaN : Math.max(...values),
  };
}

/** `amount` per 1,000 events; NaN when there were no events. */
export function perThousandEvents(amount: number, events: number): number {
  return events > 0 ? (amount / events) * 1000 : Number.NaN;
}

/** Relative change of `value` against `base`, in percent (+12.5 = 12.5% more); NaN without a base. */
export function percentChange(base: number, value: number): number {
  return base > 0 && Number.isFinite(value) ? ((value - base) / base) * 100 : Number.NaN;
}

/**
 * Handler calls beyond the first per key, over the keys the bare subscribers received within
 * [fromMs, toMs] (a key processed twice counts 1, three times 2).
 */
export function duplicatesInWindow(
  reference: ReadonlyMap<string, number>,
  processed: ReadonlyMap<string, { readonly calls: number }>,
  fromMs: number,
  toMs: number,
): number {
  let duplicates = 0;
  for (const [key] of keysInWindow(reference, fromMs, toMs)) {
    const record = processed.get(key);
    if (record !== undefined) duplicates += record.calls - 1;
  }
  return duplicates;
}

/**
 * Sequence 3's goal (issue 11): 0 lost at any rate up to this share of the leader's measured maximum
 * sustained rate. With three-workers in the same run, crash-loss adds a rate at this share of its
 * highest sustained step.
 */
export const CRASH_LOSS_SHARE_OF_MAX = 0.8;

/** The crash-loss rates: the configured ones, plus CRASH_LOSS_SHARE_OF_MAX of a measured maximum (rounded down to 100/s). */
export function crashLossRates(
  configured: readonly number[],
  measuredMaxPerSecond: number | undefined,
): { keysPerSecond: number; measuredMaxPerSecond?: number }[] {
  const rates: { keysPerSecond: number; measuredMaxPerSecond?: number }[] = configured.map((r) => ({
    keysPerSecond: r,
  }));
  if (measuredMaxPerSecond !== undefined) {
    const share = Math.floor((measuredMaxPerSecond * CRASH_LOSS_SHARE_OF_MAX) / 100) * 100;
    const same = rates.find((r) => r.keysPerSecond === share);
    if (same) same.measuredMaxPerSecond = measuredMaxPerSecond;
    else if (share > 0) rates.push({ keysPerSecond: share, measuredMaxPerSecond });
  }
  return rates.sort((a, b) => a.keysPerSecond - b.keysPerSecond);
}
