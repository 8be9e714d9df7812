import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { KeyspaceLeaderError, TimeoutError } from '../core/errors.ts';

/**
 * The worker's identity: WORKER_ID when set, else the ECS task ARN, else `hostname-pid`. The task ARN
 * (also recorded in the leader record, so the Lambda can check the leader against ECS) comes from
 * `${ECS_CONTAINER_METADATA_URI_V4}/task` (`TaskARN`), read once with a short timeout; outside ECS the
 * variable is unset and no request is made. A metadata endpoint that fails or is slow is not fatal:
 * the worker falls back to `hostname-pid` and says why in `metadataError`.
 */
export interface WorkerIdentity {
  readonly workerId: string;
  readonly taskArn: string | null;
  readonly source: 'env' | 'ecs' | 'host';
  /** Why the task ARN could not be read, when the metadata endpoint was set but failed. */
  readonly metadataError: string | undefined;
}

export interface WorkerIdentityInput {
  /** Parsed WORKER_ID (config.workerId). */
  readonly workerId: string | undefined;
  /** ECS_CONTAINER_METADATA_URI_V4 (set by the ECS agent; not user configuration). */
  readonly metadataUri: string | undefined;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly hostname?: () => string;
  readonly pid?: number;
}

/**
 * A random id of this process (12 hex characters), distinct from WORKER_ID: two processes started
 * with one WORKER_ID by mistake still differ in it (see worker/leader/identity-check.ts).
 */
export function newInstanceId(): string {
  return randomBytes(6).toString('hex');
}

export async function resolveWorkerIdentity(input: WorkerIdentityInput): Promise<WorkerIdentity> {
  let taskArn: string | null = null;
  let metadataError: string | undefined;
  if (input.metadataUri) {
    try {
      taskArn = await readTaskArn(input.metadataUri, input.fetch ?? fetch, input.timeoutMs ?? 1000);
    } catch (error) {
      metadataError = error instanceof Error ? error.message : String(error);
    }
  }
  if (input.workerId) return { workerId: input.workerId, taskArn, source: 'env', metadataError };
  if (taskArn) return { workerId: taskArn, taskArn, source: 'ecs', metadataError };
  const host = (input.hostname ?? hostname)();
  return { workerId: `${host}-${input.pid ?? process.pid}`, taskArn, source: 'host', metadataError };
}

/** The ECS task metadata endpoint answered, but not with a task ARN. */
export class TaskMetadataError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TASK_METADATA_UNAVAILABLE', message, options);
  }
}

async function readTaskArn(metadataUri: string, fetchFn: typeof fetch, timeoutMs: number): Promise<string> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new TimeoutError('ECS task metadata request', timeoutMs)),
    timeoutMs,
  );
  try {
    const response = await fetchFn(`${metadataUri.replace(/\/+$/, '')}/task`, { signal: controller.signal });
    if (!response.ok)
      throw new TaskMetadataError(`ECS task metadata endpoint answered HTTP ${response.status}`);
    const body = (await response.json()) as { TaskARN?: unknown };
    if (typeof body.TaskARN !== 'string' || body.TaskARN === '')
      throw new TaskMetadataError('ECS task metadata has no TaskARN');
    return body.TaskARN;
  } catch (error) {
    // An abort surfaces as the fetch's own AbortError; report the timeout that caused it.
    if (controller.signal.aborted) throw controller.signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
