import type { RedisScript } from './redis-script.ts';
import { ScriptReplyError } from './script-errors.ts';

export interface OutboxTrimResult {
  readonly groups: number;
  readonly trimmedRead: number;
  readonly trimmedUnread: number;
}

/** The outbox's housekeeping (worker/handlers/stream-handler.ts). */
export const outboxTrim: RedisScript<OutboxTrimResult> = {
  name: 'outbox-trim',
  command: 'klOutboxTrim',
  numberOfKeys: 1,
  lua: `--[[
  Drops what every consumer group of an outbox stream has read, then applies the length bound.
  The floor is the oldest entry any group still needs: its oldest pending (delivered, not
  acknowledged) entry, else the first id after its last-delivered-id. MINID is exact, so every entry
  the length bound drops after it is one that some group has not read or not acknowledged.

  KEYS[1] the outbox stream
  ARGV[1] the length bound (MAXLEN ~)

  Returns {groups, trimmedRead, trimmedUnread}: consumer groups, entries dropped below the floor,
  entries the length bound dropped ({0, 0, 0} when the stream does not exist).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0} end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function older(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local floor = nil
for _, group in ipairs(groups) do
  local name, pending, last
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1]
    elseif group[i] == 'pending' then pending = group[i + 1]
    elseif group[i] == 'last-delivered-id' then last = group[i + 1] end
  end
  -- Everything up to last-delivered-id was read: the first id after it is the first one needed.
  local lastMs, lastSeq = string.match(last, '^(%d+)-(%d+)$')
  local need = lastMs .. '-' .. string.format('%d', tonumber(lastSeq) + 1)
  if pending > 0 then
    local oldestPending = redis.call('XPENDING', KEYS[1], name)[2]
    if older(oldestPending, need) then need = oldestPending end
  end
  if floor == nil or older(need, floor) then floor = need end
end
local trimmedRead = 0
if floor ~= nil then trimmedRead = redis.call('XTRIM', KEYS[1], 'MINID', floor) end
local trimmedUnread = redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1])
return {#groups, trimmedRead, trimmedUnread}
`,
  parse: (reply) => {
    if (!Array.isArray(reply) || reply.length !== 3) throw new ScriptReplyError('outbox-trim', reply);
    const [groups, trimmedRead, trimmedUnread] = reply.map(Number) as [number, number, number];
    if (![groups, trimmedRead, trimmedUnread].every(Number.isSafeInteger))
      throw new ScriptReplyError('outbox-trim', reply);
    return { groups, trimmedRead, trimmedUnread };
  },
};
