import { parseFlag, type RedisScript } from './redis-script.ts';

/**
 * The lease vote of one member when redlock extends. Unlike redlock's stock extend it re-takes a
 * MISSING key: a key disappears under a live holder only when a failover lost it (a holder never
 * renews past its renew deadline, which is shorter than the TTL), and re-taking it keeps the holder
 * on every member so that the next failover cannot hand a majority to someone else. It raises the
 * member's epoch counter to the hold's token for the same reason (a failover may have lost the
 * acquire-time write).
 */
export const leaseExtend: RedisScript<boolean> = {
  name: 'lease-extend',
  command: 'klLeaseExtend',
  numberOfKeys: 2,
  lua: `--[[
  Renews a lease member's key while it holds this owner's value or is missing, and raises the
  member's epoch counter to the hold's fencing token.

  KEYS[1] the member's lease key
  KEYS[2] the member's epoch counter (same hash tag)
  ARGV[1] owner value
  ARGV[2] TTL (ms)
  ARGV[3] the hold's fencing token (0: unknown, the counter is left alone)

  Returns 1 when renewed, 0 when the key holds another owner's value (nothing written).
]]
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local token = tonumber(ARGV[3])
if token and token > 0 then
  local stored = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if token > stored then redis.call('SET', KEYS[2], ARGV[3]) end
end
return 1
`,
  parse: (reply) => parseFlag('lease-extend', reply),
};
