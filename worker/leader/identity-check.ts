import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import { type CoverageReport, fingerprintDifferences } from './coverage-report.ts';

/**
 * How long workers of one LEADER_NAME with different KEY_PATTERN or HANDLER are expected to overlap
 * during a deploy, derived from cdk/constructs/worker-service.ts (ECS rolling deploy, minimum healthy
 * 100 %, maximum 200 %: the new tasks start beside the old ones, which are stopped once the new ones
 * are healthy). The longest a new task can take to be marked healthy is the health check's start
 * period plus its retries x interval plus one timeout (60 + 3 x 15 + 5 = 110 s; a task slower than
 * that is marked unhealthy and the deploy is failing, not overlapping); an old task then gets up to
 * the stop timeout (30 s) between SIGTERM and SIGKILL; a killed task's report is ignored after the
 * registry's freshness (2 s). 142 s, rounded up to 150 s. test/cdk/deploy-overlap.test.ts keeps this
 * above what the construct configures.
 */
export const DEPLOY_OVERLAP_MS = 150_000;

/** The field of a report without an instance id (a worker from before instance ids). */
const UNKNOWN_INSTANCE = '(unknown: a worker without instance ids)';
/** At most this many peer ids in one log line. */
const MAX_PEERS_LOGGED = 10;

export interface IdentityCheckOptions {
  readonly workerId: string;
  /** This process: random per start (worker/worker-id.ts `newInstanceId`). */
  readonly instanceId: string;
  readonly startedAtWallMs: number;
  /** This worker's `configFingerprint(KEY_PATTERN, HANDLER)`; undefined: no mismatch check. */
  readonly configFingerprint: string | undefined;
  readonly logger: Logger;
  /** Gauges DuplicateWorkerId and ConfigMismatch; undefined: none. */
  readonly metrics: EmfMetrics | undefined;
  /** A report older than this is a gone worker's. */
  readonly freshnessMs: number;
  /** @default DEPLOY_OVERLAP_MS */
  readonly deployOverlapMs?: number;
}

interface Twin {
  readonly instanceId: string;
  readonly startedAtWallMs: number;
  readonly firstPublishedAtWallMs: number;
  lastPublishedAtWallMs: number;
  /** Logged once its report advanced: a live process, not the last report of a crashed one. */
  reported: boolean;
}

interface Mismatch {
  readonly sinceWallMs: number;
  warned: boolean;
}

/**
 * Identity mistakes read from the coverage hash (sequence 11 of issue 11), fed by CoverageRegistry
 * with every field as it was BEFORE this worker's own write (one script: read, then write), so the
 * field of this WORKER_ID shows whoever wrote it since this worker's last write:
 *
 * - **Duplicate WORKER_ID.** The field carries another instance id in a fresh report: another process
 *   uses this WORKER_ID. Of the two, the one that started later (ties: the greater instance id) is
 *   the newcomer: it stands by (`standingBy`: it neither publishes nor competes for the lease, and
 *   steps down if it leads) until the other's reports stop. It logs `worker.duplicate_id` (error) once
 *   the other's report has advanced (a crashed predecessor's last report never does, so a restart
 *   under a fixed WORKER_ID waits at most the freshness for it, silently). The incumbent, which keeps
 *   publishing and competing, logs it at debug only: one error line for one mistake. A report without
 *   an instance id (a worker from before instance ids) is always the incumbent.
 * - **Configuration mismatch.** A fresh peer publishes another fingerprint of (KEY_PATTERN, HANDLER).
 *   Workers of one LEADER_NAME share one lease, so only the leader's configuration handles events.
 *   During a deploy that changes either setting this is expected: it is logged at info at once
 *   (`config.mismatch_seen`), and at warn (`config.mismatch`) only when it outlasted
 *   `deployOverlapMs`; the gauge ConfigMismatch is 1 from then until it ends.
 */
export class IdentityCheck {
  private readonly twins = new Map<string, Twin>();
  private readonly mismatches = new Map<string, Mismatch>();
  private readonly deployOverlapMs: number;
  private wasStandingBy = false;

  constructor(private readonly options: IdentityCheckOptions) {
    this.deployOverlapMs = options.deployOverlapMs ?? DEPLOY_OVERLAP_MS;
  }

  /** The gauges start at 0, so dashboards and alarms see data before anything is wrong. */
  start(): void {
    this.options.metrics?.gauge('DuplicateWorkerId', 0);
    this.options.metrics?.gauge('ConfigMismatch', 0);
  }

  /** This process is the newcomer of two with one WORKER_ID: it must not publish nor compete. */
  get standingBy(): boolean {
    for (const twin of this.twins.values()) if (this.isNewerThan(twin)) return true;
    return false;
  }

  /** Every field of the coverage hash (this worker's own included) as read before its own write. */
  observe(reports: ReadonlyMap<string, CoverageReport>, nowWallMs: number): void {
    this.observeTwins(reports.get(this.options.workerId), nowWallMs);
    this.observeMismatches(reports, nowWallMs);
  }

  private isNewerThan(twin: Twin): boolean {
    const { startedAtWallMs, instanceId } = this.options;
    if (startedAtWallMs !== twin.startedAtWallMs) return startedAtWallMs > twin.startedAtWallMs;
    return instanceId > twin.instanceId;
  }

  private observeTwins(own: CoverageReport | undefined, nowWallMs: number): void {
    const { instanceId, freshnessMs, logger, metrics } = this.options;
    const oldest = nowWallMs - freshnessMs;
    // No field at all: the other process deleted it when it stopped (a standing-by newcomer writes none).
    if (own === undefined) this.twins.clear();
    if (own !== undefined && own.instanceId !== instanceId && own.publishedAtWallMs >= oldest) {
      const otherId = own.instanceId ?? UNKNOWN_INSTANCE;
      let twin = this.twins.get(otherId);
      if (twin === undefined) {
        twin = {
          instanceId: otherId,
          // A worker without instance ids is from the version being replaced: it is the incumbent.
          startedAtWallMs: own.startedAtWallMs ?? Number.NEGATIVE_INFINITY,
          firstPublishedAtWallMs: own.publishedAtWallMs,
          lastPublishedAtWallMs: own.publishedAtWallMs,
          reported: false,
        };
        this.twins.set(otherId, twin);
      }
      twin.lastPublishedAtWallMs = Math.max(twin.lastPublishedAtWallMs, own.publishedAtWallMs);
      if (!twin.reported && twin.lastPublishedAtWallMs > twin.firstPublishedAtWallMs) {
        twin.reported = true;
        this.reportTwin(twin);
      }
    }
    for (const [id, twin] of this.twins) if (twin.lastPublishedAtWallMs < oldest) this.twins.delete(id);
    const standingBy = this.standingBy;
    if (this.wasStandingBy && !standingBy) {
      logger.info('worker.duplicate_id_cleared', {
        instanceId,
        effect: 'the other process with this WORKER_ID stopped publishing: this one competes again',
      });
    }
    this.wasStandingBy = standingBy;
    metrics?.gauge('DuplicateWorkerId', standingBy ? 1 : 0);
  }

  private reportTwin(twin: Twin): void {
    const { instanceId, startedAtWallMs, logger } = this.options;
    const fields = {
      instanceId,
      startedAt: new Date(startedAtWallMs).toISOString(),
      otherInstanceId: twin.instanceId,
      otherStartedAt: Number.isFinite(twin.startedAtWallMs)
        ? new Date(twin.startedAtWallMs).toISOString()
        : null,
    };
    if (!this.isNewerThan(twin)) {
      // The newcomer finds this process's report too (it keeps publishing), stands by and says so:
      // one error line for one mistake.
      logger.debug('worker.duplicate_id', { role: 'incumbent', ...fields });
      return;
    }
    logger.error('worker.duplicate_id', {
      role: 'newcomer',
      ...fields,
      effect:
        'another running process uses this WORKER_ID: this one (started later) does not compete for the lease, and steps down if it leads, until the other stops',
      action:
        "give every worker its own WORKER_ID, or leave WORKER_ID unset (the ECS task ARN, else hostname-pid, is used); workers sharing one overwrite each other's coverage report",
    });
  }

  private observeMismatches(reports: ReadonlyMap<string, CoverageReport>, nowWallMs: number): void {
    const { configFingerprint: mine, workerId, freshnessMs, logger, metrics } = this.options;
    if (mine === undefined) return;
    const oldest = nowWallMs - freshnessMs;
    const foreign = new Map<string, string[]>();
    for (const [peerId, report] of reports) {
      const theirs = report.configFingerprint;
      if (peerId === workerId || report.publishedAtWallMs < oldest) continue;
      // An old worker publishes no fingerprint: nothing to compare.
      if (theirs === undefined || theirs === mine) continue;
      foreign.set(theirs, [...(foreign.get(theirs) ?? []), peerId]);
    }
    let persisted = false;
    for (const [theirs, peers] of foreign) {
      const fields = {
        differs: fingerprintDifferences(mine, theirs),
        fingerprint: mine,
        peerFingerprint: theirs,
        peers: peers.sort().slice(0, MAX_PEERS_LOGGED),
        peerCount: peers.length,
        expectedOverlapMs: this.deployOverlapMs,
      };
      let mismatch = this.mismatches.get(theirs);
      if (mismatch === undefined) {
        mismatch = { sinceWallMs: nowWallMs, warned: false };
        this.mismatches.set(theirs, mismatch);
        logger.info('config.mismatch_seen', {
          ...fields,
          meaning: `workers of this LEADER_NAME run with another KEY_PATTERN or HANDLER; expected while a deploy that changes them overlaps old and new tasks (up to ${this.deployOverlapMs / 1000} s); warned if it lasts longer`,
        });
      }
      const persistedMs = nowWallMs - mismatch.sinceWallMs;
      if (persistedMs < this.deployOverlapMs) continue;
      persisted = true;
      if (mismatch.warned) continue;
      mismatch.warned = true;
      logger.warn('config.mismatch', {
        ...fields,
        persistedMs,
        meaning: `workers of this LEADER_NAME have run with another KEY_PATTERN or HANDLER for longer than a deploy overlaps old and new tasks (${this.deployOverlapMs / 1000} s). They share one lease: only the leader's configuration handles events, so the other's keys go unhandled while it follows`,
        action:
          'two services sharing LEADER_NAME (both left on "default"?): give each its own LEADER_NAME; one service: finish or roll back the deploy so every task runs one configuration',
      });
    }
    for (const theirs of this.mismatches.keys()) if (!foreign.has(theirs)) this.mismatches.delete(theirs);
    metrics?.gauge('ConfigMismatch', persisted ? 1 : 0);
  }
}
