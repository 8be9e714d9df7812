import type { Cluster } from 'ioredis';
import type { Clock } from '../../core/clock.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import { coveragePublish } from '../scripts/coverage-publish.ts';
import { coverageRelease } from '../scripts/coverage-release.ts';
import { scriptsOn } from '../scripts/registry.ts';
import { newInstanceId } from '../worker-id.ts';
import { type CoverageReport, decodeCoverageReport, encodeCoverageReport } from './coverage-report.ts';
import { IdentityCheck } from './identity-check.ts';
import type { StoppedLeadingReason } from './leadership.ts';

/**
 * Coverage-aware leadership (issue 7), and the one owner of "this worker missed events of a primary"
 * (issue 12). A worker that misses a primary misses that primary's events:
 *
 * - a worker without full coverage does not take the lease while a fully covered worker exists;
 * - a leader whose subscription to a primary dropped (a gap: events published meanwhile never reached
 *   it), or that subscribed to a new primary only now (the pool reports that as a gap too: a scale-out
 *   moved slots to it before this worker saw it), hands over to a follower that stayed covered through
 *   that moment, whose replay window holds them; the successor replays from the leader's processed
 *   marks, so nothing is lost;
 * - a leader that has lacked full coverage for longer than `graceMs` (counted from the last topology
 *   change, so a failover or a scale-out gives it time to subscribe) hands over to a covered follower;
 * - when no worker has full coverage (a primary failing over drops everybody at once), the leader
 *   keeps leading and anyone may acquire: an incomplete leader is better than none.
 *
 * Gaps, one record per primary (the subscriber pool reports each drop, worker/main.ts passes it to
 * `noteGap(nodeId)`): when the first unsettled drop of that primary was noted (wall clock, to compare
 * with the peers' reports) and how it stands:
 *
 * - `pending`: not decided yet: a fresh peer has not reported since the gap (by REPORT_AFTER_GAP_MS);
 * - `peer-covered`: a fresh peer stayed covered through it, so its window holds what this worker
 *   missed: a leader hands over (`shouldStepDown` says `coverage-lost`, once), a follower defers
 *   (`canLead` is false while that peer stays fresh; if it leaves, the gap is `kept`);
 * - `kept` (settled): nobody was covered through it, or nobody said so within `gapDecisionMs`: no
 *   hand-over; this worker goes on with what its window holds.
 *
 * A primary is **suspended** while its gap is pending or peer-covered: a leader must not move that
 * primary's processed mark past the gap, because a successor covered through it replays from the
 * mark (worker/replay/replay-coordinator.ts, which registers `onSuspensionChange`, stands its cursor
 * still). A drop while the primary's gap is unsettled keeps the record's earlier time (a peer covered
 * since before it and still covered is covered through both). A record is forgotten `replayWindowMs`
 * (REPLAY_WINDOW_MS) after its gap: the gap's events have left every window then, so no peer can
 * replay them (with REPLAY_WINDOW_MS=0 a gap is forgotten as soon as it is noted). Decisions are
 * re-derived whenever the election asks (`canLead`, `shouldStepDown`), at each gap, and after each
 * read of the peers' reports.
 *
 * Every worker publishes, every `publishIntervalMs`, a field of the hash `keys.coverage` named by its
 * WORKER_ID (format in coverage-report.ts: coverage, publication time, instance id, start time,
 * configuration fingerprint). Clocks of ECS tasks are NTP-synchronised to well under the margins used
 * here; a wrong clock only delays or hastens a coverage hand-over, never grants the lease to two
 * workers (the lease alone decides that).
 *
 * Publishing is one script (worker/scripts/coverage-publish.ts, run through the script registry)
 * that returns the whole hash as it was BEFORE this worker's write, then writes; the very first
 * round only reads. So the field of this WORKER_ID shows another process that
 * wrote it since, and IdentityCheck (identity-check.ts) finds a duplicate WORKER_ID: the later of the
 * two stands by (neither publishes nor competes, steps down if it leads). Detection bound: a newcomer
 * started while the other is publishing stands by from its first read (before it ever competes:
 * `canLead` waits for that read) and logs `worker.duplicate_id` once the other's report advanced;
 * when both start together, the later one stands by and logs within 3 x `publishIntervalMs` of the
 * later start (1.5 s by default; test/unit/worker/leader/identity.test.ts).
 */
export interface CoverageRegistryOptions {
  readonly cluster: Cluster;
  readonly keys: KeyspaceKeys;
  readonly workerId: string;
  /** This process among those that may share a WORKER_ID by mistake. @default newInstanceId() */
  readonly instanceId?: string;
  /** When this process started; the later of two with one WORKER_ID stands by. @default clock.wallMs() at construction */
  readonly startedAtWallMs?: number;
  /** `configFingerprint(KEY_PATTERN, HANDLER)`, compared with the peers'. @default undefined (not compared) */
  readonly configFingerprint?: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Gauges DuplicateWorkerId and ConfigMismatch. @default none */
  readonly metrics?: EmfMetrics;
  /** This worker's coverage now. */
  readonly isCovered: () => boolean;
  readonly graceMs?: number;
  readonly publishIntervalMs?: number;
  readonly freshnessMs?: number;
  /** How long a gap waits for the peers' reports that postdate it before it is kept (no hand-over). */
  readonly gapDecisionMs?: number;
  /**
   * REPLAY_WINDOW_MS: how long a gap is remembered (its events stay replayable in a peer's window that
   * long), and how long a worker covered only recently defers to a peer covered for longer.
   */
  readonly replayWindowMs: number;
}

/**
 * A change of a primary's suspension: `suspended: true` at every gap noted (each drop is a
 * discontinuity of the primary's stream, also while it is suspended already); `suspended: false`
 * once when its gap is kept or forgotten.
 */
export interface SuspensionChange {
  readonly nodeId: string;
  readonly suspended: boolean;
}

export type SuspensionListener = (change: SuspensionChange) => void;

/** One primary's gap as this worker knows it (see the class comment). */
interface GapRecord {
  readonly nodeId: string;
  /** When the first unsettled drop of this primary was noted (wall clock). */
  readonly atWallMs: number;
  state: 'pending' | 'peer-covered' | 'kept';
  /** `shouldStepDown` returned `coverage-lost` for it already: a hand-over is decided once. */
  handedOver: boolean;
}

interface PeerState {
  readonly coveredSince: number | undefined;
  readonly publishedAt: number;
}

/** A peer's report must postdate a gap by this much to show the peer's state after the gap. */
const REPORT_AFTER_GAP_MS = 250;
/** A peer covered this much longer than this worker is preferred as leader (its window is fuller). */
const WARMER_PEER_MARGIN_MS = 1000;
/** A peer covered since this long before a gap was covered through it. */
const COVERED_BEFORE_GAP_MS = 100;

export class CoverageRegistry {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private peers = new Map<string, PeerState>();
  private uncoveredSinceMono: number | undefined;
  private coveredSinceWall: number | undefined;
  /** At most one record per primary, by node id. */
  private readonly gaps = new Map<string, GapRecord>();
  private readonly suspensionListeners: SuspensionListener[] = [];
  private lastFailure: string | undefined;
  private firstReadSettled = false;
  /** A read succeeded: from then on this worker also writes its report (unless standing by). */
  private readOnce = false;
  /** This worker's field holds its own report (written, not yet deleted). */
  private published = false;
  private readonly identity: IdentityCheck;
  private readonly instanceId: string;
  private readonly startedAtWallMs: number;
  private readonly graceMs: number;
  private readonly publishIntervalMs: number;
  private readonly freshnessMs: number;
  private readonly gapDecisionMs: number;
  private readonly replayWindowMs: number;

  constructor(private readonly options: CoverageRegistryOptions) {
    this.graceMs = options.graceMs ?? 2000;
    this.publishIntervalMs = options.publishIntervalMs ?? 500;
    this.freshnessMs = options.freshnessMs ?? 2000;
    this.gapDecisionMs = options.gapDecisionMs ?? 5000;
    this.replayWindowMs = options.replayWindowMs;
    if (!(this.freshnessMs > this.publishIntervalMs))
      throw new RangeError('freshnessMs must exceed publishIntervalMs');
    if (!(this.replayWindowMs >= 0)) throw new RangeError('replayWindowMs must be >= 0');
    this.instanceId = options.instanceId ?? newInstanceId();
    this.startedAtWallMs = options.startedAtWallMs ?? options.clock.wallMs();
    this.identity = new IdentityCheck({
      workerId: options.workerId,
      instanceId: this.instanceId,
      startedAtWallMs: this.startedAtWallMs,
      configFingerprint: options.configFingerprint,
      logger: options.logger,
      metrics: options.metrics,
      freshnessMs: this.freshnessMs,
    });
  }

  start(): void {
    if (this.timer) return;
    this.identity.start();
    this.tick();
    this.timer = setInterval(() => this.tick(), this.publishIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    if (!this.published) return;
    try {
      // Only while the field is still this process's own: a twin's report stays.
      await scriptsOn(this.options.cluster).run(
        coverageRelease,
        [this.options.keys.coverage],
        [this.options.workerId, this.instanceId],
      );
    } catch {
      // Stale fields are ignored after freshnessMs and removed by the others.
    }
  }

  /**
   * This worker's subscription to `nodeId` (a primary) was up and went down, or a replica was promoted
   * whose subscription was not up throughout: events of that primary may have been missed. The
   * primary is suspended from now on (listeners hear it at once, also when it was suspended already).
   */
  noteGap(nodeId: string): void {
    const record = this.gaps.get(nodeId);
    if (record === undefined || record.state === 'kept') {
      this.gaps.set(nodeId, {
        nodeId,
        atWallMs: this.options.clock.wallMs(),
        state: 'pending',
        handedOver: false,
      });
    }
    this.observe();
    this.notify({ nodeId, suspended: true });
    this.settleGaps();
  }

  /**
   * Hears every gap noted and every end of a suspension (`SuspensionChange`), synchronously; the
   * replay coordinator registers at its construction.
   */
  onSuspensionChange(listener: SuspensionListener): void {
    this.suspensionListeners.push(listener);
  }

  /** Whether `nodeId` has an unsettled gap (pending or peer-covered): its mark must not pass the gap. */
  isSuspended(nodeId: string): boolean {
    const state = this.gaps.get(nodeId)?.state;
    return state !== undefined && state !== 'kept';
  }

  /** Node ids of the suspended primaries. */
  suspended(): readonly string[] {
    return [...this.gaps.values()].filter((r) => r.state !== 'kept').map((r) => r.nodeId);
  }

  /** The set of primaries changed: the grace for subscribing to a new one starts now. */
  noteTopologyChange(): void {
    if (this.uncoveredSinceMono !== undefined) this.uncoveredSinceMono = this.options.clock.monotonicMs();
  }

  /**
   * For LeaderElector.canLead: covered, and no peer holds what a recent gap of this worker missed; or
   * nobody is covered at all.
   */
  canLead(): boolean {
    const covered = this.observe();
    this.settleGaps();
    if (this.identity.standingBy) return false;
    // Until the first read of the peers' reports, this worker cannot know whether a better-placed
    // peer exists (a replacement started after a crash must not win just by asking first).
    if (!this.firstReadSettled) return false;
    if (!covered) return !this.peerCoveredNow();
    for (const record of this.gaps.values()) if (record.state === 'peer-covered') return false;
    // A worker that started (or re-covered) recently has an empty or short replay window: while a
    // peer has been covered for longer, that peer is the better successor (it holds what the previous
    // leader left unprocessed). After `replayWindowMs` every window is as full as it gets.
    const mySince = this.coveredSinceWall;
    if (mySince !== undefined && this.options.clock.wallMs() - mySince < this.replayWindowMs) {
      const olderPeer = this.freshPeers().some(
        (p) => p.coveredSince !== undefined && p.coveredSince < mySince - WARMER_PEER_MARGIN_MS,
      );
      if (olderPeer) return false;
    }
    return true;
  }

  /**
   * For LeaderElector.shouldStepDown (asked before each renewal): `coverage-lost` once for a gap a
   * peer was covered through (it replays from the marks, which stayed before the gap), or after the
   * grace without coverage while a peer is covered.
   */
  shouldStepDown(): StoppedLeadingReason | undefined {
    this.observe();
    this.settleGaps();
    if (this.identity.standingBy) return 'duplicate-worker-id';
    const { clock } = this.options;
    let handOver = false;
    for (const record of this.gaps.values()) {
      if (record.state !== 'peer-covered' || record.handedOver) continue;
      record.handedOver = true;
      handOver = true;
    }
    if (handOver) return 'coverage-lost';
    const since = this.uncoveredSinceMono;
    if (since !== undefined && clock.monotonicMs() - since >= this.graceMs && this.peerCoveredNow()) {
      return 'coverage-lost';
    }
    return undefined;
  }

  /**
   * Re-derives every gap record from the peers' reports and the clock (the class comment): forgets
   * those older than `replayWindowMs`, decides the pending ones, and tells the listeners of every
   * suspension that ended.
   */
  private settleGaps(): void {
    const now = this.options.clock.wallMs();
    for (const record of this.gaps.values()) {
      const ageMs = now - record.atWallMs;
      const wasSuspended = record.state !== 'kept';
      if (ageMs >= this.replayWindowMs) {
        this.gaps.delete(record.nodeId);
        if (wasSuspended) this.notify({ nodeId: record.nodeId, suspended: false });
        continue;
      }
      if (!wasSuspended) continue;
      const coveredThrough = this.peerCoveredThrough(record.atWallMs);
      if (coveredThrough === true) {
        record.state = 'peer-covered';
        continue;
      }
      // Nobody was covered through it (or nobody says so in time), or the peer that was left: go on
      // without a hand-over.
      if (record.state === 'peer-covered' || coveredThrough === false || ageMs > this.gapDecisionMs) {
        record.state = 'kept';
        this.notify({ nodeId: record.nodeId, suspended: false });
      }
    }
  }

  private notify(change: SuspensionChange): void {
    for (const listener of this.suspensionListeners) listener(change);
  }

  /**
   * Whether a peer stayed covered through the instant `gapAt`: true/false once every fresh peer has
   * reported after it, undefined while that is not known yet.
   */
  private peerCoveredThrough(gapAt: number): boolean | undefined {
    const fresh = this.freshPeers();
    if (
      fresh.some(
        (p) =>
          p.publishedAt >= gapAt + REPORT_AFTER_GAP_MS &&
          p.coveredSince !== undefined &&
          p.coveredSince <= gapAt - COVERED_BEFORE_GAP_MS,
      )
    ) {
      return true;
    }
    return fresh.every((p) => p.publishedAt >= gapAt + REPORT_AFTER_GAP_MS) ? false : undefined;
  }

  private peerCoveredNow(): boolean {
    return this.freshPeers().some((p) => p.coveredSince !== undefined);
  }

  private freshPeers(): PeerState[] {
    const oldest = this.options.clock.wallMs() - this.freshnessMs;
    return [...this.peers.values()].filter((p) => p.publishedAt >= oldest);
  }

  private observe(): boolean {
    const covered = this.options.isCovered();
    if (covered) {
      this.uncoveredSinceMono = undefined;
      this.coveredSinceWall ??= this.options.clock.wallMs();
    } else {
      this.uncoveredSinceMono ??= this.options.clock.monotonicMs();
      this.coveredSinceWall = undefined;
    }
    return covered;
  }

  private tick(): void {
    if (this.inFlight) return;
    this.inFlight = this.publishAndRead().finally(() => {
      this.inFlight = undefined;
    });
  }

  private async publishAndRead(): Promise<void> {
    const { cluster, keys, workerId, clock, logger } = this.options;
    this.observe();
    const nowWall = clock.wallMs();
    // The first round only reads: a newcomer learns of a twin before its first write.
    const write = this.readOnce && !this.identity.standingBy;
    const report = encodeCoverageReport({
      coveredSinceWallMs: this.coveredSinceWall,
      publishedAtWallMs: nowWall,
      instanceId: this.instanceId,
      startedAtWallMs: this.startedAtWallMs,
      configFingerprint: this.options.configFingerprint,
    });
    try {
      const before = await scriptsOn(cluster).run(
        coveragePublish,
        [keys.coverage],
        [write ? workerId : '', report, String(10 * this.freshnessMs)],
      );
      if (write) this.published = true;
      const reports = new Map<string, CoverageReport>();
      const peers = new Map<string, PeerState>();
      const stale: string[] = [];
      for (const [id, text] of before) {
        const decoded = decodeCoverageReport(text);
        if (!decoded || !(decoded.publishedAtWallMs >= nowWall - 10 * this.freshnessMs)) {
          if (id !== workerId) stale.push(id);
          continue;
        }
        reports.set(id, decoded);
        if (id === workerId) continue;
        peers.set(id, { coveredSince: decoded.coveredSinceWallMs, publishedAt: decoded.publishedAtWallMs });
      }
      this.identity.observe(reports, nowWall);
      this.peers = peers;
      this.readOnce = true;
      this.firstReadSettled = true;
      // A pending gap is decided by the peers' reports: a kept one resumes its primary now.
      this.settleGaps();
      if (stale.length > 0) await cluster.hdel(keys.coverage, ...stale);
      this.lastFailure = undefined;
    } catch (error) {
      // Once per distinct cause at warn (a missing ACL permission shows), then at debug.
      const message = error instanceof Error ? error.message : String(error);
      if (message === this.lastFailure) logger.debug('coverage.publish_failed', { error });
      else logger.warn('coverage.publish_failed', { error });
      this.lastFailure = message;
      // A failed read says nothing about the peers; the lease itself still decides.
      this.firstReadSettled = true;
    }
  }
}
