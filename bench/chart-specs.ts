import { basename } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { median } from '../local/runner/statistics.ts';
import { CRASH_LOSS_SHARE_OF_MAX, type HandoverSummary } from './analysis.ts';
import type { FanInReport } from './fan-in.ts';
import type { CrashLossRate, ThreeWorkersReport } from './guarantees.ts';
import type { HandoverReport } from './hand-over.ts';
import { int } from './markdown.ts';
import type { RateVariantReport } from './max-rate.ts';
import { type LagFigures, ON_TIME_GOAL_P99_MS, type OnTimeReport } from './on-time-report.ts';

/**
 * The charts of docs/benchmarks.md as vega-lite specs, built from a bench results object (the one
 * `npm run bench` produces, or the one it saved as JSON). Pure: the data are copied out of the results
 * into each spec's inline `values`; bench/chart-render.ts renders a spec to SVG.
 *
 * A chart is built only when the results hold its data, so a run of some sections leaves the other
 * sections' charts alone. Figures the bench could not measure (NaN in memory, null once saved as JSON)
 * are left out of the chart rather than drawn as 0.
 */

/** The part of the bench results (bench/report.ts BenchResults) the charts are drawn from. */
export interface BenchChartData {
  readonly fanIn?: FanInReport | undefined;
  readonly maxRate?: readonly RateVariantReport[] | undefined;
  readonly handover?: { readonly ours?: HandoverReport; readonly seed?: HandoverReport } | undefined;
  readonly crashLoss?: readonly CrashLossRate[] | undefined;
  readonly threeWorkers?: ThreeWorkersReport | undefined;
  readonly onTime?: OnTimeReport | undefined;
}

export type BenchChartName = 'hand-over' | 'crash-loss' | 'throughput' | 'latency' | 'on-time';

export interface BenchChart {
  /** File name without `.svg`; also the chart's anchor in the report. */
  readonly name: BenchChartName;
  /** Alternative text of the image link. */
  readonly alt: string;
  readonly spec: TopLevelSpec;
}

/** The algorithms as the report names them, in the order and colours every chart uses. */
export const ALGORITHM_LABELS = { 'keyspace-leader': 'keyspace-leader', seed: 'seed (baseline)' } as const;
const ALGORITHM_DOMAIN = [ALGORITHM_LABELS['keyspace-leader'], ALGORITHM_LABELS.seed];
const ALGORITHM_COLORS = ['#4c78a8', '#f58518'];

/** What was measured beside the worker in the throughput and latency charts. */
export const SERIES_LABELS = {
  bare: 'bare subscribers received',
  processed: 'leader processed',
} as const;

export const SET_UP_LABELS = {
  log: 'one leader, HANDLER=log',
  'no-op': 'one leader, no-op handler',
  threeWorkers: 'three workers, HANDLER=log',
  fanIn: 'fan-in, one leader, HANDLER=log',
} as const;

/** The added-latency goals of issue 12 at 5,000/s, drawn as rules on the latency chart. */
export const LATENCY_GOALS_MS = { p50: 1, p99: 5 } as const;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const FONT = 'sans-serif';
const CONFIG = {
  font: FONT,
  view: { stroke: '#ddd' },
  // Without a canvas vega estimates text widths generously: room enough that labels are not cut.
  axis: { labelFontSize: 11, titleFontSize: 11, labelLimit: 300 },
  legend: {
    labelFontSize: 11,
    titleFontSize: 11,
    orient: 'bottom' as const,
    direction: 'vertical' as const,
    labelLimit: 400,
  },
  title: { fontSize: 13, anchor: 'start' as const, offset: 14 },
};

/** A finite number, else null (NaN, Infinity, undefined, and null from a results file). */
function finite(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

const algorithmColor = {
  field: 'algorithm',
  type: 'nominal' as const,
  title: null,
  scale: { domain: ALGORITHM_DOMAIN, range: ALGORITHM_COLORS },
};

/** `Omit` over each member of a union (TopLevelSpec is one: unit, layer, concat, facet specs). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What a chart's spec holds of its own: sizes, encodings, layers, panels or facets. */
type ChartBody = DistributiveOmit<TopLevelSpec, '$schema' | 'title' | 'data' | 'config'>;

/** One layer of a layered chart. */
type ChartLayer = Extract<TopLevelSpec, { layer: unknown }>['layer'][number];

interface ChartParts {
  readonly name: BenchChartName;
  readonly alt: string;
  readonly title: string;
  readonly subtitle: readonly string[];
  /** The chart's rows, inline; undefined when each layer brings its own data. */
  readonly rows?: readonly object[];
  readonly body: ChartBody;
}

/**
 * The one shape of every chart: the schema, a title with subtitle lines, the rows inline, the shared
 * CONFIG, then the chart's own body. (The keys keep this order: the SVG is rendered from the spec as
 * written, and the committed charts were rendered from specs in this order.)
 */
function benchChart(parts: ChartParts): BenchChart {
  return {
    name: parts.name,
    alt: parts.alt,
    spec: {
      $schema: SCHEMA,
      title: { text: parts.title, subtitle: [...parts.subtitle] },
      ...(parts.rows === undefined
        ? {}
        : { data: { values: parts.rows as unknown as Record<string, unknown>[] } }),
      config: CONFIG,
      ...parts.body,
    } as TopLevelSpec,
  };
}

/**
 * The encoding of bars grouped along `x` (labels upright), one bar per algorithm side by side in each
 * group, in the algorithms' order and colours.
 */
function algorithmGroupsAlong(x: {
  readonly field: string;
  readonly type: 'nominal' | 'ordinal';
  readonly title: string | null;
  readonly sort: readonly string[];
}) {
  return {
    x: { ...x, sort: [...x.sort], axis: { labelAngle: 0 } },
    xOffset: { field: 'algorithm', type: 'nominal' as const, sort: ALGORITHM_DOMAIN },
    color: algorithmColor,
  };
}

/** A bar per row with its figure written above it, and a tick at the worst run where there is one. */
interface BarLayers {
  /** The bar's height (the median run, or a total) and its axis. */
  readonly barField: string;
  readonly barTitle: string;
  readonly barDomain?: readonly [number, number];
  /** A tick at the worst run; undefined: no tick. */
  readonly worstField?: string;
  /** The figure written above the bar (d3 format), by default the bar's own. */
  readonly labelField?: string;
  readonly labelFormat: string;
}

function barLayers(bars: BarLayers): ChartLayer[] {
  const bar: ChartLayer = {
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: {
        field: bars.barField,
        type: 'quantitative',
        title: bars.barTitle,
        ...(bars.barDomain === undefined ? {} : { scale: { domain: [...bars.barDomain] } }),
      },
    },
  };
  const worst: ChartLayer[] =
    bars.worstField === undefined
      ? []
      : [
          {
            mark: { type: 'tick', thickness: 2 },
            encoding: { y: { field: bars.worstField, type: 'quantitative' } },
          },
        ];
  const label: ChartLayer = {
    mark: { type: 'text', dy: -6, fontSize: 10 },
    encoding: {
      y: { field: bars.barField, type: 'quantitative' },
      text: { field: bars.labelField ?? bars.barField, type: 'quantitative', format: bars.labelFormat },
    },
  };
  return [bar, ...worst, label];
}

export interface HandoverRow {
  readonly algorithm: string;
  readonly stop: string;
  readonly runs: number;
  readonly medianGapMs: number | null;
  readonly worstGapMs: number | null;
  readonly lostTotal: number | null;
  readonly expectedTotal: number | null;
}

export function handoverRows(handover: BenchChartData['handover']): HandoverRow[] {
  const rows: HandoverRow[] = [];
  for (const report of [handover?.ours, handover?.seed]) {
    if (!report) continue;
    for (const [stop, s] of [
      ['graceful (SIGTERM)', report.graceful],
      ['crash (SIGKILL)', report.crash],
    ] as [string, HandoverSummary][]) {
      if (s.runs === 0) continue;
      rows.push({
        algorithm: ALGORITHM_LABELS[report.algorithm],
        stop,
        runs: s.runs,
        medianGapMs: finite(s.medianGapMs),
        worstGapMs: finite(s.worstGapMs),
        lostTotal: finite(s.lostTotal),
        expectedTotal: finite(s.expectedTotal),
      });
    }
  }
  return rows;
}

function handoverChart(handover: NonNullable<BenchChartData['handover']>): BenchChart | undefined {
  const rows = handoverRows(handover);
  if (rows.length === 0) return undefined;
  const any = (handover.ours ?? handover.seed) as HandoverReport;
  const encoding = algorithmGroupsAlong({
    field: 'stop',
    type: 'nominal',
    title: null,
    sort: ['graceful (SIGTERM)', 'crash (SIGKILL)'],
  });
  return benchChart({
    name: 'hand-over',
    alt: 'Hand-over: time without a leader (median, worst) and events lost, keyspace-leader beside the seed, graceful and crash',
    title: 'Hand-over: keyspace-leader beside the seed',
    subtitle: [
      `${any.workers} workers, ${int(any.keysPerSecond)} keys/s`,
      'bars: median run, ticks: worst run',
    ],
    rows,
    body: {
      hconcat: [
        {
          width: 260,
          height: 220,
          title: 'time without a leader (ms)',
          encoding,
          layer: barLayers({
            barField: 'medianGapMs',
            barTitle: 'ms (median run)',
            worstField: 'worstGapMs',
            labelFormat: ',.0f',
          }),
        },
        {
          width: 260,
          height: 220,
          title: 'events lost (all runs together)',
          encoding,
          layer: barLayers({ barField: 'lostTotal', barTitle: 'events lost', labelFormat: ',d' }),
        },
      ],
    },
  });
}

export interface CrashLossRow {
  readonly algorithm: string;
  readonly rate: string;
  readonly keysPerSecond: number;
  readonly runs: number;
  /** Lost / expected of the median run and of the worst run, in percent of the fault window. */
  readonly lostPercentMedian: number | null;
  readonly lostPercentWorst: number | null;
  readonly lostMedian: number | null;
}

export function crashLossRows(rates: NonNullable<BenchChartData['crashLoss']>): CrashLossRow[] {
  return rates
    .filter((r) => r.runs.length > 0)
    .map((r) => {
      const shares = r.runs.filter((run) => run.expected > 0).map((run) => (100 * run.lost) / run.expected);
      return {
        algorithm: ALGORITHM_LABELS[r.algorithm],
        rate:
          r.measuredMaxPerSecond === undefined || r.measuredMaxPerSecond === null
            ? `${int(r.keysPerSecond)}/s`
            : `${int(r.keysPerSecond)}/s (${Math.round(CRASH_LOSS_SHARE_OF_MAX * 100)} % of max)`,
        keysPerSecond: r.keysPerSecond,
        runs: r.runs.length,
        lostPercentMedian: finite(median(shares)),
        lostPercentWorst: shares.length === 0 ? null : Math.max(...shares),
        lostMedian: finite(r.lost.median),
      };
    });
}

function crashLossChart(rates: NonNullable<BenchChartData['crashLoss']>): BenchChart | undefined {
  const rows = crashLossRows(rates);
  if (rows.length === 0) return undefined;
  const rateOrder = [...new Map(rows.map((r) => [r.rate, r.keysPerSecond])).entries()]
    .sort((a, b) => a[1] - b[1])
    .map(([label]) => label);
  const encoding = algorithmGroupsAlong({
    field: 'rate',
    type: 'ordinal',
    title: 'expirations/s',
    sort: rateOrder,
  });
  return benchChart({
    name: 'crash-loss',
    alt: 'Crash loss: share of the fault window lost when the leader is killed, per rate, keyspace-leader beside the seed',
    title: 'Crash loss per rate: keyspace-leader beside the seed',
    subtitle: [
      'the leader SIGKILLed; bars: median run, ticks: worst run',
      'label: events lost, median over the runs',
    ],
    rows,
    body: {
      width: Math.max(260, 130 * rateOrder.length),
      height: 240,
      encoding,
      layer: barLayers({
        barField: 'lostPercentMedian',
        barTitle: '% of the fault window lost',
        barDomain: [0, 100],
        worstField: 'lostPercentWorst',
        labelField: 'lostMedian',
        labelFormat: ',d',
      }),
    },
  });
}

export const STEP_LABELS = { sustained: 'step sustained', notSustained: 'step not sustained' } as const;

export interface ThroughputRow {
  readonly setUp: string;
  readonly series: string;
  readonly targetPerSecond: number;
  readonly perSecond: number | null;
  readonly step: string;
}

const stepLabel = (verdict: string) =>
  verdict === 'sustained' ? STEP_LABELS.sustained : STEP_LABELS.notSustained;

export function throughputRows(results: BenchChartData): ThroughputRow[] {
  const rows: ThroughputRow[] = [];
  for (const variant of results.maxRate ?? []) {
    for (const step of variant.steps) {
      const common = {
        setUp: SET_UP_LABELS[variant.variant],
        targetPerSecond: step.targetPerSecond,
        step: stepLabel(step.verdict),
      };
      rows.push({ ...common, series: SERIES_LABELS.bare, perSecond: finite(step.bareReceivedPerSecond) });
      rows.push({ ...common, series: SERIES_LABELS.processed, perSecond: finite(step.processedPerSecond) });
    }
  }
  for (const step of results.threeWorkers?.steps ?? []) {
    const common = {
      setUp: SET_UP_LABELS.threeWorkers,
      targetPerSecond: step.keysPerSecond,
      step: stepLabel(step.verdict),
    };
    rows.push({ ...common, series: SERIES_LABELS.bare, perSecond: finite(step.expected / step.durationS) });
    rows.push({
      ...common,
      series: SERIES_LABELS.processed,
      perSecond: finite(step.fanIn.matched / step.durationS),
    });
  }
  return rows;
}

const seriesColor = {
  field: 'series',
  type: 'nominal' as const,
  title: null,
  scale: { domain: [SERIES_LABELS.bare, SERIES_LABELS.processed], range: ['#9d9d9d', '#4c78a8'] },
};

function throughputChart(results: BenchChartData): BenchChart | undefined {
  const rows = throughputRows(results);
  if (rows.length === 0) return undefined;
  const setUps = [...new Set(rows.map((r) => r.setUp))];
  return benchChart({
    name: 'throughput',
    alt: 'Throughput: events the leader processed per second beside what the bare subscribers received, per rate step',
    title: 'Throughput beside the bare subscribers',
    subtitle: ['per rate step', 'a cross: the step was not sustained (stepping stops there)'],
    rows,
    body: {
      facet: { column: { field: 'setUp', type: 'nominal', title: null, sort: setUps } },
      resolve: { scale: { x: 'independent', y: 'independent' } },
      spec: {
        width: 220,
        height: 200,
        encoding: {
          x: { field: 'targetPerSecond', type: 'quantitative', title: 'target expirations/s' },
          y: { field: 'perSecond', type: 'quantitative', title: 'events/s' },
          color: seriesColor,
          // The facet's field on every mark too, so each point and line says which set-up it belongs to.
          detail: { field: 'setUp', type: 'nominal' },
        },
        layer: [
          { mark: { type: 'line' } },
          {
            mark: { type: 'point', filled: true, size: 60, tooltip: true },
            encoding: {
              shape: {
                field: 'step',
                type: 'nominal',
                title: null,
                scale: {
                  domain: [STEP_LABELS.sustained, STEP_LABELS.notSustained],
                  range: ['circle', 'cross'],
                },
              },
            },
          },
        ],
      },
    },
  });
}

export interface LatencyRow {
  readonly setUp: string;
  readonly quantile: 'p50' | 'p99';
  readonly targetPerSecond: number;
  readonly addedMs: number;
}

export function latencyRows(results: BenchChartData): LatencyRow[] {
  const rows: LatencyRow[] = [];
  const push = (
    setUp: string,
    targetPerSecond: number,
    quantile: 'p50' | 'p99',
    value: number | undefined,
  ) => {
    const addedMs = finite(value);
    // A log scale has no 0: an added latency below 0.01 ms is drawn at 0.01 ms.
    if (addedMs !== null) rows.push({ setUp, quantile, targetPerSecond, addedMs: Math.max(addedMs, 0.01) });
  };
  const f = results.fanIn;
  if (f) {
    push(SET_UP_LABELS.fanIn, f.keysPerSecond, 'p50', f.result.addedMs?.p50);
    push(SET_UP_LABELS.fanIn, f.keysPerSecond, 'p99', f.result.addedMs?.p99);
  }
  for (const variant of results.maxRate ?? []) {
    for (const step of variant.steps)
      push(SET_UP_LABELS[variant.variant], step.targetPerSecond, 'p99', step.addedP99Ms);
  }
  for (const step of results.threeWorkers?.steps ?? []) {
    push(SET_UP_LABELS.threeWorkers, step.keysPerSecond, 'p50', step.fanIn.addedMs?.p50);
    push(SET_UP_LABELS.threeWorkers, step.keysPerSecond, 'p99', step.fanIn.addedMs?.p99);
  }
  return rows;
}

function latencyChart(results: BenchChartData): BenchChart | undefined {
  const rows = latencyRows(results);
  if (rows.length === 0) return undefined;
  const goals = [
    { quantile: 'p50', goalMs: LATENCY_GOALS_MS.p50, label: `goal p50 <= ${LATENCY_GOALS_MS.p50} ms` },
    { quantile: 'p99', goalMs: LATENCY_GOALS_MS.p99, label: `goal p99 <= ${LATENCY_GOALS_MS.p99} ms` },
  ];
  return benchChart({
    name: 'latency',
    alt: 'Added latency beyond the bare subscribers (p50, p99) per rate, with the goals',
    title: 'Added latency beyond the bare subscribers (upper bound)',
    subtitle: [
      'bare subscriber receipt to the key.processed line; log scale',
      'grey rules: the goals at 5,000/s',
    ],
    body: {
      width: 420,
      height: 260,
      layer: [
        {
          data: { values: goals },
          mark: { type: 'rule', color: '#9d9d9d', strokeDash: [2, 2] },
          encoding: { y: { field: 'goalMs', type: 'quantitative' } },
        },
        {
          data: { values: goals },
          mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#777', fontSize: 10 },
          encoding: {
            x: { datum: 0 },
            y: { field: 'goalMs', type: 'quantitative' },
            text: { field: 'label' },
          },
        },
        {
          data: { values: rows as unknown as Record<string, unknown>[] },
          encoding: {
            x: {
              field: 'targetPerSecond',
              type: 'quantitative',
              title: 'expirations/s',
              scale: { zero: true },
            },
            y: {
              field: 'addedMs',
              type: 'quantitative',
              title: 'added latency (ms)',
              scale: { type: 'log' },
            },
            color: { field: 'setUp', type: 'nominal', title: null },
          },
          layer: [
            {
              mark: { type: 'line' },
              encoding: {
                strokeDash: { field: 'quantile', type: 'nominal', title: null, sort: ['p50', 'p99'] },
              },
            },
            {
              mark: { type: 'point', filled: true, size: 40, tooltip: true },
              encoding: { shape: { field: 'quantile', type: 'nominal', title: null, sort: ['p50', 'p99'] } },
            },
          ],
        },
      ],
    },
  });
}

/** The set-ups of the on-time chart, in its order. */
export const ON_TIME_LABELS = {
  native: 'native Redis (no worker)',
  'scan-cold': 'on-time, loaded before the start (scan), first burst',
  'scan-warm': 'on-time, loaded before the start (scan), warm',
  'event-cold': 'on-time, loaded after (events), first burst',
  'event-warm': 'on-time, loaded after (events), warm',
} as const;

export interface OnTimeRow {
  readonly setUp: string;
  /** The background size as text ("100,000"): the x axis is nominal. */
  readonly backgroundKeys: string;
  readonly quantile: 'p50' | 'p99';
  readonly lagMs: number;
  /** "318 / 1,000 delivered" */
  readonly delivered: string;
  readonly allDelivered: boolean;
}

/**
 * Deadline -> handler (on-time) and deadline -> bare receipt (native) per background size, p50 and
 * p99 of the probes that arrived. A log scale has no 0: a lag below 1 ms is drawn at 1 ms.
 */
export function onTimeRows(onTime: OnTimeReport): OnTimeRow[] {
  const rows: OnTimeRow[] = [];
  const push = (setUp: string, size: number, f: LagFigures) => {
    for (const quantile of ['p50', 'p99'] as const) {
      const lagMs = finite(quantile === 'p50' ? f.p50Ms : f.p99Ms);
      if (lagMs === null) continue;
      rows.push({
        setUp,
        backgroundKeys: int(size),
        quantile,
        lagMs: Math.max(lagMs, 1),
        delivered: `${int(f.delivered)} / ${int(f.expected)} delivered`,
        allDelivered: f.delivered >= f.expected,
      });
    }
  };
  for (const n of onTime.native) push(ON_TIME_LABELS.native, n.backgroundKeys, n.bare);
  for (const r of onTime.runs) push(ON_TIME_LABELS[`${r.variant}-${r.burst}`], r.backgroundKeys, r.handler);
  return rows;
}

function onTimeChart(onTime: OnTimeReport): BenchChart | undefined {
  const rows = onTimeRows(onTime);
  if (rows.length === 0) return undefined;
  const sizes = [...new Set([...onTime.native, ...onTime.runs].map((r) => r.backgroundKeys))].sort(
    (a, b) => a - b,
  );
  const domain = Object.values(ON_TIME_LABELS);
  const goal = [{ goalMs: ON_TIME_GOAL_P99_MS, label: `goal p99 <= ${ON_TIME_GOAL_P99_MS} ms` }];
  return {
    name: 'on-time',
    alt: 'Deadline to handler lag (p50, p99) per number of other volatile keys, on-time expiry beside native Redis',
    spec: {
      $schema: SCHEMA,
      title: {
        text: `Deadline -> handler: ${int(onTime.probes)} probes sharing one deadline`,
        subtitle: [
          'per number of other volatile keys on the cluster; log scale; of the probes that arrived',
          `native: bare subscribers, no worker, waited <= ${onTime.nativeWaitS} s (labels: probes delivered)`,
        ],
      },
      config: CONFIG,
      width: 420,
      height: 260,
      layer: [
        {
          data: { values: goal },
          mark: { type: 'rule', color: '#9d9d9d', strokeDash: [2, 2] },
          encoding: { y: { field: 'goalMs', type: 'quantitative' } },
        },
        {
          data: { values: goal },
          mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#777', fontSize: 10 },
          encoding: {
            x: { datum: int(sizes[0] ?? 0), type: 'nominal' },
            y: { field: 'goalMs', type: 'quantitative' },
            text: { field: 'label' },
          },
        },
        {
          data: { values: rows as unknown as Record<string, unknown>[] },
          encoding: {
            x: {
              field: 'backgroundKeys',
              type: 'nominal',
              title: 'other volatile keys on the cluster',
              sort: sizes.map((size) => int(size)),
              axis: { labelAngle: 0 },
            },
            xOffset: { field: 'setUp', type: 'nominal', sort: domain },
            y: {
              field: 'lagMs',
              type: 'quantitative',
              title: 'lag after the deadline (ms)',
              scale: { type: 'log' },
            },
            color: { field: 'setUp', type: 'nominal', title: null, sort: domain, scale: { domain } },
          },
          layer: [
            {
              mark: { type: 'point', filled: true, size: 50, tooltip: { content: 'data' } },
              encoding: { shape: { field: 'quantile', type: 'nominal', title: null, sort: ['p50', 'p99'] } },
            },
            {
              transform: [{ filter: "datum.quantile === 'p99' && !datum.allDelivered" }],
              mark: { type: 'text', dy: -10, fontSize: 9, color: '#555' },
              encoding: { text: { field: 'delivered' } },
            },
          ],
        },
      ],
    },
  };
}

/**
 * A chart's SVG relative to the report `reportPath` (Markdown image links are relative to the page):
 * `docs/benchmarks.md` shows `benchmarks/<name>.svg`, the folder bench/bench-charts.ts writes.
 */
export function chartLinkFromReport(reportPath: string, name: BenchChartName): string {
  return `${chartsFolderFromReport(reportPath)}${name}.svg`;
}

/** The charts' folder relative to the report `reportPath`, with a trailing slash. */
export function chartsFolderFromReport(reportPath: string): string {
  return `${basename(reportPath, '.md')}/`;
}

/** Every chart the results have data for: hand-over (the main one), crash loss, throughput, latency. */
export function benchChartSpecs(results: BenchChartData): BenchChart[] {
  const charts = [
    results.handover ? handoverChart(results.handover) : undefined,
    results.crashLoss ? crashLossChart(results.crashLoss) : undefined,
    throughputChart(results),
    latencyChart(results),
    results.onTime ? onTimeChart(results.onTime) : undefined,
  ];
  return charts.filter((c): c is BenchChart => c !== undefined);
}
