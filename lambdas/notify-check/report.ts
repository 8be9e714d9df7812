import type { NotifyMode } from '../../core/config.ts';
import type { LAMBDA_METRICS } from '../../core/metrics.ts';
import type { NodeRole } from '../../core/topology.ts';

/**
 * The report one run returns (the Lambda's result, `npm run report -- --json`). Plain JSON: every
 * field is a string, number, boolean, null, array or object. Secrets never appear in it.
 * `reportVersion` changes when a field changes meaning or is removed.
 */

export type LambdaMetricName = (typeof LAMBDA_METRICS)[number];

/**
 * - `ok`: already had the flags; left alone.
 * - `repaired`: the flags were merged in with CONFIG SET and read back.
 * - `unreachable`: no connection within the bound.
 * - `refused`: CONFIG is restricted/unknown or not permitted (NOPERM) and no fallback applied.
 * - `failed`: CONFIG answered with another error, timed out, or the value read back lacks the flags.
 *
 * With `method: parameter-group` the status is the node's parameter group's: `ok` (had the flags),
 * `repaired` (group modified this run), `refused` (a default group), `failed` (see `parameterGroup`).
 */
export type NodeEnforcementStatus = 'ok' | 'repaired' | 'unreachable' | 'refused' | 'failed';

export interface NodeReport {
  readonly address: string;
  readonly id: string;
  readonly role: NodeRole;
  /** Health as the cluster reported it (`online`, `failed`, `loading`). */
  readonly health: string;
  readonly method: 'config' | 'parameter-group' | 'none';
  readonly status: NodeEnforcementStatus;
  /** `notify-keyspace-events` found this run (the node's, or its parameter group's); null when unknown. */
  readonly before: string | null;
  /** The value after this run; null when unknown. */
  readonly after: string | null;
  /** Found without the required flags this run (repaired or not). Counted in NodesDrifted. */
  readonly drifted: boolean;
  /** Has the required flags after this run. Counted in NodesConfigured. */
  readonly configured: boolean;
  readonly error: string | null;
}

export type ParameterGroupStatus = 'ok' | 'modified' | 'refused-default' | 'failed';

export interface ParameterGroupEntry {
  readonly name: string;
  readonly status: ParameterGroupStatus;
  readonly before: string | null;
  readonly after: string | null;
  readonly error: string | null;
}

export interface MemberClusterStatus {
  readonly cacheClusterId: string;
  readonly parameterGroup: string | null;
  /** ElastiCache's ParameterApplyStatus of the member (`in-sync`, `applying`, `pending-reboot`). */
  readonly parameterApplyStatus: string | null;
  readonly nodes: readonly {
    readonly cacheNodeId: string | null;
    /** `host:port` of the node's endpoint, as the cluster's topology names it. */
    readonly address: string | null;
    readonly parameterGroupStatus: string | null;
  }[];
}

export interface ParameterGroupReport {
  readonly replicationGroupId: string;
  /** The worst status over `groups` (or `failed` when the groups could not be found). */
  readonly status: ParameterGroupStatus;
  readonly groups: readonly ParameterGroupEntry[];
  readonly members: readonly MemberClusterStatus[];
  readonly error: string | null;
}

export interface CanaryReport {
  readonly node: string;
  readonly nodeId: string;
  /** Slot ranges the primary owns, e.g. `0-5460`. */
  readonly slots: string;
  /** The primary published the canary's `expired` event within the bound. */
  readonly verified: boolean;
  /** From the canary's SET to its event; null when not verified. */
  readonly latencyMs: number | null;
  /**
   * With PRECISE_EXPIRY: the primary published the canary's `expire` event (`__keyevent@0__:expire`,
   * class `g`), which the workers' deadline index needs; false: the workers handle this primary with
   * native expiry. Null without precise expiry, or when the canary failed before its SET.
   */
  readonly expireEventsFlow: boolean | null;
  readonly key: string | null;
  readonly error: string | null;
}

export type LeaderState = 'leading' | 'lapsed' | 'none' | 'unreadable';

export interface LeaderReport {
  readonly key: string;
  readonly state: LeaderState;
  /** One sentence for people: "w-1 leads since ...", "no leader since T, last was X", ... */
  readonly summary: string;
  readonly workerId: string | null;
  readonly taskArn: string | null;
  readonly fencingToken: number | null;
  readonly acquiredAt: string | null;
  readonly renewedAt: string | null;
  readonly releasedAt: string | null;
  readonly leaseTtlMs: number | null;
  /** Since acquisition, while leading. */
  readonly ageSeconds: number | null;
  /** When the lease ended (expired or released), once lapsed. */
  readonly noLeaderSince: string | null;
  readonly error: string | null;
}

export interface LeaderTaskReport {
  readonly taskArn: string;
  /** False when ECS no longer knows the task (it forgets stopped tasks after about an hour). */
  readonly found: boolean;
  readonly lastStatus: string | null;
  readonly desiredStatus: string | null;
  readonly healthStatus: string | null;
  readonly stoppedReason: string | null;
  readonly stoppedAt: string | null;
  readonly running: boolean;
}

export type EcsReport =
  | { readonly checked: false; readonly reason: string }
  | {
      readonly checked: true;
      readonly cluster: string;
      readonly service: string;
      /** Tasks of the service whose desired status is RUNNING (ListTasks); null when the call failed. */
      readonly tasksListed: number | null;
      /** Of those, tasks whose last status is RUNNING (DescribeTasks). */
      readonly workersRunning: number | null;
      /** The task named by the leader record; null when the record names none. */
      readonly leaderTask: LeaderTaskReport | null;
      /** The leader record names a task that is stopped (or gone). */
      readonly leaderTaskStopped: boolean;
      readonly error: string | null;
    };

export interface ClusterSummary {
  readonly seeds: readonly string[];
  readonly answeredBy: string;
  readonly shards: number;
  readonly primaries: number;
  readonly replicas: number;
}

export interface NotifyCheckReport {
  readonly reportVersion: 1;
  /** Unique per run; also the canary keys' nonce. */
  readonly runId: string;
  readonly leaderName: string;
  readonly notifyMode: NotifyMode;
  /** PRECISE_EXPIRY: the flags enforced (`Egx`, else `Ex`) and whether the canaries wait for `expire`. */
  readonly preciseExpiry: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly cluster: ClusterSummary;
  readonly nodes: readonly NodeReport[];
  readonly parameterGroup: ParameterGroupReport | null;
  readonly canaries: readonly CanaryReport[];
  readonly leader: LeaderReport;
  readonly ecs: EcsReport;
  /** The values emitted as EMF this run; a metric that could not be determined is absent. */
  readonly metrics: Readonly<Partial<Record<LambdaMetricName, number>>>;
  /** What this run changed (flags merged into a node or a parameter group), one sentence each. */
  readonly changes: readonly string[];
  /** Everything that needs a person's attention, one sentence each; empty when all is well. */
  readonly problems: readonly string[];
  readonly ok: boolean;
}
