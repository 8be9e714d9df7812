import Redlock, { ExecutionError, type Lock, type RedlockClient, ResourceLockedError } from 'redlock';
import { LeaseLostError, LeaseUnavailableError } from './lease-errors.ts';
import { leaseScripts } from './lease-scripts.ts';

/**
 * redlock 5.0.0-beta.2 behind one small class, with its known traps handled in one place:
 * - `retryCount: 0`: one attempt per call. Its own retries compute the lock's expiration from the
 *   first attempt (#274/#276) and grow memory with -1 (#312); the elector retries with jitter.
 * - `Lock.expiration` is wall-clock based and never consulted here: the elector keeps its own
 *   monotonic deadline and never renews past it, so the expiration check inside `extend` is
 *   disabled (set to +infinity) rather than allowed to refuse a renewal after a wall-clock jump.
 * - Callers of redlock only see ExecutionError; whether members refused because another owner holds
 *   the key (ResourceLockedError) is inside `attempts[].votesAgainst` (#168). It is read here to tell
 *   "held by another" / "lost" from "unavailable".
 *
 * The resource name given to redlock is a placeholder: each client (LeaseMemberClient) substitutes
 * its own member key.
 */
const RESOURCE = 'kl-lease';

export type QuorumAcquireResult =
  | { readonly acquired: true; readonly lock: Lock }
  | { readonly acquired: false };

interface VoteCounts {
  readonly members: number;
  readonly quorum: number;
  /** Members that answered that another owner's value is there. */
  readonly refused: number;
  /** Other votes against: timeouts, connection errors, missing replica acknowledgements. */
  readonly failed: number;
  readonly errors: readonly Error[];
}

async function countVotes(error: ExecutionError, members: number): Promise<VoteCounts> {
  const attempt = error.attempts[error.attempts.length - 1];
  const quorum = Math.floor(members / 2) + 1;
  if (!attempt) return { members, quorum, refused: 0, failed: members, errors: [] };
  // Resolves once every vote is in; each vote is bounded by the member client's timeout.
  const stats = await attempt;
  const errors = [...stats.votesAgainst.values()];
  const refused = errors.filter((e) => e instanceof ResourceLockedError).length;
  return { members, quorum, refused, failed: errors.length - refused, errors };
}

function describeVotes(votes: VoteCounts): string {
  return `${votes.refused} refused, ${votes.failed} failed of ${votes.members} (quorum ${votes.quorum})`;
}

export class RedlockQuorum {
  readonly members: number;
  private readonly redlock: Redlock;

  constructor(clients: readonly RedlockClient[]) {
    this.members = clients.length;
    this.redlock = new Redlock(
      clients,
      { retryCount: 0, retryDelay: 0, retryJitter: 0, driftFactor: 0.01 },
      {
        acquireScript: () => leaseScripts.acquire.text,
        extendScript: () => leaseScripts.extend.text,
        releaseScript: () => leaseScripts.release.text,
      },
    );
    // redlock emits every failed vote as 'error'; the outcome is reported by the callers instead.
    this.redlock.on('error', () => {});
  }

  /** acquired: false when at least one member holds another owner's value; throws when undecided. */
  async acquire(ttlMs: number): Promise<QuorumAcquireResult> {
    try {
      return { acquired: true, lock: await this.redlock.acquire([RESOURCE], ttlMs) };
    } catch (error) {
      if (!(error instanceof ExecutionError))
        throw new LeaseUnavailableError('acquire', 'redlock failed', { cause: error });
      const votes = await countVotes(error, this.members);
      if (votes.refused > 0) return { acquired: false };
      throw new LeaseUnavailableError('acquire', describeVotes(votes), {
        cause: new AggregateError(votes.errors),
      });
    }
  }

  /** The renewed lock; LeaseLostError when a majority can no longer be reached, else LeaseUnavailableError. */
  async extend(lock: Lock, ttlMs: number): Promise<Lock> {
    lock.expiration = Number.POSITIVE_INFINITY;
    try {
      return await this.redlock.extend(lock, ttlMs);
    } catch (error) {
      if (!(error instanceof ExecutionError))
        throw new LeaseUnavailableError('extend', 'redlock failed', { cause: error });
      const votes = await countVotes(error, this.members);
      if (votes.refused > votes.members - votes.quorum) {
        throw new LeaseLostError(votes.refused, votes.members, { cause: new AggregateError(votes.errors) });
      }
      throw new LeaseUnavailableError('extend', describeVotes(votes), {
        cause: new AggregateError(votes.errors),
      });
    }
  }

  /**
   * Deletes this lock's value wherever it still is. A member that holds no value of ours votes
   * "against" in redlock's terms; that is not a failure here. Rejects when the outcome is unknown
   * (a member did not answer and no majority confirmed): a copy may then linger until its TTL.
   */
  async release(lock: Lock): Promise<void> {
    try {
      await this.redlock.release(lock);
    } catch (error) {
      if (!(error instanceof ExecutionError))
        throw new LeaseUnavailableError('release', 'redlock failed', { cause: error });
      const votes = await countVotes(error, this.members);
      if (votes.failed > 0) {
        throw new LeaseUnavailableError('release', describeVotes(votes), {
          cause: new AggregateError(votes.errors),
        });
      }
    }
  }
}

/** Bound of one member's vote: min(300 ms, TTL / 10), at least 1 ms. */
export function voteTimeoutFor(ttlMs: number): number {
  return Math.max(1, Math.min(300, Math.floor(ttlMs / 10)));
}
