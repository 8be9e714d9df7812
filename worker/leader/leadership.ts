import type { LeaderRecord } from '../../core/leader-record.ts';

/**
 * The contract between the leader election (worker/leader/) and the processing gate
 * (worker/expiry/). It is the only thing the processor knows about leadership.
 */

/** A grant of leadership as the processor sees it. */
export interface LeadershipGrant {
  readonly fencingToken: number;
  /** Aborted the moment this worker stops leading (deadline missed, lost, released, stopping). */
  readonly signal: AbortSignal;
  /**
   * Monotonic instant (Clock.monotonicMs) after which this grant must not be used, even if no timer
   * has fired yet: the last successful acquire/renewal start + renew deadline. A process paused past
   * it (SIGSTOP, GC) finds it in the past when it resumes and processes nothing.
   */
  readonly deadlineMs: number;
}

export interface LeadershipView {
  /**
   * The grant when this worker leads and the deadline is still ahead at `nowMs`; undefined otherwise.
   * Cheap: called for every event at dequeue time.
   */
  current(nowMs: number): LeadershipGrant | undefined;
}

export type StoppedLeadingReason =
  | 'renew-deadline-missed'
  | 'lease-lost'
  | 'released'
  | 'coverage-lost'
  /** Another running process has this WORKER_ID and started first (coverage-registry.ts). */
  | 'duplicate-worker-id'
  /** The quorum placement is stale (quorum-lease.ts, docs/leader-election.md "Placement changes"). */
  | 'placement-changed'
  | 'stopping';

/** Callbacks in the style of client-go's leaderelection. They must not throw; they are not awaited. */
export interface LeaderCallbacks {
  onStartedLeading(signal: AbortSignal, fencingToken: number): void;
  onStoppedLeading(reason: StoppedLeadingReason): void;
  /** Another worker (or this one) became leader; called with the record read or written. */
  onNewLeader?(record: LeaderRecord): void;
}
