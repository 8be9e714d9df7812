import { createHash } from 'node:crypto';

/**
 * The Lua scripts of the lease, given to redlock (which identifies them by SHA-1) and recognised by
 * LeaseMemberClient, which routes them to one member's keys. Every script touches only keys of one
 * hash tag (a member's lease key and its epoch counter), so it runs on one primary.
 */

export interface LeaseScript {
  readonly text: string;
  readonly sha1: string;
}

function script(text: string): LeaseScript {
  return { text, sha1: createHash('sha1').update(text).digest('hex') };
}

export const leaseScripts = {
  /**
   * redlock's acquire, for the one key a member gets: KEYS[1] lease, ARGV[1] owner value, ARGV[2]
   * TTL ms. 1 when taken, 0 when the key exists (whoever owns it).
   */
  acquire: script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`),

  /**
   * Ownership-checked renewal: KEYS[1] lease, KEYS[2] the member's epoch counter, ARGV[1] owner
   * value, ARGV[2] TTL ms, ARGV[3] the hold's fencing token. Refuses (0) when the key holds another
   * owner's value. Unlike redlock's stock script it also re-takes a MISSING key: a key disappears
   * under a live holder only when a failover lost it (a holder never renews past its renew deadline,
   * which is shorter than the TTL), and re-taking it keeps the holder on every member so that the
   * next failover cannot hand a majority to someone else. It raises the epoch counter to the token
   * for the same reason (a failover may have lost the acquire-time write).
   */
  extend: script(`
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local token = tonumber(ARGV[3])
if token and token > 0 then
  local stored = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if token > stored then redis.call('SET', KEYS[2], ARGV[3]) end
end
return 1
`),

  /** redlock's release: KEYS[1] lease, ARGV[1] owner value. 1 when deleted, 0 when not ours. */
  release: script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`),

  /**
   * Raises an epoch counter: KEYS[1] counter, ARGV[1] token. 1 when the stored value was lower (or
   * missing) and is now the token, 0 when it was already >= the token (nothing written). A counter
   * never decreases and never expires.
   */
  raiseEpoch: script(`
local stored = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local token = tonumber(ARGV[1])
if token > stored then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
`),
} as const;
