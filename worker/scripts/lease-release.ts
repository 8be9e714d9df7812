import { parseFlag, type RedisScript } from './redis-script.ts';

/** The lease vote of one member when redlock releases. */
export const leaseRelease: RedisScript<boolean> = {
  name: 'lease-release',
  command: 'klLeaseRelease',
  numberOfKeys: 1,
  lua: `--[[
  Deletes a lease member's key while it holds this owner's value.

  KEYS[1] the member's lease key
  ARGV[1] owner value

  Returns 1 when deleted, 0 when the key holds another value or none.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`,
  parse: (reply) => parseFlag('lease-release', reply),
};
