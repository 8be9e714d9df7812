import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { ECSClient } from '@aws-sdk/client-ecs';
import { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import type { Env } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';
import { EmfMetrics } from '../../core/metrics.ts';
import { ClusterUnreachableError } from './errors.ts';
import { DEFAULT_TIMEOUTS, runNotifyCheck } from './notify-check.ts';
import {
  type NotifyCheckEnv,
  parseNotifyCheckEnv,
  readRedisPassword,
  withPassword,
} from './notify-check-env.ts';
import { powertoolsLogger } from './powertools-logger.ts';
import type { RedisNodeFactory } from './redis-nodes.ts';
import type { NotifyCheckReport } from './report.ts';

/**
 * The Lambda adapter (scheduled by EventBridge Scheduler; the event's content is not used). Cold start:
 * parse the configuration once, create the AWS clients once. Each invocation: read the Redis password
 * from Secrets Manager on first use (REDIS_PASSWORD_SECRET_ARN; cached, re-read after the cluster was
 * unreachable in case the token was rotated), run the check, write the metrics as one EMF document on
 * stdout, return the report. Throws only for invalid configuration and an unreachable cluster.
 */

export interface HandlerOptions {
  readonly env: Env;
  /** Overrides the AWS clients (tests); by default created at cold start when needed. */
  readonly elastiCache?: ElastiCacheClient;
  readonly ecs?: ECSClient;
  readonly secretsManager?: SecretsManagerClient;
  /** Overrides the node connections (tests); default: ioredis from the configuration. */
  readonly nodes?: (config: NotifyCheckEnv['config']) => RedisNodeFactory;
  /** EMF output; default: stdout (the Lambda log, where CloudWatch extracts the metrics). */
  readonly writeMetrics?: (line: string) => void;
  readonly powertools?: PowertoolsLogger;
}

export type NotifyCheckHandler = (event: unknown, context: Context) => Promise<NotifyCheckReport>;

/** The margin left between the run's budget and the Lambda's own deadline. */
const LAMBDA_DEADLINE_MARGIN_MS = 3000;
const SECRET_READ_TIMEOUT_MS = 3000;
/** AWS SDK clients: few attempts, short sockets; the run bounds each call again. */
const AWS_CLIENT_CONFIG = {
  maxAttempts: 2,
  requestHandler: { connectionTimeout: 2000, requestTimeout: 3000 },
};

export function createHandler(options: HandlerOptions): NotifyCheckHandler {
  let parsed: NotifyCheckEnv | undefined;
  let configError: ConfigError | undefined;
  try {
    parsed = parseNotifyCheckEnv(options.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    configError = error;
  }
  const level = parsed?.config.logLevel ?? 'info';
  const powertools =
    options.powertools ??
    new PowertoolsLogger({
      serviceName: 'keyspace-leader-notify-check',
      logLevel: level,
    });
  const config = parsed?.config;
  const elastiCache =
    options.elastiCache ??
    (config?.replicationGroupId ? new ElastiCacheClient(AWS_CLIENT_CONFIG) : undefined);
  const ecs = options.ecs ?? (config?.ecsCluster ? new ECSClient(AWS_CLIENT_CONFIG) : undefined);
  const secretsManager =
    options.secretsManager ??
    (parsed?.passwordSecretId ? new SecretsManagerClient(AWS_CLIENT_CONFIG) : undefined);
  let password: Promise<string> | undefined;

  return async (_event, context) => {
    powertools.addContext(context);
    if (!parsed || configError) {
      const error = configError ?? new ConfigError([]);
      powertoolsLogger(powertools, { level }).error('config.invalid', { issues: error.issues });
      throw error;
    }
    const { passwordSecretId } = parsed;
    let runConfig = parsed.config;
    if (passwordSecretId !== undefined && secretsManager) {
      password ??= readRedisPassword(secretsManager, passwordSecretId, SECRET_READ_TIMEOUT_MS);
      try {
        runConfig = withPassword(runConfig, await password);
      } catch (error) {
        password = undefined;
        powertoolsLogger(powertools, { level }).error('report.failed', { error });
        throw error;
      }
    }
    const logger = powertoolsLogger(powertools, {
      level,
      base: { workerId: 'notify-check' },
      secrets: [runConfig.redis.password],
    });
    const metrics = new EmfMetrics({
      namespace: runConfig.metricsNamespace,
      leaderName: runConfig.leaderName,
      // Straight to process.stdout, the stream Powertools' logger writes to as well, not the worker's
      // stdout writer (core/stdout-lines.ts): that batches per turn, and the runtime may freeze the
      // sandbox before a batch left after the response is written.
      write: options.writeMetrics ?? ((line: string) => process.stdout.write(`${line}\n`)),
    });
    const remainingMs = context.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
    try {
      return await runNotifyCheck({
        config: runConfig,
        ...(options.nodes ? { nodes: options.nodes(runConfig) } : {}),
        elastiCache,
        ecs,
        logger,
        metrics,
        timeouts: {
          runBudgetMs: Math.max(
            1000,
            Math.min(DEFAULT_TIMEOUTS.runBudgetMs, remainingMs - LAMBDA_DEADLINE_MARGIN_MS),
          ),
        },
      });
    } catch (error) {
      // A rotated AUTH token shows up as an unreachable cluster: read the secret again next time.
      if (error instanceof ClusterUnreachableError) password = undefined;
      logger.error('report.failed', { error });
      throw error;
    }
  };
}

/** The Lambda entry point (`lambdas/notify-check/handler.ts`, export `handler`). */
export const handler: NotifyCheckHandler = createHandler({ env: process.env });
