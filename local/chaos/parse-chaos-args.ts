import { parseArgs } from 'node:util';
import { KeyspaceLeaderError } from '../../core/errors.ts';

/**
 * Command line of `npm run chaos` (local/chaos.ts), parsed once. Pure: the scenario names are given.
 *
 *   npm run chaos -- <scenario | all> [--rate N] [--duration S] [--json]
 *   npm run chaos -- --list
 */

export type ChaosCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'list' }
  | {
      readonly kind: 'run';
      readonly scenarios: readonly string[];
      /** Keys per second; undefined: the scenario's default (200, slow-handler 2000). */
      readonly rate: number | undefined;
      readonly durationS: number | undefined;
      readonly json: boolean;
    };

export class ChaosArgumentsError extends KeyspaceLeaderError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('CHAOS_ARGUMENTS_INVALID', `invalid arguments: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

export const MAX_RATE = 20_000;
export const MAX_DURATION_S = 600;

export function chaosHelpText(scenarioNames: readonly string[]): string {
  return `npm run chaos -- <scenario | all> [options]

Runs a chaos scenario on an embedded Redis Cluster with 3 workers and a key generator, and prints
expected / processed / lost / duplicates / longest gap / leader changes / fencing order. Exit code 0
when every guarantee held, 1 when one failed.

Scenarios: ${scenarioNames.join(', ')}

Options:
  --rate <n>        keys set per second (default 200; slow-handler 2000), 1-${MAX_RATE}
  --duration <s>    seconds of keys (default per scenario, 8-14), 1-${MAX_DURATION_S}
  --json            print the results as JSON on stdout (progress goes to stderr)
  --list            list the scenarios with what each proves
  -h, --help        this text
`;
}

function positiveNumber(
  name: string,
  text: string | undefined,
  max: number,
  integer: boolean,
  problems: string[],
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > max || (integer && !Number.isInteger(value))) {
    problems.push(
      `--${name} must be ${integer ? 'an integer' : 'a number'} in (0, ${max}], got ${JSON.stringify(text)}`,
    );
    return undefined;
  }
  return value;
}

export function parseChaosArgs(argv: readonly string[], scenarioNames: readonly string[]): ChaosCommand {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        rate: { type: 'string' },
        duration: { type: 'string' },
        json: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new ChaosArgumentsError([error instanceof Error ? error.message : String(error)]);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return { kind: 'help' };
  if (values.list === true) return { kind: 'list' };
  const problems: string[] = [];
  const rate = positiveNumber('rate', values.rate as string | undefined, MAX_RATE, true, problems);
  const durationS = positiveNumber(
    'duration',
    values.duration as string | undefined,
    MAX_DURATION_S,
    false,
    problems,
  );
  let scenarios: string[] = [];
  if (positionals.length === 0) problems.push(`name a scenario (${scenarioNames.join(', ')}) or all`);
  else if (positionals.length > 1)
    problems.push(`one scenario at a time (or all), got ${positionals.join(' ')}`);
  else if (positionals[0] === 'all') scenarios = [...scenarioNames];
  else if (scenarioNames.includes(positionals[0] as string)) scenarios = [positionals[0] as string];
  else
    problems.push(
      `unknown scenario ${JSON.stringify(positionals[0])}; one of ${scenarioNames.join(', ')}, or all`,
    );
  if (problems.length > 0) throw new ChaosArgumentsError(problems);
  return { kind: 'run', scenarios, rate, durationS, json: values.json === true };
}
