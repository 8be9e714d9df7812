import { DescribeTasksCommand, ECSClient, ListTasksCommand } from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../core/logger.ts';
import { readEcsStatus } from '../../../../lambdas/notify-check/ecs-status.ts';
import { describeLeader } from '../../../../lambdas/notify-check/leader-report.ts';
import { runNotifyCheck } from '../../../../lambdas/notify-check/notify-check.ts';
import { FakeCluster } from './fake-cluster.ts';
import { capture, deps, emittedMetrics, reportConfig } from './helpers.ts';

const mock = mockClient(ECSClient);
afterEach(() => mock.reset());

const arn = (id: string) => `arn:aws:ecs:eu-west-1:123456789012:task/workers/${id}`;
const now = Date.parse('2030-01-01T00:00:10.000Z');
const leading = (taskArn: string | null) =>
  describeLeader(
    '{kl:default}:leader',
    {
      workerId: 'w',
      taskArn,
      fencingToken: 1,
      acquiredAt: '2030-01-01T00:00:00.000Z',
      renewedAt: '2030-01-01T00:00:09.000Z',
      leaseTtlMs: 3000,
      releasedAt: null,
    },
    now,
  );

const read = (leader = leading(arn('leader'))) =>
  readEcsStatus({
    client: new ECSClient({ region: 'eu-west-1' }),
    cluster: 'workers',
    service: 'svc',
    leader,
    callTimeoutMs: () => 500,
    logger: silentLogger,
  });

describe('readEcsStatus', () => {
  it('is skipped, and says so, without ECS_CLUSTER/ECS_SERVICE', async () => {
    const report = await readEcsStatus({
      client: undefined,
      cluster: undefined,
      service: undefined,
      leader: leading(arn('x')),
      callTimeoutMs: () => 500,
      logger: silentLogger,
    });
    expect(report.checked).toBe(false);
    expect(mock.calls()).toHaveLength(0);
  });

  it('lists the service tasks over every page (desiredStatus RUNNING) and counts the running ones', async () => {
    mock
      .on(ListTasksCommand, { nextToken: undefined })
      .resolves({ taskArns: [arn('a'), arn('b')], nextToken: 't2' })
      .on(ListTasksCommand, { nextToken: 't2' })
      .resolves({ taskArns: [arn('leader')] });
    mock.on(DescribeTasksCommand).resolves({
      tasks: [
        { taskArn: arn('a'), lastStatus: 'RUNNING', desiredStatus: 'RUNNING' },
        { taskArn: arn('b'), lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' },
        { taskArn: arn('leader'), lastStatus: 'RUNNING', desiredStatus: 'RUNNING', healthStatus: 'HEALTHY' },
      ],
    });
    const report = await read();
    expect(report).toMatchObject({
      checked: true,
      tasksListed: 3,
      workersRunning: 2,
      leaderTaskStopped: false,
    });
    if (!report.checked) throw new Error('unreachable');
    expect(report.leaderTask).toMatchObject({ running: true, healthStatus: 'HEALTHY' });
    const lists = mock.commandCalls(ListTasksCommand).map((c) => c.args[0].input);
    expect(lists).toHaveLength(2);
    expect(
      lists.every((i) => i.desiredStatus === 'RUNNING' && i.serviceName === 'svc' && i.cluster === 'workers'),
    ).toBe(true);
    // One DescribeTasks for the listed tasks and the leader's together.
    expect(mock.commandCalls(DescribeTasksCommand)).toHaveLength(1);
  });

  it('flags a leader task that ECS no longer knows as stopped', async () => {
    mock.on(ListTasksCommand).resolves({ taskArns: [arn('a')] });
    mock.on(DescribeTasksCommand).resolves({
      tasks: [{ taskArn: arn('a'), lastStatus: 'RUNNING', desiredStatus: 'RUNNING' }],
      failures: [{ arn: arn('leader'), reason: 'MISSING' }],
    });
    const report = await read();
    expect(report).toMatchObject({ checked: true, leaderTaskStopped: true, workersRunning: 1 });
    if (!report.checked) throw new Error('unreachable');
    expect(report.leaderTask).toMatchObject({ found: false, running: false });
  });

  it('no tasks at all: WorkersRunning 0 and no DescribeTasks call when there is no leader task either', async () => {
    mock.on(ListTasksCommand).resolves({ taskArns: [] });
    const report = await read(describeLeader('{kl:default}:leader', undefined, now));
    expect(report).toMatchObject({ checked: true, tasksListed: 0, workersRunning: 0, leaderTask: null });
    expect(mock.commandCalls(DescribeTasksCommand)).toHaveLength(0);
  });

  it('an ECS error is reported, not thrown', async () => {
    mock
      .on(ListTasksCommand)
      .rejects(new Error('AccessDeniedException: not authorized to perform ecs:ListTasks'));
    const report = await read();
    expect(report).toMatchObject({ checked: true, workersRunning: null });
    if (!report.checked) throw new Error('unreachable');
    expect(report.error).toMatch(/AccessDenied/);
  });
});

describe('ECS metrics through a run', () => {
  it('no tasks -> WorkersRunning 0, no leader -> LeaderPresent 0 and LeaderTaskRunning 0', async () => {
    const cluster = FakeCluster.build();
    mock.on(ListTasksCommand).resolves({ taskArns: [] });
    const captured = capture();
    const report = await runNotifyCheck(
      deps(cluster, captured, {
        config: reportConfig(cluster, { ECS_CLUSTER: 'workers', ECS_SERVICE: 'svc' }),
        ecs: new ECSClient({ region: 'eu-west-1' }),
      }),
    );
    expect(emittedMetrics(captured.emfLines)).toMatchObject({
      WorkersRunning: 0,
      LeaderPresent: 0,
      LeaderTaskRunning: 0,
    });
    expect(report.problems).toContain('no worker task of service svc is running');
  });

  it('a failing ECS API leaves WorkersRunning and LeaderTaskRunning out', async () => {
    const cluster = FakeCluster.build();
    mock.on(ListTasksCommand).rejects(new Error('ThrottlingException'));
    const captured = capture();
    await runNotifyCheck(
      deps(cluster, captured, {
        config: reportConfig(cluster, { ECS_CLUSTER: 'workers', ECS_SERVICE: 'svc' }),
        ecs: new ECSClient({ region: 'eu-west-1' }),
      }),
    );
    const metrics = emittedMetrics(captured.emfLines);
    expect(metrics.WorkersRunning).toBeUndefined();
    expect(metrics.LeaderTaskRunning).toBeUndefined();
    expect(metrics.PrimariesTotal).toBe(3);
  });
});
