import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { renderChartSvg } from './chart-render.ts';
import { type BenchChartData, benchChartSpecs } from './chart-specs.ts';

/**
 * Where the charts and the results of a report live, and writing them. For the report
 * `docs/benchmarks.md` that is the folder `docs/benchmarks/`: `<chart>.svg` per chart and
 * `results.json`, the results object of the runs the report shows (what `npm run bench:charts`
 * renders the charts from again).
 */
export class BenchCharts {
  /** The folder next to the report, named after it (chart-specs.ts chartLinkFromReport links into it). */
  readonly dir: string;
  readonly resultsPath: string;

  constructor(reportPath: string) {
    this.dir = join(dirname(reportPath), basename(reportPath, '.md'));
    this.resultsPath = join(this.dir, 'results.json');
  }

  /**
   * The results of this run, saved as JSON. A run of some sections (`partial`) keeps the other
   * sections' results from the existing file, as the report keeps their text; returns what was saved.
   * JSON has no NaN: figures that were not measured are saved as null (the charts leave them out).
   */
  saveResults<T extends BenchChartData>(results: T, partial: boolean): T {
    const kept = partial && existsSync(this.resultsPath) ? BenchCharts.readResults(this.resultsPath) : {};
    const defined = Object.fromEntries(Object.entries(results).filter(([, value]) => value !== undefined));
    const merged = { ...kept, ...defined } as T;
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.resultsPath, `${JSON.stringify(merged, null, 2)}\n`);
    return merged;
  }

  /** A results object saved by `saveResults` (or any object of the bench results' shape). */
  static readResults(path: string): BenchChartData {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TypeError(`${path} does not hold a bench results object`);
    }
    return parsed as BenchChartData;
  }

  /** Renders every chart the results have data for into `dir`; returns the files written. */
  async write(results: BenchChartData): Promise<string[]> {
    mkdirSync(this.dir, { recursive: true });
    const written: string[] = [];
    for (const chart of benchChartSpecs(results)) {
      const path = join(this.dir, `${chart.name}.svg`);
      writeFileSync(path, await renderChartSvg(chart.spec));
      written.push(path);
    }
    return written;
  }
}
