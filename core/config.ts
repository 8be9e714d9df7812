import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import {
  EXPIRY_TOUCHER_DEFAULTS,
  HEALTH_DEFAULTS,
  KEY_FILTER_DEFAULTS,
  LEASE_DEFAULTS,
  NOTIFY_CHECK_DEFAULTS,
  PRECISE_EXPIRY_DEFAULTS,
  PROCESSOR_DEFAULTS,
  REPLAY_DEFAULTS,
  SHARED_DEFAULTS,
  VALUE_CAPTURE_DEFAULTS,
} from './defaults.ts';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { isValidLeaderName } from './keys.ts';
import type { LocalClusterFile } from './local-cluster-file.ts';

/**
 * Configuration, parsed once at start from the environment variables (README.md, "Configuration"). Every
 * problem is collected and reported together (ConfigError.issues); nothing connects before this
 * succeeds. Units are in the names.
 */

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

export interface RedisConnectionConfig {
  readonly nodes: readonly RedisNodeAddress[];
  readonly tls: boolean;
  readonly tlsCaFile: string | undefined;
  readonly username: string | undefined;
  /** Secret: never logged (the logger redacts it by name and by value). */
  readonly password: string | undefined;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface SharedConfig {
  readonly redis: RedisConnectionConfig;
  readonly leaderName: string;
  readonly logLevel: LogLevel;
  readonly metricsNamespace: string;
}

export type HandlerSpec =
  | { readonly kind: 'log' }
  | { readonly kind: 'stream' }
  | { readonly kind: 'module'; readonly path: string };

/**
 * Which completed handler calls get a `key.processed` line (PROCESSED_LOG). `handler.failed` lines
 * and the metrics (EventsProcessed, ProcessingLatencyMs) are not affected: they cover every call.
 * - `all`: one line per completed call.
 * - `failures`: no `key.processed` line at all.
 * - `sample`: one line per `everyN` completed calls: the 1st, the (everyN + 1)th, the
 *   (2 everyN + 1)th ... completed call of the worker process (a count kept by the processor from
 *   its start; failed calls are not counted). `everyN` 1 is `all`.
 * @default { mode: 'all' }
 */
export type ProcessedLogPolicy =
  | { readonly mode: 'all' }
  | { readonly mode: 'failures' }
  | { readonly mode: 'sample'; readonly everyN: number };

/** Largest N of PROCESSED_LOG=sample:N. */
export const PROCESSED_LOG_MAX_SAMPLE_EVERY = 1_000_000;

export interface LeaseTimings {
  readonly leaseTtlMs: number;
  readonly leaseRenewIntervalMs: number;
  readonly leaseRenewDeadlineMs: number;
  readonly leaseRetryMs: number;
}

export interface WorkerConfig extends SharedConfig, LeaseTimings {
  /** Explicit WORKER_ID; when undefined main.ts derives one (ECS task ARN, else hostname-pid). */
  readonly workerId: string | undefined;
  readonly handler: HandlerSpec;
  readonly handlerConcurrency: number;
  /**
   * Events the processor queue holds at most (HANDLER_QUEUE_CAPACITY). The queue is filled only while
   * it has room (the leader's backlog waits in the replay window, whatever REPLAY_WINDOW_MS).
   * @default 10000 (PROCESSOR_DEFAULTS.handlerQueueCapacity)
   */
  readonly handlerQueueCapacity: number;
  readonly handlerTimeoutMs: number;
  readonly keyPattern: string;
  /** Port of the local health endpoint (`GET /healthz`) on 127.0.0.1; 0 disables it. */
  readonly healthPort: number;
  /**
   * How long every worker keeps received events for a replay after a change of leader; 0: a follower
   * keeps nothing, so nothing is replayed (the path, the marks and the ids stay the same).
   */
  readonly replayWindowMs: number;
  /** Memory bound of the replay window, in events per primary; overflow is counted as shed. */
  readonly replayMaxEvents: number;
  /**
   * Which completed calls get a `key.processed` line (PROCESSED_LOG=all|failures|sample:N).
   * @default { mode: 'all' }
   */
  readonly processedLog: ProcessedLogPolicy;
  /**
   * On-time expiry (PRECISE_EXPIRY): the deadline index, the toucher and the keyspace scan.
   * @default true
   */
  readonly preciseExpiry: boolean;
  /** Keys the deadline index holds at most (EXPIRY_TRACK_MAX_KEYS). @default 1000000 */
  readonly expiryTrackMaxKeys: number;
  /** Keys the keyspace scan reads per second, all primaries together (EXPIRY_SCAN_KEYS_PER_S). @default 5000 */
  readonly expiryScanKeysPerS: number;
  /**
   * Value capture, as it takes effect: CAPTURE_VALUES and PRECISE_EXPIRY both true (values are read
   * just before the deadlines that on-time expiry tracks; without it nobody knows when to read, and
   * every event says `capture-off`). PRECISE_EXPIRY=false turns capture off without an error, so
   * turning on-time expiry off needs one variable, not two.
   * @default true
   */
  readonly captureValues: boolean;
  /** How long before a tracked key's deadline the leader reads its value (EXPIRY_READ_AHEAD_MS). @default 20 */
  readonly expiryReadAheadMs: number;
  /** A value over this many payload bytes is not read, `too-large` (VALUE_MAX_BYTES). @default 65536 */
  readonly valueMaxBytes: number;
  /**
   * Bytes held values and reads in flight take at most, as worker/expiry/held-values.ts charges them
   * (VALUE_BUDGET_BYTES). @default 67108864 (64 MiB)
   */
  readonly valueBudgetBytes: number;
}

export type NotifyMode = 'auto' | 'config' | 'parameter-group';

export interface ReportConfig extends SharedConfig {
  readonly notifyMode: NotifyMode;
  readonly replicationGroupId: string | undefined;
  readonly ecsCluster: string | undefined;
  readonly ecsService: string | undefined;
  /** Bound on the wait for one canary's `expired` event. */
  readonly canaryTimeoutMs: number;
  /**
   * PRECISE_EXPIRY: the flags enforced are `E`, `g` and `x` when true (the workers need `expire` and
   * `expired` events), `E` and `x` when false.
   * @default true
   */
  readonly preciseExpiry: boolean;
}

/** The lease timings' defaults (core/defaults.ts LEASE_DEFAULTS). */
export const DEFAULT_LEASE_TIMINGS: LeaseTimings = LEASE_DEFAULTS;

/**
 * The default of every environment variable that has one, read from the components' DEFAULTS
 * (core/defaults.ts): the schemas below use these, and the README's "Configuration" table states the
 * same values (test/unit/core/config-defaults-docs.test.ts).
 */
export const ENV_DEFAULTS = {
  REDIS_TLS: SHARED_DEFAULTS.redisTls,
  LEADER_NAME: SHARED_DEFAULTS.leaderName,
  LOG_LEVEL: SHARED_DEFAULTS.logLevel,
  METRICS_NAMESPACE: SHARED_DEFAULTS.metricsNamespace,
  LEASE_TTL_MS: LEASE_DEFAULTS.leaseTtlMs,
  LEASE_RENEW_INTERVAL_MS: LEASE_DEFAULTS.leaseRenewIntervalMs,
  LEASE_RENEW_DEADLINE_MS: LEASE_DEFAULTS.leaseRenewDeadlineMs,
  LEASE_RETRY_MS: LEASE_DEFAULTS.leaseRetryMs,
  HANDLER: PROCESSOR_DEFAULTS.handler,
  HANDLER_CONCURRENCY: PROCESSOR_DEFAULTS.handlerConcurrency,
  HANDLER_QUEUE_CAPACITY: PROCESSOR_DEFAULTS.handlerQueueCapacity,
  HANDLER_TIMEOUT_MS: PROCESSOR_DEFAULTS.handlerTimeoutMs,
  KEY_PATTERN: KEY_FILTER_DEFAULTS.keyPattern,
  HEALTH_PORT: HEALTH_DEFAULTS.healthPort,
  REPLAY_WINDOW_MS: REPLAY_DEFAULTS.replayWindowMs,
  REPLAY_MAX_EVENTS: REPLAY_DEFAULTS.replayMaxEvents,
  PROCESSED_LOG: PROCESSOR_DEFAULTS.processedLog,
  PRECISE_EXPIRY: PRECISE_EXPIRY_DEFAULTS.preciseExpiry,
  EXPIRY_TRACK_MAX_KEYS: PRECISE_EXPIRY_DEFAULTS.expiryTrackMaxKeys,
  EXPIRY_SCAN_KEYS_PER_S: PRECISE_EXPIRY_DEFAULTS.expiryScanKeysPerS,
  CAPTURE_VALUES: VALUE_CAPTURE_DEFAULTS.captureValues,
  EXPIRY_READ_AHEAD_MS: VALUE_CAPTURE_DEFAULTS.expiryReadAheadMs,
  VALUE_MAX_BYTES: VALUE_CAPTURE_DEFAULTS.valueMaxBytes,
  VALUE_BUDGET_BYTES: VALUE_CAPTURE_DEFAULTS.valueBudgetBytes,
  NOTIFY_MODE: NOTIFY_CHECK_DEFAULTS.notifyMode,
  CANARY_TIMEOUT_MS: NOTIFY_CHECK_DEFAULTS.canaryTimeoutMs,
} as const;

export type Env = Readonly<Record<string, string | undefined>>;

export interface ParseOptions {
  /** Used for REDIS_NODES (and TLS) when REDIS_NODES is unset: the cluster `npm start` runs. */
  readonly localCluster?: LocalClusterFile | undefined;
  /** Directory that relative paths (HANDLER module, CA file) are resolved against. */
  readonly cwd?: string;
  /**
   * The password comes from elsewhere than REDIS_PASSWORD (the Lambda reads it from Secrets Manager),
   * so REDIS_USERNAME without REDIS_PASSWORD is not a mistake.
   */
  readonly passwordFromSecret?: boolean;
}

const emptyToUndefined = (value: unknown) => (value === '' ? undefined : value);

const integerMs = (
  name: string,
  min: number,
  fallback: number,
  max = 3_600_000,
  maxMessage = `${name} must be <= 3600000 (1 h)`,
) =>
  z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^\d+$/, `${name} must be a whole number of milliseconds`)
      .transform(Number)
      .pipe(z.number().int().min(min, `${name} must be >= ${min}`).max(max, maxMessage))
      .default(fallback),
  );

const integer = (name: string, min: number, max: number, fallback: number) =>
  z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^\d+$/, `${name} must be a whole number`)
      .transform(Number)
      .pipe(z.number().int().min(min, `${name} must be >= ${min}`).max(max, `${name} must be <= ${max}`))
      .default(fallback),
  );

/** Largest VALUE_MAX_BYTES: the read script blocks its primary (which may hold the lease) while it reads. */
export const VALUE_MAX_BYTES_LIMIT = 1_048_576;
/** Largest VALUE_BUDGET_BYTES (4 GiB). */
export const VALUE_BUDGET_BYTES_LIMIT = 4 * 1024 * 1024 * 1024;
/**
 * EXPIRY_READ_AHEAD_MS stays below the follower's backstop delay (EXPIRY_TOUCHER_DEFAULTS.followerDelayMs):
 * a follower's backstop touch of a key comes that long after the leader's time for it, so when the
 * leader's time moves earlier by the read-ahead, the backstop still lands after the deadline (a
 * touch before it does nothing), and the value is never older than that delay.
 */
export const EXPIRY_READ_AHEAD_MAX_MS = EXPIRY_TOUCHER_DEFAULTS.followerDelayMs - 1;

const PROCESSED_LOG_MESSAGE = `PROCESSED_LOG must be all, failures or sample:N (N a whole number 1-${PROCESSED_LOG_MAX_SAMPLE_EVERY})`;

/** PROCESSED_LOG: `all` (default), `failures` or `sample:N`. */
const processedLog = z.preprocess(
  emptyToUndefined,
  z
    .string()
    .regex(/^(?:all|failures|sample:\d{1,7})$/, PROCESSED_LOG_MESSAGE)
    .transform((text): ProcessedLogPolicy => {
      if (text === 'all' || text === 'failures') return { mode: text };
      return { mode: 'sample', everyN: Number(text.slice('sample:'.length)) };
    })
    .refine(
      (policy) =>
        policy.mode !== 'sample' || (policy.everyN >= 1 && policy.everyN <= PROCESSED_LOG_MAX_SAMPLE_EVERY),
      PROCESSED_LOG_MESSAGE,
    )
    .default({ mode: ENV_DEFAULTS.PROCESSED_LOG }),
);

const optionalString = z.preprocess(emptyToUndefined, z.string().optional());

const booleanFlag = (name: string, fallback: boolean) =>
  z.preprocess(
    emptyToUndefined,
    z
      .enum(['true', 'false', '1', '0'], { message: `${name} must be true or false` })
      .transform((v) => v === 'true' || v === '1')
      .default(fallback),
  );

const sharedSchema = z.object({
  REDIS_NODES: optionalString,
  REDIS_TLS: booleanFlag('REDIS_TLS', ENV_DEFAULTS.REDIS_TLS),
  REDIS_TLS_CA_FILE: optionalString,
  REDIS_USERNAME: optionalString,
  REDIS_PASSWORD: optionalString,
  LEADER_NAME: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .refine(
        isValidLeaderName,
        'LEADER_NAME must be 1-64 characters of A-Z a-z 0-9 _ . - (it becomes part of a hash tag)',
      )
      .default(ENV_DEFAULTS.LEADER_NAME),
  ),
  LOG_LEVEL: z.preprocess(
    (v) => (typeof v === 'string' && v !== '' ? v.toLowerCase() : undefined),
    z
      .enum(['debug', 'info', 'warn', 'error'], {
        message: 'LOG_LEVEL must be one of debug, info, warn, error',
      })
      .default(ENV_DEFAULTS.LOG_LEVEL),
  ),
  METRICS_NAMESPACE: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(
        /^[A-Za-z0-9_./#:-]{1,255}$/,
        'METRICS_NAMESPACE must be 1-255 characters of A-Z a-z 0-9 . - _ / # :',
      )
      .default(ENV_DEFAULTS.METRICS_NAMESPACE),
  ),
});

const workerSchema = sharedSchema.extend({
  WORKER_ID: z.preprocess(
    emptyToUndefined,
    z.string().max(512, 'WORKER_ID must be at most 512 characters').optional(),
  ),
  LEASE_TTL_MS: integerMs('LEASE_TTL_MS', 1, ENV_DEFAULTS.LEASE_TTL_MS),
  LEASE_RENEW_INTERVAL_MS: integerMs('LEASE_RENEW_INTERVAL_MS', 1, ENV_DEFAULTS.LEASE_RENEW_INTERVAL_MS),
  LEASE_RENEW_DEADLINE_MS: integerMs('LEASE_RENEW_DEADLINE_MS', 1, ENV_DEFAULTS.LEASE_RENEW_DEADLINE_MS),
  LEASE_RETRY_MS: integerMs('LEASE_RETRY_MS', 1, ENV_DEFAULTS.LEASE_RETRY_MS),
  HANDLER: z.preprocess(emptyToUndefined, z.string().default(ENV_DEFAULTS.HANDLER)),
  HANDLER_CONCURRENCY: integer('HANDLER_CONCURRENCY', 1, 10_000, ENV_DEFAULTS.HANDLER_CONCURRENCY),
  HANDLER_QUEUE_CAPACITY: integer(
    'HANDLER_QUEUE_CAPACITY',
    1,
    1_000_000,
    ENV_DEFAULTS.HANDLER_QUEUE_CAPACITY,
  ),
  HANDLER_TIMEOUT_MS: integerMs('HANDLER_TIMEOUT_MS', 1, ENV_DEFAULTS.HANDLER_TIMEOUT_MS),
  KEY_PATTERN: z.preprocess(
    emptyToUndefined,
    z.string().max(1024, 'KEY_PATTERN must be at most 1024 characters').default(ENV_DEFAULTS.KEY_PATTERN),
  ),
  HEALTH_PORT: integer('HEALTH_PORT', 0, 65535, ENV_DEFAULTS.HEALTH_PORT),
  REPLAY_WINDOW_MS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^\d+$/, 'REPLAY_WINDOW_MS must be a whole number of milliseconds (0: no replay)')
      .transform(Number)
      .pipe(z.number().int().max(600_000, 'REPLAY_WINDOW_MS must be <= 600000 (10 min)'))
      .default(ENV_DEFAULTS.REPLAY_WINDOW_MS),
  ),
  REPLAY_MAX_EVENTS: integer('REPLAY_MAX_EVENTS', 100, 10_000_000, ENV_DEFAULTS.REPLAY_MAX_EVENTS),
  PROCESSED_LOG: processedLog,
  PRECISE_EXPIRY: booleanFlag('PRECISE_EXPIRY', ENV_DEFAULTS.PRECISE_EXPIRY),
  EXPIRY_TRACK_MAX_KEYS: integer(
    'EXPIRY_TRACK_MAX_KEYS',
    1000,
    100_000_000,
    ENV_DEFAULTS.EXPIRY_TRACK_MAX_KEYS,
  ),
  EXPIRY_SCAN_KEYS_PER_S: integer(
    'EXPIRY_SCAN_KEYS_PER_S',
    1,
    1_000_000,
    ENV_DEFAULTS.EXPIRY_SCAN_KEYS_PER_S,
  ),
  CAPTURE_VALUES: booleanFlag('CAPTURE_VALUES', ENV_DEFAULTS.CAPTURE_VALUES),
  EXPIRY_READ_AHEAD_MS: integerMs(
    'EXPIRY_READ_AHEAD_MS',
    1,
    ENV_DEFAULTS.EXPIRY_READ_AHEAD_MS,
    EXPIRY_READ_AHEAD_MAX_MS,
    `EXPIRY_READ_AHEAD_MS must be <= ${EXPIRY_READ_AHEAD_MAX_MS}: below the follower's backstop delay (${EXPIRY_TOUCHER_DEFAULTS.followerDelayMs} ms), so a follower's backstop touch still comes after the deadline`,
  ),
  VALUE_MAX_BYTES: integer('VALUE_MAX_BYTES', 1, VALUE_MAX_BYTES_LIMIT, ENV_DEFAULTS.VALUE_MAX_BYTES),
  VALUE_BUDGET_BYTES: integer(
    'VALUE_BUDGET_BYTES',
    1024,
    VALUE_BUDGET_BYTES_LIMIT,
    ENV_DEFAULTS.VALUE_BUDGET_BYTES,
  ),
});

const reportSchema = sharedSchema.extend({
  NOTIFY_MODE: z.preprocess(
    emptyToUndefined,
    z
      .enum(['auto', 'config', 'parameter-group'], {
        message: 'NOTIFY_MODE must be one of auto, config, parameter-group',
      })
      .default(ENV_DEFAULTS.NOTIFY_MODE),
  ),
  REPLICATION_GROUP_ID: optionalString,
  ECS_CLUSTER: optionalString,
  ECS_SERVICE: optionalString,
  CANARY_TIMEOUT_MS: integerMs('CANARY_TIMEOUT_MS', 50, ENV_DEFAULTS.CANARY_TIMEOUT_MS),
  PRECISE_EXPIRY: booleanFlag('PRECISE_EXPIRY', ENV_DEFAULTS.PRECISE_EXPIRY),
});

function zodIssues(error: z.ZodError): ConfigIssue[] {
  return error.issues.map((issue) => {
    const variable = String(issue.path[0] ?? '(environment)');
    const message =
      issue.code === 'invalid_type'
        ? `${variable} has an invalid value`
        : issue.message.replace(/^Invalid input: /, '');
    return { variable, message };
  });
}

/** Parses `host:port[,host:port...]`; IPv6 hosts in brackets (`[::1]:6379`). */
export function parseNodeList(text: string): { nodes: RedisNodeAddress[]; problems: string[] } {
  const nodes: RedisNodeAddress[] = [];
  const problems: string[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const match = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(entry);
    const port = match ? Number(match[3]) : Number.NaN;
    const host = match ? (match[1] ?? match[2]) : undefined;
    if (!host || !(port >= 1 && port <= 65535)) {
      problems.push(`"${entry}" is not host:port (port 1-65535)`);
      continue;
    }
    nodes.push({ host, port });
  }
  if (nodes.length === 0 && problems.length === 0) problems.push('no node given');
  return { nodes, problems };
}

/** A readable regular file (a directory passes access(2) but fails later with EISDIR). */
function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function parseShared(
  values: z.infer<typeof sharedSchema>,
  options: ParseOptions,
  issues: ConfigIssue[],
): SharedConfig {
  const cwd = options.cwd ?? process.cwd();
  let nodes: RedisNodeAddress[] = [];
  let tls = values.REDIS_TLS;
  let tlsCaFile = values.REDIS_TLS_CA_FILE;
  if (values.REDIS_NODES !== undefined) {
    const parsed = parseNodeList(values.REDIS_NODES);
    nodes = parsed.nodes;
    for (const problem of parsed.problems) {
      issues.push({
        variable: 'REDIS_NODES',
        message: `REDIS_NODES: ${problem}; expected host:port[,host:port...]`,
      });
    }
  } else if (options.localCluster) {
    nodes = [...options.localCluster.nodes];
    tls = tls || options.localCluster.tls;
    tlsCaFile = tlsCaFile ?? options.localCluster.caFile;
  } else {
    issues.push({
      variable: 'REDIS_NODES',
      message:
        'REDIS_NODES is required: comma-separated host:port seeds of the cluster (or run `npm start` so .local/cluster.json exists)',
    });
  }
  if (tlsCaFile !== undefined) {
    tlsCaFile = isAbsolute(tlsCaFile) ? tlsCaFile : resolve(cwd, tlsCaFile);
    if (!tls)
      issues.push({
        variable: 'REDIS_TLS_CA_FILE',
        message: 'REDIS_TLS_CA_FILE is set but REDIS_TLS is not true',
      });
    if (!readable(tlsCaFile)) {
      issues.push({
        variable: 'REDIS_TLS_CA_FILE',
        message: `REDIS_TLS_CA_FILE ${tlsCaFile} does not exist or is not readable`,
      });
    }
  }
  if (
    values.REDIS_USERNAME !== undefined &&
    values.REDIS_PASSWORD === undefined &&
    !options.passwordFromSecret
  ) {
    issues.push({
      variable: 'REDIS_USERNAME',
      message: 'REDIS_USERNAME is set but REDIS_PASSWORD is not (ACL users need both)',
    });
  }
  return {
    redis: { nodes, tls, tlsCaFile, username: values.REDIS_USERNAME, password: values.REDIS_PASSWORD },
    leaderName: values.LEADER_NAME,
    logLevel: values.LOG_LEVEL,
    metricsNamespace: values.METRICS_NAMESPACE,
  };
}

/**
 * The lease timing rules across fields: TTL > renew deadline > renew interval, retry < TTL (that each
 * is a positive integer is checked per variable). The leader steps down at the renew deadline, before
 * its lease can have lapsed on any primary.
 */
export function leaseTimingIssues(t: LeaseTimings): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!(t.leaseRenewDeadlineMs < t.leaseTtlMs)) {
    issues.push({
      variable: 'LEASE_RENEW_DEADLINE_MS',
      message: `LEASE_RENEW_DEADLINE_MS (${t.leaseRenewDeadlineMs}) must be less than LEASE_TTL_MS (${t.leaseTtlMs}) so a leader steps down before its lease can lapse`,
    });
  }
  if (!(t.leaseRenewIntervalMs < t.leaseRenewDeadlineMs)) {
    issues.push({
      variable: 'LEASE_RENEW_INTERVAL_MS',
      message: `LEASE_RENEW_INTERVAL_MS (${t.leaseRenewIntervalMs}) must be less than LEASE_RENEW_DEADLINE_MS (${t.leaseRenewDeadlineMs}) so at least one renewal can be retried before the deadline`,
    });
  }
  if (!(t.leaseRetryMs < t.leaseTtlMs)) {
    issues.push({
      variable: 'LEASE_RETRY_MS',
      message: `LEASE_RETRY_MS (${t.leaseRetryMs}) must be less than LEASE_TTL_MS (${t.leaseTtlMs})`,
    });
  }
  return issues;
}

/**
 * The value capture rules across fields (that each is in range is checked per variable):
 * - VALUE_MAX_BYTES <= VALUE_BUDGET_BYTES: a value the size check lets through must be able to fit in
 *   the budget, else values between the two would be read for nothing, every time, and the two
 *   settings contradict each other.
 * Not rules: CAPTURE_VALUES=true with PRECISE_EXPIRY=false is not an error (capture is then off:
 * WorkerConfig.captureValues); the capture variables are checked even while capture is off, so a
 * wrong value is found before someone turns capture on.
 */
function valueCaptureIssues(v: { VALUE_MAX_BYTES?: number; VALUE_BUDGET_BYTES?: number }): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (
    v.VALUE_MAX_BYTES !== undefined &&
    v.VALUE_BUDGET_BYTES !== undefined &&
    v.VALUE_MAX_BYTES > v.VALUE_BUDGET_BYTES
  ) {
    issues.push({
      variable: 'VALUE_MAX_BYTES',
      message: `VALUE_MAX_BYTES (${v.VALUE_MAX_BYTES}) must be <= VALUE_BUDGET_BYTES (${v.VALUE_BUDGET_BYTES}): a value the size check lets through must fit in the budget of held values`,
    });
  }
  return issues;
}

function parseHandler(value: string, cwd: string, issues: ConfigIssue[]): HandlerSpec {
  if (value === 'log' || value === 'stream') return { kind: value };
  const path = isAbsolute(value) ? value : resolve(cwd, value);
  if (!readable(path)) {
    issues.push({
      variable: 'HANDLER',
      message: `HANDLER must be log, stream or the path of a readable module; ${path} does not exist or is not readable`,
    });
  }
  return { kind: 'module', path };
}

/**
 * Parses every field on its own so that one unreadable value does not hide the problems of the
 * others; returns the values that parsed (the rest are undefined) and records every issue.
 */
function parseFields<S extends z.ZodObject>(schema: S, env: Env, issues: ConfigIssue[]): Partial<z.infer<S>> {
  const values: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(schema.shape)) {
    const result = (field as z.ZodType).safeParse(env[name]);
    if (result.success) values[name] = result.data;
    else issues.push(...zodIssues(result.error).map((issue) => ({ ...issue, variable: name })));
  }
  return values as Partial<z.infer<S>>;
}

function sharedFrom(
  v: Partial<z.infer<typeof sharedSchema>>,
  options: ParseOptions,
  issues: ConfigIssue[],
): SharedConfig {
  return parseShared(
    {
      REDIS_NODES: v.REDIS_NODES,
      REDIS_TLS: v.REDIS_TLS ?? false,
      REDIS_TLS_CA_FILE: v.REDIS_TLS_CA_FILE,
      REDIS_USERNAME: v.REDIS_USERNAME,
      REDIS_PASSWORD: v.REDIS_PASSWORD,
      LEADER_NAME: v.LEADER_NAME ?? 'default',
      LOG_LEVEL: v.LOG_LEVEL ?? 'info',
      METRICS_NAMESPACE: v.METRICS_NAMESPACE ?? 'KeyspaceLeader',
    },
    options,
    issues,
  );
}

export function parseWorkerConfig(env: Env, options: ParseOptions = {}): WorkerConfig {
  const issues: ConfigIssue[] = [];
  const v = parseFields(workerSchema, env, issues);
  const shared = sharedFrom(v, options, issues);
  const { LEASE_TTL_MS, LEASE_RENEW_INTERVAL_MS, LEASE_RENEW_DEADLINE_MS, LEASE_RETRY_MS } = v;
  if (
    LEASE_TTL_MS !== undefined &&
    LEASE_RENEW_INTERVAL_MS !== undefined &&
    LEASE_RENEW_DEADLINE_MS !== undefined &&
    LEASE_RETRY_MS !== undefined
  ) {
    issues.push(
      ...leaseTimingIssues({
        leaseTtlMs: LEASE_TTL_MS,
        leaseRenewIntervalMs: LEASE_RENEW_INTERVAL_MS,
        leaseRenewDeadlineMs: LEASE_RENEW_DEADLINE_MS,
        leaseRetryMs: LEASE_RETRY_MS,
      }),
    );
  }
  if (
    v.REPLAY_WINDOW_MS !== undefined &&
    v.REPLAY_WINDOW_MS !== 0 &&
    LEASE_TTL_MS !== undefined &&
    LEASE_RETRY_MS !== undefined &&
    v.REPLAY_WINDOW_MS <= 2 * (LEASE_TTL_MS + LEASE_RETRY_MS)
  ) {
    issues.push({
      variable: 'REPLAY_WINDOW_MS',
      message: `REPLAY_WINDOW_MS (${v.REPLAY_WINDOW_MS}) must exceed twice the worst hand-over gap, 2 x (LEASE_TTL_MS + LEASE_RETRY_MS) = ${2 * (LEASE_TTL_MS + LEASE_RETRY_MS)}, or be 0 for no replay`,
    });
  }
  issues.push(...valueCaptureIssues(v));
  const handler =
    v.HANDLER === undefined ? undefined : parseHandler(v.HANDLER, options.cwd ?? process.cwd(), issues);
  if (issues.length > 0) throw new ConfigError(issues);
  const f = v as z.infer<typeof workerSchema>;
  return {
    ...shared,
    leaseTtlMs: f.LEASE_TTL_MS,
    leaseRenewIntervalMs: f.LEASE_RENEW_INTERVAL_MS,
    leaseRenewDeadlineMs: f.LEASE_RENEW_DEADLINE_MS,
    leaseRetryMs: f.LEASE_RETRY_MS,
    workerId: f.WORKER_ID,
    handler: handler as HandlerSpec,
    handlerConcurrency: f.HANDLER_CONCURRENCY,
    handlerQueueCapacity: f.HANDLER_QUEUE_CAPACITY,
    handlerTimeoutMs: f.HANDLER_TIMEOUT_MS,
    keyPattern: f.KEY_PATTERN,
    healthPort: f.HEALTH_PORT,
    replayWindowMs: f.REPLAY_WINDOW_MS,
    replayMaxEvents: f.REPLAY_MAX_EVENTS,
    processedLog: f.PROCESSED_LOG,
    preciseExpiry: f.PRECISE_EXPIRY,
    expiryTrackMaxKeys: f.EXPIRY_TRACK_MAX_KEYS,
    expiryScanKeysPerS: f.EXPIRY_SCAN_KEYS_PER_S,
    captureValues: f.CAPTURE_VALUES && f.PRECISE_EXPIRY,
    expiryReadAheadMs: f.EXPIRY_READ_AHEAD_MS,
    valueMaxBytes: f.VALUE_MAX_BYTES,
    valueBudgetBytes: f.VALUE_BUDGET_BYTES,
  };
}

export function parseReportConfig(env: Env, options: ParseOptions = {}): ReportConfig {
  const issues: ConfigIssue[] = [];
  const v = parseFields(reportSchema, env, issues);
  const shared = sharedFrom(v, options, issues);
  if (v.NOTIFY_MODE === 'parameter-group' && v.REPLICATION_GROUP_ID === undefined) {
    issues.push({
      variable: 'REPLICATION_GROUP_ID',
      message:
        'NOTIFY_MODE=parameter-group needs REPLICATION_GROUP_ID (the ElastiCache replication group id)',
    });
  }
  if ((v.ECS_CLUSTER === undefined) !== (v.ECS_SERVICE === undefined)) {
    issues.push({
      variable: 'ECS_SERVICE',
      message: 'ECS_CLUSTER and ECS_SERVICE must be set together (or both left unset)',
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const f = v as z.infer<typeof reportSchema>;
  return {
    ...shared,
    notifyMode: f.NOTIFY_MODE,
    replicationGroupId: f.REPLICATION_GROUP_ID,
    ecsCluster: f.ECS_CLUSTER,
    ecsService: f.ECS_SERVICE,
    canaryTimeoutMs: f.CANARY_TIMEOUT_MS,
    preciseExpiry: f.PRECISE_EXPIRY,
  };
}

/** Exit code for invalid configuration (EX_CONFIG from sysexits.h). */
export const EXIT_CONFIG = 78;

/** Formats a ConfigError for a person: one line per problem, each naming its variable. */
export function formatConfigError(error: ConfigError, program: string): string {
  const lines = [
    `${program}: invalid configuration, ${error.issues.length} problem(s); nothing was started:`,
  ];
  for (const issue of error.issues) lines.push(`  - ${issue.message}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Parses with `parse`; on ConfigError prints every problem to stderr and exits 78 without any
 * connection having been attempted. Other errors propagate.
 */
export function parseOrExit<T>(parse: () => T, program: string): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(formatConfigError(error, program));
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
}
