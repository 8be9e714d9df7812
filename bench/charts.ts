import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchCharts } from './bench-charts.ts';

/**
 * `npm run bench:charts`: renders the charts of a benchmark report again from the results the bench
 * saved next to it (`npm run bench` writes both). Options: `--report <path>` (default
 * docs/benchmarks.md; the charts go to the folder named after it), `--results <file>` (default
 * `results.json` in that folder). No Redis, no workers: rendering only.
 */

const USAGE = 'usage: npm run bench:charts [-- --report docs/benchmarks.md] [--results <results.json>]\n';

async function main(): Promise<number> {
  let values: { report?: string | undefined; results?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: { report: { type: 'string' }, results: { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(
      `npm run bench:charts: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`,
    );
    return 64;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const charts = new BenchCharts(resolve(values.report ?? 'docs/benchmarks.md'));
  const resultsPath = resolve(values.results ?? charts.resultsPath);
  const written = await charts.write(BenchCharts.readResults(resultsPath));
  process.stdout.write(
    written.length === 0
      ? `${resultsPath} has no data for any chart\n`
      : `${written.map((path) => `wrote ${path}`).join('\n')}\n`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `npm run bench:charts failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
