import { VALUE_CAPTURE_DEFAULTS } from '../core/defaults.ts';
import { summarize } from '../local/runner/statistics.ts';
import type { ExpiredValueType } from '../worker/handlers/expiry-handler.ts';
import type { ProcessedRecord } from './analysis.ts';
import { int, pct, table } from './markdown.ts';

/**
 * The figures of bench/on-time.ts, their report section and console rows, and the parsing of the
 * Redis INFO text it reads. Pure.
 */

/** Issue 13's goal: every probe delivered, deadline -> handler p99 within this. */
export const ON_TIME_GOAL_P99_MS = 50;

/** Lags (ms after a deadline) of the probes that arrived, out of those expected. */
export interface LagFigures {
  readonly expected: number;
  readonly delivered: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  readonly maxMs: number | undefined;
}

export function lagFigures(lagsMs: readonly number[], expected: number): LagFigures {
  const s = summarize(lagsMs);
  return { expected, delivered: lagsMs.length, p50Ms: s?.p50, p99Ms: s?.p99, maxMs: s?.max };
}

/** The goal: all delivered, p99 within ON_TIME_GOAL_P99_MS. */
export function meetsOnTimeGoal(f: LagFigures): boolean {
  return (
    f.expected > 0 && f.delivered >= f.expected && f.p99Ms !== undefined && f.p99Ms <= ON_TIME_GOAL_P99_MS
  );
}

/**
 * The probes' values (issue 14): strings of `stringBytes`, and every `hashEvery`-th probe a hash of
 * `hashFields` fields `f0`.. with values of `hashValueBytes` (payload: the fields' and values' lengths).
 */
export interface ProbeValues {
  readonly stringBytes: number;
  readonly hashEvery: number;
  readonly hashFields: number;
  readonly hashValueBytes: number;
}

export const PROBE_VALUES: ProbeValues = {
  stringBytes: 100,
  hashEvery: 10,
  hashFields: 10,
  hashValueBytes: 10,
};

/** Payload bytes of a probe hash (expired-value.ts: the sum of every field's and value's length). */
export function probeHashBytes(v: ProbeValues): number {
  let bytes = 0;
  for (let j = 0; j < v.hashFields; j++) bytes += `f${j}`.length + v.hashValueBytes;
  return bytes;
}

/** What the bench writes as probe `index`'s value: a hash for every `hashEvery`-th, else a string. */
export function probeValueOf(v: ProbeValues, index: number): WrittenValue {
  return index % v.hashEvery === v.hashEvery - 1
    ? { type: 'hash', bytes: probeHashBytes(v) }
    : { type: 'string', bytes: v.stringBytes };
}

/** A probe's value as the bench wrote it: its type and payload bytes (worker/expiry/expired-value.ts). */
export interface WrittenValue {
  readonly type: ExpiredValueType;
  readonly bytes: number;
}

/** What the probes' `key.processed` lines said of their values (issue 14: value capture). */
export interface ValueFigures {
  /** Probes whose line arrived. */
  readonly delivered: number;
  /** Lines with a value of the type and payload bytes written. */
  readonly captured: number;
  /** Lines with a value of another type or size than written (0 expected). */
  readonly mismatched: number;
  /** Lines without a value, by their `valueMissing` reason (`none`: the line gave no reason either). */
  readonly missing: Readonly<Record<string, number>>;
}

/** The value figures of `lines` (key -> its first line), against what was written for each key. */
export function valueFigures(
  lines: ReadonlyMap<string, Pick<ProcessedRecord, 'valueType' | 'valueBytes' | 'valueMissing'>>,
  writtenOf: (key: string) => WrittenValue,
): ValueFigures {
  let captured = 0;
  let mismatched = 0;
  const missing: Record<string, number> = {};
  for (const [key, line] of lines) {
    if (line.valueType !== undefined) {
      const written = writtenOf(key);
      if (line.valueType === written.type && line.valueBytes === written.bytes) captured++;
      else mismatched++;
    } else {
      const reason = line.valueMissing ?? 'none';
      missing[reason] = (missing[reason] ?? 0) + 1;
    }
  }
  return { delivered: lines.size, captured, mismatched, missing };
}

/** captured / delivered (NaN when nothing was delivered). */
export function capturedShare(v: ValueFigures): number {
  return v.delivered > 0 ? v.captured / v.delivered : Number.NaN;
}

/** Native Redis: no worker; the bare subscribers' receipt of the probes' `expired`. */
export interface OnTimeNativeRun {
  readonly backgroundKeys: number;
  readonly bare: LagFigures;
  readonly waitS: number;
}

export type OnTimeVariant = 'scan' | 'event';

/**
 * cold: the worker's first burst of probes (its code runs for the first time: V8 compiles it while
 * the burst waits); warm: a burst after `warmUpEvents` more, as a worker that has run for a while.
 */
export type OnTimeBurst = 'cold' | 'warm';

/**
 * Where the CPU went during one burst, from shortly before its deadline to its last line: the machine
 * has 2 cores for the worker, the bench that measures it and the cluster (bench/cpu-usage.ts).
 */
export interface BurstCpu {
  readonly windowMs: number;
  /** The worker's main thread (JavaScript) on a CPU. */
  readonly workerMainRunMs: number;
  /** The worker's main thread runnable but waiting for a CPU (another process or thread had it). */
  readonly workerMainWaitMs: number;
  /** The worker's other threads on a CPU: V8's GC and compiler threads, libuv's pool. */
  readonly workerOtherThreadsRunMs: number;
  /** The bench process: its bare subscribers, decoding each of the worker's lines, its probes. */
  readonly benchMs: number;
  /** The 3 primaries (INFO cpu); their replicas are not counted. */
  readonly primariesMs: number;
}

export function burstCpuText(c: BurstCpu): string {
  return (
    `CPU over ${msText(c.windowMs)}: worker main ${msText(c.workerMainRunMs)} (waited ${msText(c.workerMainWaitMs)} for a CPU), ` +
    `its other threads ${msText(c.workerOtherThreadsRunMs)}, bench ${msText(c.benchMs)}, primaries ${msText(c.primariesMs)}`
  );
}

/** One worker (PRECISE_EXPIRY=true) among `backgroundKeys` volatile keys. */
export interface OnTimeRun {
  readonly backgroundKeys: number;
  /** scan: the background was loaded before the worker started; event: after it was ready. */
  readonly variant: OnTimeVariant;
  readonly burst: OnTimeBurst;
  /** warm: the events the worker handled between its cold burst and this one. */
  readonly warmUpEvents?: number;
  /**
   * warm: the handler p99 of each burst between the cold one and this one, in order (bursts measured
   * like this one, not counted for the goal): the spread a single warm burst is drawn from.
   */
  readonly warmUpP99Ms?: readonly number[];
  /** Deadline -> the `key.processed` line's `time` (ms resolution). */
  readonly handler: LagFigures;
  /** The line's own `lagMs` (the worker's clock, deadline in the primary's clock). */
  readonly workerLag: LagFigures;
  /** Deadline -> the worker's receipt of the `expired` event (line `time` - its `latencyMs`). */
  readonly workerReceipt?: LagFigures | undefined;
  /** The bare subscribers' receipt of the same probes' `expired` (the touch's effect). */
  readonly bare: LagFigures;
  /** scan: worker spawn -> round 1 of every primary; event: end of the load -> lookups caught up. */
  readonly readyMs: number | undefined;
  /** The index size when the probes were written (scan: the last round-1 line; event: lookups made). */
  readonly trackedAtProbes: number | undefined;
  readonly duplicates: number;
  /** The probes' values as their lines carried them (CAPTURE_VALUES default: on). */
  readonly values: ValueFigures;
  /** Value reads the primaries ran from the probes' writing to their last line (`cmdstat_type`). */
  readonly valueReads: number;
  /** Of those, the reads that found the key with its TTL (the script's STRLEN / HLEN.. calls). */
  readonly valueReadsFound: number;
  /** Where the CPU went during the burst; absent without /proc. */
  readonly cpu?: BurstCpu;
}

/** One burst of a worker under a CPU quota (no other volatile keys). */
export interface OnTimeQuotaRun {
  readonly vcpu: number;
  readonly burst: OnTimeBurst;
  readonly handler: LagFigures;
  readonly cpu?: BurstCpu;
}

/** Heap and RSS of a worker at 0 and at `trackedKeys` tracked keys (event path, after a full GC). */
export interface OnTimeMemory {
  readonly trackedKeys: number;
  /** heapUsed + external (typed arrays live outside the V8 heap), bytes. */
  readonly heapBeforeBytes: number | undefined;
  readonly heapAfterBytes: number | undefined;
  readonly rssBeforeKiB: number | undefined;
  readonly rssAfterKiB: number | undefined;
}

export function bytesPerKey(
  before: number | undefined,
  after: number | undefined,
  keys: number,
): number | undefined {
  if (before === undefined || after === undefined || keys <= 0) return undefined;
  return (after - before) / keys;
}

export interface OnTimeCrash {
  readonly workers: number;
  readonly backgroundKeys: number;
  readonly spreadMs: number;
  /** SIGKILL -> the new leader's `leader.acquired`. */
  readonly gapMs: number | undefined;
  readonly handler: LagFigures;
  readonly bare: LagFigures;
  readonly duplicates: number;
  readonly values: ValueFigures;
  readonly valueReads: number;
  readonly valueReadsFound: number;
}

/** One reading of the held-values run: the worker's memory and the value reads made so far. */
export interface HeldReading {
  /** heapUsed + external after two full GCs, bytes. */
  readonly heapBytes: number | undefined;
  readonly rssKiB: number | undefined;
  /** How long the reading's two GCs blocked the worker's loop. */
  readonly gcMs: number | undefined;
  /** Value reads made by then, all primaries (`cmdstat_type`: only the value-read script calls TYPE). */
  readonly valueReads: number;
  /** When the reading was asked, ms after the shared deadline (negative: before it). */
  readonly atFromDeadlineMs: number;
}

/** One worker, `keys` keys with values of `valueBytes` sharing one deadline (issue 14: the memory budget). */
export interface OnTimeHeldValues {
  readonly keys: number;
  readonly valueBytes: number;
  /** The deadline, ms after the first PEXPIREAT of the batch. */
  readonly leadMs: number;
  /** The lookups caught up this long before the deadline (undefined: not within the wait). */
  readonly caughtUpBeforeDeadlineMs: number | undefined;
  /** The worker ready, the keys written without a TTL (nothing tracked). */
  readonly empty: HeldReading;
  /** Every key tracked (the lookups caught up), before the batch's read-ahead. */
  readonly tracked: HeldReading;
  /** Just before the deadline: the values read so far held. */
  readonly held: HeldReading;
  /** Right after the last handled event: the values handed out. */
  readonly after: HeldReading;
  /** HELD_SETTLE_MS later (after the held values' sweep). */
  readonly settled: HeldReading;
  /** Deadline -> the keys' `key.processed` lines (max: the last handled event). */
  readonly handler: LagFigures;
  readonly values: ValueFigures;
}

/** Heap bytes per value held between the `tracked` and the `held` readings. */
export function heapPerHeldValue(h: OnTimeHeldValues): number | undefined {
  return bytesPerKey(h.tracked.heapBytes, h.held.heapBytes, h.held.valueReads - h.tracked.valueReads);
}

/** One primary's figures during a cost run. */
export interface PrimaryCost {
  readonly port: number;
  readonly pexpiretimeCalls: number;
  readonly scanCalls: number;
  readonly setCalls: number;
  /** EVALSHA_RO calls: the key-deadlines script (lookups, touches) and the value-read script. */
  readonly evalshaRoCalls: number;
  /** Microseconds spent in EVALSHA_RO calls (`cmdstat_evalsha_ro` usec). */
  readonly evalshaRoUsec: number;
  /** Value reads (`cmdstat_type`: only the value-read script calls TYPE). */
  readonly valueReads: number;
  /** used_cpu_sys + used_cpu_user delta, seconds. */
  readonly cpuS: number | undefined;
}

export interface OnTimeCostVariant {
  readonly tracking: boolean;
  /** CAPTURE_VALUES of the worker (capture takes effect with tracking only). */
  readonly capture: boolean;
  readonly notify: string;
  readonly writesPerS: number;
  readonly written: number;
  readonly durationS: number;
  readonly primaries: readonly PrimaryCost[];
  readonly workerCpuS: number | undefined;
}

export interface OnTimeReport {
  readonly probes: number;
  readonly probeValues: ProbeValues;
  readonly scanKeysPerS: number;
  readonly nativeWaitS: number;
  readonly native: readonly OnTimeNativeRun[];
  readonly runs: readonly OnTimeRun[];
  /** One worker under each CPU quota, or why there were none (no writable cgroup). */
  readonly quotas?:
    | { readonly runs: readonly OnTimeQuotaRun[] }
    | { readonly unavailable: string }
    | undefined;
  readonly memory: readonly OnTimeMemory[];
  readonly crash?: OnTimeCrash | undefined;
  readonly held?: OnTimeHeldValues | undefined;
  readonly cost: readonly OnTimeCostVariant[];
}

/** `calls` of `cmdstat_<command>` in INFO commandstats text (0 when the command was not called). */
export function commandCalls(info: string, command: string): number {
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

/** `usec` of `cmdstat_<command>` in INFO commandstats text (0 when the command was not called). */
export function commandUsec(info: string, command: string): number {
  const match = new RegExp(`^cmdstat_${command}:calls=\\d+,usec=(\\d+)`, 'm').exec(info);
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

/** used_cpu_sys + used_cpu_user of INFO cpu text, seconds; undefined when either is missing. */
export function usedCpuSeconds(info: string): number | undefined {
  const sys = /^used_cpu_sys:([\d.]+)/m.exec(info)?.[1];
  const user = /^used_cpu_user:([\d.]+)/m.exec(info)?.[1];
  return sys === undefined || user === undefined ? undefined : Number(sys) + Number(user);
}

const msText = (value: number | undefined): string => {
  if (value === undefined || Number.isNaN(value)) return '-';
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(value < 100 ? 1 : 0)} ms`;
};

function lagCells(f: LagFigures): string[] {
  return [`${int(f.delivered)} / ${int(f.expected)}`, msText(f.p50Ms), msText(f.p99Ms), msText(f.maxMs)];
}

const bytesText = (value: number | undefined): string =>
  value === undefined ? '-' : `${value.toFixed(1)} B`;

function sum(values: readonly (number | undefined)[]): number | undefined {
  let total = 0;
  for (const v of values) {
    if (v === undefined) return undefined;
    total += v;
  }
  return total;
}

/** The warm-up bursts' p99: min / median / max ('-' for none). */
function warmUpSpreadText(p99s: readonly number[] | undefined): string {
  const s = summarize(p99s ?? []);
  return s === undefined ? '-' : `${msText(s.min)} / ${msText(s.p50)} / ${msText(s.max)}`;
}

function burstText(run: OnTimeRun): string {
  return run.burst === 'cold'
    ? 'first burst (cold)'
    : `warm (after ${run.warmUpEvents === undefined ? 'more' : int(run.warmUpEvents)} events)`;
}

export function onTimeLines(r: OnTimeReport): string[] {
  const rows: string[][] = [];
  const sizes = [
    ...new Set([...r.native.map((n) => n.backgroundKeys), ...r.runs.map((x) => x.backgroundKeys)]),
  ];
  for (const size of sizes.sort((a, b) => a - b)) {
    const native = r.native.find((n) => n.backgroundKeys === size);
    if (native)
      rows.push([
        int(size),
        `native Redis (no worker; within ${native.waitS} s)`,
        ...lagCells(native.bare),
        '-',
        '-',
        '-',
        '-',
        '-',
      ]);
    for (const run of r.runs.filter((x) => x.backgroundKeys === size)) {
      rows.push([
        int(size),
        `${run.variant === 'scan' ? 'on-time, background loaded before the start (scan)' : 'on-time, background loaded after (events)'}, ${burstText(run)}`,
        ...lagCells(run.handler),
        msText(run.workerLag.p99Ms),
        msText(run.workerReceipt?.p99Ms),
        msText(run.bare.p99Ms),
        warmUpSpreadText(run.warmUpP99Ms),
        meetsOnTimeGoal(run.handler) ? 'met' : 'NOT met',
      ]);
    }
  }
  const met = r.runs.length > 0 && r.runs.every((run) => meetsOnTimeGoal(run.handler));
  const warmUpEvents = r.runs.find((run) => run.warmUpEvents !== undefined)?.warmUpEvents;
  const warmUpText =
    warmUpEvents === undefined
      ? 'more bursts'
      : `${int(warmUpEvents / r.probes)} more bursts (their p99 in the table as a spread, not counted for the goal)`;
  const lines = [
    `## On-time expiry: ${int(r.probes)} probes sharing one deadline, beside native Redis`,
    '',
    `Per size, the cluster holds that many other volatile keys (\`bench:ontime:bg:<n>\`, 1 h TTL, loaded with ` +
      `pipelines, spread over the 3 primaries by their slots), then ${int(r.probes)} probe keys are written with ` +
      `one shared deadline, 3 s ahead, and a value (\`SET k <${int(r.probeValues.stringBytes)} bytes> PXAT <deadline>\`; ` +
      `every ${ordinal(r.probeValues.hashEvery)} a hash of ${r.probeValues.hashFields} fields, \`HSET\` then \`PEXPIREAT\`). Native: no worker, the bare subscribers' ` +
      `receipt of each probe's \`expired\` (waited for at most ${r.nativeWaitS} s). On-time: one worker ` +
      '(PRECISE_EXPIRY=true, HANDLER=log, it leads alone), `EXPIRY_SCAN_KEYS_PER_S` ' +
      `${int(r.scanKeysPerS)}; lag = the probe's deadline to its \`key.processed\` line's \`time\` (ms ` +
      "resolution; the bench's clock is the worker's). Scan: the background was loaded before the worker " +
      'started; the probes are written once its first scan pass over every primary is logged ' +
      '(`expiry.scan_completed` round 1, the readiness signal). Events: the worker was ready on an empty ' +
      "keyspace, then the background was loaded; the probes are written once the primaries' " +
      '`INFO commandstats` count one PEXPIRETIME per background key (the lookups caught up). The worker runs ' +
      'as it ships, the bundle (`npm run build:worker`, dist/worker/main.mjs). Each worker takes a first burst ' +
      "(cold: the worker's code runs for the first time and V8 compiles it while the burst waits: what a " +
      `deploy or a new leader sees once) and, after ${warmUpText}, a warm one (what a worker that ` +
      'has run for a while sees: by then V8 has optimized the path; it compiled 69-78 functions during a ' +
      "worker's 1st burst, 25-34 during its 3rd, 13-17 during its 6th, 5-7 during its 7th, counted by hand " +
      'with --trace-opt); ' +
      'the goal counts both.',
    '',
    ...table(
      [
        'other volatile keys',
        'set-up',
        'delivered',
        'p50',
        'p99',
        'max',
        "worker's own lagMs p99",
        "worker's receipt p99",
        'bare `expired` receipt p99',
        'p99 of the bursts between (min / median / max)',
        `goal (p99 <= ${ON_TIME_GOAL_P99_MS} ms, all)`,
      ],
      rows,
    ),
    '',
    `Goal (issue 13): every probe delivered with p99 <= ${ON_TIME_GOAL_P99_MS} ms at every size, both paths: **${met ? 'met' : 'NOT met'}**.`,
    '',
  ];
  lines.push(...cpuLines(r));
  lines.push(...quotaLines(r));
  lines.push(...valueLines(r));
  const ready = r.runs
    .filter((run) => run.burst === 'cold')
    .map(
      (run) =>
        `${int(run.backgroundKeys)} ${run.variant}: ${msText(run.readyMs)} (index ${run.trackedAtProbes === undefined ? '-' : int(run.trackedAtProbes)})`,
    );
  if (ready.length > 0)
    lines.push(
      `Readiness (scan: worker spawn to round 1 of every primary; events: end of the load to the lookups caught up): ${ready.join('; ')}. ` +
        `A pass over K keys takes about K / EXPIRY_SCAN_KEYS_PER_S seconds for the whole worker: at the default ` +
        `5,000/s, 100,000 keys take ~20 s and 1,000,000 keys ~200 s, so a key set before the start with a shorter ` +
        `TTL than that expires natively (late) if the scan has not reached it; the bench raises the pace to ` +
        `${int(r.scanKeysPerS)}/s to keep its runs short.`,
      '',
    );
  const c = r.crash;
  if (c) {
    lines.push(
      `Leader SIGKILL: ${c.workers} workers, ${int(c.backgroundKeys)} background keys, ${int(c.handler.expected)} probes with ` +
        `deadlines spread evenly over the ${c.spreadMs / 1000} s after the kill (the followers' 500 ms backstop touches make ` +
        'them expire, the new leader replays them from its window).',
      '',
      ...table(
        ['measure', 'delivered', 'p50', 'p99', 'max'],
        [
          ['deadline -> handler (any worker)', ...lagCells(c.handler)],
          ['deadline -> bare `expired` receipt', ...lagCells(c.bare)],
        ],
      ),
      '',
      `Without a leader (SIGKILL -> the new leader's \`leader.acquired\`): ${msText(c.gapMs)}; lost: ` +
        `${int(c.handler.expected - c.handler.delivered)}; handled twice: ${int(c.duplicates)}.`,
      '',
    );
  }
  if (r.memory.length > 0) {
    lines.push(
      'Memory per tracked key, from the worker (event path; `process.memoryUsage()` after two full GCs, read by a ' +
        'preloaded probe on SIGUSR2, bench/heap-probe.mjs; heap = heapUsed + external, the typed arrays live ' +
        'outside the V8 heap), keys of ~22 bytes:',
      '',
      ...table(
        ['tracked keys', 'heap at 0 -> at N', 'heap per key', 'RSS at 0 -> at N', 'RSS per key'],
        r.memory.map((m) => [
          int(m.trackedKeys),
          `${mib(m.heapBeforeBytes)} -> ${mib(m.heapAfterBytes)}`,
          bytesText(bytesPerKey(m.heapBeforeBytes, m.heapAfterBytes, m.trackedKeys)),
          `${mib(kib(m.rssBeforeKiB))} -> ${mib(kib(m.rssAfterKiB))}`,
          bytesText(bytesPerKey(kib(m.rssBeforeKiB), kib(m.rssAfterKiB), m.trackedKeys)),
        ]),
      ),
      '',
    );
  }
  if (r.held) lines.push(...heldLines(r.held));
  if (r.cost.length > 0) {
    const rows = r.cost.map((v) => {
      const perPrimary = v.primaries.map((p) =>
        p.cpuS === undefined ? '-' : `${((p.cpuS / v.durationS) * 100).toFixed(1)}%`,
      );
      return [
        costSetUp(v),
        v.notify,
        `${int(v.written)} (${int(v.written / v.durationS)}/s)`,
        v.primaries.map((p) => int(p.pexpiretimeCalls / v.durationS)).join(' / '),
        v.primaries.map((p) => int(p.evalshaRoCalls / v.durationS)).join(' / '),
        v.primaries.map((p) => int(p.valueReads / v.durationS)).join(' / '),
        v.primaries.map((p) => int(p.scanCalls)).join(' / '),
        perPrimary.join(' / '),
        cpuPerThousand(v),
        v.workerCpuS === undefined ? '-' : `${((v.workerCpuS / v.durationS) * 100).toFixed(0)}%`,
      ];
    });
    const first = r.cost[0];
    lines.push(
      `Cost on the cache: one worker, ${int(first?.writesPerS ?? 0)} TTL writes a second (\`SET k v PX 1000\`, so as many ` +
        `expiries) for ${(first?.durationS ?? 0).toFixed(1)} s, per primary (\`INFO commandstats\` after \`CONFIG RESETSTAT\`, ` +
        '`INFO cpu` used_cpu_sys + used_cpu_user delta, as a share of one core; a primary also runs its replica link). ' +
        'The worker runs its lookups and touches (the key-deadlines script) and its value reads (the value-read ' +
        'script) as EVALSHA_RO; PEXPIRETIME counts the calls inside both scripts; value reads = `cmdstat_type` ' +
        '(only the value-read script calls TYPE). Capture: CAPTURE_VALUES (on by default) with PRECISE_EXPIRY=true; ' +
        'the keys are `SET k 1 PX 1000`, so each read is of a 1-byte string:',
      '',
      ...table(
        [
          'set-up',
          'notify-keyspace-events',
          'keys written',
          'PEXPIRETIME/s per primary',
          'EVALSHA_RO/s per primary',
          'value reads/s per primary',
          'SCAN calls per primary',
          'primary CPU per primary',
          'primary CPU per 1,000 expiries (all)',
          'worker CPU',
        ],
        rows,
      ),
      '',
    );
    const off = r.cost.find((v) => !v.tracking);
    // Tracking alone: without capture (a run of an older worker, before CAPTURE_VALUES, counts as one).
    const on = r.cost.find((v) => v.tracking && !v.capture);
    const capture = r.cost.find((v) => v.tracking && v.capture);
    const cpuOn = on ? cpuPerWrite(on) : undefined;
    const cpuOff = off ? cpuPerWrite(off) : undefined;
    if (on && cpuOn !== undefined && cpuOff !== undefined)
      lines.push(
        `Primary CPU per 1,000 TTL writes, all primaries: ${(cpuOff * 1e6).toFixed(1)} ms without tracking, ` +
          `${(cpuOn * 1e6).toFixed(1)} ms with (x${(cpuOn / cpuOff).toFixed(2)}); ` +
          `PEXPIRETIME per TTL write: ${(total(on, (p) => p.pexpiretimeCalls) / on.written).toFixed(2)} ` +
          '(one lookup per `expire` event, one touch per expiry).',
        '',
      );
    const cpuCapture = capture ? cpuPerWrite(capture) : undefined;
    if (capture && on && capture.written > 0 && on.written > 0) {
      const reads = total(capture, (p) => p.valueReads);
      const extraCalls =
        total(capture, (p) => p.evalshaRoCalls) / capture.written -
        total(on, (p) => p.evalshaRoCalls) / on.written;
      const usecPerCall = (v: OnTimeCostVariant): number => {
        const calls = total(v, (p) => p.evalshaRoCalls);
        return calls > 0 ? total(v, (p) => p.evalshaRoUsec) / calls : Number.NaN;
      };
      // The time in EVALSHA_RO of the capture run beyond what the lookups and touches took without it.
      const readUsec =
        reads > 0
          ? (total(capture, (p) => p.evalshaRoUsec) -
              (total(on, (p) => p.evalshaRoUsec) / on.written) * capture.written) /
            reads
          : Number.NaN;
      lines.push(
        `Value capture (tracking with CAPTURE_VALUES=true against tracking with CAPTURE_VALUES=false): ` +
          `${(reads / capture.written).toFixed(2)} value reads per TTL write, ` +
          `${extraCalls >= 0 ? '+' : ''}${extraCalls.toFixed(2)} EVALSHA_RO per TTL write; time inside EVALSHA_RO ` +
          `(\`cmdstat_evalsha_ro\` usec) ${usecPerCall(on).toFixed(1)} µs per call without capture, ` +
          `${usecPerCall(capture).toFixed(1)} µs with, about ${Number.isNaN(readUsec) ? '-' : readUsec.toFixed(1)} µs per read; ` +
          'primary CPU per 1,000 TTL writes, all primaries: ' +
          `${cpuOn === undefined ? '-' : `${(cpuOn * 1e6).toFixed(1)} ms`} without capture, ` +
          `${cpuCapture === undefined ? '-' : `${(cpuCapture * 1e6).toFixed(1)} ms`} with` +
          (cpuOn !== undefined && cpuCapture !== undefined ? ` (x${(cpuCapture / cpuOn).toFixed(2)})` : '') +
          `; worker CPU ${workerCpuText(on)} without, ${workerCpuText(capture)} with.`,
        '',
      );
    }
  }
  return lines;
}

const ordinal = (n: number): string => {
  const suffix =
    n % 10 === 1 && n % 100 !== 11
      ? 'st'
      : n % 10 === 2 && n % 100 !== 12
        ? 'nd'
        : n % 10 === 3 && n % 100 !== 13
          ? 'rd'
          : 'th';
  return `${n}${suffix}`;
};

function costSetUp(v: OnTimeCostVariant): string {
  if (!v.tracking) return 'no tracking (PRECISE_EXPIRY=false)';
  return v.capture
    ? 'tracking and capture (CAPTURE_VALUES=true)'
    : 'tracking, no capture (CAPTURE_VALUES=false)';
}

const total = (v: OnTimeCostVariant, of: (p: PrimaryCost) => number): number =>
  v.primaries.reduce((t, p) => t + of(p), 0);

/** Primary CPU seconds per TTL write, all primaries (undefined without a CPU figure or writes). */
function cpuPerWrite(v: OnTimeCostVariant): number | undefined {
  const cpu = sum(v.primaries.map((p) => p.cpuS));
  return cpu === undefined || v.written <= 0 ? undefined : cpu / v.written;
}

function cpuPerThousand(v: OnTimeCostVariant): string {
  const perWrite = cpuPerWrite(v);
  return perWrite === undefined ? '-' : `${(perWrite * 1e6).toFixed(1)} ms`;
}

const workerCpuText = (v: OnTimeCostVariant): string =>
  v.workerCpuS === undefined ? '-' : `${((v.workerCpuS / v.durationS) * 100).toFixed(0)}%`;

/** `read-late 3, leader-changed 2`, most frequent first; '-' for none. */
export function missingText(missing: Readonly<Record<string, number>>): string {
  const entries = Object.entries(missing).filter(([, n]) => n > 0);
  if (entries.length === 0) return '-';
  return entries
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([reason, n]) => `${reason} ${int(n)}`)
    .join(', ');
}

/** Where the CPU went during each burst (BurstCpu): what the lag above is made of on 2 cores. */
function cpuLines(r: OnTimeReport): string[] {
  const rows = r.runs
    .filter((run) => run.cpu !== undefined)
    .map((run) => {
      const c = run.cpu as BurstCpu;
      return [
        int(run.backgroundKeys),
        `${run.variant === 'scan' ? 'scan' : 'events'}, ${run.burst}`,
        msText(c.windowMs),
        msText(c.workerMainRunMs),
        msText(c.workerMainWaitMs),
        msText(c.workerOtherThreadsRunMs),
        msText(c.benchMs),
        msText(c.primariesMs),
      ];
    });
  if (rows.length === 0) return [];
  return [
    'CPU during each burst, from 60 ms before its deadline to its last line (the window): the machine ' +
      "has 2 cores for the worker, the bench that measures it and the cluster. The worker's main thread " +
      "runs the JavaScript (on a CPU; and runnable but waiting for one, from /proc's schedstat); its other " +
      "threads are V8's GC and compiler threads; the bench receives the bare subscribers' events and " +
      "decodes each of the worker's lines; the primaries' figure is INFO cpu of the 3 (their replicas " +
      'are not counted).',
    '',
    ...table(
      [
        'other volatile keys',
        'burst',
        'window',
        'worker main thread on CPU',
        'main thread waiting for a CPU',
        "worker's other threads",
        'bench',
        'primaries',
      ],
      rows,
    ),
    '',
  ];
}

/** The quota runs: what a Fargate task of that size would give (docs/deploy.md, "Task size"). */
function quotaLines(r: OnTimeReport): string[] {
  const q = r.quotas;
  if (q === undefined) return [];
  const intro =
    `Under a CPU quota, as Fargate limits a task (a CFS quota on the worker's process, bench/cpu-quota.ts): one worker ` +
    `per quota, no other volatile keys, moved into its quota once ready, then its first burst and a warm one of ` +
    `${int(r.probes)} probes as above (the machine's other load beside it). Not part of the goal; it sizes the task ` +
    '(the CDK default is 1 vCPU, docs/deploy.md "Task size").';
  if ('unavailable' in q) return [intro, '', `Not measured: ${q.unavailable}.`, ''];
  const rows = q.runs.map((run) => [
    `${run.vcpu} vCPU`,
    run.burst === 'cold' ? 'first burst (cold)' : 'warm',
    ...lagCells(run.handler),
    msText(run.cpu?.workerMainRunMs),
    msText(run.cpu?.workerMainWaitMs),
    meetsOnTimeGoal(run.handler) ? 'yes' : 'no',
  ]);
  return [
    intro,
    '',
    ...table(
      [
        'quota',
        'burst',
        'delivered',
        'p50',
        'p99',
        'max',
        'worker main thread on CPU',
        'waiting for a CPU',
        `p99 <= ${ON_TIME_GOAL_P99_MS} ms`,
      ],
      rows,
    ),
    '',
  ];
}

function valueCells(v: ValueFigures, reads: number, found: number): string[] {
  return [
    int(v.delivered),
    `${int(reads)} (${int(found)})`,
    int(v.captured),
    pct(capturedShare(v), 2),
    int(v.mismatched),
    missingText(v.missing),
  ];
}

function valueLines(r: OnTimeReport): string[] {
  const rows: string[][] = [];
  for (const run of [...r.runs].sort((a, b) => a.backgroundKeys - b.backgroundKeys))
    rows.push([
      int(run.backgroundKeys),
      `${run.variant === 'scan' ? 'on-time (scan)' : 'on-time (events)'}, ${run.burst}`,
      ...valueCells(run.values, run.valueReads, run.valueReadsFound),
    ]);
  if (r.crash)
    rows.push([
      int(r.crash.backgroundKeys),
      `leader SIGKILL (${r.crash.workers} workers)`,
      ...valueCells(r.crash.values, r.crash.valueReads, r.crash.valueReadsFound),
    ]);
  if (rows.length === 0) return [];
  const v = r.probeValues;
  return [
    `Values (issue 14; CAPTURE_VALUES on, the default; EXPIRY_READ_AHEAD_MS 20, the default): the probes above carry ` +
      `values, strings of ${int(v.stringBytes)} bytes and every ${ordinal(v.hashEvery)} a hash of ${v.hashFields} fields ` +
      `(${int(probeHashBytes(v))} payload bytes). Captured: the probe's \`key.processed\` line carried \`valueType\` and ` +
      '`valueBytes` equal to what was written (the line never carries the contents); other type or size: a value ' +
      "that is not the probe's (0 expected); without a value: the line's `valueMissing` reasons. Leader SIGKILL: " +
      'only the leader reads values, so the probes whose read-ahead fell in the gap arrive without theirs. ' +
      "Value reads run: the primaries' `cmdstat_type` from the probes' writing to their last line (only the " +
      'value-read script calls TYPE); found the key: those that found it alive with its TTL (the script then sizes ' +
      'it with STRLEN or HLEN, which nothing else calls). A `read-late` is a read not sent because its touch ' +
      'was already due, a read that found the key expired (reads run but not found), or a reply that came after ' +
      'the handler call had started (found but not captured).',
    '',
    ...table(
      [
        'other volatile keys',
        'set-up',
        'lines',
        'value reads run (found the key)',
        'with their value',
        'captured / lines',
        'other type or size',
        'without a value (reasons)',
      ],
      rows,
    ),
    '',
  ];
}

const signedMs = (value: number): string => (value < 0 ? `-${msText(-value)}` : `+${msText(value)}`);

function heldLines(h: OnTimeHeldValues): string[] {
  const reading = (name: string, x: HeldReading): string[] => [
    name,
    signedMs(x.atFromDeadlineMs),
    int(x.valueReads),
    mib(x.heapBytes),
    mib(kib(x.rssKiB)),
    msText(x.gcMs),
  ];
  const perValue = heapPerHeldValue(h);
  const rssPerValue = bytesPerKey(
    kib(h.tracked.rssKiB),
    kib(h.held.rssKiB),
    h.held.valueReads - h.tracked.valueReads,
  );
  return [
    `## Held values: ${int(h.keys)} keys sharing one deadline, one worker`,
    '',
    `One worker (PRECISE_EXPIRY=true, CAPTURE_VALUES=true, HANDLER=log, it leads alone; VALUE_BUDGET_BYTES default), ` +
      `${int(h.keys)} keys with strings of ${int(h.valueBytes)} bytes, written without a TTL, then given one shared ` +
      `deadline (\`PEXPIREAT\`, ${(h.leadMs / 1000).toFixed(0)} s after the first): the leader tracks them (one lookup per ` +
      `\`expire\` event) and reads the batch ahead of its deadline at about ${VALUE_CAPTURE_DEFAULTS.readsPerMs} reads/ms, the last read ${VALUE_CAPTURE_DEFAULTS.expiryReadAheadMs} ms ` +
      `before it, the first up to ${VALUE_CAPTURE_DEFAULTS.maxLeadMs / 1000} s before (VALUE_CAPTURE_DEFAULTS readsPerMs, maxLeadMs), and holds each value until ` +
      "its key's `expired` event is handled. Memory: `process.memoryUsage()` after two full GCs (bench/heap-probe.mjs, " +
      "SIGUSR2; heap = heapUsed + external) and the worker's VmRSS; value reads so far: the primaries' `cmdstat_type` " +
      "(only the value-read script calls TYPE). The reading just before the deadline is asked after the batch's " +
      "last reads were due: its GCs block the worker's loop, so its touches, and the drain, wait that long.",
    '',
    ...table(
      ['reading', 'asked at (from the deadline)', 'value reads so far', 'heap', 'RSS', "the reading's GCs"],
      [
        reading('worker ready, keys without a TTL', h.empty),
        reading('every key tracked (lookups caught up)', h.tracked),
        reading('just before the deadline (values held)', h.held),
        reading('right after the last handled event', h.after),
        reading("the same, after the held values' sweep", h.settled),
      ],
    ),
    '',
    `Heap per held value (tracked -> just before the deadline, per value read in between): ${bytesText(perValue)} ` +
      `(payload ${int(h.valueBytes)} B), RSS ${bytesText(rssPerValue)}. Captured: ${int(h.values.captured)} of ` +
      `${int(h.values.delivered)} events handled (${pct(capturedShare(h.values), 2)}; other type or size ` +
      `${int(h.values.mismatched)}; without a value: ${missingText(h.values.missing)}). Deadline -> handled: p50 ` +
      `${msText(h.handler.p50Ms)}, p99 ${msText(h.handler.p99Ms)}, the last handled event ${msText(h.handler.maxMs)} ` +
      `(${int(h.handler.delivered)} of ${int(h.handler.expected)} handled). The lookups caught up ` +
      `${h.caughtUpBeforeDeadlineMs === undefined ? '(not within the wait)' : `${msText(h.caughtUpBeforeDeadlineMs)} before the deadline`}.`,
    '',
  ];
}

const kib = (value: number | undefined): number | undefined =>
  value === undefined ? undefined : value * 1024;
const mib = (bytes: number | undefined): string =>
  bytes === undefined ? '-' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export function onTimeConsole(r: OnTimeReport): [string, string][] {
  const rows: [string, string][] = [];
  const text = (f: LagFigures) =>
    `${int(f.delivered)}/${int(f.expected)}, p50 ${msText(f.p50Ms)}, p99 ${msText(f.p99Ms)}, max ${msText(f.maxMs)}`;
  for (const n of r.native) rows.push([`on-time ${int(n.backgroundKeys)} keys: native`, text(n.bare)]);
  for (const run of r.runs)
    rows.push([
      `on-time ${int(run.backgroundKeys)} keys: ${run.variant}, ${run.burst}`,
      `${text(run.handler)} (${meetsOnTimeGoal(run.handler) ? 'met' : 'NOT met'})`,
    ]);
  if (r.quotas && 'runs' in r.quotas)
    for (const run of r.quotas.runs)
      rows.push([`on-time under ${run.vcpu} vCPU: ${run.burst}`, text(run.handler)]);
  if (r.crash)
    rows.push(['on-time leader SIGKILL', `${text(r.crash.handler)}, gap ${msText(r.crash.gapMs)}`]);
  for (const m of r.memory)
    rows.push([
      `on-time memory at ${int(m.trackedKeys)} keys`,
      `heap ${bytesText(bytesPerKey(m.heapBeforeBytes, m.heapAfterBytes, m.trackedKeys))}/key, RSS ${bytesText(bytesPerKey(kib(m.rssBeforeKiB), kib(m.rssAfterKiB), m.trackedKeys))}/key`,
    ]);
  for (const run of r.runs)
    rows.push([
      `on-time values ${int(run.backgroundKeys)} keys: ${run.variant}, ${run.burst}`,
      `captured ${int(run.values.captured)}/${int(run.values.delivered)} (${pct(capturedShare(run.values), 2)}), without: ${missingText(run.values.missing)}`,
    ]);
  if (r.held) {
    const h = r.held;
    rows.push([
      `on-time held values (${int(h.keys)} keys)`,
      `heap ${bytesText(heapPerHeldValue(h))}/value, captured ${pct(capturedShare(h.values), 2)}, last handled ${msText(h.handler.maxMs)} after the deadline`,
    ]);
  }
  for (const v of r.cost)
    rows.push([
      `on-time cost (${v.tracking ? (v.capture ? 'tracking, capture' : 'tracking, no capture') : 'no tracking'})`,
      `PEXPIRETIME/s ${v.primaries.map((p) => int(p.pexpiretimeCalls / v.durationS)).join('/')}, EVALSHA_RO/s ${v.primaries.map((p) => int(p.evalshaRoCalls / v.durationS)).join('/')}, primary CPU s ${v.primaries.map((p) => (p.cpuS === undefined ? '-' : p.cpuS.toFixed(2))).join('/')}, ${cpuPerThousand(v)} per 1,000 expiries`,
    ]);
  return rows;
}
