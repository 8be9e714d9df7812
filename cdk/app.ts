/**
 * The CDK app: the only place that reads CDK context and the process environment. Everything below
 * it (stack, constructs) receives typed props. `cdk.json` runs this file with tsx.
 *
 * Offline by default: without `vpcId` the stack is environment-agnostic, so synthesis performs no
 * lookups and needs neither AWS credentials nor Docker (the worker image is only staged; the Lambda
 * is bundled with the local esbuild).
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { App, Duration, type Environment, Tags, Validations } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { z } from 'zod';
import { PRECISE_EXPIRY_DEFAULTS, VALUE_CAPTURE_DEFAULTS } from '../core/defaults.ts';
import {
  FARGATE_TASK_SIZES,
  fargateTaskSizeProblem,
  WORKER_TASK_SIZE_DEFAULTS,
} from './constructs/worker-service.ts';
import { KeyspaceLeaderStack, type KeyspaceLeaderStackProps } from './keyspace-leader-stack.ts';
import { DEFAULT_METRICS_NAMESPACE } from './metric-names.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Context keys the app reads (`cdk deploy -c key=value` or cdk.json "context"). See docs/deploy.md. */
export const CONTEXT_KEYS = [
  'stackName',
  'vpcId',
  'account',
  'region',
  'egress',
  'natGateways',
  'cacheEngine',
  'cacheEngineVersion',
  'cacheNodeType',
  'cacheShards',
  'cacheReplicasPerShard',
  'cachePort',
  'auth',
  'workerDesiredCount',
  'workerCpu',
  'workerMemoryMiB',
  'handler',
  'leaderName',
  'metricsNamespace',
  'logLevel',
  'processedLog',
  'scheduleRateMinutes',
  'latencyP99ThresholdMs',
  'preciseExpiry',
  'captureValues',
  'expiryLagAlarmMs',
  'alarmEmail',
  'logRetentionDays',
] as const;
type ContextKey = (typeof CONTEXT_KEYS)[number];

const DEFAULT_ENGINE_VERSION = { valkey: '8.0', redis: '7.1' } as const;

const RETENTION_DAYS = new Set<number>(
  Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number'),
);

/** `-c key=value` arrives as a string; cdk.json may hold numbers: accept both. */
const integer = (min: number, max: number, fallback: number) =>
  z
    .preprocess(
      (v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v),
      z.number().int().min(min).max(max),
    )
    .default(fallback);
const text = (pattern: RegExp, message: string) => z.string().trim().regex(pattern, message);
/** A boolean, or the strings true/false in any case (`-c key=false` arrives as a string). */
const flag = (fallback: boolean) =>
  z
    .preprocess(
      (v) => (typeof v === 'string' ? v.trim().toLowerCase() : v),
      z.union([z.boolean(), z.enum(['true', 'false'])]),
    )
    .transform((v) => v === true || v === 'true')
    .default(fallback);

const contextSchema = z
  .object({
    stackName: text(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'a CloudFormation stack name').default('KeyspaceLeader'),
    vpcId: text(/^vpc-[0-9a-f]{8,17}$/, 'vpc-xxxxxxxx').optional(),
    account: text(/^\d{12}$/, 'a 12-digit account id').optional(),
    region: text(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region such as us-east-1').optional(),
    egress: z.enum(['endpoints', 'nat', 'existing']).optional(),
    natGateways: integer(1, 2, 1),
    cacheEngine: z.enum(['valkey', 'redis']).default('valkey'),
    cacheEngineVersion: text(/^\d+\.\d+$/, 'major.minor, e.g. 8.0').optional(),
    cacheNodeType: text(/^cache\.[a-z0-9]+\.[a-z0-9]+$/, 'a node type such as cache.t4g.small').default(
      'cache.t4g.small',
    ),
    cacheShards: integer(1, 500, 3),
    cacheReplicasPerShard: integer(1, 5, 1),
    // Any port but the default 6379 (and the cluster bus range ElastiCache reserves is not ours to use).
    cachePort: integer(1150, 65535, 6380).refine((p) => p !== 6379, 'must not be the default port 6379'),
    // AUTH token by default (docs/security.md says why); rbac: a least-privilege user per role.
    auth: z.enum(['token', 'rbac']).default('token'),
    workerDesiredCount: integer(1, 100, 3),
    // The worker task's size (docs/deploy.md, "Task size": on-time bursts need the CPU at once).
    workerCpu: integer(256, 4096, WORKER_TASK_SIZE_DEFAULTS.cpu).refine(
      (cpu) => FARGATE_TASK_SIZES[cpu] !== undefined,
      `must be a Fargate size: ${Object.keys(FARGATE_TASK_SIZES).join(', ')}`,
    ),
    workerMemoryMiB: integer(512, 30_720, WORKER_TASK_SIZE_DEFAULTS.memoryMiB),
    handler: z.string().trim().min(1).default('log'),
    leaderName: text(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)').default('default'),
    metricsNamespace: text(/^[A-Za-z0-9_./#:-]{1,255}$/, 'a CloudWatch namespace').default(
      DEFAULT_METRICS_NAMESPACE,
    ),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    // The worker checks N's range itself (core/config.ts) and would exit 78; caught here at synth.
    processedLog: text(
      /^(?:all|failures|sample:[1-9]\d{0,5}|sample:1000000)$/,
      'all, failures or sample:N (N 1-1000000)',
    ).default('all'),
    scheduleRateMinutes: integer(1, 60, 1),
    latencyP99ThresholdMs: integer(1, 3_600_000, 1000),
    // PRECISE_EXPIRY of the workers and the Lambda, and the parameter group's Egx (Ex when false).
    preciseExpiry: flag(PRECISE_EXPIRY_DEFAULTS.preciseExpiry),
    // CAPTURE_VALUES of the workers: values read before expiry and handed to the handler (needs
    // preciseExpiry; with preciseExpiry=false capture is off whatever this says, as in the worker).
    captureValues: flag(VALUE_CAPTURE_DEFAULTS.captureValues),
    expiryLagAlarmMs: integer(1, 3_600_000, 1000),
    alarmEmail: z.email().optional(),
    logRetentionDays: integer(1, 3653, 30).refine(
      (d) => RETENTION_DAYS.has(d),
      'must be a CloudWatch Logs retention value',
    ),
  })
  .superRefine((c, ctx) => {
    // Memory is checked against a valid CPU only (an invalid CPU is reported on its own).
    if (FARGATE_TASK_SIZES[c.workerCpu] !== undefined) {
      const problem = fargateTaskSizeProblem(c.workerCpu, c.workerMemoryMiB);
      if (problem !== undefined)
        ctx.addIssue({ code: 'custom', path: ['workerMemoryMiB'], message: problem });
    }
    const engineVersion: string | undefined = c.cacheEngineVersion ?? DEFAULT_ENGINE_VERSION[c.cacheEngine];
    const engineMajor = Number(engineVersion?.split('.')[0]);
    if (c.auth === 'rbac' && engineMajor < 7) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth'],
        message:
          '"rbac" needs engine version 7 or newer (the access strings use CLUSTER SHARDS and read-only key rules)',
      });
    }
    if (c.vpcId === undefined && c.egress === 'existing') {
      ctx.addIssue({
        code: 'custom',
        path: ['egress'],
        message: '"existing" needs vpcId (a new VPC has no egress of its own)',
      });
    }
    if (c.vpcId !== undefined && c.egress === 'nat') {
      ctx.addIssue({
        code: 'custom',
        path: ['egress'],
        message: '"nat" creates a NAT gateway in a new VPC; not with vpcId',
      });
    }
  });

export type AppContext = z.infer<typeof contextSchema>;

export class ContextError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid CDK context:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ContextError';
  }
}

/** Parses and validates every context key at once; lists all problems in one error. */
export function readContext(app: App): AppContext {
  const raw: Partial<Record<ContextKey, unknown>> = {};
  for (const key of CONTEXT_KEYS) {
    const value: unknown = app.node.tryGetContext(key);
    if (value !== undefined && value !== null && value !== '') raw[key] = value;
  }
  const parsed = contextSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ContextError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(context)'}: ${i.message}`),
    );
  }
  return parsed.data;
}

/**
 * The stack's environment: none (environment-agnostic, no lookups) unless an existing VPC must be
 * looked up, which needs a concrete account and region: context `account`/`region`, else the CLI's
 * CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION (set from your credentials).
 */
export function resolveEnvironment(context: AppContext, env: NodeJS.ProcessEnv): Environment | undefined {
  if (context.vpcId === undefined) return undefined;
  const account = context.account ?? env.CDK_DEFAULT_ACCOUNT;
  const region = context.region ?? env.CDK_DEFAULT_REGION;
  if (account === undefined || region === undefined) {
    throw new ContextError([
      'vpcId: looking up an existing VPC needs an account and region: run with AWS credentials, or pass ' +
        '-c account=... -c region=... with the lookup result committed in cdk.context.json',
    ]);
  }
  return { account, region };
}

/** Maps validated context to the stack's typed props. */
export function stackPropsFromContext(context: AppContext, env: NodeJS.ProcessEnv): KeyspaceLeaderStackProps {
  const environment = resolveEnvironment(context, env);
  return {
    ...(environment === undefined ? {} : { env: environment }),
    stackName: context.stackName,
    description: 'keyspace-leader: one active processor of ElastiCache expired-key events on ECS Fargate',
    network: {
      ...(context.vpcId === undefined ? {} : { existingVpcId: context.vpcId }),
      egress: context.egress ?? (context.vpcId === undefined ? 'endpoints' : 'existing'),
      natGateways: context.natGateways,
    },
    cache: {
      engine: context.cacheEngine,
      engineVersion: context.cacheEngineVersion ?? DEFAULT_ENGINE_VERSION[context.cacheEngine],
      nodeType: context.cacheNodeType,
      shards: context.cacheShards,
      replicasPerShard: context.cacheReplicasPerShard,
      port: context.cachePort,
      auth: context.auth,
    },
    worker: {
      desiredCount: context.workerDesiredCount,
      cpu: context.workerCpu,
      memoryMiB: context.workerMemoryMiB,
      handler: context.handler,
      processedLog: context.processedLog,
      imageDirectory: REPO_ROOT,
      dockerfile: 'worker/Dockerfile',
    },
    notifyCheck: {
      entry: path.join(REPO_ROOT, 'lambdas', 'notify-check', 'handler.ts'),
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      scheduleRate: Duration.minutes(context.scheduleRateMinutes),
    },
    leaderName: context.leaderName,
    metricsNamespace: context.metricsNamespace,
    logLevel: context.logLevel,
    logRetention: context.logRetentionDays as logs.RetentionDays,
    latencyP99ThresholdMs: context.latencyP99ThresholdMs,
    preciseExpiry: context.preciseExpiry,
    captureValues: context.captureValues,
    expiryLagAlarmMs: context.expiryLagAlarmMs,
    ...(context.alarmEmail === undefined ? {} : { alarmEmail: context.alarmEmail }),
  };
}

/** Adds the stack and the cdk-nag AwsSolutions checks to `app`. Tests call this with their own App. */
export function buildApp(app: App, env: NodeJS.ProcessEnv = process.env): KeyspaceLeaderStack {
  const context = readContext(app);
  const stack = new KeyspaceLeaderStack(app, context.stackName, stackPropsFromContext(context, env));
  Tags.of(stack).add('project', 'keyspace-leader');
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  try {
    const app = new App();
    buildApp(app);
    app.synth();
  } catch (error) {
    if (!(error instanceof ContextError)) throw error;
    // Every problem at once, no stack trace; 78 = EX_CONFIG, as for the worker's invalid configuration.
    process.stderr.write(`${error.message}\n`);
    process.exit(78);
  }
}
