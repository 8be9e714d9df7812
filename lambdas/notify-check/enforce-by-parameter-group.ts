import {
  type CacheCluster,
  DescribeCacheClustersCommand,
  DescribeCacheParametersCommand,
  DescribeReplicationGroupsCommand,
  type ElastiCacheClient,
  ModifyCacheParameterGroupCommand,
} from '@aws-sdk/client-elasticache';
import type { Logger } from '../../core/logger.ts';
import { nodeAddress } from '../../core/topology.ts';
import { mapLimited, sendBounded } from './aws-call.ts';
import { NOTIFY_PARAMETER } from './enforce-by-config.ts';
import { describeError } from './errors.ts';
import { mergeNotifyFlags } from './notify-flags.ts';
import type {
  MemberClusterStatus,
  ParameterGroupEntry,
  ParameterGroupReport,
  ParameterGroupStatus,
} from './report.ts';

/**
 * ElastiCache, where CONFIG is a restricted command: `notify-keyspace-events` lives in the cache
 * parameter group attached to the replication group's member clusters. Read it, merge the required
 * flags in (existing flags kept, see notify-flags.ts), and write it with ModifyCacheParameterGroup
 * when something is missing; the change applies to every node at once, without a reboot. Default
 * groups (`default.*`) cannot be modified: the run refuses clearly and says what to do instead.
 */

export interface ParameterGroupEnforcementOptions {
  readonly client: ElastiCacheClient;
  readonly replicationGroupId: string;
  /** Bound of one AWS call, already cut to the run's budget. */
  readonly callTimeoutMs: () => number;
  /** PRECISE_EXPIRY: the flags enforced (notify-flags.ts requiredNotifyFlags). */
  readonly preciseExpiry: boolean;
  readonly logger: Logger;
}

/** DescribeCacheParameters pages read at most (100 parameters a page; engines have ~200). */
const MAX_PARAMETER_PAGES = 20;
/** DescribeCacheClusters calls in flight at once (one per member cluster). */
const DESCRIBE_CONCURRENCY = 8;

export function isDefaultParameterGroup(name: string): boolean {
  return name.startsWith('default.');
}

const SEVERITY: Record<ParameterGroupStatus, number> = {
  ok: 0,
  modified: 1,
  'refused-default': 2,
  failed: 3,
};

function worst(statuses: readonly ParameterGroupStatus[]): ParameterGroupStatus {
  return statuses.reduce<ParameterGroupStatus>((a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a), 'ok');
}

/** Current value of notify-keyspace-events in a group (null when the group does not list it). */
async function readNotifyParameter(
  options: ParameterGroupEnforcementOptions,
  groupName: string,
): Promise<string | null> {
  let marker: string | undefined;
  for (let page = 0; page < MAX_PARAMETER_PAGES; page++) {
    const output = await sendBounded(
      (o) =>
        options.client.send(
          new DescribeCacheParametersCommand({
            CacheParameterGroupName: groupName,
            MaxRecords: 100,
            Marker: marker,
          }),
          o,
        ),
      options.callTimeoutMs(),
      `DescribeCacheParameters ${groupName}`,
    );
    const parameter = output.Parameters?.find((p) => p.ParameterName === NOTIFY_PARAMETER);
    if (parameter) return parameter.ParameterValue ?? '';
    if (!output.Marker || output.Marker === marker) return null;
    marker = output.Marker;
  }
  return null;
}

function memberStatus(cluster: CacheCluster): MemberClusterStatus {
  return {
    cacheClusterId: cluster.CacheClusterId ?? '(unknown)',
    parameterGroup: cluster.CacheParameterGroup?.CacheParameterGroupName ?? null,
    parameterApplyStatus: cluster.CacheParameterGroup?.ParameterApplyStatus ?? null,
    nodes: (cluster.CacheNodes ?? []).map((node) => ({
      cacheNodeId: node.CacheNodeId ?? null,
      address:
        node.Endpoint?.Address !== undefined && node.Endpoint.Port !== undefined
          ? nodeAddress({ host: node.Endpoint.Address, port: node.Endpoint.Port })
          : null,
      parameterGroupStatus: node.ParameterGroupStatus ?? null,
    })),
  };
}

async function enforceGroup(
  options: ParameterGroupEnforcementOptions,
  name: string,
): Promise<ParameterGroupEntry> {
  const log = options.logger.child({ parameterGroup: name });
  let before: string | null = null;
  try {
    before = (await readNotifyParameter(options, name)) ?? '';
    const merge = mergeNotifyFlags(before, options.preciseExpiry);
    if (!merge.changed) {
      log.debug('notify.group_ok', { value: before });
      return { name, status: 'ok', before, after: before, error: null };
    }
    if (isDefaultParameterGroup(name)) {
      const error =
        `parameter group ${name} is a default group and cannot be modified; create a custom group of the same family ` +
        `with ${NOTIFY_PARAMETER}=${merge.merged} (and cluster-enabled=yes) and attach it to replication group ${options.replicationGroupId}`;
      log.error('notify.group_refused', { reason: 'default-group', value: before });
      return { name, status: 'refused-default', before, after: before, error };
    }
    await sendBounded(
      (o) =>
        options.client.send(
          new ModifyCacheParameterGroupCommand({
            CacheParameterGroupName: name,
            ParameterNameValues: [{ ParameterName: NOTIFY_PARAMETER, ParameterValue: merge.merged }],
          }),
          o,
        ),
      options.callTimeoutMs(),
      `ModifyCacheParameterGroup ${name}`,
    );
    log.info('notify.group_modified', { before, after: merge.merged, added: merge.missing });
    return { name, status: 'modified', before, after: merge.merged, error: null };
  } catch (error) {
    log.warn('notify.group_failed', { error });
    return { name, status: 'failed', before, after: null, error: describeError(error) };
  }
}

/** Never throws: failures are in the returned report (`status: failed`, `error`). */
export async function enforceByParameterGroup(
  options: ParameterGroupEnforcementOptions,
): Promise<ParameterGroupReport> {
  const { replicationGroupId } = options;
  let members: MemberClusterStatus[] = [];
  try {
    const groups = await sendBounded(
      (o) =>
        options.client.send(
          new DescribeReplicationGroupsCommand({ ReplicationGroupId: replicationGroupId }),
          o,
        ),
      options.callTimeoutMs(),
      `DescribeReplicationGroups ${replicationGroupId}`,
    );
    const memberIds = groups.ReplicationGroups?.[0]?.MemberClusters ?? [];
    if (memberIds.length === 0)
      throw new Error(`replication group ${replicationGroupId} has no member clusters`);
    members = await mapLimited(memberIds, DESCRIBE_CONCURRENCY, async (id) => {
      const output = await sendBounded(
        (o) =>
          options.client.send(
            new DescribeCacheClustersCommand({ CacheClusterId: id, ShowCacheNodeInfo: true }),
            o,
          ),
        options.callTimeoutMs(),
        `DescribeCacheClusters ${id}`,
      );
      const cluster = output.CacheClusters?.[0];
      if (!cluster) throw new Error(`cache cluster ${id} is not described`);
      return memberStatus(cluster);
    });
  } catch (error) {
    options.logger.warn('notify.group_failed', { replicationGroupId, error });
    return { replicationGroupId, status: 'failed', groups: [], members, error: describeError(error) };
  }
  // Members normally share one group; during a modification of the replication group they may not.
  const names = [...new Set(members.map((m) => m.parameterGroup).filter((n): n is string => n !== null))];
  if (names.length === 0) {
    return {
      replicationGroupId,
      status: 'failed',
      groups: [],
      members,
      error: `no parameter group is attached to the members of ${replicationGroupId}`,
    };
  }
  const groups = await Promise.all(names.map((name) => enforceGroup(options, name)));
  const status = worst(groups.map((g) => g.status));
  const error = groups.map((g) => g.error).filter((e): e is string => e !== null);
  return { replicationGroupId, status, groups, members, error: error.length > 0 ? error.join('; ') : null };
}
