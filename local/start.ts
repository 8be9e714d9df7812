import { fileURLToPath } from 'node:url';
import { LocalRunner } from './runner/local-runner.ts';
import { parseRunnerArgs, RunnerArgumentsError } from './runner/parse-args.ts';

/**
 * `npm start` (`tsx local/start.ts`): the whole system on an embedded Redis Cluster with a live view.
 * `npm start -- --help` lists the options; docs/local-run.md describes what it shows and guarantees.
 */

const EXIT_USAGE = 64;

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseRunnerArgs>;
  try {
    parsed = parseRunnerArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof RunnerArgumentsError)) throw error;
    process.stderr.write(`npm start: ${error.problems.join('\n  ')}\nTry: npm start -- --help\n`);
    return EXIT_USAGE;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return 0;
  }
  // The live view needs a terminal on both ends: without one, status lines instead.
  const interactive = process.stdout.isTTY === true && process.stdin.isTTY === true;
  const options = interactive ? parsed.options : { ...parsed.options, plain: true };
  const root = fileURLToPath(new URL('..', import.meta.url));
  const runner = new LocalRunner(options, {
    stdout: process.stdout,
    stdin: process.stdin,
    cwd: root,
    // Tests only: where a --tls run writes its generated passwords (see RunnerIO.testSecretsFile).
    testSecretsFile: process.env.KL_TEST_SECRETS_FILE || undefined,
  });
  return runner.run();
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `npm start failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
