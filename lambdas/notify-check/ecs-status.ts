import { DescribeTasksCommand, type ECSClient, ListTasksCommand, type Task } from '@aws-sdk/client-ecs';
import type { Logger } from '../../core/logger.ts';
import { sendBounded } from './aws-call.ts';
import { describeError } from './errors.ts';
import type { EcsReport, LeaderReport, LeaderTaskReport } from './report.ts';

/**
 * Checks the leader record against ECS: is the task it names running (and healthy), and how many
 * workers of the service run. Skipped, and said so, when ECS_CLUSTER/ECS_SERVICE are unset.
 */

export interface EcsStatusOptions {
  readonly client: ECSClient | undefined;
  readonly cluster: string | undefined;
  readonly service: string | undefined;
  readonly leader: LeaderReport;
  readonly callTimeoutMs: () => number;
  readonly logger: Logger;
}

/** ListTasks pages read at most (100 tasks a page). */
const MAX_LIST_PAGES = 50;
/** DescribeTasks takes at most 100 tasks a call. */
const DESCRIBE_BATCH = 100;

async function listServiceTasks(
  options: EcsStatusOptions,
  cluster: string,
  service: string,
): Promise<string[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const output = await sendBounded(
      (o) =>
        (options.client as ECSClient).send(
          new ListTasksCommand({
            cluster,
            serviceName: service,
            desiredStatus: 'RUNNING',
            maxResults: 100,
            nextToken,
          }),
          o,
        ),
      options.callTimeoutMs(),
      `ListTasks ${service}`,
    );
    arns.push(...(output.taskArns ?? []));
    if (!output.nextToken || output.nextToken === nextToken) break;
    nextToken = output.nextToken;
  }
  return arns;
}

async function describeTasks(
  options: EcsStatusOptions,
  cluster: string,
  arns: readonly string[],
): Promise<{ tasks: Map<string, Task>; missing: Set<string> }> {
  const tasks = new Map<string, Task>();
  const missing = new Set<string>();
  for (let i = 0; i < arns.length; i += DESCRIBE_BATCH) {
    const batch = arns.slice(i, i + DESCRIBE_BATCH);
    const output = await sendBounded(
      (o) => (options.client as ECSClient).send(new DescribeTasksCommand({ cluster, tasks: batch }), o),
      options.callTimeoutMs(),
      'DescribeTasks',
    );
    for (const task of output.tasks ?? []) if (task.taskArn) tasks.set(task.taskArn, task);
    for (const failure of output.failures ?? []) if (failure.arn) missing.add(failure.arn);
  }
  return { tasks, missing };
}

function leaderTaskReport(taskArn: string, task: Task | undefined): LeaderTaskReport {
  return {
    taskArn,
    found: task !== undefined,
    lastStatus: task?.lastStatus ?? null,
    desiredStatus: task?.desiredStatus ?? null,
    healthStatus: task?.healthStatus ?? null,
    stoppedReason: task?.stoppedReason ?? null,
    stoppedAt: task?.stoppedAt ? new Date(task.stoppedAt).toISOString() : null,
    running: task?.lastStatus === 'RUNNING',
  };
}

/** A task that is stopped, being stopped, or no longer known to ECS. */
export function isTaskStopped(task: LeaderTaskReport): boolean {
  return !task.found || task.lastStatus === 'STOPPED' || task.desiredStatus === 'STOPPED';
}

/** Never throws: a failed ECS call is `error` in the returned report. */
export async function readEcsStatus(options: EcsStatusOptions): Promise<EcsReport> {
  const { cluster, service } = options;
  if (cluster === undefined || service === undefined || options.client === undefined) {
    return {
      checked: false,
      reason: 'ECS_CLUSTER and ECS_SERVICE are not set; LeaderTaskRunning and WorkersRunning are not emitted',
    };
  }
  try {
    const listed = await listServiceTasks(options, cluster, service);
    const leaderArn = options.leader.taskArn;
    const toDescribe = [...new Set(leaderArn ? [...listed, leaderArn] : listed)];
    const { tasks } =
      toDescribe.length > 0
        ? await describeTasks(options, cluster, toDescribe)
        : { tasks: new Map<string, Task>() };
    const workersRunning = listed.filter((arn) => tasks.get(arn)?.lastStatus === 'RUNNING').length;
    const leaderTask = leaderArn ? leaderTaskReport(leaderArn, tasks.get(leaderArn)) : null;
    const leaderTaskStopped = leaderTask !== null && isTaskStopped(leaderTask);
    const fields = { cluster, service, tasksListed: listed.length, workersRunning, leaderTaskStopped };
    if (leaderTaskStopped) options.logger.warn('ecs.leader_task_stopped', { ...fields, leaderTask });
    else options.logger.info('ecs.checked', { ...fields, leaderTask });
    return {
      checked: true,
      cluster,
      service,
      tasksListed: listed.length,
      workersRunning,
      leaderTask,
      leaderTaskStopped,
      error: null,
    };
  } catch (error) {
    options.logger.warn('ecs.failed', { cluster, service, error });
    return {
      checked: true,
      cluster,
      service,
      tasksListed: null,
      workersRunning: null,
      leaderTask: null,
      leaderTaskStopped: false,
      error: describeError(error),
    };
  }
}
