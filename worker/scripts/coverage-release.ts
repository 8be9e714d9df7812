import { parseFlag, type RedisScript } from './redis-script.ts';

/**
 * A stopping worker's delete of its coverage report (worker/leader/coverage-registry.ts): a twin
 * with the same WORKER_ID (another instance id) keeps its report. The instance id is the third
 * `:`-separated part of a report (worker/leader/coverage-report.ts).
 */
export const coverageRelease: RedisScript<boolean> = {
  name: 'coverage-release',
  command: 'klCoverageRelease',
  numberOfKeys: 1,
  lua: `--[[
  Deletes this worker's field of the coverage hash while its report carries this instance id.

  KEYS[1] the coverage hash
  ARGV[1] this worker's field (WORKER_ID)
  ARGV[2] this process's instance id

  Returns 1 when deleted, 0 when the field is missing or carries another instance id.
]]
local report = redis.call('HGET', KEYS[1], ARGV[1])
if report and string.match(report, '^[^:]*:[^:]*:([^:]*)') == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`,
  parse: (reply) => parseFlag('coverage-release', reply),
};
