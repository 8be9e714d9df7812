import type { RedisScript } from './redis-script.ts';
import { ScriptReplyError } from './script-errors.ts';

/** Field -> report of the coverage hash, as it was before this worker's write. */
export type CoverageHashBefore = ReadonlyMap<string, string>;

/**
 * The coverage registry's round (worker/leader/coverage-registry.ts): read and write are one step,
 * so nothing written in between can go unseen (how a duplicate WORKER_ID is found).
 */
export const coveragePublish: RedisScript<CoverageHashBefore> = {
  name: 'coverage-publish',
  command: 'klCoveragePublish',
  numberOfKeys: 1,
  lua: `--[[
  Reads the whole coverage hash, then writes this worker's report into it (unless read only).

  KEYS[1] the coverage hash
  ARGV[1] this worker's field (WORKER_ID; '' = read only, nothing written)
  ARGV[2] its report
  ARGV[3] the hash's expiry (ms), set again with every write

  Returns the hash as it was before the write, as HGETALL's flat list (field, value, ...).
]]
local before = redis.call('HGETALL', KEYS[1])
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return before
`,
  parse: (reply) => {
    if (!Array.isArray(reply) || reply.length % 2 !== 0)
      throw new ScriptReplyError('coverage-publish', reply);
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]));
    return fields;
  },
};
