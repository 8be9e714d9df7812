import { ECSClient } from '@aws-sdk/client-ecs';
import { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseOrExit } from '../../core/config.ts';
import { readLocalClusterFile } from '../../core/local-cluster-file.ts';
import { createLogger } from '../../core/logger.ts';
import { EmfMetrics } from '../../core/metrics.ts';
import { describeError } from './errors.ts';
import { runNotifyCheck } from './notify-check.ts';
import { parseNotifyCheckEnv, readRedisPassword, withPassword } from './notify-check-env.ts';
import { formatReportTable } from './report-table.ts';

/**
 * `npm run report [-- --json]`: the scheduled Lambda's logic, once, from this machine, against
 * REDIS_NODES (or the cluster `npm start` runs, via .local/cluster.json). stdout holds the report only
 * (a table, or with --json one JSON document); logs and the EMF document go to stderr.
 * Exit codes: 0 the run completed (problems, if any, are in the report), 1 the cluster could not be
 * reached or the run failed, 64 unknown argument, 78 invalid configuration.
 */

const PROGRAM = 'npm run report';
const USAGE = `usage: ${PROGRAM} [-- --json]
  --json   print the report as one JSON document (stdout), logs on stderr
Environment: REDIS_NODES (default: the cluster of a running \`npm start\`), NOTIFY_MODE, REPLICATION_GROUP_ID,
ECS_CLUSTER, ECS_SERVICE, CANARY_TIMEOUT_MS, LEADER_NAME, REDIS_PASSWORD or REDIS_PASSWORD_SECRET_ARN, ... (docs/notify-check.md)
`;

async function main(argv: readonly string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--json' && a !== '--help' && a !== '-h');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (unknown.length > 0) {
    process.stderr.write(`${PROGRAM}: unknown argument(s) ${unknown.join(' ')}\n${USAGE}`);
    return 64;
  }
  const json = argv.includes('--json');
  const { config: parsedConfig, passwordSecretId } = parseOrExit(
    () => parseNotifyCheckEnv(process.env, { localCluster: readLocalClusterFile() }),
    PROGRAM,
  );
  const toStderr = (line: string) => process.stderr.write(`${line}\n`);
  const awsConfig = { maxAttempts: 2, requestHandler: { connectionTimeout: 2000, requestTimeout: 3000 } };
  const elastiCache = parsedConfig.replicationGroupId ? new ElastiCacheClient(awsConfig) : undefined;
  const ecs = parsedConfig.ecsCluster ? new ECSClient(awsConfig) : undefined;
  const secretsManager = passwordSecretId ? new SecretsManagerClient(awsConfig) : undefined;
  let password = parsedConfig.redis.password;
  try {
    let config = parsedConfig;
    if (passwordSecretId && secretsManager) {
      password = await readRedisPassword(secretsManager, passwordSecretId, 5000);
      config = withPassword(config, password);
    }
    const logger = createLogger({
      level: config.logLevel,
      write: toStderr,
      secrets: [config.redis.password],
      base: { workerId: 'notify-check-cli' },
    });
    const metrics = new EmfMetrics({
      namespace: config.metricsNamespace,
      leaderName: config.leaderName,
      write: toStderr,
    });
    const report = await runNotifyCheck({ config, elastiCache, ecs, logger, metrics });
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReportTable(report));
    return 0;
  } catch (error) {
    const message = password ? describeError(error).split(password).join('[redacted]') : describeError(error);
    process.stderr.write(`${PROGRAM}: ${message}\n`);
    return 1;
  } finally {
    elastiCache?.destroy();
    ecs?.destroy();
    secretsManager?.destroy();
  }
}

process.exitCode = await main(process.argv.slice(2));
