import { randomBytes } from 'node:crypto';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { type Clock, systemClock } from '../../core/clock.ts';
import type { ReportConfig } from '../../core/config.ts';
import { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics, MetricUnit } from '../../core/metrics.ts';
import { type ClusterNode, nodeAddress, type Topology } from '../../core/topology.ts';
import { runCanary } from './canary.ts';
import { discoverCluster } from './discover.ts';
import { readEcsStatus } from './ecs-status.ts';
import { enforceByConfig } from './enforce-by-config.ts';
import { enforceByParameterGroup } from './enforce-by-parameter-group.ts';
import { readLeaderReport } from './leader-report.ts';
import { hasRequiredNotifyFlags } from './notify-flags.ts';
import { createIoredisNodeFactory, NodePool, type RedisNodeFactory } from './redis-nodes.ts';
import type {
  CanaryReport,
  EcsReport,
  LambdaMetricName,
  LeaderReport,
  NodeReport,
  NotifyCheckReport,
  ParameterGroupReport,
} from './report.ts';
import { RunBudget } from './run-budget.ts';

/**
 * One run of the scheduled check (issue 5), the same in Lambda, in `npm run report` and in tests:
 * discover every node; enforce `notify-keyspace-events` (NOTIFY_MODE; `Egx`, or `Ex` with
 * PRECISE_EXPIRY=false); prove with a canary that each primary publishes `expired` events (and, with
 * precise expiry, `expire` events); report the leader (and its ECS task); emit the Lambda metrics as
 * one EMF document; return the report.
 *
 * Contracts: idempotent and safe beside concurrent runs; every network step is bounded and the whole
 * run stays within `runBudgetMs`; a dead node, a refused command or a failed canary is a field of the
 * report and of the metrics, never an exception. The only exception is ClusterUnreachableError (no
 * seed answered), so the invocation counts as an error and alarms. No secret reaches the report.
 */

export interface NotifyCheckTimeouts {
  /** The whole run; every step below is cut to what is left of it. */
  readonly runBudgetMs: number;
  /** Topology from the seeds (connect and CLUSTER SHARDS together). */
  readonly discoveryTimeoutMs: number;
  /** One Redis step: a connect, or one command. */
  readonly stepTimeoutMs: number;
  /** One AWS SDK call (ElastiCache, ECS). */
  readonly awsCallTimeoutMs: number;
  /** TTL of the canary key: short, so its expiry comes quickly. */
  readonly canaryTtlMs: number;
  /** Interval of the EXISTS that triggers the canary's lazy expiry once its TTL has passed. */
  readonly canaryPokeIntervalMs: number;
}

/** Sized for a 60 s Lambda timeout: a run finishes in under 15 s even with a dead node. */
export const DEFAULT_TIMEOUTS: NotifyCheckTimeouts = {
  runBudgetMs: 13_000,
  discoveryTimeoutMs: 2500,
  stepTimeoutMs: 1500,
  awsCallTimeoutMs: 3000,
  canaryTtlMs: 30,
  canaryPokeIntervalMs: 25,
};

export interface NotifyCheckHooks {
  /** Awaited after enforcement, before the canaries (tests use it to turn notifications off again). */
  readonly afterEnforcement?: (topology: Topology) => Promise<void>;
}

export interface NotifyCheckDeps {
  readonly config: ReportConfig;
  /** Node connections; default: ioredis clients built from `config.redis`. */
  readonly nodes?: RedisNodeFactory;
  /** Needed for NOTIFY_MODE=parameter-group, and for `auto` falling back to it. */
  readonly elastiCache?: ElastiCacheClient | undefined;
  /** Needed when ECS_CLUSTER/ECS_SERVICE are set. */
  readonly ecs?: ECSClient | undefined;
  readonly clock?: Clock;
  readonly logger: Logger;
  /** Receives the Lambda metrics; the run flushes it once at its end (use a fresh instance per run). */
  readonly metrics: EmfMetrics;
  readonly newRunId?: () => string;
  readonly timeouts?: Partial<NotifyCheckTimeouts>;
  readonly hooks?: NotifyCheckHooks;
}

const METRIC_UNITS: Record<LambdaMetricName, MetricUnit> = {
  LeaderPresent: 'None',
  LeaderTaskRunning: 'None',
  WorkersRunning: 'Count',
  LeaderAgeSeconds: 'Seconds',
  FencingToken: 'None',
  PrimariesTotal: 'Count',
  PrimariesVerified: 'Count',
  NodesConfigured: 'Count',
  NodesDrifted: 'Count',
};

function allNodes(topology: Topology): ClusterNode[] {
  const nodes: ClusterNode[] = [];
  for (const shard of topology.shards) {
    if (shard.primary) nodes.push(shard.primary);
    nodes.push(...shard.replicas);
  }
  return nodes;
}

/** A node's report when its flags are managed by the ElastiCache parameter group. */
function nodeFromParameterGroup(
  node: ClusterNode,
  group: ParameterGroupReport,
  preciseExpiry: boolean,
): NodeReport {
  const address = nodeAddress(node);
  const member = group.members.find((m) => m.nodes.some((n) => n.address === address));
  const entry =
    group.groups.find((g) => g.name === member?.parameterGroup) ??
    (group.groups.length === 1 ? group.groups[0] : undefined);
  const base = {
    address,
    id: node.id,
    role: node.role,
    health: node.health,
    method: 'parameter-group' as const,
  };
  if (!entry) {
    return {
      ...base,
      status: 'failed',
      before: null,
      after: null,
      drifted: false,
      configured: false,
      error:
        group.error ?? `no parameter group of ${group.replicationGroupId} could be matched to ${address}`,
    };
  }
  const drifted = entry.before !== null && !hasRequiredNotifyFlags(entry.before, preciseExpiry);
  const configured = entry.after !== null && hasRequiredNotifyFlags(entry.after, preciseExpiry);
  const status =
    entry.status === 'modified' ? 'repaired' : entry.status === 'refused-default' ? 'refused' : entry.status;
  return {
    ...base,
    status,
    before: entry.before,
    after: entry.after,
    drifted,
    configured,
    error: entry.error,
  };
}

function computeMetrics(
  primariesTotal: number,
  nodes: readonly NodeReport[],
  canaries: readonly CanaryReport[],
  leader: LeaderReport,
  ecs: EcsReport,
): Partial<Record<LambdaMetricName, number>> {
  const metrics: Partial<Record<LambdaMetricName, number>> = {
    PrimariesTotal: primariesTotal,
    PrimariesVerified: canaries.filter((c) => c.verified).length,
    NodesConfigured: nodes.filter((n) => n.configured).length,
    NodesDrifted: nodes.filter((n) => n.drifted).length,
  };
  if (leader.state !== 'unreadable') {
    metrics.LeaderPresent = leader.state === 'leading' ? 1 : 0;
    if (leader.fencingToken !== null) metrics.FencingToken = leader.fencingToken;
    if (leader.state === 'leading' && leader.ageSeconds !== null)
      metrics.LeaderAgeSeconds = leader.ageSeconds;
  }
  if (ecs.checked && ecs.error === null) {
    if (ecs.workersRunning !== null) metrics.WorkersRunning = ecs.workersRunning;
    if (leader.state !== 'unreadable') {
      metrics.LeaderTaskRunning = leader.state === 'leading' && ecs.leaderTask?.running === true ? 1 : 0;
    }
  }
  return metrics;
}

function listProblems(
  nodes: readonly NodeReport[],
  canaries: readonly CanaryReport[],
  leader: LeaderReport,
  ecs: EcsReport,
): string[] {
  const problems: string[] = [];
  // Nodes failing for one shared reason (a default parameter group, say) make one line, not one each.
  const unconfigured = new Map<string, NodeReport[]>();
  for (const n of nodes) {
    if (n.configured) continue;
    const reason = `${n.status}: ${n.error ?? 'lacks the required flags'}`;
    unconfigured.set(reason, [...(unconfigured.get(reason) ?? []), n]);
  }
  for (const [reason, alike] of unconfigured) {
    const first = alike[0] as NodeReport;
    problems.push(
      alike.length === 1
        ? `${first.address} (${first.role}) ${reason}`
        : `${alike.length} nodes (${alike.map((n) => n.address).join(', ')}) ${reason}`,
    );
  }
  for (const c of canaries) {
    if (!c.verified) problems.push(`primary ${c.node} (slots ${c.slots}) not verified: ${c.error}`);
    if (c.expireEventsFlow === false) {
      problems.push(
        `primary ${c.node} (slots ${c.slots}) publishes no expire events (PRECISE_EXPIRY needs the g flag): the workers leave its keys to native expiry, late with many volatile keys`,
      );
    }
  }
  if (leader.state !== 'leading') problems.push(leader.summary);
  if (ecs.checked) {
    if (ecs.error !== null) problems.push(`ECS: ${ecs.error}`);
    if (ecs.leaderTask && ecs.leaderTaskStopped) {
      const t = ecs.leaderTask;
      problems.push(
        t.found
          ? `the leader record names task ${t.taskArn}, which is ${t.lastStatus}${t.stoppedReason ? ` (${t.stoppedReason})` : ''}`
          : `the leader record names task ${t.taskArn}, which ECS does not know (stopped)`,
      );
    } else if (leader.state === 'leading' && ecs.leaderTask && !ecs.leaderTask.running) {
      problems.push(
        `the leader's task ${ecs.leaderTask.taskArn} is ${ecs.leaderTask.lastStatus}, not RUNNING`,
      );
    }
    if (ecs.workersRunning === 0) problems.push(`no worker task of service ${ecs.service} is running`);
  }
  return problems;
}

function listChanges(nodes: readonly NodeReport[], group: ParameterGroupReport | null): string[] {
  const changes: string[] = [];
  for (const n of nodes) {
    if (n.method === 'config' && n.status === 'repaired') {
      changes.push(`${n.address} (${n.role}): notify-keyspace-events "${n.before}" -> "${n.after}"`);
    }
  }
  for (const g of group?.groups ?? []) {
    if (g.status === 'modified')
      changes.push(`parameter group ${g.name}: notify-keyspace-events "${g.before}" -> "${g.after}"`);
  }
  return changes;
}

/** Replaces every occurrence of a secret in every string of a JSON value. */
function redact<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return secrets.reduce((text, s) => text.split(s).join('[redacted]'), v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item)]));
    return v;
  };
  return walk(value) as T;
}

export async function runNotifyCheck(deps: NotifyCheckDeps): Promise<NotifyCheckReport> {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...deps.timeouts };
  const runId = deps.newRunId?.() ?? randomBytes(8).toString('hex');
  const logger = deps.logger.child({ runId });
  const startedAtMs = clock.wallMs();
  const startedMono = clock.monotonicMs();
  const budget = new RunBudget(clock, timeouts.runBudgetMs);
  const step = () => budget.bound(timeouts.stepTimeoutMs);
  const awsCall = () => budget.bound(timeouts.awsCallTimeoutMs);
  const factory = deps.nodes ?? createIoredisNodeFactory(config.redis, logger);
  const keys = new KeyspaceKeys(config.leaderName);
  const seeds = config.redis.nodes.map(nodeAddress);

  logger.info('report.started', {
    notifyMode: config.notifyMode,
    preciseExpiry: config.preciseExpiry,
    seeds,
  });
  const discovered = await discoverCluster(config.redis.nodes, factory, {
    preferTls: config.redis.tls,
    timeoutMs: budget.bound(timeouts.discoveryTimeoutMs),
  });
  const { topology } = discovered;
  const nodes = allNodes(topology);
  const slotShards = topology.shards.filter((s) => s.slots.length > 0);
  logger.info('report.discovered', {
    answeredBy: discovered.answeredBy,
    primaries: slotShards.length,
    nodes: nodes.map(nodeAddress),
  });

  const pool = new NodePool(factory);
  try {
    const enforcement = async (): Promise<{ nodes: NodeReport[]; group: ParameterGroupReport | null }> => {
      const byGroup = () =>
        deps.elastiCache && config.replicationGroupId
          ? enforceByParameterGroup({
              client: deps.elastiCache,
              replicationGroupId: config.replicationGroupId,
              callTimeoutMs: awsCall,
              preciseExpiry: config.preciseExpiry,
              logger,
            })
          : Promise.resolve<ParameterGroupReport>({
              replicationGroupId: config.replicationGroupId ?? '',
              status: 'failed',
              groups: [],
              members: [],
              error: 'no ElastiCache client was given to this run',
            });
      if (config.notifyMode === 'parameter-group') {
        const group = await byGroup();
        return { nodes: nodes.map((n) => nodeFromParameterGroup(n, group, config.preciseExpiry)), group };
      }
      const results = await Promise.all(
        nodes.map((node) =>
          enforceByConfig(node, { pool, stepTimeoutMs: step, preciseExpiry: config.preciseExpiry, logger }),
        ),
      );
      const refused = results.some((r) => r.refusal !== undefined);
      if (config.notifyMode !== 'auto' || !refused)
        return { nodes: results.map((r) => r.report), group: null };
      if (config.replicationGroupId === undefined) {
        return {
          nodes: results.map((r) =>
            r.refusal === undefined
              ? r.report
              : {
                  ...r.report,
                  error: `${r.report.error}; not enforceable: CONFIG is refused and REPLICATION_GROUP_ID is not set (ElastiCache: set it to enforce through the parameter group)`,
                },
          ),
          group: null,
        };
      }
      logger.info('notify.fallback', {
        reason: 'CONFIG refused',
        replicationGroupId: config.replicationGroupId,
      });
      const group = await byGroup();
      return {
        nodes: results.map((r, i) =>
          r.refusal === undefined
            ? r.report
            : nodeFromParameterGroup(nodes[i] as ClusterNode, group, config.preciseExpiry),
        ),
        group,
      };
    };
    const leaderAndEcs = async (): Promise<{ leader: LeaderReport; ecs: EcsReport }> => {
      const leader = await readLeaderReport({ topology, keys, pool, stepTimeoutMs: step, clock, logger });
      const ecs = await readEcsStatus({
        client: deps.ecs,
        cluster: config.ecsCluster,
        service: config.ecsService,
        leader,
        callTimeoutMs: awsCall,
        logger,
      });
      return { leader, ecs };
    };

    const [enforced, { leader, ecs }] = await Promise.all([enforcement(), leaderAndEcs()]);
    await deps.hooks?.afterEnforcement?.(topology);
    const canaries = await Promise.all(
      slotShards.map((shard) =>
        runCanary(shard, {
          keys,
          nonce: runId,
          pool,
          factory,
          stepTimeoutMs: step,
          waitTimeoutMs: () => budget.bound(config.canaryTimeoutMs),
          ttlMs: timeouts.canaryTtlMs,
          pokeIntervalMs: timeouts.canaryPokeIntervalMs,
          preciseExpiry: config.preciseExpiry,
          clock,
          logger,
        }),
      ),
    );

    const metrics = computeMetrics(slotShards.length, enforced.nodes, canaries, leader, ecs);
    const problems = listProblems(enforced.nodes, canaries, leader, ecs);
    const report: NotifyCheckReport = redact(
      {
        reportVersion: 1,
        runId,
        leaderName: config.leaderName,
        notifyMode: config.notifyMode,
        preciseExpiry: config.preciseExpiry,
        startedAt: new Date(startedAtMs).toISOString(),
        finishedAt: new Date(clock.wallMs()).toISOString(),
        durationMs: Math.round(clock.monotonicMs() - startedMono),
        cluster: {
          seeds,
          answeredBy: discovered.answeredBy,
          shards: topology.shards.length,
          primaries: slotShards.length,
          replicas: nodes.filter((n) => n.role === 'replica').length,
        },
        nodes: enforced.nodes,
        parameterGroup: enforced.group,
        canaries,
        leader,
        ecs,
        metrics,
        changes: listChanges(enforced.nodes, enforced.group),
        problems,
        ok: problems.length === 0,
      },
      [config.redis.password].filter((s): s is string => s !== undefined && s.length > 0),
    );
    for (const [name, value] of Object.entries(metrics) as [LambdaMetricName, number][]) {
      deps.metrics.gauge(name, value, METRIC_UNITS[name]);
    }
    deps.metrics.flush();
    logger.info('report.completed', {
      ok: report.ok,
      durationMs: report.durationMs,
      metrics,
      problems: report.problems,
      changes: report.changes,
    });
    return report;
  } finally {
    await pool.closeAll();
  }
}
