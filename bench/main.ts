import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { BenchCharts } from './bench-charts.ts';
import { BenchArgumentsError, type BenchSettings, parseBenchArgs, SCENARIOS } from './bench-options.ts';
import { runBurst } from './burst.ts';
import { runFanIn } from './fan-in.ts';
import { runCost, runCrashLoss, runResources, runThreeWorkers } from './guarantees.ts';
import { runHandover } from './hand-over.ts';
import { BenchHarness, ROOT } from './harness.ts';
import { describeMachine } from './machine-info.ts';
import { runMaxRate } from './max-rate.ts';
import { runOnTime } from './on-time.ts';
import { type BenchResults, mergeReports, renderConsole, renderMarkdown } from './report.ts';
import { buildWorkerBundle } from './worker-bundle.ts';

/**
 * `npm run bench`: fan-in, highest sustained rate, hand-over and crash loss (with the seed as
 * baseline), the cost of the guarantees, worker resources and three-worker throughput, on an
 * embedded cluster of its own. Prints figures, writes docs/benchmarks.md with its charts and results
 * (docs/benchmarks/*.svg, results.json: bench/bench-charts.ts), and exits 0 whatever the
 * figures are (a benchmark that cannot run is listed under "Not measured"). Ctrl-C stops everything.
 */

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

async function run(settings: BenchSettings): Promise<number> {
  const startedAt = performance.now();
  const loadAtStart = loadavg()[0] ?? 0;
  const machine = describeMachine();
  log(
    `bench (${settings.quick ? 'quick' : 'full'}): ${settings.scenarios.join(', ')}; ${machine.cores} cores, Node ${machine.node}, Redis ${machine.redis}`,
  );
  const harness = await BenchHarness.start({
    primaries: settings.primaries,
    replicasPerPrimary: settings.replicasPerPrimary,
    log,
    dumpDir: settings.dumpDir,
  });
  const stopOnSignal = () => {
    log('interrupted: stopping');
    harness.stop().then(
      () => process.exit(130),
      () => process.exit(130),
    );
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  process.once('exit', () => harness.killWorkersSync());

  const failures: string[] = [];
  const attempt = async <T>(name: string, body: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await body();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log(`${name} could not run: ${reason}`);
      failures.push(`${name}: ${reason}`);
      return undefined;
    }
  };
  let results: BenchResults;
  try {
    // Every worker scenario runs the bundle the image ships (bench/worker-bundle.ts).
    log('bundling the worker (worker/bundle.ts) and the bench handlers');
    await buildWorkerBundle();
    const fanIn = settings.scenarios.includes('fan-in')
      ? await attempt('fan-in', () => runFanIn(harness, settings))
      : undefined;
    const maxRate = settings.scenarios.includes('max-rate')
      ? await attempt('max-rate', () => runMaxRate(harness, settings))
      : undefined;
    let handover: BenchResults['handover'];
    if (settings.scenarios.includes('hand-over')) {
      const ours = await attempt('hand-over (keyspace-leader)', () =>
        runHandover(harness, settings, 'keyspace-leader'),
      );
      const seed = await attempt('hand-over (seed)', () => runHandover(harness, settings, 'seed'));
      handover = { ...(ours ? { ours } : {}), ...(seed ? { seed } : {}) };
    }
    const has = (s: (typeof settings.scenarios)[number]) => settings.scenarios.includes(s);
    // Before crash-loss: its highest sustained step gives crash-loss the rate at CRASH_LOSS_SHARE_OF_MAX.
    const threeWorkers = has('three-workers')
      ? await attempt('three-workers', () => runThreeWorkers(harness, settings))
      : undefined;
    const crashLoss = has('crash-loss')
      ? await attempt('crash-loss', () => runCrashLoss(harness, settings, threeWorkers?.sustainedPerSecond))
      : undefined;
    const cost = has('cost') ? await attempt('cost', () => runCost(harness, settings)) : undefined;
    const resources = has('resources')
      ? await attempt('resources', () => runResources(harness, settings))
      : undefined;
    const burst = has('burst') ? await attempt('burst', () => runBurst(harness, settings)) : undefined;
    const onTime = has('on-time') ? await attempt('on-time', () => runOnTime(harness, settings)) : undefined;
    results = {
      settings,
      burst,
      onTime,
      crashLoss,
      cost,
      resources,
      threeWorkers,
      machine,
      durationS: (performance.now() - startedAt) / 1000,
      fanIn,
      maxRate,
      handover,
      failures,
      loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
    };
  } finally {
    await harness.stop();
  }
  process.stdout.write('\n');
  for (const line of renderConsole(results)) process.stdout.write(`${line}\n`);
  if (settings.write) {
    const path = resolve(ROOT, settings.out);
    mkdirSync(dirname(path), { recursive: true });
    const fresh = renderMarkdown(results);
    // A run of some sections keeps the other sections of the existing report.
    const partial = settings.scenarios.length < SCENARIOS.length;
    writeFileSync(
      path,
      partial && existsSync(path) ? mergeReports(readFileSync(path, 'utf8'), fresh) : fresh,
    );
    process.stdout.write(`\nwrote ${path}\n`);
    // The charts the report links to, from the results of the sections it shows (kept ones included).
    const charts = new BenchCharts(path);
    const shown = charts.saveResults(results, partial);
    process.stdout.write(`wrote ${charts.resultsPath}\n`);
    try {
      for (const written of await charts.write(shown)) process.stdout.write(`wrote ${written}\n`);
    } catch (error) {
      // The figures are written; a chart that cannot be drawn is reported, and `npm run bench:charts`
      // draws it again from the saved results once fixed.
      process.stdout.write(
        `charts could not be rendered: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    }
  }
  return 0;
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseBenchArgs>;
  try {
    parsed = parseBenchArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof BenchArgumentsError)) throw error;
    process.stderr.write(`npm run bench: ${error.message}\n`);
    return 64;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return 0;
  }
  return run(parsed.settings);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `npm run bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
