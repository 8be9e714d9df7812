import { DescribeTasksCommand, ECSClient, ListTasksCommand } from '@aws-sdk/client-ecs';
import {
  DescribeCacheParametersCommand,
  ElastiCacheClient,
  ModifyCacheParameterGroupCommand,
} from '@aws-sdk/client-elasticache';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { keySlot } from '../../../../core/key-slot.ts';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { encodeLeaderRecord } from '../../../../core/leader-record.ts';
import { LAMBDA_METRICS, parseEmfLine } from '../../../../core/metrics.ts';
import { ClusterUnreachableError } from '../../../../lambdas/notify-check/errors.ts';
import { runNotifyCheck } from '../../../../lambdas/notify-check/notify-check.ts';
import { FakeCluster, type FakeNode } from './fake-cluster.ts';
import { capture, deps, emittedMetrics, mockReplicationGroup, reportConfig } from './helpers.ts';

const elastiCacheMock = mockClient(ElastiCacheClient);
const ecsMock = mockClient(ECSClient);

afterEach(() => {
  elastiCacheMock.reset();
  ecsMock.reset();
});

function leaderPrimary(cluster: FakeCluster, keys: KeyspaceKeys): FakeNode {
  const slot = keySlot(keys.leader);
  const node = cluster.primaries().find((p) => p.slots.some(([a, b]) => slot >= a && slot <= b));
  if (!node) throw new Error('no owner');
  return node;
}

function writeLeaderRecord(cluster: FakeCluster, record: Parameters<typeof encodeLeaderRecord>[0]): void {
  const keys = new KeyspaceKeys('default');
  leaderPrimary(cluster, keys).data.set(keys.leader, {
    value: encodeLeaderRecord(record),
    expiresAtMs: undefined,
  });
}

const recentRecord = (taskArn: string | null) => {
  const now = Date.now();
  return {
    workerId: 'worker-a',
    taskArn,
    fencingToken: 7,
    acquiredAt: new Date(now - 60_000).toISOString(),
    renewedAt: new Date(now - 200).toISOString(),
    leaseTtlMs: 60_000,
    releasedAt: null,
  };
};

describe('runNotifyCheck with CONFIG (self-managed Redis)', () => {
  it('enables E, g and x on every node, replicas included, and verifies every primary and its expire events', async () => {
    const cluster = FakeCluster.build();
    const captured = capture();
    const report = await runNotifyCheck(deps(cluster, captured));

    for (const node of cluster.nodes) expect(node.notify).toBe('gxE');
    expect(report.preciseExpiry).toBe(true);
    expect(report.nodes).toHaveLength(6);
    expect(report.nodes.every((n) => n.status === 'repaired' && n.drifted && n.configured)).toBe(true);
    expect(report.canaries.map((c) => c.verified)).toEqual([true, true, true]);
    expect(report.canaries.map((c) => c.expireEventsFlow)).toEqual([true, true, true]);
    expect(report.problems.filter((p) => p.includes('expire'))).toEqual([]);
    expect(report.metrics).toMatchObject({
      PrimariesTotal: 3,
      PrimariesVerified: 3,
      NodesConfigured: 6,
      NodesDrifted: 6,
    });
    expect(report.changes).toHaveLength(6);
    // Every connection the run opened is closed.
    expect(cluster.connections.length).toBeGreaterThan(0);
    expect(cluster.connections.every((c) => c.closed)).toBe(true);
  });

  it('keeps flags somebody else set and leaves a node that has E and x alone', async () => {
    const cluster = FakeCluster.build();
    const [first, second] = cluster.nodes as [FakeNode, FakeNode];
    first.notify = 'gK';
    second.notify = 'AKE';
    const report = await runNotifyCheck(deps(cluster, capture()));
    expect(first.notify).toBe('gxKE');
    expect(second.notify).toBe('AKE');
    expect(
      cluster.calls.filter((c) => c.node === second.address && c.command.startsWith('CONFIG SET')),
    ).toEqual([]);
    const secondReport = report.nodes.find((n) => n.address === second.address);
    expect(secondReport).toMatchObject({
      status: 'ok',
      drifted: false,
      configured: true,
      before: 'AKE',
      after: 'AKE',
    });
    expect(report.metrics.NodesDrifted).toBe(5);
  });

  it('a second run finds nothing to do, and a node turned off again is counted as drifted and repaired', async () => {
    const cluster = FakeCluster.build();
    await runNotifyCheck(deps(cluster, capture()));
    const quiet = capture();
    const second = await runNotifyCheck(deps(cluster, quiet));
    expect(second.metrics.NodesDrifted).toBe(0);
    expect(emittedMetrics(quiet.emfLines).NodesDrifted).toBe(0);
    (cluster.nodes[3] as FakeNode).notify = '';
    const third = capture();
    const report = await runNotifyCheck(deps(cluster, third));
    expect(emittedMetrics(third.emfLines)).toMatchObject({ NodesDrifted: 1, NodesConfigured: 6 });
    expect(report.nodes.filter((n) => n.drifted).map((n) => n.address)).toEqual([
      (cluster.nodes[3] as FakeNode).address,
    ]);
  });

  it('emits exactly the Lambda metric names of README.md, "Metrics", in one EMF document with LeaderName', async () => {
    const cluster = FakeCluster.build();
    writeLeaderRecord(cluster, recentRecord('arn:aws:ecs:eu-west-1:123456789012:task/c/abc'));
    ecsMock.on(ListTasksCommand).resolves({ taskArns: ['arn:aws:ecs:eu-west-1:123456789012:task/c/abc'] });
    ecsMock.on(DescribeTasksCommand).resolves({
      tasks: [
        {
          taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/abc',
          lastStatus: 'RUNNING',
          desiredStatus: 'RUNNING',
        },
      ],
    });
    const captured = capture();
    await runNotifyCheck(
      deps(cluster, captured, {
        config: reportConfig(cluster, {
          ECS_CLUSTER: 'c',
          ECS_SERVICE: 's',
          METRICS_NAMESPACE: 'KeyspaceLeaderTest',
        }),
        ecs: new ECSClient({ region: 'eu-west-1' }),
      }),
    );
    expect(captured.emfLines).toHaveLength(1);
    const documents = parseEmfLine(captured.emfLines[0] as string);
    expect(documents).toHaveLength(1);
    const doc = documents?.[0];
    expect(doc?.namespace).toBe('KeyspaceLeaderTest');
    expect(doc?.dimensions).toEqual([['LeaderName']]);
    expect(doc?.fields.LeaderName).toBe('default');
    expect(doc?.metrics.map((m) => m.name).sort()).toEqual([...LAMBDA_METRICS].sort());
    expect(emittedMetrics(captured.emfLines)).toMatchObject({
      LeaderPresent: 1,
      LeaderTaskRunning: 1,
      WorkersRunning: 1,
      FencingToken: 7,
      PrimariesTotal: 3,
      PrimariesVerified: 3,
    });
    expect(emittedMetrics(captured.emfLines).LeaderAgeSeconds).toBeGreaterThanOrEqual(59);
  });

  it('reports an unreachable replica and a hung primary without throwing, within the bounds', async () => {
    const cluster = FakeCluster.build();
    const downReplica = cluster.nodes[1] as FakeNode;
    const hungPrimary = cluster.nodes[2] as FakeNode;
    downReplica.failure = 'down';
    hungPrimary.failure = 'hang';
    const startedAt = performance.now();
    const report = await runNotifyCheck(deps(cluster, capture()));
    expect(performance.now() - startedAt).toBeLessThan(2500);
    expect(report.nodes.find((n) => n.address === downReplica.address)).toMatchObject({
      status: 'unreachable',
      configured: false,
    });
    expect(report.nodes.find((n) => n.address === hungPrimary.address)).toMatchObject({
      status: 'unreachable',
      configured: false,
    });
    const canary = report.canaries.find((c) => c.node === hungPrimary.address);
    expect(canary?.verified).toBe(false);
    expect(canary?.error).toMatch(/could not connect/);
    expect(report.metrics).toMatchObject({ PrimariesTotal: 3, PrimariesVerified: 2, NodesConfigured: 4 });
    expect(report.ok).toBe(false);
    expect(report.problems.some((p) => p.includes(downReplica.address))).toBe(true);
  });

  it('throws ClusterUnreachableError when no seed answers, and emits no metrics', async () => {
    const cluster = FakeCluster.build();
    for (const node of cluster.nodes) node.failure = 'down';
    const captured = capture();
    const error = await runNotifyCheck(deps(cluster, captured)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClusterUnreachableError);
    expect((error as ClusterUnreachableError).code).toBe('CLUSTER_UNREACHABLE');
    expect((error as ClusterUnreachableError).seeds).toHaveLength(6);
    expect(captured.emfLines).toEqual([]);
  });

  it('reports a primary that stops publishing between enforcement and canary as unverified', async () => {
    const cluster = FakeCluster.build();
    const silenced = cluster.primaries()[1] as FakeNode;
    const captured = capture();
    const report = await runNotifyCheck(
      deps(cluster, captured, {
        hooks: {
          afterEnforcement: async () => {
            silenced.notify = '';
          },
        },
      }),
    );
    expect(report.canaries.filter((c) => !c.verified).map((c) => c.node)).toEqual([silenced.address]);
    expect(report.canaries.find((c) => c.node === silenced.address)?.error).toMatch(/no expired event/);
    expect(emittedMetrics(captured.emfLines)).toMatchObject({
      PrimariesTotal: 3,
      PrimariesVerified: 2,
      NodesConfigured: 6,
    });
  });

  it('places each canary on a slot of its own primary and waits for that exact key', async () => {
    const cluster = FakeCluster.build();
    const report = await runNotifyCheck(deps(cluster, capture(), { newRunId: () => 'run-1' }));
    expect(report.canaries).toHaveLength(3);
    for (const canary of report.canaries) {
      const primary = cluster.primaries().find((p) => p.address === canary.node) as FakeNode;
      expect(canary.key).toMatch(/^\{kl:default:c\d+\}:canary:run-1$/);
      expect(primary.owns(canary.key as string)).toBe(true);
    }
    // No MOVED: every SET went to the owner.
    expect(cluster.calls.filter((c) => c.command.startsWith('SET')).length).toBe(3);
  });

  it('two concurrent runs both verify every primary with their own canaries', async () => {
    const cluster = FakeCluster.build();
    const [a, b] = await Promise.all([
      runNotifyCheck(deps(cluster, capture())),
      runNotifyCheck(deps(cluster, capture())),
    ]);
    expect(a.runId).not.toBe(b.runId);
    expect(a.metrics.PrimariesVerified).toBe(3);
    expect(b.metrics.PrimariesVerified).toBe(3);
    for (const node of cluster.nodes) expect(node.notify).toBe('gxE');
  });

  it('PRECISE_EXPIRY=false enforces E and x only, leaves a node with Ex alone and does not wait for expire events', async () => {
    const cluster = FakeCluster.build();
    const [first] = cluster.nodes as [FakeNode];
    first.notify = 'Ex';
    const report = await runNotifyCheck(
      deps(cluster, capture(), { config: reportConfig(cluster, { PRECISE_EXPIRY: 'false' }) }),
    );
    expect(report.preciseExpiry).toBe(false);
    expect(first.notify).toBe('Ex');
    for (const node of cluster.nodes.slice(1)) expect(node.notify).toBe('xE');
    expect(report.nodes[0]).toMatchObject({ status: 'ok', drifted: false, configured: true });
    expect(report.canaries.map((c) => [c.verified, c.expireEventsFlow])).toEqual(Array(3).fill([true, null]));
    expect(report.problems.filter((p) => p.includes('expire'))).toEqual([]);
  });

  it('with precise expiry a node with Ex is drifted and gets g; a primary that loses g after enforcement is a problem', async () => {
    const cluster = FakeCluster.build({ notify: 'Ex' });
    const silent = cluster.primaries()[1] as FakeNode;
    const captured = capture();
    const report = await runNotifyCheck(
      deps(cluster, captured, {
        hooks: {
          afterEnforcement: async () => {
            silent.notify = 'xE';
          },
        },
      }),
    );
    expect(report.nodes.every((n) => n.drifted && n.status === 'repaired' && n.after === 'gxE')).toBe(true);
    expect(report.changes[0]).toMatch(/"Ex" -> "gxE"/);
    const silentCanary = report.canaries.find((c) => c.node === silent.address);
    // It still publishes expired: verified, but its expire events do not flow.
    expect(silentCanary).toMatchObject({ verified: true, expireEventsFlow: false });
    expect(report.canaries.filter((c) => c.node !== silent.address).map((c) => c.expireEventsFlow)).toEqual([
      true,
      true,
    ]);
    expect(report.metrics.PrimariesVerified).toBe(3);
    expect(report.problems.filter((p) => p.includes('expire'))).toEqual([
      expect.stringMatching(new RegExp(`^primary ${silent.address} .*publishes no expire events`)),
    ]);
    expect(captured.logLines.some((l) => l.includes('"canary.no_expire_events"'))).toBe(true);
  });

  it('refused CONFIG in config mode is reported, not thrown, and ElastiCache is not asked', async () => {
    const cluster = FakeCluster.build();
    for (const node of cluster.nodes) node.failure = 'config-unknown';
    const report = await runNotifyCheck(
      deps(cluster, capture(), {
        config: reportConfig(cluster, { NOTIFY_MODE: 'config', REPLICATION_GROUP_ID: 'rg' }),
        elastiCache: new ElastiCacheClient({ region: 'eu-west-1' }),
      }),
    );
    expect(report.nodes.map((n) => `${n.status} ${n.method}`)).toEqual(Array(6).fill('refused config'));
    expect(elastiCacheMock.calls()).toHaveLength(0);
    expect(report.metrics.NodesConfigured).toBe(0);
  });

  it('a NOPERM on CONFIG SET is a refusal: the node is drifted and not configured', async () => {
    const cluster = FakeCluster.build({ primaries: 1, replicasPerPrimary: 0 });
    (cluster.nodes[0] as FakeNode).failure = 'config-set-noperm';
    const report = await runNotifyCheck(
      deps(cluster, capture(), { config: reportConfig(cluster, { NOTIFY_MODE: 'config' }) }),
    );
    expect(report.nodes[0]).toMatchObject({
      status: 'refused',
      drifted: true,
      configured: false,
      before: '',
    });
  });
});

describe('runNotifyCheck auto mode on ElastiCache', () => {
  it("falls back to the parameter group on ERR unknown command 'CONFIG'", async () => {
    const cluster = FakeCluster.build();
    for (const node of cluster.nodes) node.failure = 'config-unknown';
    mockReplicationGroup(elastiCacheMock, cluster, { groupName: 'kl-params', notifyValue: 'Kg' });
    const captured = capture();
    const report = await runNotifyCheck(
      deps(cluster, captured, {
        config: reportConfig(cluster, { REPLICATION_GROUP_ID: 'rg' }),
        elastiCache: new ElastiCacheClient({ region: 'eu-west-1' }),
      }),
    );
    const modify = elastiCacheMock.commandCalls(ModifyCacheParameterGroupCommand);
    expect(modify).toHaveLength(1);
    expect(modify[0]?.args[0].input).toEqual({
      CacheParameterGroupName: 'kl-params',
      ParameterNameValues: [{ ParameterName: 'notify-keyspace-events', ParameterValue: 'gxKE' }],
    });
    expect(report.parameterGroup).toMatchObject({
      status: 'modified',
      groups: [{ name: 'kl-params', before: 'Kg', after: 'gxKE' }],
    });
    expect(
      report.nodes.every((n) => n.method === 'parameter-group' && n.status === 'repaired' && n.configured),
    ).toBe(true);
    expect(report.canaries.every((c) => c.verified)).toBe(true);
    expect(emittedMetrics(captured.emfLines)).toMatchObject({
      NodesDrifted: 6,
      NodesConfigured: 6,
      PrimariesVerified: 3,
    });
  });

  it('a default parameter group is refused: nodes refused, nothing modified, one problem line', async () => {
    const cluster = FakeCluster.build();
    for (const node of cluster.nodes) node.failure = 'config-unknown';
    mockReplicationGroup(elastiCacheMock, cluster, {
      groupName: 'default.valkey8.cluster.on',
      notifyValue: '',
    });
    const report = await runNotifyCheck(
      deps(cluster, capture(), {
        config: reportConfig(cluster, { REPLICATION_GROUP_ID: 'rg' }),
        elastiCache: new ElastiCacheClient({ region: 'eu-west-1' }),
      }),
    );
    expect(elastiCacheMock.commandCalls(ModifyCacheParameterGroupCommand)).toHaveLength(0);
    expect(report.parameterGroup?.status).toBe('refused-default');
    expect(report.nodes.map((n) => [n.status, n.drifted, n.configured])).toEqual(
      Array(6).fill(['refused', true, false]),
    );
    const groupProblems = report.problems.filter((p) => p.includes('default group'));
    expect(groupProblems).toHaveLength(1);
    expect(groupProblems[0]).toMatch(
      /^6 nodes \(.*\) refused: parameter group default\.valkey8\.cluster\.on is a default group/,
    );
    expect(report.metrics).toMatchObject({ NodesDrifted: 6, NodesConfigured: 0, PrimariesVerified: 0 });
  });

  it('without REPLICATION_GROUP_ID a refusing node is reported as not enforceable', async () => {
    const cluster = FakeCluster.build();
    for (const node of cluster.nodes) node.failure = 'config-unknown';
    const report = await runNotifyCheck(deps(cluster, capture()));
    expect(report.parameterGroup).toBeNull();
    expect(report.nodes.map((n) => n.status)).toEqual(Array(6).fill('refused'));
    expect(report.nodes[0]?.error).toMatch(/not enforceable.*REPLICATION_GROUP_ID/);
  });

  it('parameter-group mode never sends CONFIG and reads the group only', async () => {
    const cluster = FakeCluster.build();
    for (const node of cluster.nodes) node.notify = 'gxE';
    mockReplicationGroup(elastiCacheMock, cluster, { groupName: 'kl-params', notifyValue: 'gxE' });
    const report = await runNotifyCheck(
      deps(cluster, capture(), {
        config: reportConfig(cluster, { NOTIFY_MODE: 'parameter-group', REPLICATION_GROUP_ID: 'rg' }),
        elastiCache: new ElastiCacheClient({ region: 'eu-west-1' }),
      }),
    );
    expect(cluster.calls.filter((c) => c.command.startsWith('CONFIG'))).toEqual([]);
    expect(elastiCacheMock.commandCalls(ModifyCacheParameterGroupCommand)).toHaveLength(0);
    expect(elastiCacheMock.commandCalls(DescribeCacheParametersCommand).length).toBeGreaterThan(0);
    expect(report.nodes.map((n) => [n.status, n.drifted, n.configured])).toEqual(
      Array(6).fill(['ok', false, true]),
    );
    expect(report.metrics).toMatchObject({ NodesDrifted: 0, NodesConfigured: 6, PrimariesVerified: 3 });
  });
});

describe('runNotifyCheck leader and ECS report', () => {
  it('reports a running leader and its task', async () => {
    const cluster = FakeCluster.build();
    const taskArn = 'arn:aws:ecs:eu-west-1:123456789012:task/c/leader';
    writeLeaderRecord(cluster, recentRecord(taskArn));
    ecsMock
      .on(ListTasksCommand)
      .resolves({ taskArns: [taskArn, 'arn:aws:ecs:eu-west-1:123456789012:task/c/other'] });
    ecsMock.on(DescribeTasksCommand).resolves({
      tasks: [
        { taskArn, lastStatus: 'RUNNING', desiredStatus: 'RUNNING', healthStatus: 'HEALTHY' },
        {
          taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/other',
          lastStatus: 'RUNNING',
          desiredStatus: 'RUNNING',
        },
      ],
    });
    const report = await runNotifyCheck(
      deps(cluster, capture(), {
        config: reportConfig(cluster, { ECS_CLUSTER: 'c', ECS_SERVICE: 's' }),
        ecs: new ECSClient({ region: 'eu-west-1' }),
      }),
    );
    expect(report.leader).toMatchObject({ state: 'leading', workerId: 'worker-a', taskArn, fencingToken: 7 });
    expect(report.ecs).toMatchObject({ checked: true, workersRunning: 2, leaderTaskStopped: false });
    expect(report.metrics).toMatchObject({
      LeaderPresent: 1,
      LeaderTaskRunning: 1,
      WorkersRunning: 2,
      FencingToken: 7,
    });
    expect(report.ok).toBe(true);
  });

  it('flags a leader record whose task is STOPPED', async () => {
    const cluster = FakeCluster.build();
    const taskArn = 'arn:aws:ecs:eu-west-1:123456789012:task/c/gone';
    writeLeaderRecord(cluster, recentRecord(taskArn));
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(DescribeTasksCommand).resolves({
      tasks: [
        {
          taskArn,
          lastStatus: 'STOPPED',
          desiredStatus: 'STOPPED',
          stoppedReason: 'Essential container exited',
        },
      ],
    });
    const captured = capture();
    const report = await runNotifyCheck(
      deps(cluster, captured, {
        config: reportConfig(cluster, { ECS_CLUSTER: 'c', ECS_SERVICE: 's' }),
        ecs: new ECSClient({ region: 'eu-west-1' }),
      }),
    );
    expect(report.ecs).toMatchObject({ checked: true, leaderTaskStopped: true, workersRunning: 0 });
    expect(report.problems.some((p) => p.includes(taskArn) && p.includes('STOPPED'))).toBe(true);
    expect(emittedMetrics(captured.emfLines)).toMatchObject({
      LeaderPresent: 1,
      LeaderTaskRunning: 0,
      WorkersRunning: 0,
    });
    expect(captured.logLines.some((l) => JSON.parse(l).event === 'ecs.leader_task_stopped')).toBe(true);
  });

  it('reports a lapsed lease as "no leader since T, last was X"', async () => {
    const cluster = FakeCluster.build();
    const renewedAt = new Date(Date.now() - 120_000).toISOString();
    writeLeaderRecord(cluster, {
      workerId: 'worker-old',
      taskArn: null,
      fencingToken: 3,
      acquiredAt: new Date(Date.now() - 600_000).toISOString(),
      renewedAt,
      leaseTtlMs: 3000,
      releasedAt: null,
    });
    const report = await runNotifyCheck(deps(cluster, capture()));
    const expectedSince = new Date(Date.parse(renewedAt) + 3000).toISOString();
    expect(report.leader).toMatchObject({
      state: 'lapsed',
      noLeaderSince: expectedSince,
      workerId: 'worker-old',
    });
    expect(report.leader.summary).toBe(
      `no leader since ${expectedSince}, last was worker-old (fencing token 3, lease expired)`,
    );
    expect(report.metrics).toMatchObject({ LeaderPresent: 0, FencingToken: 3 });
    expect(report.metrics.LeaderAgeSeconds).toBeUndefined();
    expect(report.ecs).toEqual({
      checked: false,
      reason: expect.stringMatching(/ECS_CLUSTER and ECS_SERVICE are not set/),
    });
    expect(ecsMock.calls()).toHaveLength(0);
  });

  it('an unreadable record leaves LeaderPresent out instead of claiming 0', async () => {
    const cluster = FakeCluster.build();
    const keys = new KeyspaceKeys('default');
    leaderPrimary(cluster, keys).data.set(keys.leader, { value: 'not json', expiresAtMs: undefined });
    const report = await runNotifyCheck(deps(cluster, capture()));
    expect(report.leader.state).toBe('unreadable');
    expect(report.metrics.LeaderPresent).toBeUndefined();
  });
});

describe('secrets', () => {
  it('never puts the password into the report, the logs or the metrics', async () => {
    const password = 'sUp3r-s3cret-auth-token-value';
    const cluster = FakeCluster.build();
    const leaky = cluster.nodes[1] as FakeNode;
    // A node whose error text carries the password (as a misconfigured proxy might echo it).
    leaky.failure = 'config-unknown';
    const original = leaky.execute.bind(leaky);
    leaky.execute = (c, command, args) => {
      if (command === 'CONFIG') throw new Error(`ERR auth ${password} rejected`);
      return original(c, command, args);
    };
    const captured = capture([password]);
    const report = await runNotifyCheck(
      deps(cluster, captured, {
        config: reportConfig(cluster, { REDIS_PASSWORD: password, NOTIFY_MODE: 'config' }),
      }),
    );
    expect(report.nodes[1]?.status).toBe('failed');
    expect(JSON.stringify(report)).not.toContain(password);
    expect(JSON.stringify(report)).toContain('[redacted]');
    expect(captured.logLines.join('\n')).not.toContain(password);
    expect(captured.emfLines.join('\n')).not.toContain(password);
  });
});
