import { parseArgs } from 'node:util';
import { z } from 'zod';
import { KeyspaceLeaderError } from '../../core/errors.ts';

/**
 * Command line of `npm start` (local/start.ts), parsed once. Pure: no process state is read here;
 * the caller decides about TTYs (a non-TTY stdout implies `--plain`).
 */

export interface RunnerOptions {
  /** Status lines every few seconds instead of the live view. */
  readonly plain: boolean;
  /** Stop by itself after this many seconds of generating keys; undefined runs until `q` / Ctrl-C. */
  readonly forSeconds: number | undefined;
  readonly workers: number;
  readonly primaries: number;
  readonly replicasPerPrimary: number;
  /** Keys set per second by the generator (changeable at run time with `+` / `-`). */
  readonly keysPerSecond: number;
  /** TTL of every generated key. */
  readonly keyTtlMs: number;
  readonly leaderName: string;
  /** HANDLER of the workers: `log`, `stream` or a module path. */
  readonly handler: string;
  /** Seconds between two status blocks in plain mode. */
  readonly plainIntervalSeconds: number;
  /**
   * TLS-only cluster with the default user disabled; the workers and the check authenticate as ACL
   * users whose passwords are generated for this run.
   */
  readonly tls: boolean;
  /**
   * Background keys `volatile:<n>` with a 1 h TTL loaded before the workers start and deleted at the
   * end (local/runner/volatile-keys.ts): volatile keys that slow Redis' native expiry. 0: none.
   */
  readonly volatileKeys: number;
}

export type ParsedCommandLine =
  | { readonly kind: 'run'; readonly options: RunnerOptions }
  | { readonly kind: 'help'; readonly text: string };

/** Invalid command line; every problem is listed at once. */
export class RunnerArgumentsError extends KeyspaceLeaderError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super('RUNNER_ARGUMENTS_INVALID', `invalid arguments: ${problems.join('; ')}`, options);
    this.problems = problems;
  }
}

export const DEFAULT_RUNNER_OPTIONS: RunnerOptions = {
  plain: false,
  forSeconds: undefined,
  workers: 3,
  primaries: 3,
  replicasPerPrimary: 1,
  keysPerSecond: 50,
  keyTtlMs: 1000,
  leaderName: 'local',
  handler: 'log',
  plainIntervalSeconds: 3,
  tls: false,
  volatileKeys: 0,
};

/** Most background keys `--volatile` loads. */
export const MAX_VOLATILE_KEYS = 1_000_000;

/** Highest generator rate accepted (the reference measured ~30k SET/s as this machine's ceiling). */
export const MAX_KEYS_PER_SECOND = 50_000;

export const HELP_TEXT = `npm start -- [options]

Runs the whole system on an embedded Redis Cluster: notifications enabled on every node, workers as
child processes, a key generator, and a live view. Ctrl-C or q stops everything and removes every
process and file it started.

Options:
  --plain               status lines every few seconds instead of the live view
                        (implied when stdout is not a terminal)
  --for <seconds>       stop by itself after this many seconds of generating keys
  --workers <n>         worker processes (default ${DEFAULT_RUNNER_OPTIONS.workers}, 1-9)
  --primaries <n>       cluster primaries (default ${DEFAULT_RUNNER_OPTIONS.primaries}, 1-8)
  --replicas <n>        replicas per primary (default ${DEFAULT_RUNNER_OPTIONS.replicasPerPrimary}, 0-2)
  --rate <n>            keys set per second (default ${DEFAULT_RUNNER_OPTIONS.keysPerSecond}, 0-${MAX_KEYS_PER_SECOND})
  --ttl-ms <ms>         TTL of each generated key (default ${DEFAULT_RUNNER_OPTIONS.keyTtlMs})
  --leader-name <name>  LEADER_NAME of the workers (default ${DEFAULT_RUNNER_OPTIONS.leaderName})
  --handler <h>         HANDLER of the workers: log, stream or a module path (default log)
  --interval <seconds>  seconds between status blocks with --plain (default ${DEFAULT_RUNNER_OPTIONS.plainIntervalSeconds})
  --tls                 TLS-only cluster, default user disabled; the workers and the check use ACL
                        users (worker, check) with passwords generated for this run, never printed
  --volatile <n>        load n background keys volatile:<n> with a 1 h TTL before the workers start
                        (they slow Redis' native expiry), delete them at the end (default 0, 0-${MAX_VOLATILE_KEYS})
  -h, --help            this text

Keys in the live view:
  k  kill the leader (SIGKILL)       t  stop the leader gracefully (SIGTERM)
  f  fail over a primary             +/-  change the key rate
  q  quit (also Ctrl-C)
A worker that exits is replaced by a new one, as ECS would.
`;

const wholeNumber = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `--${name} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `--${name} must be >= ${min}`).max(max, `--${name} must be <= ${max}`));

const positiveSeconds = (name: string, max: number) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, `--${name} must be a number of seconds`)
    .transform(Number)
    .pipe(z.number().gt(0, `--${name} must be > 0`).max(max, `--${name} must be <= ${max}`));

const schema = z.object({
  plain: z.boolean().default(DEFAULT_RUNNER_OPTIONS.plain),
  tls: z.boolean().default(DEFAULT_RUNNER_OPTIONS.tls),
  for: positiveSeconds('for', 7 * 24 * 3600).optional(),
  workers: wholeNumber('workers', 1, 9).default(DEFAULT_RUNNER_OPTIONS.workers),
  primaries: wholeNumber('primaries', 1, 8).default(DEFAULT_RUNNER_OPTIONS.primaries),
  replicas: wholeNumber('replicas', 0, 2).default(DEFAULT_RUNNER_OPTIONS.replicasPerPrimary),
  rate: wholeNumber('rate', 0, MAX_KEYS_PER_SECOND).default(DEFAULT_RUNNER_OPTIONS.keysPerSecond),
  'ttl-ms': wholeNumber('ttl-ms', 1, 3_600_000).default(DEFAULT_RUNNER_OPTIONS.keyTtlMs),
  'leader-name': z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, '--leader-name must be 1-64 characters of A-Z a-z 0-9 _ . -')
    .default(DEFAULT_RUNNER_OPTIONS.leaderName),
  handler: z.string().min(1, '--handler must not be empty').default(DEFAULT_RUNNER_OPTIONS.handler),
  interval: positiveSeconds('interval', 3600).default(DEFAULT_RUNNER_OPTIONS.plainIntervalSeconds),
  volatile: wholeNumber('volatile', 0, MAX_VOLATILE_KEYS).default(DEFAULT_RUNNER_OPTIONS.volatileKeys),
  help: z.boolean().default(false),
});

const STRING_OPTIONS = [
  'for',
  'workers',
  'primaries',
  'replicas',
  'rate',
  'ttl-ms',
  'leader-name',
  'handler',
  'interval',
  'volatile',
] as const;

/** Parses `argv` (without node and script). Throws RunnerArgumentsError listing every problem. */
export function parseRunnerArgs(argv: readonly string[]): ParsedCommandLine {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        plain: { type: 'boolean' },
        tls: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(STRING_OPTIONS.map((name) => [name, { type: 'string' as const }])),
      },
    }));
  } catch (error) {
    // node:util reports one problem at a time, with a code (ERR_PARSE_ARGS_*) and a readable message.
    throw new RunnerArgumentsError([error instanceof Error ? error.message : String(error)], {
      cause: error,
    });
  }
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    throw new RunnerArgumentsError(parsed.error.issues.map((issue) => issue.message));
  }
  const v = parsed.data;
  if (v.help) return { kind: 'help', text: HELP_TEXT };
  return {
    kind: 'run',
    options: {
      plain: v.plain,
      forSeconds: v.for,
      workers: v.workers,
      primaries: v.primaries,
      replicasPerPrimary: v.replicas,
      keysPerSecond: v.rate,
      keyTtlMs: v['ttl-ms'],
      leaderName: v['leader-name'],
      handler: v.handler,
      plainIntervalSeconds: v.interval,
      tls: v.tls,
      volatileKeys: v.volatile,
    },
  };
}
