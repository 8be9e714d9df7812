import type { RedisScript } from './redis-script.ts';
import { FencedTokenError, ScriptReplyError } from './script-errors.ts';

export interface OutboxAppendResult {
  readonly streamId: string;
  /** false: an earlier attempt's entry was found and nothing was appended. */
  readonly appended: boolean;
}

/** The fenced append of the stream outbox (worker/handlers/stream-handler.ts). */
export const outboxAppend: RedisScript<OutboxAppendResult> = {
  name: 'outbox-append',
  command: 'klOutboxAppend',
  numberOfKeys: 2,
  lua: `--[[
  Appends one event to an outbox stream unless the partition's fence holds a higher fencing token;
  a retry first looks for the entry an earlier attempt may have written. When that entry is found,
  the fence is written again so that a WAIT after the script covers everything up to now.

  KEYS[1] the outbox stream
  KEYS[2] the partition's fence (highest token that appended; same hash tag)
  ARGV[1] the call's fencing token
  ARGV[2] dedupe lookback: newest entries searched for the event id (0 on a first attempt)
  ARGV[3] stream id of an earlier attempt ('' when unknown)
  ARGV[4] dedupe lookback bytes: the search stops once it has read this many bytes of entries
          (fields and values; entries may carry captured values), or at ARGV[2] entries
  ARGV[5...] the entry's fields and values, 'id' and the event id first

  The search reads 16 entries per XREVRANGE (an exclusive range after the last one read, Redis >= 6.2),
  so however large the entries, it holds at most 16 of them at a time.

  Returns {streamId, appended}: appended 1 when added, 0 when an earlier attempt's entry was found.
  Error reply 'FENCED token <t> is below <fence>' when the fence holds a higher token (nothing written).
]]
local raw = redis.call('GET', KEYS[2])
local fence = tonumber(raw or '0')
local token = tonumber(ARGV[1])
if token < fence then
  return redis.error_reply('FENCED token ' .. ARGV[1] .. ' is below ' .. fence)
end
local lookback = tonumber(ARGV[2])
if lookback > 0 then
  local found = nil
  if ARGV[3] ~= '' then
    if #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3]) > 0 then found = ARGV[3] end
  else
    local budget = tonumber(ARGV[4])
    local seen, read, before = 0, 0, '+'
    while not found and seen < lookback and read < budget do
      local chunk = redis.call('XREVRANGE', KEYS[1], before, '-', 'COUNT', math.min(16, lookback - seen))
      if #chunk == 0 then break end
      for _, entry in ipairs(chunk) do
        seen = seen + 1
        local fields = entry[2]
        if fields[1] == 'id' and fields[2] == ARGV[6] then
          found = entry[1]
          break
        end
        for _, field in ipairs(fields) do read = read + #field end
        before = '(' .. entry[1]
      end
    end
  end
  if found then
    redis.call('SET', KEYS[2], token > fence and ARGV[1] or raw)
    return {found, 0}
  end
end
if token > fence then
  redis.call('SET', KEYS[2], ARGV[1])
end
return {redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5)), 1}
`,
  parse: (reply) => {
    if (!Array.isArray(reply) || reply.length !== 2 || (reply[1] !== 0 && reply[1] !== 1))
      throw new ScriptReplyError('outbox-append', reply);
    return { streamId: String(reply[0]), appended: reply[1] === 1 };
  },
  // The error code is the first word of the reply, which this script defines.
  mapError: (error) =>
    error.message.startsWith('FENCED ') ? new FencedTokenError({ cause: error }) : undefined,
};
