import { parseFlag, type RedisScript } from './redis-script.ts';

/** The lease vote of one member when redlock acquires (worker/leader/lease-member-client.ts). */
export const leaseAcquire: RedisScript<boolean> = {
  name: 'lease-acquire',
  command: 'klLeaseAcquire',
  numberOfKeys: 1,
  lua: `--[[
  Takes a lease member's key when it is free.

  KEYS[1] the member's lease key
  ARGV[1] owner value (redlock's random lock value)
  ARGV[2] TTL (ms)

  Returns 1 when taken, 0 when the key exists (whoever owns it).
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`,
  parse: (reply) => parseFlag('lease-acquire', reply),
};
