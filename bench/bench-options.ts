import { parseArgs } from 'node:util';
import { KeyspaceLeaderError } from '../core/errors.ts';

/** `npm run bench -- [options]`: which benchmarks, how long. Pure. */

export const SCENARIOS = [
  'fan-in',
  'max-rate',
  'hand-over',
  'crash-loss',
  'cost',
  'resources',
  'three-workers',
  'burst',
  'on-time',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchSettings {
  readonly quick: boolean;
  readonly scenarios: readonly Scenario[];
  /** Write the Markdown report (docs/benchmarks.md by default). */
  readonly write: boolean;
  readonly out: string;
  /** Diagnostics: each crash run writes its lost keys and its workers' lines (all but key.processed) here. */
  readonly dumpDir?: string | undefined;
  readonly primaries: number;
  readonly replicasPerPrimary: number;
  readonly keyTtlMs: number;
  readonly fanIn: { readonly keysPerSecond: number; readonly durationS: number; readonly workers: number };
  readonly maxRate: { readonly stepsPerSecond: readonly number[]; readonly stepS: number };
  readonly handover: { readonly runs: number; readonly keysPerSecond: number; readonly workers: number };
  /** Leader SIGKILL runs per rate, ours and the seed's, 3 workers. */
  readonly crashLoss: {
    readonly runs: number;
    readonly ratesPerSecond: readonly number[];
    readonly workers: number;
  };
  /**
   * On-time expiry (bench/on-time.ts): probes sharing one deadline among `backgroundSizes` other
   * volatile keys, beside native Redis; the leader SIGKILL, memory per tracked key, the cache's cost.
   */
  readonly onTime: OnTimeSettings;
  /** Keys sharing one deadline, one worker, no-op and log handlers. */
  readonly burst: { readonly keys: number };
  /** One fixed-rate step per variant (replay on, replay off, stream handler), the leader alone. */
  readonly cost: { readonly keysPerSecond: number; readonly durationS: number };
  /** Worker CPU and RSS per 1,000 events, 3 workers, replay on and off. */
  readonly resources: {
    readonly keysPerSecond: number;
    readonly durationS: number;
    readonly workers: number;
  };
  /**
   * Rising fixed-rate steps with all three workers running. The highest sustained step is the
   * "measured maximum" that crash-loss takes its CRASH_LOSS_SHARE_OF_MAX rate from, so the steps are
   * fine enough for that share to mean something.
   */
  readonly threeWorkers: {
    readonly stepsPerSecond: readonly number[];
    readonly stepS: number;
    readonly workers: number;
  };
}

export interface OnTimeSettings {
  /** Other volatile keys (1 h TTL) on the cluster, one measurement per size and variant. */
  readonly backgroundSizes: readonly number[];
  /** Probe keys sharing one deadline (PXAT) per measurement. */
  readonly probes: number;
  /** CPU quotas (vCPU, as Fargate's task sizes) the quota runs put one worker under. */
  readonly cpuQuotas: readonly number[];
  /**
   * Unmeasured bursts of `probes` between a worker's cold (first) and its warm burst: enough for V8 to
   * have optimized the path, as in a leader that has run a few minutes. Counted with --trace-opt
   * (by hand, 2026-12-03, 4 workers): TurboFan compiled 69-78 functions during a worker's 1st burst,
   * 25-34 during its 3rd (the warm burst of 2 warm-ups), 13-17 during its 6th, 5-7 during its 7th.
   */
  readonly warmUpBursts: number;
  /** EXPIRY_SCAN_KEYS_PER_S of the bench's workers. */
  readonly scanKeysPerS: number;
  /** How long native Redis is waited for after the probes' deadline, at most. */
  readonly nativeWaitS: number;
  /** Background keys during the leader SIGKILL measurement (3 workers). */
  readonly crashBackground: number;
  /** The probes' deadlines spread over this long after the SIGKILL. */
  readonly crashSpreadMs: number;
  /** The cache-side cost: TTL writes a second, for this long, with and without tracking. */
  readonly costWritesPerS: number;
  readonly costDurationS: number;
}

/** 1,000,000 background keys: only with --full. */
export const ON_TIME_FULL_SIZE = 1_000_000;

function onTimeSettings(quick: boolean, full: boolean): OnTimeSettings {
  return {
    backgroundSizes: [0, 10_000, 100_000, ...(full ? [ON_TIME_FULL_SIZE] : [])],
    probes: 1000,
    warmUpBursts: 6,
    cpuQuotas: [0.25, 0.5, 1],
    scanKeysPerS: 20_000,
    nativeWaitS: 60,
    crashBackground: 10_000,
    crashSpreadMs: 5000,
    costWritesPerS: 10_000,
    costDurationS: quick ? 5 : 10,
  };
}

export type ParsedBenchArgs =
  | { readonly kind: 'run'; readonly settings: BenchSettings }
  | { readonly kind: 'help'; readonly text: string };

export class BenchArgumentsError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BENCH_ARGUMENTS_INVALID', message, options);
  }
}

const FULL = {
  fanIn: { keysPerSecond: 5000, durationS: 30, workers: 1 },
  maxRate: { stepsPerSecond: [2000, 5000, 10_000, 15_000, 20_000, 30_000], stepS: 10 },
  handover: { runs: 5, keysPerSecond: 200, workers: 3 },
  crashLoss: { runs: 5, ratesPerSecond: [200, 2000, 5000, 10_000], workers: 3 },
  cost: { keysPerSecond: 5000, durationS: 10 },
  burst: { keys: 100_000 },
  resources: { keysPerSecond: 2000, durationS: 10, workers: 3 },
  threeWorkers: {
    stepsPerSecond: [2000, 4000, 6000, 7000, 8000, 9000, 10_000, 12_000, 15_000, 20_000, 30_000],
    stepS: 10,
    workers: 3,
  },
};

const QUICK = {
  fanIn: { keysPerSecond: 2000, durationS: 8, workers: 1 },
  maxRate: { stepsPerSecond: [2000, 8000], stepS: 4 },
  handover: { runs: 2, keysPerSecond: 200, workers: 3 },
  crashLoss: { runs: 3, ratesPerSecond: [200, 2000, 5000, 10_000], workers: 3 },
  cost: { keysPerSecond: 5000, durationS: 5 },
  burst: { keys: 100_000 },
  resources: { keysPerSecond: 2000, durationS: 5, workers: 3 },
  threeWorkers: { stepsPerSecond: [2000, 5000, 6500, 8000, 9500], stepS: 5, workers: 3 },
};

export const BENCH_HELP = `npm run bench -- [options]

Benchmarks on their own embedded Redis Cluster (3 primaries, 1 replica each). They print figures and
never fail on a slow machine; the report goes to docs/benchmarks.md. The full run takes ~15-20 minutes
on 2 cores.

  --quick            short version of every benchmark (~6-8 minutes), for trying it out
  --only <list>      comma-separated subset of: ${SCENARIOS.join(', ')}
                     (the report keeps the sections of the existing file that this run did not measure)
  --full             on-time: also 1,000,000 background volatile keys (adds ~5 minutes)
  --no-write         print only; do not write the report file
  --out <path>       report file (default docs/benchmarks.md)
  --dump <dir>       crash-loss diagnostics: per run, the lost keys and the workers' lines (not key.processed)
  -h, --help         this text
`;

export function parseBenchArgs(argv: readonly string[]): ParsedBenchArgs {
  let values: {
    quick?: boolean;
    full?: boolean;
    only?: string;
    'no-write'?: boolean;
    out?: string;
    dump?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean' },
        full: { type: 'boolean' },
        only: { type: 'string' },
        'no-write': { type: 'boolean' },
        out: { type: 'string' },
        dump: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new BenchArgumentsError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  if (values.help) return { kind: 'help', text: BENCH_HELP };
  let scenarios: Scenario[] = [...SCENARIOS];
  if (values.only !== undefined) {
    const asked = values.only
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const unknown = asked.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
    if (unknown.length > 0 || asked.length === 0) {
      throw new BenchArgumentsError(
        `--only takes a comma-separated subset of ${SCENARIOS.join(', ')}; got "${values.only}"`,
      );
    }
    scenarios = SCENARIOS.filter((s) => asked.includes(s));
  }
  const quick = values.quick === true;
  const sizes = quick ? QUICK : FULL;
  return {
    kind: 'run',
    settings: {
      quick,
      scenarios,
      write: values['no-write'] !== true,
      out: values.out ?? 'docs/benchmarks.md',
      dumpDir: values.dump,
      primaries: 3,
      replicasPerPrimary: 1,
      keyTtlMs: 1000,
      ...sizes,
      onTime: onTimeSettings(quick, values.full === true),
    },
  };
}
