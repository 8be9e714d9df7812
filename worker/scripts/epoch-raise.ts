import { parseFlag, type RedisScript } from './redis-script.ts';

/** The fencing step of the quorum lease (worker/leader/quorum-lease.ts) writes its token with it. */
export const epochRaise: RedisScript<boolean> = {
  name: 'epoch-raise',
  command: 'klEpochRaise',
  numberOfKeys: 1,
  lua: `--[[
  Raises an epoch counter to a fencing token ("set if greater"). A counter never decreases and
  never expires.

  KEYS[1] the epoch counter
  ARGV[1] the token

  Returns 1 when the stored value was lower (or missing) and is now the token, 0 when it was
  already >= the token (nothing written).
]]
local stored = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local token = tonumber(ARGV[1])
if token > stored then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
`,
  parse: (reply) => parseFlag('epoch-raise', reply),
};
