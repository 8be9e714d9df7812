import { describe, expect, it } from 'vitest';
import {
  aclPatterns,
  escapeGlob,
  indexedPattern,
  NOTIFY_CHECK_CONFIG_GRANTS,
  NOTIFY_CHECK_GRANTS,
  notifyCheckAccessString,
  PRECISE_EXPIRY_GRANTS,
  suffixPattern,
  WORKER_GRANTS,
  workerAccessString,
  workerGrants,
} from '../../../core/acl.ts';
import { EXPIRE_CHANNEL, EXPIRED_CHANNEL, KeyspaceKeys } from '../../../core/keys.ts';
// Redis' own glob rules (a port of stringmatchlen), the same ones ACL key patterns follow.
import { compileKeyPattern } from '../../../worker/expiry/key-pattern.ts';

/** The parts of an access string: key rules (with their `%R`/`%W` prefix), channels, commands. */
function parse(access: string) {
  const tokens = access.split(' ');
  return {
    tokens,
    keys: tokens.filter((t) => /^(%[RW]+)?~/.test(t)),
    channels: tokens.filter((t) => t.startsWith('&')).map((t) => t.slice(1)),
    commands: tokens.filter((t) => t.startsWith('+')).map((t) => t.slice(1)),
  };
}

/** Does any key rule of `access` grant `mode` ('R' or 'W') on `key`? */
function grants(access: string, key: string, mode: 'R' | 'W'): boolean {
  return parse(access).keys.some((rule) => {
    const [, flags = 'RW', pattern = ''] = /^(?:%([RW]+))?~(.*)$/.exec(rule) ?? [];
    return flags.includes(mode) && compileKeyPattern(pattern)(Buffer.from(key));
  });
}

function channelGranted(access: string, channel: string): boolean {
  return parse(access).channels.some((pattern) => compileKeyPattern(pattern)(Buffer.from(channel)));
}

const NAME = 'orders.v2-eu_1';
const keys = new KeyspaceKeys(NAME);
/** The default: precise expiry on, KEY_PATTERN `*`. */
const worker = workerAccessString(NAME);
/** PRECISE_EXPIRY=false: the worker touches no user key. */
const workerNative = workerAccessString(NAME, { preciseExpiry: false });
/** Precise expiry with KEY_PATTERN=orders:* */
const workerOrders = workerAccessString(NAME, { keyPattern: 'orders:*' });
const workers = [worker, workerNative, workerOrders];
const check = notifyCheckAccessString(NAME, { configRights: false });
const checkWithConfig = notifyCheckAccessString(NAME, { configRights: true });

/** Every key the worker writes, as core/keys.ts builds it (indexes past 9 included). */
const workerKeys = [
  keys.lease,
  keys.epoch,
  keys.leader,
  keys.coverage,
  ...[0, 1, 7, 12, 99].flatMap((i) => [keys.quorumLease(i), keys.quorumEpoch(i)]),
  ...[0, 5, 15].flatMap((i) => [keys.outbox(i), keys.outboxFence(i)]),
  ...[0, 42].map((i) => keys.processedMark(i, '07c3d1f5e0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5')),
  ...[0, 13].map((i) => keys.expireProbe(i, 'w-1a2b3c')),
];

describe('worker access string', () => {
  it('grants read and write on every key the worker uses, writes for this leader name only', () => {
    for (const access of workers) {
      for (const key of workerKeys) {
        expect(grants(access, key, 'R'), key).toBe(true);
        expect(grants(access, key, 'W'), key).toBe(true);
      }
    }
    const other = new KeyspaceKeys('orders');
    for (const key of [
      other.lease,
      other.leader,
      other.quorumLease(0),
      other.outbox(0),
      other.processedMark(0, 'x'),
    ]) {
      for (const access of workers) expect(grants(access, key, 'W'), key).toBe(false);
      // Readable only through the read-only rule of KEY_PATTERN `*` (precise expiry).
      expect(grants(workerNative, key, 'R'), key).toBe(false);
      expect(grants(workerOrders, key, 'R'), key).toBe(false);
    }
  });

  it("writes no application key and none of the check's canaries; reads only KEY_PATTERN's, with precise expiry", () => {
    const foreign = ['orders:1', 'session:{kl:x}', '{kl:', `{kl:${NAME}`, keys.canary(0, 'abc'), ''];
    for (const key of foreign) {
      for (const access of workers) expect(grants(access, key, 'W'), key).toBe(false);
      expect(grants(workerNative, key, 'R'), key).toBe(false);
      expect(grants(worker, key, 'R'), key).toBe(true);
    }
    expect(grants(workerOrders, 'orders:1', 'R')).toBe(true);
    expect(grants(workerOrders, 'session:{kl:x}', 'R')).toBe(false);
    expect(grants(workerOrders, keys.canary(0, 'abc'), 'R')).toBe(false);
    expect(parse(workerOrders).keys).toContain('%R~orders:*');
    expect(parse(workerNative).keys.filter((k) => k.startsWith('%'))).toEqual([]);
  });

  it('refuses a KEY_PATTERN that cannot be one ACL key pattern', () => {
    expect(() => workerAccessString(NAME, { keyPattern: 'a b' })).toThrow(RangeError);
    expect(() => workerAccessString(NAME, { keyPattern: '' })).toThrow(RangeError);
  });

  it('grants the expired-event channel, the expire channel with precise expiry and its own released channel, nothing else', () => {
    for (const access of workers) {
      expect(channelGranted(access, EXPIRED_CHANNEL)).toBe(true);
      expect(channelGranted(access, keys.releasedChannel)).toBe(true);
      expect(channelGranted(access, '__keyevent@0__:set')).toBe(false);
      expect(channelGranted(access, '__keyspace@0__:orders:1')).toBe(false);
      expect(channelGranted(access, new KeyspaceKeys('other').releasedChannel)).toBe(false);
    }
    expect(channelGranted(worker, EXPIRE_CHANNEL)).toBe(true);
    expect(channelGranted(workerNative, EXPIRE_CHANNEL)).toBe(false);
    expect(parse(worker).channels).toHaveLength(3);
    expect(parse(workerNative).channels).toHaveLength(2);
  });

  it('is on, denies everything first, then grants exactly the listed commands', () => {
    for (const [access, preciseExpiry] of [
      [worker, true],
      [workerNative, false],
    ] as const) {
      const { tokens, commands } = parse(access);
      expect(tokens[0]).toBe('on');
      expect(tokens.indexOf('-@all')).toBeLessThan(tokens.findIndex((t) => t.startsWith('+')));
      expect(commands).toEqual(workerGrants(preciseExpiry).map((g) => g.command));
      expect(new Set(commands).size).toBe(commands.length);
      // Nothing administrative or destructive beyond its own keys.
      for (const forbidden of [
        'config|get',
        'config|set',
        'flushall',
        'keys',
        'acl|setuser',
        'shutdown',
        'debug',
      ]) {
        expect(commands).not.toContain(forbidden);
      }
      for (const t of tokens)
        expect(t).not.toMatch(/^(reset|allkeys|allchannels|allcommands|nopass|>|<|#|\+@)/);
    }
    // Precise expiry adds exactly its reads: PEXPIRETIME, SCAN, TIME, COMMAND INFO, the read-only
    // script calls; value capture (on by default with it) the commands the value-read script runs.
    const onTime = ['pexpiretime', 'scan', 'time', 'command|info', 'evalsha_ro', 'eval_ro'];
    const capture = [
      'type',
      'strlen',
      'hlen',
      'llen',
      'scard',
      'zcard',
      'memory|usage',
      'lrange',
      'smembers',
      'zrange',
    ];
    expect(parse(worker).commands).toEqual([...WORKER_GRANTS.map((g) => g.command), ...onTime, ...capture]);
    expect(workerGrants(true, false).map((g) => g.command)).toEqual([
      ...WORKER_GRANTS.map((g) => g.command),
      ...onTime,
    ]);
    // Nothing that writes a user key: every capture command is a read.
    for (const command of capture)
      expect(['set', 'del', 'hset', 'lpush', 'sadd', 'zadd']).not.toContain(command);
    expect(parse(workerNative).commands).not.toContain('scan');
    expect(parse(workerNative).commands).not.toContain('pexpiretime');
  });

  it('names a reason for every grant', () => {
    for (const grant of [
      ...WORKER_GRANTS,
      ...PRECISE_EXPIRY_GRANTS,
      ...NOTIFY_CHECK_GRANTS,
      ...NOTIFY_CHECK_CONFIG_GRANTS,
    ]) {
      expect(grant.reason.length, grant.command).toBeGreaterThan(10);
    }
  });
});

describe('notify-check access strings', () => {
  it('writes canaries and only reads the leader record', () => {
    for (const access of [check, checkWithConfig]) {
      for (const i of [0, 3, 41]) {
        expect(grants(access, keys.canary(i, 'a1b2c3d4'), 'W')).toBe(true);
        expect(grants(access, keys.canary(i, 'a1b2c3d4'), 'R')).toBe(true);
      }
      expect(grants(access, keys.leader, 'R')).toBe(true);
      expect(grants(access, keys.leader, 'W')).toBe(false);
      for (const key of [keys.lease, keys.epoch, keys.quorumLease(0), keys.outbox(0), 'orders:1']) {
        expect(grants(access, key, 'R'), key).toBe(false);
        expect(grants(access, key, 'W'), key).toBe(false);
      }
      expect(parse(access).channels).toEqual([EXPIRED_CHANNEL, EXPIRE_CHANNEL]);
    }
    expect(
      parse(notifyCheckAccessString(NAME, { configRights: false, preciseExpiry: false })).channels,
    ).toEqual([EXPIRED_CHANNEL]);
  });

  it('adds CONFIG GET and SET only with configRights, and no other difference', () => {
    expect(parse(check).commands).not.toContain('config|get');
    expect(parse(check).commands).not.toContain('config|set');
    expect(parse(checkWithConfig).commands).toEqual([...parse(check).commands, 'config|get', 'config|set']);
    expect(parse(check).commands).toEqual(NOTIFY_CHECK_GRANTS.map((g) => g.command));
    expect(parse(check).tokens[0]).toBe('on');
  });

  it('prints as docs/security.md shows it for the default leader name', () => {
    expect(workerAccessString('default')).toBe(
      'on ~{kl:default}:* ~{kl:default:p[0-9]*}:* ~{kl:default:p[0-9]*}:processed:* ~{kl:default:o[0-9]*}:outbox ' +
        '~{kl:default:o[0-9]*}:fence %R~* &__keyevent@0__:expired &__keyevent@0__:expire &{kl:default}:released -@all ' +
        workerGrants(true)
          .map((g) => `+${g.command}`)
          .join(' '),
    );
    expect(notifyCheckAccessString('default', { configRights: false })).toBe(
      'on ~{kl:default:c[0-9]*}:canary:* %R~{kl:default}:leader &__keyevent@0__:expired &__keyevent@0__:expire -@all ' +
        NOTIFY_CHECK_GRANTS.map((g) => `+${g.command}`).join(' '),
    );
  });
});

describe('pattern builders', () => {
  it('derives one glob per key family from core/keys.ts', () => {
    expect(aclPatterns('default')).toEqual({
      leaseFamily: '{kl:default}:*',
      quorumMembers: '{kl:default:p[0-9]*}:*',
      processedMarks: '{kl:default:p[0-9]*}:processed:*',
      outboxStreams: '{kl:default:o[0-9]*}:outbox',
      outboxFences: '{kl:default:o[0-9]*}:fence',
      canaries: '{kl:default:c[0-9]*}:canary:*',
      leaderRecord: '{kl:default}:leader',
      expiredChannel: '__keyevent@0__:expired',
      expireChannel: '__keyevent@0__:expire',
      releasedChannel: '{kl:default}:released',
    });
  });

  it('escapes glob characters in literal parts', () => {
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
    expect(indexedPattern((i) => `x*{t${i}}:y`)).toBe('x\\*{t[0-9]*}:y');
    expect(suffixPattern((v) => `a?:${v}`)).toBe('a\\?:*');
  });

  it('refuses key shapes it cannot express (so a change in core/keys.ts is noticed)', () => {
    expect(() => indexedPattern(() => 'constant')).toThrow(/index digit/);
    expect(() => indexedPattern((i) => `k${i * 2}`)).toThrow(/index digit/);
    expect(() => suffixPattern((v) => `${v}:tail`)).toThrow(/not at its end/);
  });

  it('rejects a leader name that could not be part of a hash tag', () => {
    expect(() => workerAccessString('a}b')).toThrow(RangeError);
    expect(() => notifyCheckAccessString('', { configRights: false })).toThrow(RangeError);
  });
});
