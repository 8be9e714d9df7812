import { expiredValueSize } from '../expiry/expired-value.ts';
import type { ExpiredValue } from '../handlers/expiry-handler.ts';
import type { RedisScript } from './redis-script.ts';
import { ScriptReplyError } from './script-errors.ts';

/**
 * What a value read found (worker/expiry/value-reader.ts). `type` is Redis' TYPE reply (`stream`, a
 * module's type name...); `deadlineMs` its PEXPIRETIME (the primary's clock).
 */
export type ValueReadReply =
  | { readonly status: 'gone' }
  | { readonly status: 'no-ttl'; readonly type: string }
  | {
      readonly status: 'ok';
      readonly type: ExpiredValue['type'];
      readonly deadlineMs: number;
      readonly value: ExpiredValue;
      /** Payload bytes, as expiredValueSize counts them. */
      readonly bytes: number;
    }
  | {
      readonly status: 'too-large' | 'over-budget' | 'unsupported-type';
      readonly type: string;
      readonly deadlineMs: number;
    };

const NAME = 'value-read';

/**
 * One key's read, shared by value-read (one key) and values-read (a batch of one primary's keys):
 * returns the reply table and the number of elements it read (0 for a string or nothing read).
 */
const READ_ONE = `local function readOne(key, maxBytes, limitBytes, maxElements)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then return {kind, -2, 'gone'} end
  local deadline = redis.call('PEXPIRETIME', key)
  if deadline == -1 then return {kind, deadline, 'no-ttl'} end

  local function verdict(bytes)
    if bytes > maxBytes then return 'too-large' end
    if bytes > limitBytes then return 'over-budget' end
    return 'ok'
  end

  if kind == 'string' then
    local status = verdict(redis.call('STRLEN', key))
    if status ~= 'ok' then return {kind, deadline, status} end
    return {kind, deadline, status, redis.call('GET', key)}
  end

  local count
  if kind == 'hash' then count = redis.call('HLEN', key)
  elseif kind == 'list' then count = redis.call('LLEN', key)
  elseif kind == 'set' then count = redis.call('SCARD', key)
  elseif kind == 'zset' then count = redis.call('ZCARD', key)
  else return {kind, deadline, 'unsupported-type'} end
  if count > maxElements or (kind == 'zset' and count * 8 > maxBytes) then
    return {kind, deadline, 'too-large'}
  end
  local memory = redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')
  if memory > 2 * maxBytes + 2 * #key + 256 * count + 65536 then return {kind, deadline, 'too-large'} end

  local elements
  if kind == 'hash' then elements = redis.call('HGETALL', key)
  elseif kind == 'list' then elements = redis.call('LRANGE', key, 0, -1)
  elseif kind == 'set' then elements = redis.call('SMEMBERS', key)
  else elements = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES') end
  local reply = {kind, deadline, 'ok'}
  local bytes = 0
  if kind == 'zset' then
    for i = 1, #elements, 2 do
      bytes = bytes + #elements[i] + 8
      reply[i + 3] = elements[i]
      reply[i + 4] = elements[i + 1]
    end
  else
    for i = 1, #elements do
      bytes = bytes + #elements[i]
      reply[i + 3] = elements[i]
    end
  end
  local status = verdict(bytes)
  if status ~= 'ok' then return {kind, deadline, status}, count end
  return reply, count
end
`;
/** Redis' TYPE names of the five types a value is read for. */
const VALUE_TYPES: ReadonlySet<string> = new Set(['string', 'hash', 'list', 'set', 'zset']);
const REFUSED: ReadonlySet<string> = new Set(['too-large', 'over-budget', 'unsupported-type']);

/**
 * Value capture (issue 14): an expiring key's type, deadline and value, read on its primary just
 * before the deadline. Read-only (`#!lua flags=no-writes`), and run with EVALSHA_RO / EVAL_RO by the
 * registry (ScriptRunner.runBuffer): it runs while writes are paused (CLIENT PAUSE WRITE) and while
 * memory is full, and a worker whose ACL reads KEY_PATTERN read-only (`%R~`) may run it (EVALSHA
 * declares its keys read-write and is refused there). Replies are read as Buffers, unchanged by
 * ioredis' reply transforms (a Lua table is an array under RESP3 as under RESP2).
 */
export const valueRead: RedisScript<ValueReadReply> = {
  name: NAME,
  command: 'klValueRead',
  numberOfKeys: 1,
  lua: `#!lua flags=no-writes
--[[
  Reads one key's type, deadline and value, checking sizes before anything is read. Touches only
  KEYS[1]; its work is bounded by ARGV[1] and ARGV[3], whatever the key holds.

  KEYS[1] the key
  ARGV[1] maxBytes: a value whose payload is larger is not read (VALUE_MAX_BYTES)
  ARGV[2] limitBytes: the room the caller's budget gives this read (<= maxBytes)
  ARGV[3] maxElements: a hash, list, set or sorted set with more fields, items or members is not read

  Payload bytes: a string's length; the sum of every field and value, item or member; 8 per score.

  Before reading: TYPE, PEXPIRETIME, then STRLEN (a string: exact) or the element count (HLEN,
  LLEN, SCARD, ZCARD) and MEMORY USAGE ... SAMPLES 0, which bounds every element's bytes. Whatever
  holds at most maxBytes of payload in maxElements elements uses less memory than
  2 * maxBytes + 2 * #KEYS[1] + 256 * elements + 65536 (allocator rounding <= 2x, and per element a
  hash table entry, its buckets at 10 % fill, a skip list node); a value over that is too large
  without a read. Otherwise the whole value is read in one call (HGETALL, LRANGE 0 -1, SMEMBERS,
  ZRANGE 0 -1 WITHSCORES: at most that much memory's worth) and its exact payload counted.

  Returns {type, pexpiretime, status, payload...}:
    type        TYPE's reply (none, string, hash, list, set, zset, stream, a module type)
    pexpiretime PEXPIRETIME (-2: no key, -1: no TTL)
    status      gone (no key) | no-ttl | unsupported-type (not one of the five) | too-large (over
                maxBytes or maxElements) | over-budget (over limitBytes, within maxBytes) | ok
    payload     only with ok: string {bytes}; hash {field, value, ...}; list {item, ...}; set
                {member, ...}; zset {member, score, ...} by score, each score as text (%.17g, inf)
]]
${READ_ONE}return (readOne(KEYS[1], tonumber(ARGV[1]), math.min(tonumber(ARGV[2]), tonumber(ARGV[1])), tonumber(ARGV[3])))
`,
  parse: parseValueRead,
};

/** A batch's entry for a key the call did not get to (its element budget was spent): read it again. */
export const DEFERRED = { status: 'deferred' } as const;

/** Keys per values-read call at most (the caller's chunks). */
export const VALUES_READ_MAX_KEYS = 100;

/**
 * Value capture's reads of a batch of one primary's keys in one call (worker/expiry/value-reader.ts):
 * the same read as value-read for each key (the same bounds per key), with the keys in ARGV (a
 * script's declared keys must share one slot; `allow-cross-slot-keys` lets it read any slot this node
 * serves). Bounded per call as one read of value-read is: once the keys read so far hold maxElements
 * elements, the call stops and answers `deferred` for the rest, which the caller sends again; a call
 * reads at most VALUES_READ_MAX_KEYS keys. A key of a slot the node does not serve fails the whole call
 * (an error reply): the caller reads those keys one by one with value-read through the Cluster client.
 * Replies as value-read's, one per key, in order.
 */
export const valuesRead: RedisScript<readonly (ValueReadReply | typeof DEFERRED)[]> = {
  name: 'values-read',
  command: 'klValuesRead',
  numberOfKeys: 0,
  lua: `#!lua flags=no-writes,allow-cross-slot-keys
--[[
  Reads the type, deadline and value of each key of a batch, all served by this node, as value-read
  does for one (see there: sizes are checked before anything is read). Its work is bounded by
  ARGV[2] elements in all (plus one key's), and by ${VALUES_READ_MAX_KEYS} keys.

  ARGV[1] maxBytes: a value whose payload is larger is not read (VALUE_MAX_BYTES)
  ARGV[2] maxElements: per key as in value-read, and for the whole call
  ARGV[3] the first key
  ARGV[4] its limitBytes (the room the caller's budget gives this read, <= maxBytes)
  ARGV[5...] further key, limitBytes pairs

  Returns one reply per key, in order: value-read's {type, pexpiretime, status, payload...}, or
  {'', -2, 'deferred'} for a key not read because the call's element budget was spent.
]]
${READ_ONE}local maxBytes = tonumber(ARGV[1])
local maxElements = tonumber(ARGV[2])
local replies = {}
local elementsRead = 0
for i = 3, #ARGV, 2 do
  if elementsRead >= maxElements then
    replies[#replies + 1] = {'', -2, 'deferred'}
  else
    local reply, count = readOne(ARGV[i], maxBytes, math.min(tonumber(ARGV[i + 1]), maxBytes), maxElements)
    elementsRead = elementsRead + (count or 0)
    replies[#replies + 1] = reply
  end
end
return replies
`,
  parse: (reply) => {
    if (!Array.isArray(reply)) throw new ScriptReplyError('values-read', describeShape(reply));
    return reply.map((entry: unknown) =>
      Array.isArray(entry) && entry.length === 3 && text(entry[2]) === 'deferred' && text(entry[0]) === ''
        ? DEFERRED
        : parseValueRead(entry),
    );
  },
};

function parseValueRead(reply: unknown): ValueReadReply {
  const invalid = () => new ScriptReplyError(NAME, describeShape(reply));
  if (!Array.isArray(reply) || reply.length < 3) throw invalid();
  const [typeReply, deadlineReply, statusReply] = reply as unknown[];
  const type = text(typeReply);
  const status = text(statusReply);
  if (type === undefined || status === undefined || typeof deadlineReply !== 'number') throw invalid();
  const deadlineMs = deadlineReply;
  if (!Number.isSafeInteger(deadlineMs)) throw invalid();
  const payload = reply.slice(3) as unknown[];
  if (status === 'gone') {
    if (type !== 'none' || deadlineMs !== -2 || payload.length > 0) throw invalid();
    return { status };
  }
  if (type === 'none') throw invalid();
  if (status === 'no-ttl') {
    if (deadlineMs !== -1 || payload.length > 0) throw invalid();
    return { status, type };
  }
  if (deadlineMs < 0) throw invalid();
  if (REFUSED.has(status)) {
    if (payload.length > 0) throw invalid();
    if ((status === 'unsupported-type') === VALUE_TYPES.has(type)) throw invalid();
    return { status: status as 'too-large' | 'over-budget' | 'unsupported-type', type, deadlineMs };
  }
  if (status !== 'ok' || !payload.every((part) => Buffer.isBuffer(part))) throw invalid();
  const value = payloadValue(type, payload as Buffer[]);
  if (value === undefined) throw invalid();
  return {
    status,
    type: value.type,
    deadlineMs,
    value,
    bytes: expiredValueSize(value).bytes,
  };
}

/** The payload as the value of `type`, or undefined when its shape does not fit that type. */
function payloadValue(type: string, payload: readonly Buffer[]): ExpiredValue | undefined {
  switch (type) {
    case 'string': {
      const [bytes] = payload;
      return payload.length === 1 && bytes ? { type, bytes } : undefined;
    }
    case 'hash': {
      // A key holds no empty hash, list, set or sorted set: Redis deletes it with its last element.
      if (payload.length === 0 || payload.length % 2 !== 0) return undefined;
      const fields: [Buffer, Buffer][] = [];
      for (let i = 0; i < payload.length; i += 2)
        fields.push([payload[i] as Buffer, payload[i + 1] as Buffer]);
      return { type, fields };
    }
    case 'list':
      return payload.length === 0 ? undefined : { type, items: [...payload] };
    case 'set':
      return payload.length === 0 ? undefined : { type, members: [...payload] };
    case 'zset': {
      if (payload.length === 0 || payload.length % 2 !== 0) return undefined;
      const members: [Buffer, number][] = [];
      for (let i = 0; i < payload.length; i += 2) {
        const score = parseScore(payload[i + 1] as Buffer);
        if (score === undefined) return undefined;
        members.push([payload[i] as Buffer, score]);
      }
      return { type, members };
    }
    default:
      return undefined;
  }
}

/** Redis' text of a score (`%.17g`, `inf`, `-inf`) as the double it was; undefined for anything else. */
export function parseScore(bytes: Buffer): number | undefined {
  const score = bytes.toString('latin1');
  if (score === 'inf' || score === '+inf') return Number.POSITIVE_INFINITY;
  if (score === '-inf') return Number.NEGATIVE_INFINITY;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(score)) return undefined;
  const value = Number(score);
  return Number.isFinite(value) ? value : undefined;
}

/** A Buffer (or string) reply as text; undefined for anything else. */
function text(part: unknown): string | undefined {
  if (Buffer.isBuffer(part)) return part.toString('latin1');
  return typeof part === 'string' ? part : undefined;
}

/**
 * The reply's shape without its contents (a value is user data, never in an error): the header
 * (type, deadline, status) and the payload's length, each element as its JavaScript kind.
 */
function describeShape(reply: unknown): unknown {
  if (!Array.isArray(reply)) return Buffer.isBuffer(reply) ? `<${reply.length} bytes>` : typeof reply;
  const header = reply.slice(0, 3).map((part) => {
    const t = text(part);
    return t !== undefined && t.length <= 16 && /^[a-z-]*$/.test(t)
      ? t
      : typeof part === 'number'
        ? part
        : typeof part;
  });
  return { header, payload: reply.length - Math.min(reply.length, 3) };
}
