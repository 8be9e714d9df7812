import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchCharts } from '../../../bench/bench-charts.ts';
import { renderChartSvg } from '../../../bench/chart-render.ts';
import {
  ALGORITHM_LABELS,
  type BenchChart,
  type BenchChartName,
  benchChartSpecs,
  LATENCY_GOALS_MS,
  SERIES_LABELS,
  SET_UP_LABELS,
  STEP_LABELS,
} from '../../../bench/chart-specs.ts';
import { type BenchResults, renderMarkdown } from '../../../bench/report.ts';
import { benchResultsFixture } from './fixtures/bench-results.ts';

/** The marks of a rendered chart: per mark type (rect, symbol, line, text, rule), the aria-label of each item. */
function marksOf(svg: string): Map<string, string[]> {
  const marks = new Map<string, string[]>();
  for (const group of svg.matchAll(/<g class="mark-(\w+) role-mark[^"]*"[^>]*>(.*?)<\/g>/gs)) {
    const type = group[1] as string;
    const labels = [...(group[2] as string).matchAll(/aria-label="([^"]*)"/g)].map((m) => m[1] as string);
    marks.set(type, [...(marks.get(type) ?? []), ...labels]);
  }
  return marks;
}

/** `field: value` pairs of one item's aria-label (vega-lite writes the encoded fields, titled). */
function fieldsOf(label: string): Record<string, string> {
  return Object.fromEntries(
    label.split('; ').map((pair) => {
      const at = pair.indexOf(': ');
      return [pair.slice(0, at), pair.slice(at + 2)];
    }),
  );
}

function chart(results: BenchResults, name: BenchChartName): BenchChart {
  const found = benchChartSpecs(results).find((c) => c.name === name);
  if (!found) throw new Error(`no ${name} chart`);
  return found;
}

async function rendered(results: BenchResults, name: BenchChartName) {
  const svg = await renderChartSvg(chart(results, name).spec);
  expect(svg.startsWith('<svg')).toBe(true);
  return { svg, marks: marksOf(svg) };
}

describe('bench charts (vega-lite specs rendered to SVG by vega)', () => {
  it('builds the four charts from a results object that has their data, hand-over first', () => {
    expect(benchChartSpecs(benchResultsFixture).map((c) => c.name)).toEqual([
      'hand-over',
      'crash-loss',
      'throughput',
      'latency',
    ]);
    expect(
      benchChartSpecs({ ...benchResultsFixture, handover: undefined, crashLoss: undefined }).map(
        (c) => c.name,
      ),
    ).toEqual(['throughput', 'latency']);
    expect(
      benchChartSpecs({
        handover: undefined,
        crashLoss: [],
        maxRate: [],
        threeWorkers: { steps: [], sustainedPerSecond: undefined },
        fanIn: undefined,
      }),
    ).toEqual([]);
  });

  it('hand-over: a gap bar and a loss bar per algorithm and stop, worst-run ticks, the seed beside ours', async () => {
    const { marks } = await rendered(benchResultsFixture, 'hand-over');
    const bars = (marks.get('rect') ?? []).map(fieldsOf);
    const gapBars = bars.filter((b) => 'ms (median run)' in b);
    const lossBars = bars.filter((b) => 'events lost' in b);
    expect(gapBars).toHaveLength(4);
    expect(lossBars).toHaveLength(4);
    // The worst-run ticks are rects too (tick marks): one per algorithm and stop.
    expect(bars.filter((b) => 'worstGapMs' in b).map((b) => b.worstGapMs)).toEqual(
      expect.arrayContaining(['50', '3600', '350', '7800']),
    );
    const gap = (algorithm: string, stop: string) =>
      gapBars.find((b) => b.algorithm === algorithm && b.stop === stop)?.['ms (median run)'];
    const lost = (algorithm: string, stop: string) =>
      lossBars.find((b) => b.algorithm === algorithm && b.stop === stop)?.['events lost'];
    const ours = ALGORITHM_LABELS['keyspace-leader'];
    const seed = ALGORITHM_LABELS.seed;
    // Medians as the report's tables take them (nearest rank: the lower of two runs).
    expect([gap(ours, 'graceful (SIGTERM)'), gap(ours, 'crash (SIGKILL)')]).toEqual(['30', '3200']);
    expect([gap(seed, 'graceful (SIGTERM)'), gap(seed, 'crash (SIGKILL)')]).toEqual(['300', '6000']);
    expect([lost(ours, 'graceful (SIGTERM)'), lost(ours, 'crash (SIGKILL)')]).toEqual(['0', '0']);
    expect([lost(seed, 'graceful (SIGTERM)'), lost(seed, 'crash (SIGKILL)')]).toEqual(['100', '2700']);
    // Value labels over the bars, so a 0 is visible.
    expect(marks.get('text')).toHaveLength(8);
  });

  it('hand-over: a figure that was not measured (NaN) is left out, not drawn as 0', async () => {
    const seed = benchResultsFixture.handover?.seed;
    if (!seed) throw new Error('fixture has the seed');
    const results: BenchResults = {
      ...benchResultsFixture,
      handover: {
        seed: { ...seed, crash: { ...seed.crash, medianGapMs: Number.NaN, worstGapMs: Number.NaN } },
      },
    };
    const { marks } = await rendered(results, 'hand-over');
    const gapBars = (marks.get('rect') ?? []).map(fieldsOf).filter((b) => 'ms (median run)' in b);
    expect(gapBars.map((b) => b.stop)).toEqual(['graceful (SIGTERM)']);
  });

  it('crash loss: per rate, the share of the fault window lost, ours beside the seed', async () => {
    const { marks } = await rendered(benchResultsFixture, 'crash-loss');
    const bars = (marks.get('rect') ?? []).map(fieldsOf).filter((b) => '% of the fault window lost' in b);
    expect(bars).toHaveLength(4);
    const share = (algorithm: string, rate: string) =>
      Number(
        bars.find((b) => b.algorithm === algorithm && b['expirations/s'] === rate)?.[
          '% of the fault window lost'
        ],
      );
    // Median (nearest rank, the lower of two runs) of the per-run shares lost / expected, in percent.
    expect(share(ALGORITHM_LABELS['keyspace-leader'], '2,000/s')).toBe(0);
    expect(share(ALGORITHM_LABELS.seed, '2,000/s')).toBeCloseTo(60, 5);
    expect(share(ALGORITHM_LABELS['keyspace-leader'], '6,400/s (80 % of max)')).toBeCloseTo(0.75, 5);
    expect(share(ALGORITHM_LABELS.seed, '6,400/s (80 % of max)')).toBeCloseTo(80, 5);
    // The worst run's share as a tick: 75 % and 45,000 / 52,000 for the seed.
    const ticks = (marks.get('rect') ?? []).map(fieldsOf).filter((b) => 'lostPercentWorst' in b);
    const worst = ticks.map((t) => Number(t.lostPercentWorst)).sort((a, b) => a - b);
    expect(worst).toHaveLength(4);
    [0, (1500 / 42_000) * 100, 75, (45_000 / 52_000) * 100].forEach((share, i) => {
      expect(worst[i]).toBeCloseTo(share, 2);
    });
  });

  it('throughput: per set-up, a line for the bare subscribers and one for the leader, a point per step', async () => {
    const { marks } = await rendered(benchResultsFixture, 'throughput');
    const lines = (marks.get('line') ?? []).map(fieldsOf);
    expect(lines.map((l) => `${l.setUp} / ${l.series}`).sort()).toEqual(
      [SET_UP_LABELS.log, SET_UP_LABELS['no-op'], SET_UP_LABELS.threeWorkers]
        .flatMap((s) => [`${s} / ${SERIES_LABELS.bare}`, `${s} / ${SERIES_LABELS.processed}`])
        .sort(),
    );
    const points = (marks.get('symbol') ?? []).map(fieldsOf);
    // log 3 steps, no-op 2, three workers 3; two series each.
    expect(points).toHaveLength(16);
    const at = (setUp: string, series: string, target: string) =>
      points.find((p) => p.setUp === setUp && p.series === series && p['target expirations/s'] === target);
    expect(at(SET_UP_LABELS.log, SERIES_LABELS.processed, '20000')).toMatchObject({
      'events/s': '15000',
      step: STEP_LABELS.notSustained,
    });
    expect(at(SET_UP_LABELS.log, SERIES_LABELS.bare, '20000')?.['events/s']).toBe('20000');
    expect(at(SET_UP_LABELS.threeWorkers, SERIES_LABELS.processed, '8000')?.['events/s']).toBe('6400');
    expect(at(SET_UP_LABELS.threeWorkers, SERIES_LABELS.processed, '5000')?.step).toBe(STEP_LABELS.sustained);
  });

  it('latency: p50 and p99 per set-up and rate on a log scale, with the goals as rules', async () => {
    const { marks } = await rendered(benchResultsFixture, 'latency');
    const points = (marks.get('symbol') ?? []).map(fieldsOf);
    // fan-in p50 + p99, log p99 at 3 steps, three workers p50 + p99 at 3 steps; no-op has no latency.
    expect(points).toHaveLength(2 + 3 + 6);
    expect(points.filter((p) => p.setUp === SET_UP_LABELS['no-op'])).toEqual([]);
    expect(
      points.find((p) => p.setUp === SET_UP_LABELS.fanIn && p.quantile === 'p99')?.['added latency (ms)'],
    ).toBe('4.5');
    expect(
      points
        .filter((p) => p.setUp === SET_UP_LABELS.threeWorkers && p.quantile === 'p99')
        .map((p) => p['added latency (ms)']),
    ).toEqual(['3', '8', '700']);
    expect((marks.get('rule') ?? []).map((r) => fieldsOf(r).goalMs).sort()).toEqual(
      [String(LATENCY_GOALS_MS.p50), String(LATENCY_GOALS_MS.p99)].sort(),
    );
    expect(marks.get('line')).toHaveLength(5);
  });

  it('renders the same SVG from the results saved as JSON (NaN becomes null) as from the object', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kl-charts-'));
    const charts = new BenchCharts(join(dir, 'benchmarks.md'));
    const withNaN: BenchResults = {
      ...benchResultsFixture,
      fanIn: benchResultsFixture.fanIn && { ...benchResultsFixture.fanIn, benchLoopDelayP99Ms: Number.NaN },
    };
    charts.saveResults(withNaN, false);
    expect(charts.resultsPath).toBe(join(dir, 'benchmarks', 'results.json'));
    const loaded = BenchCharts.readResults(charts.resultsPath);
    expect((loaded as BenchResults).fanIn?.benchLoopDelayP99Ms).toBeNull();
    const written = await charts.write(loaded);
    expect(written.map((p) => p.slice(dir.length + 1)).sort()).toEqual([
      'benchmarks/crash-loss.svg',
      'benchmarks/hand-over.svg',
      'benchmarks/latency.svg',
      'benchmarks/throughput.svg',
    ]);
    for (const chartSpec of benchChartSpecs(withNaN)) {
      expect(readFileSync(join(charts.dir, `${chartSpec.name}.svg`), 'utf8')).toBe(
        await renderChartSvg(chartSpec.spec),
      );
    }
  });

  it('a run of some sections keeps the saved results of the others and redraws only what has data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kl-charts-'));
    const charts = new BenchCharts(join(dir, 'benchmarks.md'));
    charts.saveResults(
      { ...benchResultsFixture, maxRate: undefined, threeWorkers: undefined, fanIn: undefined },
      false,
    );
    const merged = charts.saveResults<BenchResults>(
      {
        ...benchResultsFixture,
        handover: undefined,
        crashLoss: undefined,
        fanIn: undefined,
        threeWorkers: undefined,
      },
      true,
    );
    expect(merged.handover?.seed?.crash.medianGapMs).toBe(6000);
    expect(merged.maxRate).toHaveLength(2);
    const onlyOne = new BenchCharts(join(dir, 'other.md'));
    writeFileSync(join(dir, 'results.json'), JSON.stringify({ maxRate: benchResultsFixture.maxRate }));
    const written = await onlyOne.write(BenchCharts.readResults(join(dir, 'results.json')));
    expect(written.map((p) => p.slice(dir.length + 1)).sort()).toEqual([
      'other/latency.svg',
      'other/throughput.svg',
    ]);
    expect(existsSync(join(dir, 'other', 'hand-over.svg'))).toBe(false);
  });

  it('the report links each chart from its section, relative to the report', () => {
    const markdown = renderMarkdown(benchResultsFixture);
    const links = [...markdown.matchAll(/^!\[[^\]]+\]\(([^)]+)\)$/gm)].map((m) => m[1]);
    expect(links).toEqual([
      'benchmarks/latency.svg',
      'benchmarks/throughput.svg',
      'benchmarks/hand-over.svg',
      'benchmarks/crash-loss.svg',
    ]);
    const section = (heading: string) => markdown.split(/^(?=## )/m).find((s) => s.startsWith(heading)) ?? '';
    expect(section('## Hand-over')).toContain('](benchmarks/hand-over.svg)');
    expect(section('## Crash loss')).toContain('](benchmarks/crash-loss.svg)');
    expect(section('## Highest sustained rate')).toContain('](benchmarks/throughput.svg)');
    expect(section('## Fan-in')).toContain('](benchmarks/latency.svg)');
    expect(renderMarkdown({ ...benchResultsFixture, handover: undefined })).not.toContain('hand-over.svg');
  });
});
