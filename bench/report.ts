import type { Summary } from '../local/runner/statistics.ts';
import type { HandoverSummary } from './analysis.ts';
import { type BenchSettings, ON_TIME_FULL_SIZE, SCENARIOS } from './bench-options.ts';
import type { BurstVariant } from './burst.ts';
import { burstConsole, burstLines } from './burst-report.ts';
import {
  type BenchChartName,
  benchChartSpecs,
  chartLinkFromReport,
  chartsFolderFromReport,
} from './chart-specs.ts';
import type { FanInReport } from './fan-in.ts';
import type { CostVariant, CrashLossRate, ResourcesVariant, ThreeWorkersReport } from './guarantees.ts';
import {
  costLines,
  crashLossLines,
  guaranteesConsole,
  resourcesLines,
  threeWorkersLines,
} from './guarantees-report.ts';
import type { HandoverReport } from './hand-over.ts';
import type { MachineInfo } from './machine-info.ts';
import { int, ms, pct, table } from './markdown.ts';
import type { RateVariantReport } from './max-rate.ts';
import { type OnTimeReport, onTimeConsole, onTimeLines } from './on-time-report.ts';

/** The benchmark report: a Markdown document (docs/benchmarks.md) and the console table. Pure. */

export interface BenchResults {
  readonly settings: BenchSettings;
  readonly machine: MachineInfo;
  readonly durationS: number;
  readonly fanIn?: FanInReport | undefined;
  readonly maxRate?: readonly RateVariantReport[] | undefined;
  readonly handover?: { readonly ours?: HandoverReport; readonly seed?: HandoverReport } | undefined;
  /** Benchmarks that failed to run, with the reason. */
  readonly failures: readonly string[];
  /** 1-minute load average when the run started and when it ended (os.loadavg). */
  readonly loadAverage?: { readonly start: number; readonly end: number } | undefined;
  readonly crashLoss?: readonly CrashLossRate[] | undefined;
  readonly cost?: readonly CostVariant[] | undefined;
  readonly resources?: readonly ResourcesVariant[] | undefined;
  readonly threeWorkers?: ThreeWorkersReport | undefined;
  readonly burst?: readonly BurstVariant[] | undefined;
  readonly onTime?: OnTimeReport | undefined;
}

export { mergeReports } from './markdown.ts';

export const FAN_IN_GOALS = { minRatio: 0.999, maxAddedP99Ms: 5 } as const;

function summaryCells(s: Summary | undefined): [string, string, string] {
  return [ms(s?.p50, 2), ms(s?.p99, 2), ms(s?.max, 1)];
}

function fanInLines(f: FanInReport, cores: number): string[] {
  const r = f.result;
  const ratioOk = r.ratio >= FAN_IN_GOALS.minRatio;
  const latencyOk = r.addedMs !== undefined && r.addedMs.p99 <= FAN_IN_GOALS.maxAddedP99Ms;
  return [
    `## Fan-in: ${int(f.keysPerSecond)} expirations/s for ${f.durationS} s`,
    '',
    `${f.workers} worker (the leader alone on this machine: followers would compete with it for the same 2 cores; ` +
      `in production each worker is its own task), HANDLER=log, LOG_LEVEL=info. Keys \`bench:fan-in:<n>\`, TTL 1 s, ` +
      `spread over the primaries by their slots.`,
    '',
    ...table(
      ['measure', 'value', 'goal'],
      [
        [
          'keys set',
          `${int(f.generated)} (${int(f.generated / f.durationS)}/s; ${int(f.skipped)} skipped, ${int(f.failed)} failed)`,
          '',
        ],
        ['events received by the bare subscribers', int(r.expected), ''],
        [
          'of those, processed by the leader',
          `${int(r.matched)} (${pct(r.ratio, 3)})`,
          `>= 99.9% ${ratioOk ? '(met)' : '(NOT met)'}`,
        ],
        ['processed but not received by a bare subscriber', int(r.unexpected), '0'],
        ['events the worker received (its EMF EventsReceived)', int(f.workerReceived), ''],
        ["the worker's subscriptions dropped (subscription.down)", int(f.subscriptionDrops), '0'],
        ['duplicate handler calls', int(r.duplicates), '0'],
        [
          'added latency p50 / p99 / max (upper bound)',
          summaryCells(r.addedMs).join(' / '),
          `p99 <= 5 ms ${latencyOk ? '(met)' : '(NOT met)'}`,
        ],
        ["same, measured at the line's arrival in the bench", summaryCells(r.addedArrivalMs).join(' / '), ''],
        [
          "worker's own latencyMs (its receipt to handler done)",
          summaryCells(r.workerLatencyMs).join(' / '),
          '',
        ],
        ['bench event-loop delay p99 (uncertainty of its stamps)', ms(f.benchLoopDelayP99Ms, 2), ''],
        [
          'events per burst at the bare subscribers (< 2 ms apart) p50 / p99 / max',
          f.burstSize ? `${int(f.burstSize.p50)} / ${int(f.burstSize.p99)} / ${int(f.burstSize.max)}` : '-',
          '',
        ],
      ],
    ),
    '',
    `CPU while the keys were generated (share of one core; the machine has ${cores} cores): ` +
      (f.cpu.length > 0
        ? f.cpu.map((c) => `${c.name} ${c.percentOfOneCore.toFixed(0)}%`).join(', ')
        : 'not available') +
      '.',
    '',
    'Bursts: Redis expires keys in cycles (`hz` 10: ten a second), so the events of a primary arrive in ' +
      'bursts; a worker handles a burst one event after another, so the last event of a burst waits for the ' +
      "others: the added latency grows with the burst size times the worker's time per event.",
    '',
    'How the latency is measured: the bench process runs a bare subscriber on every node (SUBSCRIBE ' +
      '`__keyevent@0__:expired`, nothing else; only primaries publish) and stamps each event on receipt with ' +
      '`performance.timeOrigin + performance.now()` (wall clock, sub-millisecond). The worker writes a ' +
      '`key.processed` line after the handler call; its `time` field is the wall clock at millisecond ' +
      'resolution. Both run on this one machine, so they share the clock. Added latency = line `time` + 1 ms ' +
      '(its resolution, so the figure is an upper bound) - bare receipt, per key. The second row uses the time ' +
      "the bench read the line from the worker's stdout pipe instead (adds the pipe and the bench's own " +
      "scheduling). Both sides compete for the same 2 cores, so the bench's event-loop delay is shown too: a " +
      'late bare-receipt stamp makes the added latency look smaller by up to that much.',
    '',
  ];
}

function maxRateLines(variants: readonly RateVariantReport[], stepS: number): string[] {
  const lines = [
    '## Highest sustained rate (one leader)',
    '',
    `Steps of ${stepS} s at rising rates, a fresh single worker per step; a step is sustained when the leader ` +
      'processed >= 99% of the events the bare subscribers received in the same step and its added latency did ' +
      'not grow within the step (median of the last third no more than 20 ms and 2x above the first third) and ' +
      "it shed nothing; without per-key lines (`no-op`), the worker's own p99 must stay below 100 ms instead of the trend. Stepping stops at the first step that fails, or when the generator cannot produce the " +
      "rate (then the limit is the machine's, not the leader's).",
    '',
    '- `log`: HANDLER=log, LOG_LEVEL=info (the default): one `key.processed` JSON line per event, counted per key. ' +
      "The bench reads every line from the worker's stdout pipe; the worker writes its lines synchronously (core/logger.ts: a line is out of the process before its event can be settled), so a reader " +
      "that falls behind slows the worker down: the reader's speed is part of this figure (in ECS it is the " +
      "awslogs driver's).",
    '- `no-op`: HANDLER=bench/noop-handler.ts, LOG_LEVEL=warn: no per-event line, so this is the processor ' +
      "without its per-event log output; counted with the worker's EMF `EventsProcessed` (flushed at its " +
      'shutdown), latency from its `ProcessingLatencyMs` samples. (The `log` handler itself does nothing; ' +
      'the line is its output, so the two differ by that line.)',
    '',
  ];
  const summaryRows = variants.map((v) => [
    v.variant,
    v.sustainedPerSecond === undefined ? 'none of the steps' : `${int(v.sustainedPerSecond)}/s`,
    `${int(v.bareMaxPerSecond)}/s`,
    v.steps.at(-1)?.verdict === 'sustained'
      ? 'every step sustained (limit not reached)'
      : (v.steps.at(-1)?.reason ?? '-'),
  ]);
  lines.push(
    ...table(
      ['set-up', 'highest sustained', 'bare subscribers, highest received', 'stopped because'],
      summaryRows,
    ),
    '',
  );
  const stepRows = variants.flatMap((v) =>
    v.steps.map((s) => [
      v.variant,
      `${int(s.targetPerSecond)}/s`,
      `${int(s.generatedPerSecond)}/s`,
      `${int(s.bareReceivedPerSecond)}/s`,
      `${int(s.workerReceivedPerSecond)}/s`,
      `${int(s.processedPerSecond)}/s`,
      pct(s.ratio),
      ms(s.addedP99Ms),
      ms(s.workerP99Ms),
      int(s.subscriptionDrops),
      s.verdict,
    ]),
  );
  lines.push(
    ...table(
      [
        'set-up',
        'target',
        'keys set',
        'bare received',
        'worker received',
        'leader processed',
        'processed/received',
        'added p99',
        "worker's p99",
        'dropped subscriptions',
        'verdict',
      ],
      stepRows,
    ),
    '',
  );
  return lines;
}

function gapCells(s: HandoverSummary): string[] {
  return [
    `${ms(s.medianGapMs, 0)} / ${ms(s.worstGapMs, 0)}${s.failed > 0 ? ` (${s.failed} not measured: no new leader, or an overlap)` : ''}`,
    `${int(s.lostTotal)} of ${int(s.expectedTotal)} (median ${int(s.lostMedian)}, worst ${int(s.lostWorst)})`,
    int(s.duplicatesTotal),
  ];
}

function handoverLines(h: { ours?: HandoverReport; seed?: HandoverReport }): string[] {
  const any = h.ours ?? h.seed;
  if (!any) return [];
  const rows: string[][] = [];
  for (const report of [h.ours, h.seed]) {
    if (!report) continue;
    const name = report.algorithm === 'seed' ? 'seed (baseline)' : 'keyspace-leader';
    rows.push([name, 'graceful (SIGTERM)', `${report.graceful.runs}`, ...gapCells(report.graceful)]);
    rows.push([name, 'crash (SIGKILL)', `${report.crash.runs}`, ...gapCells(report.crash)]);
  }
  const lines = [
    '## Hand-over',
    '',
    `${any.workers} workers, ${any.keysPerSecond} keys/s (TTL 1 s); the leader is stopped, a replacement worker ` +
      'starts 1 s after it exits (as ECS would), and the next run waits until three workers are up again.',
    '',
    ...table(
      ['algorithm', 'stop', 'runs', 'without a leader: median / worst', 'events lost', 'duplicates'],
      rows,
    ),
    '',
    "- graceful: from the old leader's `leader.released` line to the new leader's `leader.acquired` line (their " +
      '`time` fields). From the SIGTERM itself (the old leader first drains its queue): median ' +
      [h.ours, h.seed]
        .filter((r): r is HandoverReport => r !== undefined)
        .map((r) => `${ms(r.gracefulSignalToAcquiredMedianMs, 0)} (${r.algorithm})`)
        .join(', ') +
      '.',
    "- crash: from the SIGKILL (stamped by the bench) to the new leader's `leader.acquired`." +
      [h.ours, h.seed]
        .filter((r): r is HandoverReport => r !== undefined && r.crash.runs > 0)
        .map((r) =>
          r.crash.wonByReplacement === 0
            ? ` ${r.algorithm}: a warm follower (running, subscribed, since before the kill) took over in every run.`
            : ` ${r.algorithm}: the new leader was the replacement worker (started after the kill, so it had received ` +
              `none of the events of the gap) in ${r.crash.wonByReplacement} of ${r.crash.runs} runs, which lost ` +
              `${int(r.crash.lostWhenWonByReplacement)} of the ${int(r.crash.lostTotal)} events lost; a warm follower won the others.`,
        )
        .join(''),
    '- events lost: keys the bare subscribers received between 1 s before the signal and 1 s after the new ' +
      "leader's acquisition that no worker processed (counted once their TTL had passed plus 2 s).",
    "- seed (baseline): bench/seed-baseline.ts, a TypeScript rendering of the seed's algorithm (Go, redsync " +
      'v4 defaults of Feb 2021): SET NX PX 8000 with 32 tries 500 ms apart per Lock(), a 5 s ticker, the leader ' +
      're-arms the lock with a plain EXPIRE 8 s every tick, a released lock on SIGTERM (deferred Unlock), ' +
      "processing only while `isLeader`. Its crash gap is bounded by the lock's remaining TTL (3-8 s, renewed " +
      'every 5 s) plus one 500 ms retry.',
    '',
  ];
  return lines;
}

function commandArgs(settings: BenchSettings): string {
  const args = [
    ...(settings.quick ? ['--quick'] : []),
    ...(settings.onTime?.backgroundSizes.includes(ON_TIME_FULL_SIZE) ? ['--full'] : []),
    ...(settings.scenarios.length < SCENARIOS.length ? ['--only', settings.scenarios.join(',')] : []),
  ];
  return args.length > 0 ? ` -- ${args.join(' ')}` : '';
}

/**
 * The image link of chart `name` when the results have data for it (bench/chart-specs.ts), else
 * nothing. The SVG is written by bench/bench-charts.ts next to the report, from the same results.
 */
function chartImageLines(results: BenchResults, name: BenchChartName): string[] {
  const chart = benchChartSpecs(results).find((c) => c.name === name);
  return chart ? [`![${chart.alt}](${chartLinkFromReport(results.settings.out, name)})`, ''] : [];
}

/** A section with its chart after its first table (or at its end when it has none). */
function withChart(section: readonly string[], chart: readonly string[]): string[] {
  if (chart.length === 0) return [...section];
  const tableStart = section.findIndex((line) => line.startsWith('|'));
  let at = section.length;
  if (tableStart >= 0) {
    at = tableStart;
    while (at < section.length && section[at]?.startsWith('|')) at++;
    // After the blank line that ends the table.
    if (at < section.length && section[at] === '') at++;
  }
  return [...section.slice(0, at), ...chart, ...section.slice(at)];
}

export function renderMarkdown(results: BenchResults): string {
  const m = results.machine;
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench${commandArgs(results.settings)}\` on ${m.date} ` +
      `(${results.settings.quick ? 'QUICK run: short steps and few runs, for trying it out; run `npm run bench` for the real figures' : 'full run'}; ` +
      `took ${Math.round(results.durationS)} s). Benchmarks print figures; they never fail on a slow machine. ` +
      'On a shared 2-core machine the figures move between runs (rates and tail latencies by up to 2-3x): ' +
      'compare several runs before drawing a conclusion.',
    '',
    `Charts: SVG files in \`${chartsFolderFromReport(results.settings.out)}\`, drawn by ` +
      'vega-lite and vega (bench/chart-specs.ts) from the results of the runs this page shows, saved beside them ' +
      '(`results.json`); `npm run bench:charts` draws them again from that file.',
    '',
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB memory, ${m.os}; Node ${m.node}; Redis ${m.redis}. ` +
      `Cluster: embedded, ${results.settings.primaries} primaries with ${results.settings.replicasPerPrimary} replica each, ` +
      'all on this machine together with the workers and the bench itself.' +
      (results.loadAverage
        ? ` Load average (1 min) at the start and the end of the run: ${results.loadAverage.start.toFixed(2)} / ` +
          `${results.loadAverage.end.toFixed(2)}; whatever else runs on the machine perturbs the figures.`
        : ''),
    '',
  ];
  const chart = (name: BenchChartName) => chartImageLines(results, name);
  if (results.fanIn) lines.push(...withChart(fanInLines(results.fanIn, m.cores), chart('latency')));
  if (results.maxRate)
    lines.push(
      ...withChart(maxRateLines(results.maxRate, results.settings.maxRate.stepS), chart('throughput')),
    );
  if (results.handover) lines.push(...withChart(handoverLines(results.handover), chart('hand-over')));
  if (results.crashLoss) lines.push(...withChart(crashLossLines(results.crashLoss), chart('crash-loss')));
  if (results.cost) lines.push(...costLines(results.cost));
  if (results.resources) lines.push(...resourcesLines(results.resources));
  if (results.threeWorkers)
    lines.push(...threeWorkersLines(results.threeWorkers, results.settings.threeWorkers.stepS));
  if (results.burst) lines.push(...burstLines(results.burst));
  if (results.onTime) lines.push(...withChart(onTimeLines(results.onTime), chart('on-time')));
  if (results.failures.length > 0) {
    lines.push('## Not measured', '', ...results.failures.map((f) => `- ${f}`), '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

/** The short table printed at the end of a run. */
export function renderConsole(results: BenchResults): string[] {
  const rows: [string, string][] = [];
  const f = results.fanIn;
  if (f) {
    rows.push([
      `fan-in ${int(f.keysPerSecond)}/s: processed / received`,
      `${int(f.result.matched)} / ${int(f.result.expected)} (${pct(f.result.ratio, 3)})`,
    ]);
    rows.push([
      'fan-in: added latency p50 / p99 (upper bound)',
      `${ms(f.result.addedMs?.p50, 2)} / ${ms(f.result.addedMs?.p99, 2)}`,
    ]);
  }
  for (const v of results.maxRate ?? []) {
    rows.push([
      `max rate (${v.variant})`,
      `${v.sustainedPerSecond === undefined ? 'none' : `${int(v.sustainedPerSecond)}/s`} (bare subscribers up to ${int(v.bareMaxPerSecond)}/s)`,
    ]);
  }
  for (const report of [results.handover?.ours, results.handover?.seed]) {
    if (!report) continue;
    for (const [kind, s] of [
      ['graceful', report.graceful],
      ['crash', report.crash],
    ] as const) {
      rows.push([
        `hand-over ${kind} (${report.algorithm})`,
        `median ${ms(s.medianGapMs, 0)}, worst ${ms(s.worstGapMs, 0)}, lost ${int(s.lostTotal)}/${int(s.expectedTotal)}`,
      ]);
    }
  }
  rows.push(...guaranteesConsole(results));
  if (results.burst) rows.push(...burstConsole(results.burst));
  if (results.onTime) rows.push(...onTimeConsole(results.onTime));
  for (const failure of results.failures) rows.push(['not measured', failure]);
  const width = Math.max(...rows.map((r) => r[0].length), 10);
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
}
