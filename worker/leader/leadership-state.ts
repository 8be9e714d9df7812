import type { LeadershipGrant, LeadershipView } from './leadership.ts';

/**
 * This worker's current grant of leadership, as one small value that the elector writes and the
 * processing gate reads: the gate depends on this, not on the elector, so the pipeline can be built
 * before the election exists (worker/main.ts) and dependencies point one way.
 *
 * Contract: `current(now)` returns the published grant only while its deadline is ahead at `now` and
 * its signal is not aborted, so a process paused past the deadline finds no grant when it resumes,
 * before any timer has run (the elector aborts the signal when the term ends).
 *
 * This is the only holder of the grant: the elector keeps no copy and reads its own term's deadline
 * back through `published()`, so what the gate sees and what the elector renews cannot drift. One
 * elector writes a state; nothing else publishes into it.
 */
export class LeadershipState implements LeadershipView {
  private grant: LeadershipGrant | undefined;

  current(nowMs: number): LeadershipGrant | undefined {
    const grant = this.grant;
    if (grant === undefined || nowMs >= grant.deadlineMs || grant.signal.aborted) return undefined;
    return grant;
  }

  /**
   * The elector's side: the grant as last published, whatever its deadline or signal (the elector
   * judges its own deadline). undefined between terms.
   */
  published(): LeadershipGrant | undefined {
    return this.grant;
  }

  /** The elector's side: a new term or a renewal (a grant), or the end of a term (undefined). */
  publish(grant: LeadershipGrant | undefined): void {
    this.grant = grant;
  }
}
