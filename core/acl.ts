import { KEY_FILTER_DEFAULTS, PRECISE_EXPIRY_DEFAULTS } from './defaults.ts';
import { EXPIRE_CHANNEL, EXPIRED_CHANNEL, KeyspaceKeys } from './keys.ts';

/**
 * Least-privilege Redis ACL access strings (an ElastiCache RBAC `AccessString`; locally the rules after
 * `user <name> reset ><password>`), one for the worker and one for the scheduled check, for one
 * LEADER_NAME. The same strings are given to the
 * ElastiCache RBAC users by the CDK app and to the local cluster's ACL users by the tests, so what is
 * deployed is what was tested. Key patterns are built from core/keys.ts, so they follow the key names
 * the code uses; docs/security.md prints them for the default leader name.
 *
 * ACL key and channel patterns are globs: `~{kl:*}` matches only keys that *end* with `}`, so every
 * pattern here names the hash tag and what follows it. Leader names are `[A-Za-z0-9_.-]` (no glob
 * characters); the builders escape them anyway.
 */

export interface NotifyCheckAccessOptions {
  /**
   * Grants CONFIG GET and CONFIG SET (NOTIFY_MODE `config` or `auto` on self-managed Redis/Valkey).
   * Off for ElastiCache, where CONFIG is a restricted command and the parameter group is enforced.
   */
  readonly configRights: boolean;
  /** PRECISE_EXPIRY: the canary also subscribes to `__keyevent@0__:expire`. @default true */
  readonly preciseExpiry?: boolean;
}

export interface WorkerAccessOptions {
  /**
   * KEY_PATTERN (a Redis glob, the same syntax as ACL key patterns): with precise expiry the worker
   * reads the keys matching it, read-only (`%R~<pattern>`: PEXPIRETIME). @default '*'
   */
  readonly keyPattern?: string;
  /**
   * PRECISE_EXPIRY: adds PRECISE_EXPIRY_GRANTS, the read-only rule for KEY_PATTERN and the
   * `__keyevent@0__:expire` channel. @default true
   */
  readonly preciseExpiry?: boolean;
}

const GLOB_SPECIAL = /[*?[\]\\]/g;

/** Escapes the glob characters of a literal key part. */
export function escapeGlob(text: string): string {
  return text.replace(GLOB_SPECIAL, (c) => `\\${c}`);
}

/**
 * A glob for every key `make(i)` makes, for any index `i` >= 0: the two names for 0 and 1 must differ
 * in exactly one character (the index), which becomes `[0-9]*`. Throws when `make` is not of that
 * shape (a change in core/keys.ts that this module must follow).
 */
export function indexedPattern(make: (index: number) => string): string {
  const zero = make(0);
  const one = make(1);
  const at = [...zero].findIndex((c, i) => c !== one[i]);
  if (
    zero.length !== one.length ||
    at < 0 ||
    zero[at] !== '0' ||
    one[at] !== '1' ||
    zero.slice(at + 1) !== one.slice(at + 1)
  ) {
    throw new Error(`indexedPattern: ${zero} / ${one} do not differ in exactly one index digit`);
  }
  return `${escapeGlob(zero.slice(0, at))}[0-9]*${escapeGlob(zero.slice(at + 1))}`;
}

/** A glob for the keys `make(x)` makes for any string `x` (the variable part must come last). */
export function suffixPattern(make: (variable: string) => string): string {
  const marker = '\u0000';
  const sample = make(marker);
  const at = sample.indexOf(marker);
  if (at < 0 || at !== sample.length - marker.length) {
    throw new Error(`suffixPattern: the variable part of ${JSON.stringify(sample)} is not at its end`);
  }
  return `${escapeGlob(sample.slice(0, at))}*`;
}

/** `{tag}:*` for the tag of a key (its first `{...}`). */
function tagFamily(key: string): string {
  const end = key.indexOf('}');
  if (!key.startsWith('{') || end < 0) throw new Error(`tagFamily: ${key} has no leading hash tag`);
  return `${key.slice(0, end + 1)}:*`;
}

/** The key patterns and channels of one leader name (exported for tests and docs). */
export function aclPatterns(leaderName: string) {
  const keys = new KeyspaceKeys(leaderName);
  // Throws unless the nonce ends the canary key: then `canary(i, '')` is the part before it.
  suffixPattern((nonce) => keys.canary(0, nonce));
  return {
    /** `{kl:<name>}:*`: single-key lease, fencing counter, leader record, coverage registry. */
    leaseFamily: `${escapeGlob(keys.familyTag)}:*`,
    /** `{kl:<name>:p[0-9]*}:*`: the quorum lease members (lease and epoch copy per member). */
    quorumMembers: tagFamily(indexedPattern((i) => keys.quorumLease(i))),
    /** `{kl:<name>:p[0-9]*}:processed:*`: processed marks, one per primary, beside each quorum member. */
    processedMarks: `${indexedPattern((i) => keys.processedMark(i, ''))}*`,
    /** `{kl:<name>:o[0-9]*}:outbox`: the outbox streams (HANDLER=stream). */
    outboxStreams: indexedPattern((i) => keys.outbox(i)),
    /** `{kl:<name>:o[0-9]*}:fence`: each outbox partition's fencing token. */
    outboxFences: indexedPattern((i) => keys.outboxFence(i)),
    /** `{kl:<name>:c[0-9]*}:canary:*`: the check's canary keys. */
    canaries: `${indexedPattern((i) => keys.canary(i, ''))}*`,
    /** `{kl:<name>}:leader`: the leader record, read by the check. */
    leaderRecord: escapeGlob(keys.leader),
    expiredChannel: escapeGlob(EXPIRED_CHANNEL),
    /** `__keyevent@0__:expire`: a TTL was set or changed (precise expiry; worker and check). */
    expireChannel: escapeGlob(EXPIRE_CHANNEL),
    releasedChannel: escapeGlob(keys.releasedChannel),
  };
}

/** One granted command (`+<command>`) and why the role needs it. */
export interface AclGrant {
  readonly command: string;
  readonly reason: string;
}

/**
 * Not granted because not needed: AUTH, HELLO and QUIT are flagged `no-auth` in Redis 7 / Valkey and
 * every user may run them (verified: a user without them authenticates with HELLO 3 AUTH and closes
 * with QUIT, and the ACL log stays empty). PING is not used. CLIENT SETINFO (sent by ioredis, its
 * failure ignored) does not exist in Redis 7.0 and cannot be named there; on Valkey/Redis 7.2+ it is
 * refused and ignored.
 */
const TOPOLOGY_GRANTS: readonly AclGrant[] = [
  {
    command: 'client|setname',
    reason: 'connection names (kl-worker, kl-subscriber, ...), visible in CLIENT LIST',
  },
  { command: 'info', reason: "ioredis' ready check on every connection" },
  { command: 'cluster|shards', reason: 'topology discovery (core/topology.ts)' },
  {
    command: 'cluster|nodes',
    reason: 'topology discovery fallback when CLUSTER SHARDS is unknown (Redis < 7)',
  },
];

/** The worker's commands, with the code path that needs each (determined with the ACL log). */
export const WORKER_GRANTS: readonly AclGrant[] = [
  ...TOPOLOGY_GRANTS,
  { command: 'cluster|slots', reason: 'the ioredis Cluster client maps slots to nodes' },
  { command: 'cluster|info', reason: "the ioredis Cluster client's ready check" },
  { command: 'readonly', reason: 'sent by the ioredis Cluster client on its replica connections' },
  {
    command: 'evalsha',
    reason:
      'the Lua scripts of worker/scripts/ (defined once per client with defineCommand), after their first run on a connection',
  },
  {
    command: 'eval',
    reason:
      'the same scripts, once per connection and again when a node answers NOSCRIPT (ioredis sends the text)',
  },
  { command: 'get', reason: 'leader record and fencing counters; inside the scripts (lease, outbox fence)' },
  { command: 'mget', reason: 'processed marks of every primary at once' },
  { command: 'set', reason: 'inside the scripts (lease, counters, record, marks, outbox fence)' },
  {
    command: 'exists',
    reason:
      'inside lease-acquire and outbox-trim; the keyed command that sends a WAIT to the primary that took a write',
  },
  { command: 'del', reason: 'inside lease-release' },
  { command: 'incr', reason: 'fencing counter of the single-key lease (fewer than 3 primaries)' },
  { command: 'role', reason: 'single-key lease: does the primary have a replica to WAIT for' },
  {
    command: 'wait',
    reason: 'single-key lease and HANDLER=stream: a replica acknowledged the lease write / the append',
  },
  { command: 'xadd', reason: 'HANDLER=stream: inside the fenced append script' },
  {
    command: 'xrange',
    reason: 'HANDLER=stream: a retried append looks up the entry its earlier attempt wrote',
  },
  { command: 'xrevrange', reason: 'HANDLER=stream: the same, by event id, when that reply was lost' },
  { command: 'xinfo|groups', reason: 'HANDLER=stream trim script: what each consumer group has read' },
  { command: 'xpending', reason: "HANDLER=stream trim script: a group's oldest unacknowledged entry" },
  { command: 'xtrim', reason: 'HANDLER=stream trim script: drop read entries, then apply the length bound' },
  {
    command: 'hset',
    reason: 'inside coverage-publish: this worker reports since when it is subscribed to every primary',
  },
  { command: 'hgetall', reason: 'inside coverage-publish: which peers are covered, and since when' },
  { command: 'hget', reason: "inside coverage-release: this worker's report, before it deletes it" },
  {
    command: 'hdel',
    reason: 'coverage registry: drops peers not seen lately; inside coverage-release when this worker stops',
  },
  { command: 'pexpire', reason: 'inside coverage-publish: the hash lapses when no worker runs' },
  {
    command: 'subscribe',
    reason:
      '__keyevent@0__:expired on every node (and __keyevent@0__:expire on primaries with precise expiry), and the released channel',
  },
  {
    command: 'ping',
    reason: 'heartbeat on every subscribed connection: a subscription that stalls without closing is noticed',
  },
  { command: 'unsubscribe', reason: 'the released channel at shutdown' },
  { command: 'publish', reason: 'the released channel after a graceful release' },
];

/**
 * The worker's further commands with PRECISE_EXPIRY (worker/expiry/precise-expiry.ts and its stages).
 * SCAN reads key names whatever the key rules (ACL key patterns do not filter what it returns, and its
 * MATCH filters after reading): with it the worker sees every key name of every primary.
 */
export const PRECISE_EXPIRY_GRANTS: readonly AclGrant[] = [
  {
    command: 'pexpiretime',
    reason:
      "on-time expiry: a key's deadline (the tracker's lookups and the scan's, expiry-tracker.ts, keyspace-scanner.ts) and the touch that makes a due key expire (expiry-toucher.ts), sent alone or in batches of one primary's keys (the key-deadlines script, node-deadlines.ts); read-only, on keys matching KEY_PATTERN",
  },
  {
    command: 'scan',
    reason: 'on-time expiry: the paced keyspace scan of each primary (keyspace-scanner.ts)',
  },
  { command: 'time', reason: "on-time expiry: each primary's clock offset (primary-clocks.ts)" },
  {
    command: 'command|info',
    reason:
      'on-time expiry: whether the engine knows PEXPIRETIME (scan-connection.ts; Redis < 7.0 falls back)',
  },
  {
    command: 'evalsha_ro',
    reason:
      'read-only scripts (key-deadlines, value-read): EVALSHA declares its keys read-write, which %R~ on KEY_PATTERN refuses',
  },
  { command: 'eval_ro', reason: 'the same scripts, when a node answers NOSCRIPT' },
];

/**
 * The worker's further commands with CAPTURE_VALUES (worker/expiry/value-reader.ts and the read-only
 * script worker/scripts/value-read.ts), on keys matching KEY_PATTERN, read-only (`%R~`). GET,
 * HGETALL and PEXPIRETIME are granted above; the script runs through EVALSHA_RO / EVAL_RO.
 */
export const VALUE_CAPTURE_GRANTS: readonly AclGrant[] = [
  { command: 'type', reason: "inside value-read: the key's type" },
  { command: 'strlen', reason: "inside value-read: a string's size before it is read" },
  { command: 'hlen', reason: "inside value-read: a hash's field count before it is read" },
  { command: 'llen', reason: "inside value-read: a list's length before it is read" },
  { command: 'scard', reason: "inside value-read: a set's size before it is read" },
  { command: 'zcard', reason: "inside value-read: a sorted set's size before it is read" },
  {
    command: 'memory|usage',
    reason: "inside value-read: a bound on a collection's bytes before it is read",
  },
  { command: 'lrange', reason: 'inside value-read: a list within the bounds' },
  { command: 'smembers', reason: 'inside value-read: a set within the bounds' },
  { command: 'zrange', reason: 'inside value-read: a sorted set within the bounds, with scores' },
];

/** The scheduled check's commands (it uses plain node connections, no Cluster client). */
export const NOTIFY_CHECK_GRANTS: readonly AclGrant[] = [
  ...TOPOLOGY_GRANTS,
  { command: 'get', reason: 'the leader record' },
  { command: 'set', reason: 'canary keys (SET ... PX 30)' },
  { command: 'exists', reason: 'touching a canary after its TTL so the primary expires it (and publishes)' },
  {
    command: 'subscribe',
    reason:
      '__keyevent@0__:expired (and __keyevent@0__:expire with precise expiry) on each primary for its canary',
  },
];

/** Only with `configRights` (self-managed Redis/Valkey; ElastiCache restricts CONFIG). */
export const NOTIFY_CHECK_CONFIG_GRANTS: readonly AclGrant[] = [
  { command: 'config|get', reason: 'reads notify-keyspace-events (NOTIFY_MODE config or auto)' },
  { command: 'config|set', reason: 'merges the missing E and x flags into notify-keyspace-events' },
];

/**
 * `on`, key patterns, channels, `-@all`, then the commands. Written for a user that starts from
 * nothing (a new ElastiCache user; `user <name> reset ...` locally): ElastiCache refuses `reset` and
 * passwords inside an access string and leaves a user without `on` disabled.
 */
function accessString(keyRules: readonly string[], channels: readonly string[], commands: readonly string[]) {
  return ['on', ...keyRules, ...channels.map((c) => `&${c}`), '-@all', ...commands.map((c) => `+${c}`)].join(
    ' ',
  );
}

/**
 * The worker's commands in this mode: WORKER_GRANTS, then PRECISE_EXPIRY_GRANTS with precise expiry,
 * then VALUE_CAPTURE_GRANTS when values are captured too (the default with precise expiry).
 */
export function workerGrants(preciseExpiry: boolean, captureValues = preciseExpiry): readonly AclGrant[] {
  if (!preciseExpiry) return WORKER_GRANTS;
  return captureValues
    ? [...WORKER_GRANTS, ...PRECISE_EXPIRY_GRANTS, ...VALUE_CAPTURE_GRANTS]
    : [...WORKER_GRANTS, ...PRECISE_EXPIRY_GRANTS];
}

/**
 * The worker's access string for `leaderName`: read-write on its own keys; with precise expiry (the
 * default) also read-only on KEY_PATTERN (`%R~<pattern>`, Redis 7 syntax: a write to a user key is
 * refused), the `expire` channel and PRECISE_EXPIRY_GRANTS.
 */
export function workerAccessString(leaderName: string, options: WorkerAccessOptions = {}): string {
  const p = aclPatterns(leaderName);
  const preciseExpiry = options.preciseExpiry ?? PRECISE_EXPIRY_DEFAULTS.preciseExpiry;
  const keyPattern = options.keyPattern ?? KEY_FILTER_DEFAULTS.keyPattern;
  if (keyPattern.length === 0 || /\s/.test(keyPattern)) {
    throw new RangeError(
      `workerAccessString: KEY_PATTERN ${JSON.stringify(keyPattern)} cannot be an ACL key pattern`,
    );
  }
  const ownKeys = [p.leaseFamily, p.quorumMembers, p.processedMarks, p.outboxStreams, p.outboxFences].map(
    (k) => `~${k}`,
  );
  return accessString(
    preciseExpiry ? [...ownKeys, `%R~${keyPattern}`] : ownKeys,
    preciseExpiry
      ? [p.expiredChannel, p.expireChannel, p.releasedChannel]
      : [p.expiredChannel, p.releasedChannel],
    workerGrants(preciseExpiry).map((g) => g.command),
  );
}

/** The scheduled check's access string for `leaderName` (CONFIG only with `configRights`). */
export function notifyCheckAccessString(leaderName: string, options: NotifyCheckAccessOptions): string {
  const p = aclPatterns(leaderName);
  const preciseExpiry = options.preciseExpiry ?? PRECISE_EXPIRY_DEFAULTS.preciseExpiry;
  return accessString(
    [`~${p.canaries}`, `%R~${p.leaderRecord}`],
    preciseExpiry ? [p.expiredChannel, p.expireChannel] : [p.expiredChannel],
    [...NOTIFY_CHECK_GRANTS, ...(options.configRights ? NOTIFY_CHECK_CONFIG_GRANTS : [])].map(
      (g) => g.command,
    ),
  );
}
