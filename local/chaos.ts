import { ChaosHarness } from './chaos/chaos-harness.ts';
import { formatChaosReport } from './chaos/chaos-report.ts';
import { ChaosClusterShapeError, type ChaosResult, defaultRunSettings } from './chaos/chaos-run.ts';
import { CLUSTER_PROFILES } from './chaos/chaos-scenario.ts';
import { CHAOS_SCENARIOS, findScenario } from './chaos/chaos-scenarios.ts';
import { ChaosArgumentsError, chaosHelpText, parseChaosArgs } from './chaos/parse-chaos-args.ts';

/**
 * `npm run chaos -- <scenario | all> [--rate N] [--duration S] [--json] [--list]` (docs/chaos.md).
 *
 * Starts an embedded cluster of the scenario's profile, runs the scenario (3 workers, key generator,
 * reference subscribers, the fault), prints the figures and verdicts, and stops everything. `all`
 * runs every scenario, one cluster per profile. Ctrl-C stops the run in order (workers, restore,
 * cluster); a second Ctrl-C exits at once (the cluster's exit hook and the workers' parent-watch
 * still remove every process). Exit code: 0 every guarantee held, 1 one failed or a run broke,
 * 64 bad arguments, 130/143 interrupted.
 */

const EXIT_USAGE = 64;
const names = CHAOS_SCENARIOS.map((s) => s.name);

async function main(): Promise<number> {
  let command: ReturnType<typeof parseChaosArgs>;
  try {
    command = parseChaosArgs(process.argv.slice(2), names);
  } catch (error) {
    if (!(error instanceof ChaosArgumentsError)) throw error;
    process.stderr.write(`npm run chaos: ${error.problems.join('\n  ')}\nTry: npm run chaos -- --help\n`);
    return EXIT_USAGE;
  }
  if (command.kind === 'help') {
    process.stdout.write(chaosHelpText(names));
    return 0;
  }
  if (command.kind === 'list') {
    for (const scenario of CHAOS_SCENARIOS) {
      process.stdout.write(
        `${scenario.name} (${scenario.profile}, ${scenario.defaultRate ?? 200} keys/s, ${scenario.defaultDurationS} s)\n` +
          `  ${scenario.summary}\n  proves: ${scenario.proves}\n`,
      );
    }
    return 0;
  }

  const progress = command.json ? process.stderr : process.stdout;
  const log = (line: string) => progress.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`);
  const controller = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted !== undefined) process.exit(signal === 'SIGINT' ? 130 : 143);
    interrupted = signal;
    log(`${signal}: stopping (again to exit at once)`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results: ChaosResult[] = [];
  const broken: string[] = [];
  const scenarios = command.scenarios.map((name) => findScenario(name)).filter((s) => s !== undefined);
  for (const profileName of [...new Set(scenarios.map((s) => s.profile))]) {
    if (controller.signal.aborted) break;
    const harness = await ChaosHarness.start(CLUSTER_PROFILES[profileName], {
      log,
      signal: controller.signal,
    });
    try {
      for (const scenario of scenarios.filter((s) => s.profile === profileName)) {
        if (controller.signal.aborted) break;
        const settings = defaultRunSettings(scenario, { rate: command.rate, durationS: command.durationS });
        try {
          const result = await harness.run(scenario, settings);
          results.push(result);
          if (!command.json) for (const line of formatChaosReport(result)) process.stdout.write(`${line}\n`);
        } catch (error) {
          broken.push(scenario.name);
          if (controller.signal.aborted) {
            log(`${scenario.name}: interrupted; workers stopped, stopping the cluster`);
            break;
          }
          log(
            `${scenario.name} could not complete: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
          );
          // A cluster that could not be put back in shape cannot host the next scenario.
          if (error instanceof ChaosClusterShapeError) break;
        }
      }
    } finally {
      await harness.close();
    }
  }
  if (command.json) {
    process.stdout.write(
      `${JSON.stringify({ ok: broken.length === 0 && results.every((r) => r.ok), broken, results }, null, 2)}\n`,
    );
  } else if (results.length > 1 || broken.length > 0) {
    process.stdout.write('\nsummary:\n');
    for (const result of results)
      process.stdout.write(`  ${result.ok ? 'PASS' : 'FAIL'} ${result.scenario}\n`);
    for (const name of broken) process.stdout.write(`  BROKEN ${name}\n`);
  }
  if (interrupted !== undefined) return interrupted === 'SIGINT' ? 130 : 143;
  return broken.length === 0 && results.every((r) => r.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `npm run chaos failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
