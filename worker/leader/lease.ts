/**
 * The lease as the elector sees it: one attempt per call, no retries, no timers. The elector owns
 * the retry loop, the jitter and every deadline (on the monotonic clock); a Lease only talks to
 * Redis. Implementations: QuorumLease (a redlock quorum over 3 primaries) and SingleKeyLease (one
 * key plus WAIT for a replica), chosen by createLeaderElection; tests inject a fake.
 */

import type { StoppedLeadingReason } from './leadership.ts';

export type LeaseMode = 'quorum' | 'single-key';

/** A lease this process holds. Opaque to callers except for its fencing token. */
export interface LeaseHold {
  /**
   * Strictly greater than the token of every earlier holder of this lease family (see
   * docs/leader-election.md, "Fencing"). Fixed for the whole hold: renewals keep it.
   */
  readonly fencingToken: number;
}

export interface Lease {
  readonly mode: LeaseMode;
  /** For logs: the member keys and where they live. */
  describe(): Readonly<Record<string, unknown>>;
  /**
   * One attempt to take the lease for `ttlMs`. Resolves with the hold, or with undefined when
   * another holder has it. Rejects with LeaseUnavailableError when the attempt could not be decided
   * (members unreachable, no replica acknowledged, fencing token not written to a majority); any
   * partial state it left is released before it rejects. The caller measures the lease's start
   * itself, BEFORE calling: the lease is valid on Redis for at least `ttlMs` from that instant.
   */
  acquire(ttlMs: number): Promise<LeaseHold | undefined>;
  /**
   * One ownership-checked renewal for `ttlMs` (a member holding another owner's value refuses).
   * Rejects with LeaseLostError when enough members refused that no majority is possible any more,
   * with LeaseUnavailableError when the renewal could not be confirmed on a majority for another
   * reason (timeouts, replica acknowledgement). Never extends a hold after a failed call on its
   * own: the caller decides whether to retry before its deadline.
   */
  extend(hold: LeaseHold, ttlMs: number): Promise<void>;
  /** Deletes the members still holding this hold's value. Rejects when a majority did not answer. */
  release(hold: LeaseHold): Promise<void>;
  /**
   * Asked by the elector before each renewal: a reason to hand over now, decided by the lease
   * itself (QuorumLease: its placement is stale, `placement-changed`). Synchronous, never throws.
   * Absent or undefined: keep leading.
   */
  stepDownReason?(): StoppedLeadingReason | undefined;
}
