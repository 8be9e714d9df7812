import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
import { VALUE_CAPTURE_DEFAULTS } from '../core/defaults.ts';
import type { BenchSettings } from './bench-options.ts';
import { CpuQuota } from './cpu-quota.ts';
import { cpuSeconds, parseVmRssKiB, type ThreadSchedule, threadSchedules } from './cpu-usage.ts';
import type { BenchHarness, Recorder, WorkerGroup } from './harness.ts';
import {
  type BurstCpu,
  burstCpuText,
  commandCalls,
  commandUsec,
  type HeldReading,
  type LagFigures,
  lagFigures,
  type OnTimeBurst,
  type OnTimeCostVariant,
  type OnTimeCrash,
  type OnTimeHeldValues,
  type OnTimeMemory,
  type OnTimeNativeRun,
  type OnTimeQuotaRun,
  type OnTimeReport,
  type OnTimeRun,
  type OnTimeVariant,
  PROBE_VALUES,
  probeValueOf,
  usedCpuSeconds,
  valueFigures,
} from './on-time-report.ts';
import { BUNDLED_WORKER_SCRIPT, NOOP_HANDLER } from './worker-bundle.ts';

/**
 * On-time expiry (issue 13, docs/precise-expiry.md) beside native Redis, in one run:
 * - per background size (settings.onTime.backgroundSizes): native Redis (no worker, the bare
 *   subscribers), then one worker with the background loaded before its start (scan path), then one
 *   on an empty keyspace that the background is loaded into after it is ready (event path); each
 *   time `probes` keys share one deadline, in the worker's first burst (cold) and again after
 *   `warmUpBursts` more (warm); the workers run the bundle the image ships (BUNDLED_WORKER_SCRIPT);
 * - one worker under each CPU quota (settings.onTime.cpuQuotas; Fargate's task sizes), cold and warm;
 * - the leader SIGKILL among 3 workers, probes due over the seconds after the kill;
 * - memory per tracked key (event path, bench/heap-probe.mjs);
 * - held values (issue 14): one worker, HELD_KEYS keys with values sharing one deadline, its memory
 *   before the deadline (the batch's values read ahead and held) and after, the share captured;
 * - the cache-side cost of 10,000 TTL writes a second without tracking, with tracking alone, and with
 *   tracking and value capture.
 * The probes carry values (PROBE_VALUES: strings, every tenth a hash); each run reports the share of
 * probes whose `key.processed` line carried the value written (the line has its type and size only).
 * notify-keyspace-events is `Egx` during the scenario (precise expiry needs `g`) and back to `Ex` after.
 */

const HEAP_PROBE = fileURLToPath(new URL('./heap-probe.mjs', import.meta.url));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const now = () => performance.timeOrigin + performance.now();
const KEY_PATTERN = 'bench:ontime:*';
const BACKGROUND_PREFIX = 'bench:ontime:bg:';
const BACKGROUND_TTL_MS = 3_600_000;
/** The probes' shared deadline, from their writing. */
const PROBE_LEAD_MS = 3000;
/**
 * A burst's CPU budget (BurstCpu) is read from this long before its deadline (the values' read-ahead,
 * EXPIRY_READ_AHEAD_MS 20 by default, comes after) to its last line, seen within BURST_POLL_MS.
 */
const BURST_CPU_LEAD_MS = 60;
const BURST_POLL_MS = 5;
/** How long past the deadline a worker is waited for, at most. */
const WORKER_WAIT_MS = 30_000;
const WRITE_BATCH = 1000;
const READY_BOUND_MS = 300_000;
/** The lookups count as caught up once the PEXPIRETIME count stood still for this long. */
const CATCH_UP_STALL_MS = 3000;
const NOTIFY_TRACKING = 'Egx';
/** The held-values run: keys sharing one deadline, and their strings' length. */
const HELD_KEYS = 100_000;
const HELD_VALUE_BYTES = 100;
/**
 * The held-values batch's deadline, from its first PEXPIREAT: the PEXPIREATs (~1-2 s), the lookups
 * (~3 s at 100,000 keys) and the batch's read-ahead (up to VALUE_CAPTURE_DEFAULTS.maxLeadMs, 20 s) fit.
 */
const HELD_LEAD_MS = 27_000;
/**
 * The `held` reading is asked this long before the deadline: after the batch's last reads were due
 * (EXPIRY_READ_AHEAD_MS, 20 ms, before it), so the reading's GCs, which block the worker's loop for
 * tens of ms, delay its touches (counted in the drain, and shown) but no read: reads due during the
 * block would come due together, each reserving VALUE_MAX_BYTES of the budget while in flight.
 */
const HELD_READING_BEFORE_MS = 15;
/** The `settled` reading: this long after the last handled event (held values are swept every 1 s). */
const HELD_SETTLE_MS = 2500;
const NOTIFY_NATIVE = 'Ex';

interface Primaries {
  readonly ids: readonly string[];
  readonly clients: readonly { readonly port: number; readonly client: Redis }[];
}

export async function runOnTime(harness: BenchHarness, settings: BenchSettings): Promise<OnTimeReport> {
  const s = settings.onTime;
  const list = await harness.cluster.primaries();
  const primaries: Primaries = {
    ids: list.map((p) => p.id),
    clients: list.map((p) => ({ port: p.port, client: harness.cluster.nodeClient(p.port) })),
  };
  const native: OnTimeNativeRun[] = [];
  const runs: OnTimeRun[] = [];
  const memory: OnTimeMemory[] = [];
  const cost: OnTimeCostVariant[] = [];
  let crash: OnTimeCrash | undefined;
  let held: OnTimeHeldValues | undefined;
  let quotas: OnTimeReport['quotas'];
  await harness.cluster.configSetAll('notify-keyspace-events', NOTIFY_TRACKING);
  try {
    for (const size of s.backgroundSizes) {
      await flush(primaries);
      await writeKeys(harness, size, (i) => `${BACKGROUND_PREFIX}${i}`, ['PX', BACKGROUND_TTL_MS]);
      native.push(await measureNative(harness, settings, size));
      // The background is in place: a worker started now finds it by its scan.
      runs.push(...(await measureWorker(harness, settings, primaries, size, 'scan', memory)));
      await flush(primaries);
      runs.push(...(await measureWorker(harness, settings, primaries, size, 'event', memory)));
    }
    await flush(primaries);
    quotas = await measureQuotas(harness, settings, primaries);
    await flush(primaries);
    crash = await measureCrash(harness, settings, primaries);
    await flush(primaries);
    held = await measureHeldValues(harness, settings, primaries);
    await flush(primaries);
    for (const [tracking, capture] of [
      [false, false],
      [true, false],
      [true, true],
    ] as const) {
      await harness.cluster.configSetAll(
        'notify-keyspace-events',
        tracking ? NOTIFY_TRACKING : NOTIFY_NATIVE,
      );
      cost.push(await measureCost(harness, settings, primaries, tracking, capture));
      await flush(primaries);
    }
  } finally {
    await harness.cluster.configSetAll('notify-keyspace-events', NOTIFY_NATIVE).catch(() => undefined);
    await flush(primaries).catch(() => undefined);
    for (const { client } of primaries.clients) client.disconnect();
  }
  return {
    probes: s.probes,
    probeValues: PROBE_VALUES,
    scanKeysPerS: s.scanKeysPerS,
    nativeWaitS: s.nativeWaitS,
    native,
    runs,
    quotas,
    memory,
    crash,
    held,
    cost,
  };
}

async function flush(primaries: Primaries): Promise<void> {
  await Promise.all(primaries.clients.map(({ client }) => client.flushall()));
}

/** `count` keys set with `args` (PX ttl or PXAT deadline), pipelined through the generator client. */
async function writeKeys(
  harness: BenchHarness,
  count: number,
  keyOf: (i: number) => string,
  args: ['PX' | 'PXAT', number],
): Promise<void> {
  await writeBatched(count, (i) => harness.client.set(keyOf(i), '1', args[0] as 'PX', args[1]));
}

/** `write(i)` for i in [0, count), WRITE_BATCH at a time (the generator client pipelines them). */
async function writeBatched(count: number, write: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i += WRITE_BATCH) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(count, i + WRITE_BATCH); j++) batch.push(write(j));
    await Promise.all(batch);
  }
}

/**
 * The probes, `count` keys sharing `prefix`, each with its value (PROBE_VALUES): a string `SET k v
 * PXAT <deadline>`, or a hash (HSET, then PEXPIREAT: its `expire` event has the deadline).
 */
async function writeProbes(
  harness: BenchHarness,
  count: number,
  prefix: string,
  deadlineOf: (i: number) => number,
): Promise<void> {
  const text = (bytes: number) => 'v'.repeat(bytes);
  const string = text(PROBE_VALUES.stringBytes);
  const fields: string[] = [];
  for (let j = 0; j < PROBE_VALUES.hashFields; j++) fields.push(`f${j}`, text(PROBE_VALUES.hashValueBytes));
  await writeBatched(count, (i) => {
    const key = `${prefix}${i}`;
    return probeValueOf(PROBE_VALUES, i).type === 'hash'
      ? Promise.all([harness.client.hset(key, ...fields), harness.client.pexpireat(key, deadlineOf(i))])
      : harness.client.set(key, string, 'PXAT', deadlineOf(i));
  });
}

/** The value written for probe key `key` under `prefix` (writeProbes). */
function probeValueOfKey(prefix: string) {
  return (key: string) => probeValueOf(PROBE_VALUES, Number(key.slice(prefix.length)));
}

async function commandStats(primaries: Primaries): Promise<string[]> {
  return Promise.all(primaries.clients.map(({ client }) => client.info('commandstats')));
}

const totalCalls = (infos: readonly string[], command: string): number =>
  infos.reduce((total, info) => total + commandCalls(info, command), 0);

async function pexpiretimeCalls(primaries: Primaries): Promise<number> {
  return totalCalls(await commandStats(primaries), 'pexpiretime');
}

/** Value reads run so far, all primaries (only the value-read script calls TYPE). */
async function valueReads(primaries: Primaries): Promise<number> {
  return totalCalls(await commandStats(primaries), 'type');
}

/**
 * Value reads so far, and of them those that found the key with its TTL: the value-read script sizes
 * a string with STRLEN and a collection with HLEN / LLEN / SCARD / ZCARD only then (nothing else here
 * calls them), after TYPE (a key already expired: `gone`) and PEXPIRETIME (no TTL).
 */
async function readCounts(primaries: Primaries): Promise<{ reads: number; found: number }> {
  const infos = await commandStats(primaries);
  const found = ['strlen', 'hlen', 'llen', 'scard', 'zcard'].reduce((t, c) => t + totalCalls(infos, c), 0);
  return { reads: totalCalls(infos, 'type'), found };
}

async function resetStats(primaries: Primaries): Promise<void> {
  await Promise.all(primaries.clients.map(({ client }) => client.call('CONFIG', 'RESETSTAT')));
}

/** The probes' lags: deadline -> handler line, the line's lagMs, deadline -> bare receipt. */
function probeLags(
  recorder: Recorder,
  expected: number,
  deadlineOf: (key: string) => number,
): {
  handler: LagFigures;
  workerLag: LagFigures;
  workerReceipt: LagFigures;
  bare: LagFigures;
  duplicates: number;
} {
  const handler: number[] = [];
  const receipt: number[] = [];
  const own: number[] = [];
  const bare: number[] = [];
  let duplicates = 0;
  for (const [key, record] of recorder.processed) {
    handler.push(record.lineMs - deadlineOf(key));
    if (record.lagMs !== undefined) own.push(record.lagMs);
    if (record.latencyMs !== undefined) receipt.push(record.lineMs - record.latencyMs - deadlineOf(key));
    duplicates += record.calls - 1;
  }
  for (const [key, atMs] of recorder.reference) bare.push(atMs - deadlineOf(key));
  return {
    handler: lagFigures(handler, expected),
    workerLag: lagFigures(own, expected),
    workerReceipt: lagFigures(receipt, expected),
    bare: lagFigures(bare, expected),
    duplicates,
  };
}

async function waitFor(done: () => boolean, untilMs: number, pollMs = 100): Promise<void> {
  while (!done() && Date.now() < untilMs) await sleep(pollMs);
}

async function measureNative(
  harness: BenchHarness,
  settings: BenchSettings,
  size: number,
): Promise<OnTimeNativeRun> {
  const { probes, nativeWaitS } = settings.onTime;
  harness.log(
    `on-time: native Redis, ${probes} probes among ${size} volatile keys (wait <= ${nativeWaitS} s)`,
  );
  const prefix = `bench:ontime:native-${size}:`;
  const recorder = harness.recorder(prefix);
  try {
    const deadlineMs = Math.round(Date.now() + PROBE_LEAD_MS);
    await writeProbes(harness, probes, prefix, () => deadlineMs);
    await waitFor(() => recorder.reference.size >= probes, deadlineMs + nativeWaitS * 1000);
    const bare = probeLags(recorder, probes, () => deadlineMs).bare;
    harness.log(`  native: ${bare.delivered}/${probes}, p50 ${fmt(bare.p50Ms)}, p99 ${fmt(bare.p99Ms)}`);
    return { backgroundKeys: size, bare, waitS: nativeWaitS };
  } finally {
    harness.release(recorder);
  }
}

/** One worker of the on-time runs (its own LEADER_NAME, so it leads alone), named by `tag`. */
function oneWorker(
  harness: BenchHarness,
  settings: BenchSettings,
  tag: string,
  heapOut: string | undefined,
): WorkerGroup {
  return harness.workers({
    script: BUNDLED_WORKER_SCRIPT,
    count: 1,
    leaderName: `bench-${tag}-${Date.now()}`,
    env: workerEnv(settings, heapOut),
    replace: false,
    idPrefix: `${tag}-`,
  });
}

function workerEnv(settings: BenchSettings, heapOut: string | undefined): Record<string, string> {
  return {
    HANDLER: 'log',
    LOG_LEVEL: 'info',
    KEY_PATTERN,
    PRECISE_EXPIRY: 'true',
    EXPIRY_SCAN_KEYS_PER_S: String(settings.onTime.scanKeysPerS),
    ...(heapOut
      ? {
          BENCH_HEAP_OUT: heapOut,
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(HEAP_PROBE).href}`.trim(),
        }
      : {}),
  };
}

/** Waits for round 1 of every primary from every worker of the group; the largest index size then. */
async function waitScanReady(group: WorkerGroup, primaries: Primaries, workers: number): Promise<number> {
  const deadline = Date.now() + READY_BOUND_MS;
  for (;;) {
    const firsts = group.scanPasses.filter((p) => p.round === 1 && primaries.ids.includes(p.nodeId));
    const perWorker = new Map<string, Set<string>>();
    for (const p of firsts) perWorker.set(p.workerId, (perWorker.get(p.workerId) ?? new Set()).add(p.nodeId));
    const ready = [...perWorker.values()].filter((nodes) => nodes.size >= primaries.ids.length).length;
    if (ready >= workers) return Math.max(0, ...firsts.map((p) => p.trackedKeys));
    if (Date.now() > deadline)
      throw new Error(`no first scan pass over every primary within ${READY_BOUND_MS} ms`);
    await sleep(100);
  }
}

/** Loads the background after the workers are ready; waits until `workers` lookups per key were made. */
async function loadAndCatchUp(
  harness: BenchHarness,
  primaries: Primaries,
  size: number,
  workers: number,
): Promise<{ readyMs: number; lookups: number }> {
  const before = await pexpiretimeCalls(primaries);
  await writeKeys(harness, size, (i) => `${BACKGROUND_PREFIX}${i}`, ['PX', BACKGROUND_TTL_MS]);
  const loadedAt = now();
  let last = -1;
  let lastChangeMs = Date.now();
  for (;;) {
    const lookups = (await pexpiretimeCalls(primaries)) - before;
    if (lookups !== last) lastChangeMs = Date.now();
    last = lookups;
    if (
      lookups >= size * workers ||
      Date.now() - lastChangeMs > CATCH_UP_STALL_MS ||
      Date.now() - loadedAt > READY_BOUND_MS
    )
      return { readyMs: now() - loadedAt, lookups };
    await sleep(100);
  }
}

async function readHeap(
  group: WorkerGroup,
  heapOut: string,
): Promise<{ heap?: number; rssKiB?: number; gcMs?: number }> {
  const pid = group.pids()[0];
  if (pid === undefined) return {};
  rmSync(heapOut, { force: true });
  process.kill(pid, 'SIGUSR2');
  const until = Date.now() + 5000;
  await waitFor(() => existsSync(heapOut), until);
  let rssKiB: number | undefined;
  try {
    rssKiB = parseVmRssKiB(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    rssKiB = undefined;
  }
  await sleep(50);
  try {
    const m = JSON.parse(readFileSync(heapOut, 'utf8')) as {
      heapUsed: number;
      external: number;
      gcMs?: number;
    };
    return {
      heap: m.heapUsed + m.external,
      ...(rssKiB === undefined ? {} : { rssKiB }),
      ...(m.gcMs === undefined ? {} : { gcMs: m.gcMs }),
    };
  } catch {
    return rssKiB === undefined ? {} : { rssKiB };
  }
}

async function measureWorker(
  harness: BenchHarness,
  settings: BenchSettings,
  primaries: Primaries,
  size: number,
  variant: OnTimeVariant,
  memory: OnTimeMemory[],
): Promise<OnTimeRun[]> {
  const { probes, warmUpBursts } = settings.onTime;
  harness.log(`on-time (${variant}): ${probes} probes among ${size} volatile keys, 1 worker`);
  const tag = `ontime-${variant}-${size}`;
  const heapOut = variant === 'event' ? join(tmpdir(), `kl-bench-${tag}-${process.pid}.json`) : undefined;
  const group = oneWorker(harness, settings, tag, heapOut);
  try {
    await group.waitStable(60_000);
    let readyMs: number | undefined;
    let trackedAtProbes: number | undefined;
    if (variant === 'scan') {
      trackedAtProbes = await waitScanReady(group, primaries, 1);
      const spawned = [...group.spawnedAtMs.values()][0];
      const readyAt = Math.max(...group.scanPasses.filter((p) => p.round === 1).map((p) => p.atMs));
      readyMs = spawned === undefined ? undefined : readyAt - spawned;
    } else {
      await waitScanReady(group, primaries, 1);
      const before = heapOut ? await readHeap(group, heapOut) : {};
      const caught = await loadAndCatchUp(harness, primaries, size, 1);
      readyMs = caught.readyMs;
      trackedAtProbes = caught.lookups;
      const after = heapOut && size > 0 ? await readHeap(group, heapOut) : undefined;
      if (after)
        memory.push({
          trackedKeys: size,
          heapBeforeBytes: before.heap,
          heapAfterBytes: after.heap,
          rssBeforeKiB: before.rssKiB,
          rssAfterKiB: after.rssKiB,
        });
    }
    harness.log(`  ready in ${fmt(readyMs)}, index ${trackedAtProbes}`);
    // The worker's first burst, then `warmUpBursts` more (their p99 kept as a spread), then the warm burst.
    const runs: OnTimeRun[] = [];
    const base = { backgroundKeys: size, variant, readyMs, trackedAtProbes };
    const { cold, warm } = await coldAndWarm(
      harness,
      settings,
      primaries,
      `bench:ontime:${variant}-${size}`,
      group.pids()[0],
    );
    runs.push({ ...base, ...cold }, { ...base, ...warm, warmUpEvents: warmUpBursts * probes });
    return runs;
  } finally {
    await harness.stopWorkers(group);
    if (heapOut) rmSync(heapOut, { force: true });
  }
}

/** A worker's first burst, then `warmUpBursts` more (their p99 kept), then its warm burst (keys under `prefix`-...). */
async function coldAndWarm(
  harness: BenchHarness,
  settings: BenchSettings,
  primaries: Primaries,
  prefix: string,
  workerPid: number | undefined,
): Promise<{ cold: BurstFigures; warm: BurstFigures & { warmUpP99Ms: number[] } }> {
  const { probes, warmUpBursts } = settings.onTime;
  const burst = (suffix: string, kind: OnTimeBurst | 'warm-up') =>
    measureBurst(harness, probes, primaries, `${prefix}${suffix}:`, kind, workerPid);
  const cold = await burst('', 'cold');
  const warmUpP99Ms: number[] = [];
  for (let i = 0; i < warmUpBursts; i++) {
    const { p99Ms } = (await burst(`-w${i}`, 'warm-up')).handler;
    if (p99Ms !== undefined) warmUpP99Ms.push(p99Ms);
  }
  return { cold, warm: { ...(await burst('-warm', 'warm')), warmUpP99Ms } };
}

type BurstFigures = Omit<OnTimeRun, 'backgroundKeys' | 'variant' | 'readyMs' | 'trackedAtProbes'>;

/** `probes` keys under `prefix` sharing one deadline, PROBE_LEAD_MS ahead: their lags and values. */
async function measureBurst(
  harness: BenchHarness,
  probes: number,
  primaries: Primaries,
  prefix: string,
  burst: OnTimeBurst | 'warm-up',
  workerPid: number | undefined,
): Promise<BurstFigures> {
  const recorder = harness.recorder(prefix);
  try {
    const readsBefore = await readCounts(primaries);
    const deadlineMs = Math.round(Date.now() + PROBE_LEAD_MS);
    await writeProbes(harness, probes, prefix, () => deadlineMs);
    await sleep(Math.max(0, deadlineMs - BURST_CPU_LEAD_MS - Date.now()));
    const cpuBefore = await cpuSnapshot(workerPid, primaries);
    await waitFor(
      () => recorder.processed.size >= probes && recorder.reference.size >= probes,
      deadlineMs + WORKER_WAIT_MS,
      BURST_POLL_MS,
    );
    const cpu = burstCpu(cpuBefore, await cpuSnapshot(workerPid, primaries));
    const readsAfter = await readCounts(primaries);
    const reads = readsAfter.reads - readsBefore.reads;
    const found = readsAfter.found - readsBefore.found;
    const lags = probeLags(recorder, probes, () => deadlineMs);
    const values = valueFigures(recorder.processed, probeValueOfKey(prefix));
    harness.log(
      `  ${burst}: handler ${lags.handler.delivered}/${probes}, p50 ${fmt(lags.handler.p50Ms)}, p99 ${fmt(lags.handler.p99Ms)}, ` +
        `max ${fmt(lags.handler.maxMs)}; worker receipt p50 ${fmt(lags.workerReceipt.p50Ms)} p99 ${fmt(lags.workerReceipt.p99Ms)}; ` +
        `bare p50 ${fmt(lags.bare.p50Ms)} p99 ${fmt(lags.bare.p99Ms)}; values ${valuesText(values)} (${reads} reads, ${found} found the key)` +
        (cpu ? `; ${burstCpuText(cpu)}` : ''),
    );
    return {
      burst: burst === 'warm-up' ? 'warm' : burst,
      ...lags,
      values,
      valueReads: reads,
      valueReadsFound: found,
      ...(cpu ? { cpu } : {}),
    };
  } finally {
    harness.release(recorder);
  }
}

interface CpuSnapshot {
  readonly atMs: number;
  readonly worker: readonly ThreadSchedule[] | undefined;
  readonly bench: NodeJS.CpuUsage;
  readonly primariesS: readonly (number | undefined)[];
}

/** Each primary's used CPU seconds so far (INFO cpu); undefined where a reply lacks them. */
async function primaryCpuSeconds(primaries: Primaries): Promise<(number | undefined)[]> {
  const infos = await Promise.all(primaries.clients.map(({ client }) => client.info('cpu')));
  return infos.map((info) => usedCpuSeconds(info));
}

async function cpuSnapshot(workerPid: number | undefined, primaries: Primaries): Promise<CpuSnapshot> {
  const primariesS = await primaryCpuSeconds(primaries);
  return {
    atMs: now(),
    worker: workerPid === undefined ? undefined : threadSchedules(workerPid),
    bench: process.cpuUsage(),
    primariesS,
  };
}

/** The CPU used between two snapshots; undefined without the worker's threads (no /proc). */
function burstCpu(a: CpuSnapshot, b: CpuSnapshot): BurstCpu | undefined {
  if (!a.worker || !b.worker || a.worker[0] === undefined || b.worker[0] === undefined) return undefined;
  const before = new Map(a.worker.map((t) => [t.tid, t]));
  const [main, ...others] = b.worker;
  const mainBefore = a.worker[0];
  let othersRunMs = 0;
  // A thread started inside the window counts from 0.
  for (const t of others) othersRunMs += t.runMs - (before.get(t.tid)?.runMs ?? 0);
  let primariesMs = 0;
  for (let i = 0; i < b.primariesS.length; i++)
    primariesMs += ((b.primariesS[i] ?? 0) - (a.primariesS[i] ?? 0)) * 1000;
  const benchUs = b.bench.user - a.bench.user + (b.bench.system - a.bench.system);
  return {
    windowMs: b.atMs - a.atMs,
    workerMainRunMs: main.runMs - mainBefore.runMs,
    workerMainWaitMs: main.waitMs - mainBefore.waitMs,
    workerOtherThreadsRunMs: othersRunMs,
    benchMs: benchUs / 1000,
    primariesMs,
  };
}

/**
 * One worker per CPU quota (settings.onTime.cpuQuotas, bench/cpu-quota.ts), no other volatile keys:
 * moved into its quota once it is ready, then a cold and a warm burst as measureWorker takes them.
 */
async function measureQuotas(
  harness: BenchHarness,
  settings: BenchSettings,
  primaries: Primaries,
): Promise<OnTimeReport['quotas']> {
  const { probes, cpuQuotas } = settings.onTime;
  const runs: OnTimeQuotaRun[] = [];
  for (const [i, vcpu] of cpuQuotas.entries()) {
    const quota = CpuQuota.create(`kl-bench-${process.pid}-${i}`, vcpu);
    if (!(quota instanceof CpuQuota)) {
      harness.log(`on-time under CPU quotas: not measured, ${quota.unavailable}`);
      return { unavailable: quota.unavailable };
    }
    harness.log(`on-time: ${probes} probes, 1 worker under a ${vcpu} vCPU quota`);
    const group = oneWorker(harness, settings, `ontime-quota-${i}`, undefined);
    try {
      await group.waitStable(60_000);
      await waitScanReady(group, primaries, 1);
      const pid = group.pids()[0];
      if (pid === undefined) throw new Error('the quota run has no worker process');
      quota.add(pid);
      const { cold, warm } = await coldAndWarm(harness, settings, primaries, `bench:ontime:quota-${i}`, pid);
      for (const run of [cold, warm])
        runs.push({ vcpu, burst: run.burst, handler: run.handler, ...(run.cpu ? { cpu: run.cpu } : {}) });
    } finally {
      await harness.stopWorkers(group);
      quota.remove();
    }
  }
  return { runs };
}

async function measureCrash(
  harness: BenchHarness,
  settings: BenchSettings,
  primaries: Primaries,
): Promise<OnTimeCrash> {
  const { probes, crashBackground, crashSpreadMs } = settings.onTime;
  const workers = 3;
  harness.log(
    `on-time: leader SIGKILL, ${workers} workers, ${probes} probes due over the ${crashSpreadMs} ms after it`,
  );
  const group = harness.workers({
    script: BUNDLED_WORKER_SCRIPT,
    count: workers,
    leaderName: `bench-ontime-crash-${Date.now()}`,
    env: workerEnv(settings, undefined),
    replace: false,
    idPrefix: 'ontime-crash-',
  });
  const prefix = 'bench:ontime:crash:';
  const recorder = harness.recorder(prefix);
  try {
    const leader = await group.waitStable(60_000);
    await waitScanReady(group, primaries, workers);
    await loadAndCatchUp(harness, primaries, crashBackground, workers);
    const killAtMs = Math.round(Date.now() + 1500);
    const deadlineOf = (key: string) =>
      killAtMs + Math.floor((Number(key.slice(prefix.length)) / probes) * crashSpreadMs);
    const readsBefore = await readCounts(primaries);
    // One deadline per probe.
    await writeProbes(harness, probes, prefix, (i) => deadlineOf(`${prefix}${i}`));
    await sleep(Math.max(0, killAtMs - Date.now()));
    const before = group.handoverCount();
    const signalAt = group.signal(leader.id, 'SIGKILL');
    const next = await group.waitNewLeader(before, 30_000);
    await waitFor(() => recorder.processed.size >= probes, killAtMs + crashSpreadMs + WORKER_WAIT_MS);
    const lags = probeLags(recorder, probes, deadlineOf);
    const gapMs = next ? next.acquiredAtMs - signalAt : undefined;
    const values = valueFigures(recorder.processed, probeValueOfKey(prefix));
    const readsAfter = await readCounts(primaries);
    const reads = readsAfter.reads - readsBefore.reads;
    const found = readsAfter.found - readsBefore.found;
    harness.log(
      `  handler ${lags.handler.delivered}/${probes}, p50 ${fmt(lags.handler.p50Ms)}, p99 ${fmt(lags.handler.p99Ms)}, ` +
        `max ${fmt(lags.handler.maxMs)}; gap ${fmt(gapMs)}; values ${valuesText(values)} (${reads} reads, ${found} found the key)`,
    );
    return {
      workers,
      backgroundKeys: crashBackground,
      spreadMs: crashSpreadMs,
      gapMs,
      handler: lags.handler,
      bare: lags.bare,
      duplicates: lags.duplicates,
      values,
      valueReads: reads,
      valueReadsFound: found,
    };
  } finally {
    harness.release(recorder);
    await harness.stopWorkers(group);
  }
}

/**
 * One worker (no-op handler) during `costWritesPerS` TTL writes a second: without tracking, with
 * tracking alone (CAPTURE_VALUES=false), with tracking and capture (CAPTURE_VALUES=true).
 */
async function measureCost(
  harness: BenchHarness,
  settings: BenchSettings,
  primaries: Primaries,
  tracking: boolean,
  capture: boolean,
): Promise<OnTimeCostVariant> {
  const { costWritesPerS, costDurationS } = settings.onTime;
  const notify = tracking ? NOTIFY_TRACKING : NOTIFY_NATIVE;
  const name = tracking ? (capture ? 'tracking, capture' : 'tracking, no capture') : 'no tracking';
  harness.log(`on-time cost (${name}): ${costWritesPerS} TTL writes/s for ${costDurationS} s`);
  const tag = `ontime-cost-${tracking ? (capture ? 'capture' : 'on') : 'off'}`;
  const group = harness.workers({
    script: BUNDLED_WORKER_SCRIPT,
    count: 1,
    leaderName: `bench-${tag}-${Date.now()}`,
    env: {
      HANDLER: NOOP_HANDLER,
      LOG_LEVEL: 'warn',
      KEY_PATTERN,
      PRECISE_EXPIRY: String(tracking),
      CAPTURE_VALUES: String(capture),
      EXPIRY_SCAN_KEYS_PER_S: String(settings.onTime.scanKeysPerS),
    },
    replace: false,
    idPrefix: `${tag}-`,
  });
  const generator = harness.generator(`bench:ontime:${tag}:`, costWritesPerS, settings.keyTtlMs);
  try {
    await group.waitLeaderRecord(60_000);
    await sleep(2000);
    await resetStats(primaries);
    const cpuBefore = await primaryCpuSeconds(primaries);
    const pid = group.pids()[0];
    const workerBefore = pid === undefined ? undefined : cpuSeconds(pid);
    const startedAt = now();
    generator.start();
    await sleep(costDurationS * 1000);
    await generator.stop();
    const durationS = (now() - startedAt) / 1000;
    const workerAfter = pid === undefined ? undefined : cpuSeconds(pid);
    const [stats, cpuAfter] = await Promise.all([
      Promise.all(primaries.clients.map(({ client }) => client.info('commandstats'))),
      primaryCpuSeconds(primaries),
    ]);
    const result: OnTimeCostVariant = {
      tracking,
      capture,
      notify,
      writesPerS: costWritesPerS,
      written: generator.counts().sent,
      durationS,
      primaries: primaries.clients.map(({ port }, i) => {
        const a = cpuBefore[i];
        const b = cpuAfter[i];
        const info = stats[i] ?? '';
        return {
          port,
          pexpiretimeCalls: commandCalls(info, 'pexpiretime'),
          scanCalls: commandCalls(info, 'scan'),
          setCalls: commandCalls(info, 'set'),
          evalshaRoCalls: commandCalls(info, 'evalsha_ro'),
          evalshaRoUsec: commandUsec(info, 'evalsha_ro'),
          valueReads: commandCalls(info, 'type'),
          cpuS: a === undefined || b === undefined ? undefined : b - a,
        };
      }),
      workerCpuS:
        workerBefore === undefined || workerAfter === undefined ? undefined : workerAfter - workerBefore,
    };
    harness.log(
      `  written ${result.written}; PEXPIRETIME ${result.primaries.map((p) => p.pexpiretimeCalls).join('/')}; ` +
        `EVALSHA_RO ${result.primaries.map((p) => p.evalshaRoCalls).join('/')}; ` +
        `value reads ${result.primaries.map((p) => p.valueReads).join('/')}; ` +
        `primary CPU s ${result.primaries.map((p) => p.cpuS?.toFixed(2)).join('/')}`,
    );
    return result;
  } finally {
    await generator.stop();
    await harness.stopWorkers(group);
  }
}

/**
 * One worker, HELD_KEYS keys with strings of HELD_VALUE_BYTES sharing one deadline: its memory with
 * nothing tracked, with every key tracked, just before the deadline (the batch read ahead, its values
 * held) and once every event was handled; the share of events handled with their value; deadline ->
 * the last handled event. The keys are written without a TTL first, then given the deadline with
 * PEXPIREAT, so the deadline need only leave room for the PEXPIREATs, the lookups and the read-ahead.
 */
async function measureHeldValues(
  harness: BenchHarness,
  settings: BenchSettings,
  primaries: Primaries,
): Promise<OnTimeHeldValues> {
  harness.log(
    `on-time held values: ${HELD_KEYS} keys of ${HELD_VALUE_BYTES} bytes sharing one deadline, 1 worker`,
  );
  const tag = 'ontime-held';
  const heapOut = join(tmpdir(), `kl-bench-${tag}-${process.pid}.json`);
  const group = oneWorker(harness, settings, tag, heapOut);
  const prefix = 'bench:ontime:held:';
  const recorder = harness.recorder(prefix);
  const read = async (): Promise<Omit<HeldReading, 'atFromDeadlineMs'> & { atMs: number }> => {
    const atMs = Date.now();
    // The reads first: the worker runs none while its GCs for the reading block its loop.
    const reads = await valueReads(primaries);
    const memory = await readHeap(group, heapOut);
    return { heapBytes: memory.heap, rssKiB: memory.rssKiB, gcMs: memory.gcMs, valueReads: reads, atMs };
  };
  try {
    await group.waitStable(60_000);
    await waitScanReady(group, primaries, 1);
    const value = 'v'.repeat(HELD_VALUE_BYTES);
    await writeBatched(HELD_KEYS, (i) => harness.client.set(`${prefix}${i}`, value));
    await resetStats(primaries);
    const empty = await read();
    const deadlineMs = Math.round(Date.now() + HELD_LEAD_MS);
    await writeBatched(HELD_KEYS, (i) => harness.client.pexpireat(`${prefix}${i}`, deadlineMs));
    // The lookups: PEXPIRETIME calls but those inside value reads (one each); the touches come after the deadline.
    let caughtUpAtMs: number | undefined;
    const readAheadFromMs = deadlineMs - VALUE_CAPTURE_DEFAULTS.maxLeadMs - 500;
    while (caughtUpAtMs === undefined && Date.now() < readAheadFromMs) {
      const infos = await commandStats(primaries);
      if (totalCalls(infos, 'pexpiretime') - totalCalls(infos, 'type') >= HELD_KEYS)
        caughtUpAtMs = Date.now();
      else await sleep(100);
    }
    const tracked = await read();
    await sleep(Math.max(0, deadlineMs - HELD_READING_BEFORE_MS - Date.now()));
    const held = await read();
    await waitFor(() => recorder.processed.size >= HELD_KEYS, deadlineMs + WORKER_WAIT_MS);
    const after = await read();
    await sleep(HELD_SETTLE_MS);
    const settled = await read();
    const at = ({ atMs, ...rest }: Awaited<ReturnType<typeof read>>): HeldReading => ({
      ...rest,
      atFromDeadlineMs: atMs - deadlineMs,
    });
    const lags: number[] = [];
    for (const record of recorder.processed.values()) lags.push(record.lineMs - deadlineMs);
    const result: OnTimeHeldValues = {
      keys: HELD_KEYS,
      valueBytes: HELD_VALUE_BYTES,
      leadMs: HELD_LEAD_MS,
      caughtUpBeforeDeadlineMs: caughtUpAtMs === undefined ? undefined : deadlineMs - caughtUpAtMs,
      empty: at(empty),
      tracked: at(tracked),
      held: at(held),
      after: at(after),
      settled: at(settled),
      handler: lagFigures(lags, HELD_KEYS),
      values: valueFigures(recorder.processed, () => ({ type: 'string', bytes: HELD_VALUE_BYTES })),
    };
    const mib = (bytes: number | undefined) =>
      bytes === undefined ? '-' : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    harness.log(
      `  heap ${[result.empty, result.tracked, result.held, result.after, result.settled].map((r) => `${mib(r.heapBytes)} (${r.valueReads} reads, GC ${fmt(r.gcMs)})`).join(' -> ')}; ` +
        `caught up ${fmt(result.caughtUpBeforeDeadlineMs)} before the deadline; handled ${result.handler.delivered}/${HELD_KEYS}, ` +
        `last ${fmt(result.handler.maxMs)}; values ${valuesText(result.values)}`,
    );
    return result;
  } finally {
    harness.release(recorder);
    await harness.stopWorkers(group);
    rmSync(heapOut, { force: true });
  }
}

function valuesText(v: ReturnType<typeof valueFigures>): string {
  const missing = Object.entries(v.missing)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  return `${v.captured}/${v.delivered} captured${v.mismatched > 0 ? `, ${v.mismatched} other type or size` : ''}${missing ? `, without: ${missing}` : ''}`;
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? '-' : `${Math.round(ms)} ms`;
}
