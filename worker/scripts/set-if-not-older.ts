import { parseFlag, type RedisScript } from './redis-script.ts';

/**
 * The fenced write of the leader record (worker/leader/leader-record-store.ts) and of the processed
 * marks (worker/replay/mark-store.ts): a deposed leader that resumes can never overwrite what its
 * successor wrote.
 */
export const setIfNotOlder: RedisScript<boolean> = {
  name: 'set-if-not-older',
  command: 'klSetIfNotOlder',
  numberOfKeys: 1,
  lua: `--[[
  SET a JSON value unless the JSON value stored there carries a higher fencingToken.

  KEYS[1] the key
  ARGV[1] the value (JSON with a numeric fencingToken)
  ARGV[2] its fencing token
  ARGV[3] expiry (ms; 0 = no expiry)

  Returns 1 when written, 0 when the stored value carries a higher fencingToken (nothing written).
]]
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, decoded = pcall(cjson.decode, stored)
  if ok and type(decoded) == 'table' and tonumber(decoded.fencingToken) and tonumber(decoded.fencingToken) > tonumber(ARGV[2]) then
    return 0
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`,
  parse: (reply) => parseFlag('set-if-not-older', reply),
};
