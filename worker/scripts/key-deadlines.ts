import type { RedisScript } from './redis-script.ts';
import { ScriptReplyError } from './script-errors.ts';

/**
 * On-time expiry's lookups and touches in one command per primary (worker/expiry/node-deadlines.ts):
 * PEXPIRETIME of many keys of one primary, whatever their slots. A due key is expired by the lookup
 * and its `expired` event published, exactly as a PEXPIRETIME sent alone would (checked on 7.0,
 * docs/precise-expiry.md, "Touch rules"); during CLIENT PAUSE WRITE it answers -2 without deleting, as
 * PEXPIRETIME does.
 *
 * The keys go in ARGV, not KEYS: a script's declared keys must share one slot (CROSSSLOT otherwise),
 * while `allow-cross-slot-keys` lets it look up keys of any slot this node serves. A key whose slot
 * the node does not serve (the slot moved) fails the whole call with an error reply; the caller then
 * looks the keys up one by one through the Cluster client, which follows MOVED and ASK. `no-writes`:
 * it runs while writes are paused and when memory is full. Bounded work: one O(1) lookup per key, at
 * most a batch of keys (the caller's batch size) per call.
 */
export const keyDeadlines: RedisScript<readonly number[]> = {
  name: 'key-deadlines',
  command: 'klKeyDeadlines',
  numberOfKeys: 0,
  lua: `#!lua flags=no-writes,allow-cross-slot-keys
--[[
  PEXPIRETIME of each key, all served by this node.

  ARGV[1] the first key
  ARGV[2...] the other keys (n in all)

  Returns an array of n integers, in ARGV order: the deadline (ms since the epoch), -1 (no TTL) or
  -2 (no such key, or due and expired by this lookup).
]]
local deadlines = {}
for i = 1, #ARGV do
  deadlines[i] = redis.call('PEXPIRETIME', ARGV[i])
end
return deadlines
`,
  parse: (reply) => {
    if (!Array.isArray(reply) || !reply.every((item) => typeof item === 'number'))
      throw new ScriptReplyError('key-deadlines', reply);
    return reply as number[];
  },
};
