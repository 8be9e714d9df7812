import { describe, expect, it } from 'vitest';
import {
  aclPatterns,
  escapeGlob,
  indexedPattern,
  NOTIFY_CHECK_CONFIG_GRANTS,
  NOTIFY_CHECK_GRANTS,
  notifyCheckAccessString,
  suffixPattern,
  WORKER_GRANTS,
  workerAccessString,
} from '../../../core/acl.ts';
import { EXPIRED_CHANNEL, KeyspaceKeys } from '../../../core/keys.ts';
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
const worker = workerAccessString(NAME);
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
];

describe('worker access string', () => {
  it('grants read and write on every key the worker uses, for this leader name only', () => {
    for (const key of workerKeys) {
      expect(grants(worker, key, 'R'), key).toBe(true);
      expect(grants(worker, key, 'W'), key).toBe(true);
    }
    const other = new KeyspaceKeys('orders');
    for (const key of [
      other.lease,
      other.leader,
      other.quorumLease(0),
      other.outbox(0),
      other.processedMark(0, 'x'),
    ]) {
      expect(grants(worker, key, 'R'), key).toBe(false);
    }
  });

  it("grants no application key and none of the check's canaries", () => {
    for (const key of ['orders:1', 'session:{kl:x}', '{kl:', `{kl:${NAME}`, keys.canary(0, 'abc'), '']) {
      expect(grants(worker, key, 'R'), key).toBe(false);
    }
  });

  it('grants the expired-event channel and its own released channel, nothing else', () => {
    expect(channelGranted(worker, EXPIRED_CHANNEL)).toBe(true);
    expect(channelGranted(worker, keys.releasedChannel)).toBe(true);
    expect(channelGranted(worker, '__keyevent@0__:set')).toBe(false);
    expect(channelGranted(worker, '__keyspace@0__:orders:1')).toBe(false);
    expect(channelGranted(worker, new KeyspaceKeys('other').releasedChannel)).toBe(false);
    expect(parse(worker).channels).toHaveLength(2);
  });

  it('is on, denies everything first, then grants exactly the listed commands', () => {
    const { tokens, commands } = parse(worker);
    expect(tokens[0]).toBe('on');
    expect(tokens.indexOf('-@all')).toBeLessThan(tokens.findIndex((t) => t.startsWith('+')));
    expect(commands).toEqual(WORKER_GRANTS.map((g) => g.command));
    expect(new Set(commands).size).toBe(commands.length);
    // Nothing administrative or destructive beyond its own keys.
    for (const forbidden of [
      'config|get',
      'config|set',
      'flushall',
      'keys',
      'scan',
      'acl|setuser',
      'shutdown',
      'debug',
    ]) {
      expect(commands).not.toContain(forbidden);
    }
    for (const t of tokens)
      expect(t).not.toMatch(/^(reset|allkeys|allchannels|allcommands|nopass|>|<|#|\+@)/);
  });

  it('names a reason for every grant', () => {
    for (const grant of [...WORKER_GRANTS, ...NOTIFY_CHECK_GRANTS, ...NOTIFY_CHECK_CONFIG_GRANTS]) {
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
      expect(parse(access).channels).toEqual([EXPIRED_CHANNEL]);
    }
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
        '~{kl:default:o[0-9]*}:fence &__keyevent@0__:expired &{kl:default}:released -@all ' +
        WORKER_GRANTS.map((g) => `+${g.command}`).join(' '),
    );
    expect(notifyCheckAccessString('default', { configRights: false })).toBe(
      'on ~{kl:default:c[0-9]*}:canary:* %R~{kl:default}:leader &__keyevent@0__:expired -@all ' +
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
