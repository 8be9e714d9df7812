import {
  DescribeCacheClustersCommand,
  DescribeCacheParametersCommand,
  DescribeReplicationGroupsCommand,
  type ElastiCacheClientResolvedConfig,
  ModifyCacheParameterGroupCommand,
  type Parameter,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-elasticache';
import type { AwsStub } from 'aws-sdk-client-mock';
import { type Env, parseReportConfig, type ReportConfig } from '../../../../core/config.ts';
import { createLogger, type Logger } from '../../../../core/logger.ts';
import { EmfMetrics, parseEmfLine } from '../../../../core/metrics.ts';
import type { NotifyCheckDeps } from '../../../../lambdas/notify-check/notify-check.ts';
import type { FakeCluster } from './fake-cluster.ts';

/** Short bounds so a unit test with a failing node still takes well under a second. */
export const FAST_TIMEOUTS = {
  runBudgetMs: 5000,
  discoveryTimeoutMs: 500,
  stepTimeoutMs: 200,
  awsCallTimeoutMs: 500,
  canaryTtlMs: 5,
  canaryPokeIntervalMs: 5,
} as const;

export function reportConfig(cluster: FakeCluster, env: Env = {}): ReportConfig {
  return parseReportConfig({
    REDIS_NODES: cluster.seeds.map((s) => `${s.host}:${s.port}`).join(','),
    CANARY_TIMEOUT_MS: '300',
    ...env,
  });
}

export interface Captured {
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
  readonly logLines: string[];
  readonly emfLines: string[];
}

export function capture(secrets: readonly string[] = []): Captured {
  const logLines: string[] = [];
  const emfLines: string[] = [];
  return {
    logger: createLogger({ level: 'debug', write: (line) => logLines.push(line), secrets }),
    metrics: new EmfMetrics({
      namespace: 'KeyspaceLeaderTest',
      leaderName: 'default',
      write: (line) => emfLines.push(line),
    }),
    logLines,
    emfLines,
  };
}

/** The metric values of the EMF documents written, keyed by name, after checking their structure. */
export function emittedMetrics(emfLines: readonly string[]): Record<string, number> {
  const values: Record<string, number> = {};
  for (const line of emfLines) {
    const documents = parseEmfLine(line);
    if (!documents) throw new Error(`not an EMF document: ${line}`);
    for (const doc of documents) {
      for (const metric of doc.metrics) values[metric.name] = doc.fields[metric.name] as number;
    }
  }
  return values;
}

export function deps(
  cluster: FakeCluster,
  captured: Captured,
  overrides: Partial<NotifyCheckDeps> = {},
): NotifyCheckDeps {
  return {
    config: reportConfig(cluster),
    nodes: cluster,
    logger: captured.logger,
    metrics: captured.metrics,
    timeouts: FAST_TIMEOUTS,
    ...overrides,
  };
}

/**
 * A replication group `rg` in the mocked ElastiCache API whose member clusters are the fake cluster's
 * nodes (endpoints match), attached to `groupName`. `parameters` is served in pages of `pageSize`.
 * ModifyCacheParameterGroup "applies" the value to every fake node, as ElastiCache does.
 */
export function mockReplicationGroup(
  mock: AwsStub<ServiceInputTypes, ServiceOutputTypes, ElastiCacheClientResolvedConfig>,
  cluster: FakeCluster,
  options: { groupName: string; notifyValue: string; pageSize?: number; filler?: number },
): void {
  const members = cluster.nodes.map((n, i) => ({
    id: `rg-000${Math.floor(i / 2) + 1}-00${(i % 2) + 1}`,
    node: n,
  }));
  mock.on(DescribeReplicationGroupsCommand, { ReplicationGroupId: 'rg' }).resolves({
    ReplicationGroups: [{ ReplicationGroupId: 'rg', MemberClusters: members.map((m) => m.id) }],
  });
  for (const member of members) {
    mock.on(DescribeCacheClustersCommand, { CacheClusterId: member.id }).resolves({
      CacheClusters: [
        {
          CacheClusterId: member.id,
          CacheParameterGroup: {
            CacheParameterGroupName: options.groupName,
            ParameterApplyStatus: 'in-sync',
          },
          CacheNodes: [
            {
              CacheNodeId: '0001',
              Endpoint: { Address: '127.0.0.1', Port: member.node.port },
              ParameterGroupStatus: 'in-sync',
            },
          ],
        },
      ],
    });
  }
  const parameters: Parameter[] = [];
  for (let i = 0; i < (options.filler ?? 150); i++)
    parameters.push({ ParameterName: `param-${i}`, ParameterValue: 'x' });
  parameters.push({ ParameterName: 'notify-keyspace-events', ParameterValue: options.notifyValue });
  const pageSize = options.pageSize ?? 100;
  for (let start = 0; start < parameters.length; start += pageSize) {
    const marker = start === 0 ? undefined : `m${start}`;
    const next = start + pageSize < parameters.length ? `m${start + pageSize}` : undefined;
    mock
      .on(DescribeCacheParametersCommand, { CacheParameterGroupName: options.groupName, Marker: marker })
      .resolves({ Parameters: parameters.slice(start, start + pageSize), Marker: next });
  }
  mock
    .on(ModifyCacheParameterGroupCommand)
    .callsFake((input: { ParameterNameValues?: { ParameterValue?: string }[] }) => {
      const value = input.ParameterNameValues?.[0]?.ParameterValue ?? '';
      for (const node of cluster.nodes) node.notify = value;
      return { CacheParameterGroupName: options.groupName };
    });
}
