import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TimeoutError } from '../../../../core/errors.ts';
import { LeaseMemberClient } from '../../../../worker/leader/lease-member-client.ts';
import { type LeaseMember, RedlockQuorum } from '../../../../worker/leader/redlock-quorum.ts';
import { FakeCluster } from './fake-cluster.ts';
import { T0 } from './fakes.ts';

const LEASE = '{kl:u:p7}:lease';
const EPOCH = '{kl:u:p7}:epoch';

function member(redis: FakeCluster, token = 0) {
  return new LeaseMemberClient({
    cluster: redis.asCluster(),
    leaseKey: LEASE,
    epochKey: EPOCH,
    voteTimeoutMs: () => 300,
    tokenOf: () => token,
  });
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LeaseMemberClient', () => {
  it('votes on its own member key through the registry scripts', async () => {
    const redis = new FakeCluster();
    const client = member(redis);
    expect(await client.acquire('owner-1', 3000)).toBe(true);
    expect(redis.store.get(LEASE)).toBe('owner-1');
    // The member key is taken: another owner's acquire is refused.
    expect(await client.acquire('owner-2', 3000)).toBe(false);
    expect(await client.release('owner-2')).toBe(false);
    expect(await client.release('owner-1')).toBe(true);
    expect(redis.store.get(LEASE)).toBeNull();
    expect(redis.commands.map((c) => [c.command, c.key])).toEqual([
      ['klLeaseAcquire', LEASE],
      ['klLeaseAcquire', LEASE],
      ['klLeaseRelease', LEASE],
      ['klLeaseRelease', LEASE],
    ]);
  });

  it("passes the hold's fencing token to renewals, which raise the member's epoch", async () => {
    const redis = new FakeCluster();
    const client = member(redis, 41);
    await client.acquire('owner', 3000);
    expect(await client.extend('owner', 3000)).toBe(true);
    expect(redis.store.get(EPOCH)).toBe('41');
    expect(await client.extend('intruder', 3000)).toBe(false);
  });

  it('bounds every vote: a member whose primary is dead fails after the vote timeout', async () => {
    const redis = new FakeCluster();
    redis.down.add('kl:u:p7');
    const vote = member(redis).acquire('owner', 3000);
    const outcome = vote.catch((error: unknown) => error);
    // The verdict comes in the turn after the bound (core/errors.ts withTimeout): the next fake ms.
    await vi.advanceTimersByTimeAsync(300 + 1);
    expect(await outcome).toBeInstanceOf(TimeoutError);
  });
});

describe('RedlockQuorum (the redlock adapter)', () => {
  /** A member that records the votes it was asked for and answers `answer`. */
  function recordingMember(answer: boolean) {
    const votes: string[] = [];
    const m: LeaseMember = {
      acquire: async (value, ttlMs) => {
        votes.push(`acquire ${value.length > 0} ${ttlMs}`);
        return answer;
      },
      extend: async (value, ttlMs) => {
        votes.push(`extend ${value.length > 0} ${ttlMs}`);
        return answer;
      },
      release: async (value) => {
        votes.push(`release ${value.length > 0}`);
        return answer;
      },
    };
    return { m, votes };
  }

  it('asks each member for the vote of the operation, whatever script redlock names', async () => {
    const members = [recordingMember(true), recordingMember(true), recordingMember(true)];
    const quorum = new RedlockQuorum(members.map((r) => r.m));
    const result = await quorum.acquire(3000);
    if (!result.acquired) throw new Error('not acquired');
    const renewed = await quorum.extend(result.lock, 3000);
    await quorum.release(renewed);
    for (const { votes } of members)
      expect(votes).toEqual(['acquire true 3000', 'extend true 3000', 'release true']);
  });

  it("a refused acquire is redlock's: it releases the partial hold on every member, then reports not acquired", async () => {
    const free = recordingMember(true);
    const taken = [recordingMember(false), recordingMember(false)];
    const quorum = new RedlockQuorum([free.m, ...taken.map((t) => t.m)]);
    expect(await quorum.acquire(3000)).toEqual({ acquired: false });
    expect(free.votes).toEqual(['acquire true 3000', 'release true']);
  });
});
