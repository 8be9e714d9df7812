/**
 * Lua: SET KEYS[1] to ARGV[1] with PX ARGV[3] (no expiry when ARGV[3] is 0), unless the JSON value
 * stored there carries a higher `fencingToken` than ARGV[2] (returns 0 then, 1 when written). Used for
 * the leader record and the processed marks: a deposed leader that resumes can never overwrite what
 * its successor wrote.
 */
export const WRITE_IF_NOT_OLDER = `
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
`;
