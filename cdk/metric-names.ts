/**
 * The CloudWatch metric contract (README.md, "Metrics"), as the CDK stack (dashboard and alarms) uses it.
 * The names come from core/metrics.ts, the module that emits them, so the two cannot drift apart;
 * test/cdk/emitted-metrics.test.ts also checks the synthesized template against real EMF output.
 */
import { LAMBDA_METRICS, type MetricName, WORKER_METRICS } from '../core/metrics.ts';

export const DEFAULT_METRICS_NAMESPACE = 'KeyspaceLeader';

/** The only dimension every custom metric carries; its value is LEADER_NAME. */
export const LEADER_NAME_DIMENSION = 'LeaderName';

export const WORKER_METRIC_NAMES = WORKER_METRICS;
export const LAMBDA_METRIC_NAMES = LAMBDA_METRICS;

export type WorkerMetricName = (typeof WORKER_METRIC_NAMES)[number];
export type LambdaMetricName = (typeof LAMBDA_METRIC_NAMES)[number];
export type CustomMetricName = MetricName;

/** Every custom metric name the stack references, worker first, then Lambda. */
export const METRIC_NAMES: readonly CustomMetricName[] = [...WORKER_METRIC_NAMES, ...LAMBDA_METRIC_NAMES];

export { VALUE_MISSING_REASONS } from '../core/captured-values.ts';
/**
 * Counters also broken down by one more dimension (core/metrics.ts METRIC_BREAKDOWNS), with the closed
 * list of that dimension's values: ValuesMissing by Reason (core/captured-values.ts).
 */
export { METRIC_BREAKDOWNS } from '../core/metrics.ts';
