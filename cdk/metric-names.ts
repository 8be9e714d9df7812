/**
 * The CloudWatch metric contract of design.md part 1, as used by the CDK stack (dashboard and alarms).
 * Worker and Lambda emit these through EMF under one namespace with exactly one dimension set,
 * [["LeaderName"]]. A test compares this list with what core/metrics emits: change both at once.
 */

export const DEFAULT_METRICS_NAMESPACE = 'KeyspaceLeader';

/** The only dimension every custom metric carries; its value is LEADER_NAME. */
export const LEADER_NAME_DIMENSION = 'LeaderName';

export const WORKER_METRIC_NAMES = [
  'EventsReceived',
  'EventsProcessed',
  'HandlerFailures',
  'ProcessingLatencyMs',
  'IsLeader',
  'SubscribedPrimaries',
  'EventsShed',
] as const;

export const LAMBDA_METRIC_NAMES = [
  'LeaderPresent',
  'LeaderTaskRunning',
  'WorkersRunning',
  'LeaderAgeSeconds',
  'FencingToken',
  'PrimariesTotal',
  'PrimariesVerified',
  'NodesConfigured',
  'NodesDrifted',
] as const;

export type WorkerMetricName = (typeof WORKER_METRIC_NAMES)[number];
export type LambdaMetricName = (typeof LAMBDA_METRIC_NAMES)[number];
export type CustomMetricName = WorkerMetricName | LambdaMetricName;

/** Every custom metric name the stack references, worker first, then Lambda. */
export const METRIC_NAMES: readonly CustomMetricName[] = [...WORKER_METRIC_NAMES, ...LAMBDA_METRIC_NAMES];
