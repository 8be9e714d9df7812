import type { LeadershipGrant, LeadershipView } from './leadership.ts';

/**
 * This worker's current grant of leadership, as one small value that the elector writes and the
 * processing gate reads: the gate depends on this, not on the elector, so the pipeline can be built
 * before the election exists (worker/main.ts) and dependencies point one way.
 *
 * Contract: `current(now)` returns the published grant only while its deadline is ahead at `now` and
 * its signal is not aborted, so a process paused past the deadline finds no grant when it resumes,
 * before any timer has run (the elector aborts the signal when the term ends).
 */
export class LeadershipState implements LeadershipView {
  private grant: LeadershipGrant | undefined;

  current(nowMs: number): LeadershipGrant | undefined {
    const grant = this.grant;
    if (grant === undefined || nowMs >= grant.deadlineMs || grant.signal.aborted) return undefined;
    return grant;
  }

  /** The elector's side: a new term or a renewal (a grant), or the end of a term (undefined). */
  publish(grant: LeadershipGrant | undefined): void {
    this.grant = grant;
  }
}
