import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TimeoutError } from '../../../../core/errors.ts';
import { LeaseMemberClient } from '../../../../worker/leader/lease-member-client.ts';
import { leaseScripts } from '../../../../worker/leader/lease-scripts.ts';
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
  it("runs redlock's calls on its own member key, in redlock's array form and the spread form", async () => {
    const redis = new FakeCluster();
    const client = member(redis);
    expect(await client.eval(leaseScripts.acquire.text, 1, ['kl-lease', 'owner-1', 3000])).toBe(1);
    expect(redis.store.get(LEASE)).toBe('owner-1');
    expect(redis.store.get('kl-lease')).toBeNull();
    // Spread form, on the script the fake server has now cached: the member key is taken.
    expect(await client.evalsha(leaseScripts.acquire.sha1, 1, 'kl-lease', 'owner-2', 3000)).toBe(0);
    expect(await client.eval(leaseScripts.release.text, 1, ['kl-lease', 'owner-1'])).toBe(1);
    expect(redis.store.get(LEASE)).toBeNull();
  });

  it("passes the hold's fencing token to renewals, which raise the member's epoch", async () => {
    const redis = new FakeCluster();
    const client = member(redis, 41);
    await client.eval(leaseScripts.acquire.text, 1, ['r', 'owner', 3000]);
    expect(await client.eval(leaseScripts.extend.text, 1, ['r', 'owner', 3000])).toBe(1);
    expect(redis.store.get(EPOCH)).toBe('41');
    expect(await client.eval(leaseScripts.extend.text, 1, ['r', 'intruder', 3000])).toBe(0);
  });

  it('bounds every vote: a member whose primary is dead fails after the vote timeout', async () => {
    const redis = new FakeCluster();
    redis.down.add('kl:u:p7');
    const vote = member(redis).eval(leaseScripts.acquire.text, 1, ['r', 'owner', 3000]);
    const outcome = vote.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(300);
    expect(await outcome).toBeInstanceOf(TimeoutError);
  });

  it('refuses scripts other than the lease scripts and more than one resource', async () => {
    const redis = new FakeCluster();
    await expect(member(redis).eval('return 1', 1, ['r'])).rejects.toBeInstanceOf(TypeError);
    await expect(member(redis).eval(leaseScripts.acquire.text, 2, ['a', 'b', 'v', 1])).rejects.toBeInstanceOf(
      TypeError,
    );
  });
});
