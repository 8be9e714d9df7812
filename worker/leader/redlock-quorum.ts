import Redlock, { ExecutionError, type Lock, type RedlockClient, ResourceLockedError } from 'redlock';
import { LeaseLostError, LeaseUnavailableError } from './lease-errors.ts';

/**
 * One member's votes, as the adapter asks for them (LeaseMemberClient runs them as the registry's
 * lease scripts). Each answers true when applied, false when another owner's value is there, and
 * rejects when it cannot tell (timeout, connection, missing replica acknowledgement).
 */
export interface LeaseMember {
  acquire(ownerValue: string, ttlMs: number): Promise<boolean>;
  extend(ownerValue: string, ttlMs: number): Promise<boolean>;
  release(ownerValue: string): Promise<boolean>;
}

/**
 * The one adapter between the lease and redlock 5.0.0-beta.2: it owns the Redlock instances, hands
 * them vote clients built from LeaseMembers, and turns redlock's outcomes into the lease's typed
 * errors. redlock keeps what makes this a Redlock lease: the random owner value, one vote per member,
 * the quorum (majority) rule, the release of a partial acquisition, the drift-corrected validity.
 *
 * What this relies on from redlock (its `Redlock` class, dist/esm/index.js of that version):
 * - `acquire(resources, ttl)`, `extend(lock, ttl)` and `release(lock)` call, on each client of the
 *   instance they are invoked on, `evalsha(hash, resources.length, [...resources, ...args])` with
 *   args `[value, ttl]` (acquire, extend) or `[value]` (release); `eval` only when that call threw an
 *   error whose message starts with NOSCRIPT, which a vote client never throws (ioredis answers
 *   NOSCRIPT under it: worker/scripts/registry.ts), and with the same arguments.
 * - A reply equal to `resources.length` (1) is a vote "for"; another number is recorded as a
 *   ResourceLockedError, a thrown error as itself, both in `attempts[].votesAgainst`; a failed
 *   quorum throws ExecutionError with those attempts (#168: callers see nothing else).
 * - `acquire` that fails releases on the SAME instance (args `[value]`, no TTL) before it throws.
 * - `extend` and `release` read only `lock.resources`, `lock.value` and `lock.expiration`, so a lock
 *   acquired through one instance can be extended and released through another.
 *
 * Hence two instances: the acquire instance's clients vote `acquire` for a call with a TTL and
 * `release` for one without (its own clean-up); the extend instance's clients vote `extend`. The
 * script (hash or text) redlock passes is not looked at: which vote a call is follows from the
 * instance and the arguments alone, never from recognising a script.
 *
 * Traps handled here: `retryCount: 0` (one attempt per call: its own retries compute the lock's
 * expiration from the first attempt, #274/#276, and grow memory with -1, #312; the elector retries
 * with jitter). `Lock.expiration` is wall-clock based and never consulted: the elector keeps its own
 * monotonic deadline and never renews past it, so the expiration check inside `extend` is disabled
 * (set to +infinity) rather than allowed to refuse a renewal after a wall-clock jump.
 *
 * The resource name given to redlock is a placeholder: each member votes on its own key.
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
  // Resolves once every vote is in; each vote is bounded by the member's timeout.
  const stats = await attempt;
  const errors = [...stats.votesAgainst.values()];
  const refused = errors.filter((e) => e instanceof ResourceLockedError).length;
  return { members, quorum, refused, failed: errors.length - refused, errors };
}

function describeVotes(votes: VoteCounts): string {
  return `${votes.refused} refused, ${votes.failed} failed of ${votes.members} (quorum ${votes.quorum})`;
}

/**
 * A redlock client that casts `member`'s votes. `withTtl` is the vote for a call carrying a TTL
 * (acquire or extend, by instance); a call without one is a release.
 */
function voteClient(
  member: LeaseMember,
  withTtl: (ownerValue: string, ttlMs: number) => Promise<boolean>,
): RedlockClient {
  const vote = async (_script: string, numKeys: number, keysAndArgs: readonly unknown[]): Promise<number> => {
    const flat = keysAndArgs.map((item) => String(item));
    if (numKeys !== 1) throw new TypeError(`lease vote: expected one resource, got ${numKeys}`);
    const [ownerValue, ttl] = flat.slice(numKeys);
    if (ownerValue === undefined) throw new TypeError('lease vote: no owner value');
    const applied =
      ttl === undefined ? await member.release(ownerValue) : await withTtl(ownerValue, Number(ttl));
    return applied ? 1 : 0;
  };
  return {
    evalsha: (hash, numKeys, keysAndArgs) => vote(hash, numKeys, keysAndArgs),
    eval: (script, numKeys, keysAndArgs) => vote(script, numKeys, keysAndArgs),
  };
}

export class RedlockQuorum {
  readonly members: number;
  /** acquire, and release (its own clean-up after a failed acquire, and `release`). */
  private readonly acquiring: Redlock;
  private readonly extending: Redlock;

  constructor(members: readonly LeaseMember[]) {
    this.members = members.length;
    const settings = { retryCount: 0, retryDelay: 0, retryJitter: 0, driftFactor: 0.01 };
    this.acquiring = new Redlock(
      members.map((m) => voteClient(m, (value, ttlMs) => m.acquire(value, ttlMs))),
      settings,
    );
    this.extending = new Redlock(
      members.map((m) => voteClient(m, (value, ttlMs) => m.extend(value, ttlMs))),
      settings,
    );
    // redlock emits every failed vote as 'error'; the outcome is reported by the callers instead.
    this.acquiring.on('error', () => {});
    this.extending.on('error', () => {});
  }

  /** acquired: false when at least one member holds another owner's value; throws when undecided. */
  async acquire(ttlMs: number): Promise<QuorumAcquireResult> {
    try {
      return { acquired: true, lock: await this.acquiring.acquire([RESOURCE], ttlMs) };
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
      return await this.extending.extend(lock, ttlMs);
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
      await this.acquiring.release(lock);
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
