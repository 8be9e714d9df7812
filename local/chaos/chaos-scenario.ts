import type { LocalRedisCluster } from '../cluster.ts';
import type { GuaranteeExpectations } from './chaos-guarantees.ts';
import type { FleetWorker, WorkerFleet } from './worker-fleet.ts';

/** The shape of a chaos scenario and what the harness offers it while keys flow (types only). */

/** Cluster a scenario needs; scenarios of one profile can share a cluster. */
export type ClusterProfileName = 'three-primaries' | 'four-primaries';

export interface ClusterProfile {
  readonly name: ClusterProfileName;
  readonly primaries: number;
  readonly replicasPerPrimary: number;
  readonly nodeTimeoutMs: number;
  readonly persistence: 'off' | 'aof';
}

export const CLUSTER_PROFILES: Readonly<Record<ClusterProfileName, ClusterProfile>> = {
  'three-primaries': {
    name: 'three-primaries',
    primaries: 3,
    replicasPerPrimary: 1,
    nodeTimeoutMs: 1000,
    persistence: 'off',
  },
  // Four shards: with the quorum lease's three members on three shards, one primary holds no lease
  // key (kill-publishing-primary needs one); AOF for restart-node.
  'four-primaries': {
    name: 'four-primaries',
    primaries: 4,
    replicasPerPrimary: 1,
    nodeTimeoutMs: 1000,
    persistence: 'aof',
  },
};

export interface WaitForLeaderOptions {
  /** Only a leader other than this worker. */
  readonly notId?: string;
  /** Only a leader with a token above this one. */
  readonly aboveToken?: number;
  readonly timeoutMs: number;
}

/** What a scenario's `inject` may use. Every wait is bounded and aborts with the run. */
export interface ScenarioContext {
  readonly cluster: LocalRedisCluster;
  readonly leaderName: string;
  readonly fleet: WorkerFleet;
  readonly rate: number;
  /** Wall-clock ms (sub-ms). */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Progress line for the person running it; also kept in the result's notes. */
  note(text: string): void;
  /** Marks a fault at this instant (the accounting measures the takeover from it). */
  fault(name: string, detail: string): void;
  /** Records a figure the scenario measured (e.g. a detection time), kept in the result's `measurements`. */
  measure(name: string, value: number): void;
  /** Declares that primary `node` (`host:port`) was down from `fromMs` until `toMs`. */
  outage(node: string, fromMs: number, toMs: number): void;
  waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T>;
  requireLeader(): FleetWorker;
  waitForLeader(options: WaitForLeaderOptions): Promise<FleetWorker>;
  /** Waits until the worker is subscribed to every primary. */
  waitForCovered(id: string, timeoutMs: number): Promise<void>;
  /**
   * From now on the generator sets only keys whose slot owner (`host:port`, as the reference
   * subscribers last polled it) `accept` takes, at the same rate; undefined: every key again.
   */
  restrictKeys(accept: ((owner: string | undefined) => boolean) | undefined): void;
  /** A step that puts the cluster back in shape after the workers stopped (runs even on errors). */
  onRestore(step: () => Promise<void>): void;
  /**
   * Reads the processed marks that the leader holding `fencingToken` left in Redis (call it after
   * that leader was frozen or killed, before a successor can have written): the accounting then knows
   * which of its calls came after its last mark, the duplicates a crash must allow (docs/chaos.md).
   */
  snapshotMarks(fencingToken: number): Promise<void>;
}

export interface ChaosScenario {
  readonly name: string;
  /** One line: what is done. */
  readonly summary: string;
  /** What a passing run proves. */
  readonly proves: string;
  readonly profile: ClusterProfileName;
  /** Key rate when `--rate` is not given (200 unless the scenario needs more). */
  readonly defaultRate?: number;
  readonly defaultDurationS: number;
  readonly expectations: GuaranteeExpectations;
  /** Extra worker environment (HANDLER, ...). */
  readonly workerEnv?: Readonly<Record<string, string>>;
  /** Watch RSS closely and the subscribers from the Redis side; judge the backpressure bounds. */
  readonly backpressure?: boolean;
  /** Runs the fault while keys flow (the harness started them `warmup` earlier). */
  inject(context: ScenarioContext): Promise<void>;
}
