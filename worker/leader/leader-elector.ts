import { setMaxListeners } from 'node:events';
import type { Clock } from '../../core/clock.ts';
import { type LeaseTimings, leaseTimingIssues } from '../../core/config.ts';
import { type LeaderRecord, leaderStatus } from '../../core/leader-record.ts';
import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import type { LeaderRecordStore } from './leader-record-store.ts';
import type { LeaderCallbacks, LeadershipGrant, LeadershipView, StoppedLeadingReason } from './leadership.ts';
import { LeadershipState } from './leadership-state.ts';
import type { Lease, LeaseHold } from './lease.ts';
import { GrantMismatchError, LeadershipEndedError, LeaseLostError } from './lease-errors.ts';
import type { ReleasedChannel, ReleasedMessage } from './released-channel.ts';
import { jitteredRetryDelayMs } from './retry-delay.ts';

export interface LeaderElectorConfig {
  /** One attempt per call; built by createLeaderElection (or a fake in tests). */
  readonly lease: Lease;
  /** Hand-over signal: subscribed on its own connection, published on after a graceful release. */
  readonly releasedChannel: ReleasedChannel;
  /** The leader record (keys.leader, kept a day). */
  readonly recordStore: LeaderRecordStore;
  readonly workerId: string;
  /**
   * This process (worker/worker-id.ts `newInstanceId`), sent with every `released` message; a release
   * is ignored only when it carries this instance id (or, from a worker that sends none, this
   * workerId). @default undefined: releases are recognised by workerId alone
   */
  readonly instanceId?: string;
  readonly taskArn: string | null;
  readonly timings: LeaseTimings;
  /** `monotonicMs` drives every deadline; `wallMs` only the record's timestamps. */
  readonly clock: Clock;
  readonly logger: Logger;
  /** Gauge IsLeader 0/1. */
  readonly metrics: EmfMetrics;
  readonly callbacks: LeaderCallbacks;
  /** Coverage gate: acquisition is only attempted while it returns true. Default: always. */
  readonly canLead?: () => boolean;
  /**
   * Asked before each renewal: a reason to hand over voluntarily (the lease is released and
   * `released` published, so a better-placed follower takes over at once). Default: never. The
   * lease's own `stepDownReason()` (a stale quorum placement) is asked after it, the same way.
   */
  readonly shouldStepDown?: () => StoppedLeadingReason | undefined;
  /** Jitter source in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /**
   * Where the elector publishes its grant for the processing gate (worker/main.ts builds the gate
   * before the election), and the only place the grant is kept: the elector reads its term's
   * deadline back from it. Written by this elector alone. @default a LeadershipState of its own
   * (read through `current`)
   */
  readonly state?: LeadershipState;
}

interface Term {
  readonly hold: LeaseHold;
  readonly controller: AbortController;
  readonly acquiredAt: string;
  renewedAt: string;
}

type Phase = 'new' | 'running' | 'stopping' | 'stopped';

/** Checks the lease timing rules: TTL > renew deadline > renew interval > 0, 0 < retry < TTL. */
function assertTimings(t: LeaseTimings): void {
  const problems = leaseTimingIssues(t).map((issue) => issue.message);
  // Only these four fields: `t` may be a whole WorkerConfig (it extends LeaseTimings).
  const named = ['leaseTtlMs', 'leaseRenewIntervalMs', 'leaseRenewDeadlineMs', 'leaseRetryMs'] as const;
  for (const name of named) {
    const value = t[name];
    if (!Number.isFinite(value) || value <= 0)
      problems.push(`${name} (${value}) must be a positive number of milliseconds`);
  }
  if (problems.length > 0) throw new RangeError(`invalid lease timings: ${problems.join('; ')}`);
}

/**
 * Leader election over a Lease, modelled on client-go's leaderelection: a config object, callbacks,
 * timing invariants checked at construction, one loop of one operation at a time.
 *
 * Contract:
 * - Follower: tries to acquire every `leaseRetryMs` (+-10 % jitter), and at once when another worker
 *   announces a release on the released channel; only while `canLead()` is true. Between attempts it
 *   reads the leader record (at most once per renew interval) and reports a new leader through
 *   `onNewLeader`.
 * - Leader: renews every `leaseRenewIntervalMs` through the lease's ownership-checked extend; after a
 *   failed renewal it retries every `leaseRetryMs`. Its grant is valid until the START of the last
 *   successful acquire/renewal + `leaseRenewDeadlineMs`, on the monotonic clock. The lease on Redis
 *   lives at least TTL from that same start, so the leader stops before its lease can have lapsed
 *   anywhere, with `leaseTtlMs - leaseRenewDeadlineMs` left for clock drift and scheduling delays.
 * - `current(now)` answers from that deadline alone, so a process paused past it (SIGSTOP, GC, a
 *   stalled event loop) finds no grant when it resumes even before any timer has run.
 * - Leadership ends -- the grant's signal is aborted (reason: LeadershipEndedError), then
 *   `onStoppedLeading(reason)` is called -- when the deadline passes without a renewal
 *   (`renew-deadline-missed`), when the lease is provably held by another owner (`lease-lost`), when
 *   `shouldStepDown()` or the lease's `stepDownReason()` gives a reason before a renewal
 *   (`coverage-lost`, `duplicate-worker-id`, `placement-changed`), or on `stop()` (`released` /
 *   `stopping`). After any end but `stop()`, the leftover lease is released (ownership-checked, so
 *   harmless), `released` is published so a follower takes over at once, and the worker competes
 *   again as a follower after one retry period.
 * - Callbacks are called synchronously, never awaited; exceptions they throw are logged and dropped.
 */
export class LeaderElector implements LeadershipView {
  private readonly canLead: () => boolean;
  private readonly random: () => number;
  private phase: Phase = 'new';
  private term: Term | undefined;
  /** A hold from an ended term, released by the next step before anything else. */
  private pendingRelease: LeaseHold | undefined;
  /** The next acquire (follower) or renewal (leader). */
  private attemptTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private nextRenewAtMs = 0;
  /** A release was announced while an attempt was in flight: try again as soon as it ends. */
  private wakeRequested = false;
  private readonly background = new Set<Promise<void>>();
  private recordWriteInFlight = false;
  private unsubscribeReleased: (() => void) | undefined;
  private lastLeaderSeen: string | undefined;
  private lastObservedAtMs = Number.NEGATIVE_INFINITY;
  private stopPromise: Promise<void> | undefined;
  private lastAcquireFailure: string | undefined;

  private readonly state: LeadershipState;

  constructor(private readonly config: LeaderElectorConfig) {
    assertTimings(config.timings);
    this.state = config.state ?? new LeadershipState();
    if (config.workerId === '') throw new RangeError('workerId must not be empty');
    this.canLead = config.canLead ?? (() => true);
    this.random = config.random ?? Math.random;
  }

  /** Starts competing. Idempotent; does nothing after stop(). */
  start(): void {
    if (this.phase !== 'new') return;
    this.phase = 'running';
    this.config.metrics.gauge('IsLeader', 0);
    this.unsubscribeReleased = this.config.releasedChannel.onReleased((message) =>
      this.onReleasedMessage(message),
    );
    this.runStep(() => this.acquireStep());
  }

  /** True while this worker holds a grant whose deadline is ahead (monotonic clock, now). */
  get isLeader(): boolean {
    return this.current(this.config.clock.monotonicMs()) !== undefined;
  }

  current(nowMs: number): LeadershipGrant | undefined {
    return this.state.current(nowMs);
  }

  /**
   * Stops competing. Idempotent: every call returns the same promise. In order: no new attempt
   * starts; if leading, the signal is aborted and onStoppedLeading('released' | 'stopping') called;
   * the operation in flight and pending record writes settle; then, with `release`, the lease is
   * released, the record gets `releasedAt` and the release is published so a follower takes over at
   * once. Without `release` the lease is left to expire (a follower takes over within TTL + retry).
   */
  stop(options: { release: boolean }): Promise<void> {
    this.stopPromise ??= this.stopOnce(options.release);
    return this.stopPromise;
  }

  private async stopOnce(release: boolean): Promise<void> {
    if (this.phase === 'new') {
      this.phase = 'stopped';
      return;
    }
    this.phase = 'stopping';
    this.clearAttemptTimer();
    this.unsubscribeReleased?.();
    const term = this.term;
    if (term) {
      this.endTerm(term, release ? 'released' : 'stopping');
      if (!release)
        this.config.logger.info('leader.lost', { reason: 'stopping', fencingToken: term.hold.fencingToken });
    }
    await this.settle();
    const leftover = this.pendingRelease;
    this.pendingRelease = undefined;
    if (leftover) await this.releaseQuietly(leftover);
    if (term && release) await this.handOver(term);
    this.config.metrics.gauge('IsLeader', 0);
    this.phase = 'stopped';
  }

  private async handOver(term: Term): Promise<void> {
    const { lease, logger, clock, releasedChannel } = this.config;
    const fencingToken = term.hold.fencingToken;
    try {
      await lease.release(term.hold);
    } catch (error) {
      logger.warn('leader.release_failed', { fencingToken, error });
    }
    const releasedAt = new Date(clock.wallMs()).toISOString();
    await this.writeRecord({ ...this.recordOf(term), releasedAt });
    try {
      await releasedChannel.publish(this.releasedMessage(fencingToken, releasedAt));
    } catch (error) {
      logger.warn('leader.release_publish_failed', { fencingToken, error });
    }
    logger.info('leader.released', { fencingToken });
  }

  // ---- the loop: one step at a time; each step's end schedules the next ----

  private runStep(step: () => Promise<void>): void {
    this.clearAttemptTimer();
    const promise: Promise<void> = step()
      .catch((error: unknown) => this.config.logger.error('leader.internal_error', { error }))
      .finally(() => {
        if (this.inFlight === promise) this.inFlight = undefined;
        this.scheduleNext();
      });
    this.inFlight = promise;
  }

  private scheduleNext(): void {
    if (this.phase !== 'running' || this.inFlight || this.attemptTimer) return;
    if (this.term) {
      const delayMs = Math.max(0, this.nextRenewAtMs - this.config.clock.monotonicMs());
      this.attemptTimer = setTimeout(() => this.fire(() => this.renewStep()), delayMs);
    } else {
      const now = this.pendingRelease !== undefined || this.wakeRequested;
      const delayMs = now ? 0 : jitteredRetryDelayMs(this.config.timings.leaseRetryMs, this.random);
      this.attemptTimer = setTimeout(() => this.fire(() => this.acquireStep()), delayMs);
    }
  }

  private fire(step: () => Promise<void>): void {
    this.attemptTimer = undefined;
    if (this.phase !== 'running' || this.inFlight) return;
    this.runStep(step);
  }

  private clearAttemptTimer(): void {
    if (this.attemptTimer !== undefined) clearTimeout(this.attemptTimer);
    this.attemptTimer = undefined;
  }

  private onReleasedMessage(message: ReleasedMessage): void {
    if (this.phase !== 'running' || this.term || this.isOwnRelease(message)) return;
    if (this.inFlight) {
      this.wakeRequested = true;
      return;
    }
    this.runStep(() => this.acquireStep());
  }

  /** Two processes may share a WORKER_ID by mistake: the instance id tells them apart. */
  private isOwnRelease(message: ReleasedMessage): boolean {
    const { instanceId, workerId } = this.config;
    if (message.instanceId !== undefined && instanceId !== undefined)
      return message.instanceId === instanceId;
    return message.workerId === workerId;
  }

  private releasedMessage(fencingToken: number, releasedAt: string): ReleasedMessage {
    const { workerId, instanceId } = this.config;
    return { workerId, ...(instanceId === undefined ? {} : { instanceId }), fencingToken, releasedAt };
  }

  private async acquireStep(): Promise<void> {
    this.wakeRequested = false;
    const leftover = this.pendingRelease;
    this.pendingRelease = undefined;
    if (leftover) {
      // Just lost leadership: give the lease back now, compete again after a retry period, so a
      // follower in better shape gets its chance first; tell the followers, so it does at once.
      await this.releaseQuietly(leftover);
      const { releasedChannel, clock, logger } = this.config;
      try {
        await releasedChannel.publish(
          this.releasedMessage(leftover.fencingToken, new Date(clock.wallMs()).toISOString()),
        );
      } catch (error) {
        logger.debug('leader.release_publish_failed', { fencingToken: leftover.fencingToken, error });
      }
      return;
    }
    if (this.phase !== 'running' || this.term) return;
    if (!this.mayLead()) {
      await this.observeLeader();
      return;
    }
    const { lease, clock, timings } = this.config;
    const startMs = clock.monotonicMs();
    let hold: LeaseHold | undefined;
    try {
      hold = await lease.acquire(timings.leaseTtlMs);
    } catch (error) {
      this.reportAcquireFailure(error);
    }
    if (hold !== undefined) this.lastAcquireFailure = undefined;
    if (!hold) {
      if (!this.wakeRequested) await this.observeLeader();
      return;
    }
    if (this.phase !== 'running' || clock.monotonicMs() >= startMs + timings.leaseRenewDeadlineMs) {
      // Stopped meanwhile, or the attempt took so long that the grant would already be over.
      await this.releaseQuietly(hold);
      return;
    }
    this.beginTerm(hold, startMs);
  }

  /**
   * An acquire that was undecided (timeouts, refused commands, unreachable members) rather than lost
   * to another owner: logged at warn once per distinct cause, so a missing ACL permission or a dead
   * cluster shows in the logs without a line every retry period.
   */
  private reportAcquireFailure(error: unknown): void {
    const causes =
      error instanceof Error && error.cause instanceof AggregateError
        ? error.cause.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e)))
        : [];
    const key = `${error instanceof Error ? error.message : String(error)}|${[...new Set(causes)].sort().join('|')}`;
    if (key === this.lastAcquireFailure) {
      this.config.logger.debug('leader.acquire_failed', { error, causes });
      return;
    }
    this.lastAcquireFailure = key;
    this.config.logger.warn('leader.acquire_failed', { error, causes });
  }

  /** The caller's reason (`shouldStepDown`) first, then the lease's own (a stale placement). */
  private stepDownReason(): StoppedLeadingReason | undefined {
    let reason: StoppedLeadingReason | undefined;
    try {
      reason = this.config.shouldStepDown?.();
    } catch (error) {
      this.config.logger.error('leader.callback_failed', { callback: 'shouldStepDown', error });
    }
    return reason ?? this.config.lease.stepDownReason?.();
  }

  private mayLead(): boolean {
    try {
      return this.canLead();
    } catch (error) {
      this.config.logger.error('leader.callback_failed', { callback: 'canLead', error });
      return false;
    }
  }

  private beginTerm(hold: LeaseHold, startMs: number): void {
    const { clock, timings, logger, metrics, lease, callbacks } = this.config;
    const controller = new AbortController();
    // Every handler call in flight listens on this signal (HANDLER_CONCURRENCY of them).
    setMaxListeners(0, controller.signal);
    const now = new Date(clock.wallMs()).toISOString();
    const term: Term = { hold, controller, acquiredAt: now, renewedAt: now };
    this.term = term;
    this.state.publish({
      fencingToken: hold.fencingToken,
      signal: controller.signal,
      deadlineMs: startMs + timings.leaseRenewDeadlineMs,
    });
    this.nextRenewAtMs = startMs + timings.leaseRenewIntervalMs;
    this.armDeadline(term);
    metrics.gauge('IsLeader', 1);
    logger.info('leader.acquired', { fencingToken: hold.fencingToken, mode: lease.mode });
    const record = this.recordOf(term);
    this.lastLeaderSeen = leaderIdentity(record);
    this.track(this.writeRecord(record));
    this.callback('onStartedLeading', () => callbacks.onStartedLeading(controller.signal, hold.fencingToken));
    this.callback('onNewLeader', () => callbacks.onNewLeader?.(record));
  }

  private async renewStep(): Promise<void> {
    const term = this.term;
    if (!term) return;
    const { lease, clock, timings, logger } = this.config;
    const startMs = clock.monotonicMs();
    const dueMs = this.nextRenewAtMs;
    if (startMs >= this.grantOf(term).deadlineMs) {
      this.loseLeadership(term, 'renew-deadline-missed');
      return;
    }
    const stepDown = this.stepDownReason();
    if (stepDown !== undefined) {
      this.loseLeadership(term, stepDown);
      return;
    }
    try {
      await lease.extend(term.hold, timings.leaseTtlMs);
    } catch (error) {
      if (this.term !== term) return;
      logger.warn('leader.renew_failed', { fencingToken: term.hold.fencingToken, error });
      if (error instanceof LeaseLostError) {
        this.loseLeadership(term, 'lease-lost');
        return;
      }
      this.nextRenewAtMs = clock.monotonicMs() + jitteredRetryDelayMs(timings.leaseRetryMs, this.random);
      return;
    }
    // Leadership may have ended while the renewal was in flight (deadline timer, stop()).
    if (this.term !== term) return;
    const deadlineMs = startMs + timings.leaseRenewDeadlineMs;
    if (clock.monotonicMs() >= deadlineMs) {
      this.loseLeadership(term, 'renew-deadline-missed');
      return;
    }
    const grant = this.grantOf(term);
    if (deadlineMs > grant.deadlineMs) {
      // A literal of the term's first grant's shape, not a spread: a spread object gets another hidden
      // class, and the processor's gate (`current()`, read for every event) was deoptimized when the
      // first renewed grant reached it, mid-burst (V8's --trace-deopt: "wrong map" in currentGrant).
      this.state.publish({ fencingToken: grant.fencingToken, signal: grant.signal, deadlineMs });
      this.armDeadline(term);
    }
    this.nextRenewAtMs = startMs + timings.leaseRenewIntervalMs;
    this.config.metrics.sample('LeaseRenewLatencyMs', Math.round((clock.monotonicMs() - dueMs) * 10) / 10);
    term.renewedAt = new Date(clock.wallMs()).toISOString();
    // One renewal's record write at a time: when Redis is slow, writes must not pile up (or land
    // out of order); the next renewal writes a fresher record anyway.
    if (!this.recordWriteInFlight) {
      this.recordWriteInFlight = true;
      this.track(
        this.writeRecord(this.recordOf(term)).finally(() => {
          this.recordWriteInFlight = false;
        }),
      );
    }
  }

  private armDeadline(term: Term): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    const delayMs = Math.max(0, this.grantOf(term).deadlineMs - this.config.clock.monotonicMs());
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      if (this.term !== term) return;
      if (this.config.clock.monotonicMs() >= this.grantOf(term).deadlineMs)
        this.loseLeadership(term, 'renew-deadline-missed');
      else this.armDeadline(term);
    }, delayMs);
  }

  /** Involuntary end of a term: the leftover lease is released by the next step, then we follow. */
  private loseLeadership(term: Term, reason: StoppedLeadingReason): void {
    if (this.term !== term) return;
    this.config.logger.warn('leader.lost', { reason, fencingToken: term.hold.fencingToken });
    this.endTerm(term, reason);
    this.pendingRelease = term.hold;
    this.clearAttemptTimer();
    this.scheduleNext();
  }

  private endTerm(term: Term, reason: StoppedLeadingReason): void {
    this.term = undefined;
    this.state.publish(undefined);
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    term.controller.abort(new LeadershipEndedError(reason));
    this.config.metrics.gauge('IsLeader', 0);
    this.callback('onStoppedLeading', () => this.config.callbacks.onStoppedLeading(reason));
  }

  // ---- helpers ----

  /**
   * The grant of `term`, the term in office, read back from the state (its only holder; beginTerm
   * publishes it and endTerm clears it in the same synchronous step as `this.term`).
   */
  private grantOf(term: Term): LeadershipGrant {
    const grant = this.state.published();
    if (this.term !== term || grant === undefined || grant.signal !== term.controller.signal)
      throw new GrantMismatchError(term.hold.fencingToken, grant?.fencingToken);
    return grant;
  }

  private recordOf(term: Term): LeaderRecord {
    return {
      workerId: this.config.workerId,
      taskArn: this.config.taskArn,
      fencingToken: term.hold.fencingToken,
      acquiredAt: term.acquiredAt,
      renewedAt: term.renewedAt,
      leaseTtlMs: this.config.timings.leaseTtlMs,
      releasedAt: null,
    };
  }

  /** Never rejects: a failed record write costs only the record's freshness. */
  private async writeRecord(record: LeaderRecord): Promise<void> {
    try {
      const written = await this.config.recordStore.write(record);
      if (!written)
        this.config.logger.warn('leader.record_superseded', { fencingToken: record.fencingToken });
    } catch (error) {
      this.config.logger.debug('leader.record_write_failed', { fencingToken: record.fencingToken, error });
    }
  }

  /** Reads the record and reports a leader not seen before; at most once per renew interval. */
  private async observeLeader(): Promise<void> {
    const { callbacks, recordStore, clock, logger, timings } = this.config;
    if (!callbacks.onNewLeader) return;
    const nowMs = clock.monotonicMs();
    if (nowMs - this.lastObservedAtMs < timings.leaseRenewIntervalMs) return;
    this.lastObservedAtMs = nowMs;
    let record: LeaderRecord | undefined;
    try {
      record = await recordStore.read();
    } catch (error) {
      logger.debug('leader.record_read_failed', { error });
      return;
    }
    if (!record || leaderStatus(record, clock.wallMs()).state !== 'leading') return;
    const identity = leaderIdentity(record);
    if (identity === this.lastLeaderSeen) return;
    this.lastLeaderSeen = identity;
    const seen = record;
    this.callback('onNewLeader', () => callbacks.onNewLeader?.(seen));
  }

  private async releaseQuietly(hold: LeaseHold): Promise<void> {
    try {
      await this.config.lease.release(hold);
    } catch (error) {
      this.config.logger.debug('leader.release_failed', { fencingToken: hold.fencingToken, error });
    }
  }

  private track(promise: Promise<void>): void {
    this.background.add(promise);
    void promise.finally(() => this.background.delete(promise));
  }

  private async settle(): Promise<void> {
    while (this.inFlight || this.background.size > 0) {
      await Promise.allSettled([this.inFlight, ...this.background]);
    }
  }

  private callback(name: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.config.logger.error('leader.callback_failed', { callback: name, error });
    }
  }
}

function leaderIdentity(record: LeaderRecord): string {
  return `${record.workerId}#${record.fencingToken}`;
}
