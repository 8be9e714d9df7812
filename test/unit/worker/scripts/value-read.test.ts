import type { Cluster, Command } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { keySlot } from '../../../../core/key-slot.ts';
import { isReadOnly, scriptsOn } from '../../../../worker/scripts/registry.ts';
import { ScriptReplyError } from '../../../../worker/scripts/script-errors.ts';
import { DEFERRED, parseScore, valueRead, valuesRead } from '../../../../worker/scripts/value-read.ts';

const b = (text: string) => Buffer.from(text);
const SECRET = 'session-token-4f1c';
const DEADLINE = 1_800_000_000_123;

describe('values-read: the parser of a batch', () => {
  it("one value-read reply per key, in order, and `deferred` for the keys the call's element budget left", () => {
    expect(
      valuesRead.parse([
        [b('string'), DEADLINE, b('ok'), b('v')],
        [b(''), -2, b('deferred')],
        [b('none'), -2, b('gone')],
      ]),
    ).toEqual([
      {
        status: 'ok',
        type: 'string',
        deadlineMs: DEADLINE,
        value: { type: 'string', bytes: b('v') },
        bytes: 1,
      },
      DEFERRED,
      { status: 'gone' },
    ]);
    expect(valuesRead.parse([])).toEqual([]);
  });

  it('a reply outside the contract is a ScriptReplyError, naming no contents', () => {
    expect(() => valuesRead.parse(b(SECRET))).toThrow(ScriptReplyError);
    expect(() => valuesRead.parse([[b('string'), DEADLINE, b('ok')]])).toThrow(ScriptReplyError);
    try {
      valuesRead.parse([[b('string'), 'x', b('ok'), b(SECRET)]]);
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(SECRET);
    }
  });

  it('reads while writes are paused and across slots of its node', () => {
    expect(isReadOnly(valuesRead)).toBe(true);
    expect(valuesRead.lua.split('\n')[0]).toBe('#!lua flags=no-writes,allow-cross-slot-keys');
    expect(valuesRead.numberOfKeys).toBe(0);
  });
});

describe('value-read: the parser', () => {
  it('gone and no-ttl carry no payload', () => {
    expect(valueRead.parse([b('none'), -2, b('gone')])).toEqual({ status: 'gone' });
    expect(valueRead.parse([b('hash'), -1, b('no-ttl')])).toEqual({ status: 'no-ttl', type: 'hash' });
    expect(valueRead.parse([b('stream'), -1, b('no-ttl')])).toEqual({ status: 'no-ttl', type: 'stream' });
  });

  it('a string, binary and empty, with its bytes', () => {
    const bytes = Buffer.from([0xff, 0x00, 0xc3, 0x28]);
    expect(valueRead.parse([b('string'), DEADLINE, b('ok'), bytes])).toEqual({
      status: 'ok',
      type: 'string',
      deadlineMs: DEADLINE,
      value: { type: 'string', bytes },
      bytes: 4,
    });
    const empty = valueRead.parse([b('string'), DEADLINE, b('ok'), Buffer.alloc(0)]);
    expect(empty).toMatchObject({ value: { type: 'string', bytes: Buffer.alloc(0) }, bytes: 0 });
  });

  it('a hash as field/value pairs, a list and a set in reply order', () => {
    const field = Buffer.from([0x80, 0x81]);
    expect(valueRead.parse([b('hash'), DEADLINE, b('ok'), field, b(''), b(''), b('v')])).toEqual({
      status: 'ok',
      type: 'hash',
      deadlineMs: DEADLINE,
      value: {
        type: 'hash',
        fields: [
          [field, b('')],
          [b(''), b('v')],
        ],
      },
      bytes: 3,
    });
    expect(valueRead.parse([b('list'), DEADLINE, b('ok'), b('b'), b(''), b('b')])).toMatchObject({
      value: { type: 'list', items: [b('b'), b(''), b('b')] },
      bytes: 2,
    });
    expect(valueRead.parse([b('set'), DEADLINE, b('ok'), b('x'), b('yy')])).toMatchObject({
      value: { type: 'set', members: [b('x'), b('yy')] },
      bytes: 3,
    });
  });

  it('a sorted set with scores parsed from their text: %.17g, exponents, inf and -inf, -0', () => {
    const reply = [
      b('zset'),
      DEADLINE,
      b('ok'),
      b('a'),
      b('-inf'),
      b('b'),
      b('-2.5000000000000001e-05'),
      b('c'),
      b('0.10000000000000001'),
      b('d'),
      b('1.7976931348623157e+308'),
      b('e'),
      b('inf'),
    ];
    expect(valueRead.parse(reply)).toEqual({
      status: 'ok',
      type: 'zset',
      deadlineMs: DEADLINE,
      value: {
        type: 'zset',
        members: [
          [b('a'), Number.NEGATIVE_INFINITY],
          [b('b'), -2.5e-5],
          [b('c'), 0.1],
          [b('d'), Number.MAX_VALUE],
          [b('e'), Number.POSITIVE_INFINITY],
        ],
      },
      bytes: 5 + 5 * 8,
    });
    expect(Object.is(parseScore(b('-0')), -0)).toBe(true);
    expect(parseScore(b('+inf'))).toBe(Number.POSITIVE_INFINITY);
    for (const bad of ['nan', '', ' 1', '0x10', '1e', 'Infinity', '1.5.2'])
      expect(parseScore(b(bad)), bad).toBeUndefined();
  });

  it('refusals carry the deadline and no payload', () => {
    for (const type of ['string', 'hash', 'list', 'set', 'zset'])
      for (const status of ['too-large', 'over-budget'] as const)
        expect(valueRead.parse([b(type), DEADLINE, b(status)])).toEqual({
          status,
          type,
          deadlineMs: DEADLINE,
        });
    expect(valueRead.parse([b('stream'), DEADLINE, b('unsupported-type')])).toEqual({
      status: 'unsupported-type',
      type: 'stream',
      deadlineMs: DEADLINE,
    });
    expect(valueRead.parse([b('ReJSON-RL'), DEADLINE, b('unsupported-type')])).toMatchObject({
      type: 'ReJSON-RL',
    });
  });

  it.each([
    ['not an array', b('ok')],
    ['a number', 1],
    ['null', null],
    ['too short', [b('string'), DEADLINE]],
    ['an unknown status', [b('string'), DEADLINE, b('fine'), b('x')]],
    ['a deadline as text', [b('string'), b(String(DEADLINE)), b('ok'), b('x')]],
    ['a fractional deadline', [b('string'), 1.5, b('ok'), b('x')]],
    ['a negative deadline with a value', [b('string'), -2, b('ok'), b('x')]],
    ['gone for an existing type', [b('string'), -2, b('gone')]],
    ['gone with a deadline', [b('none'), DEADLINE, b('gone')]],
    ['gone with a payload', [b('none'), -2, b('gone'), b('x')]],
    ['none with a value', [b('none'), DEADLINE, b('ok'), b('x')]],
    ['no-ttl with a deadline', [b('string'), DEADLINE, b('no-ttl')]],
    ['no-ttl with a payload', [b('string'), -1, b('no-ttl'), b('x')]],
    ['a refusal with a payload', [b('string'), DEADLINE, b('too-large'), b('x')]],
    ['unsupported-type for a supported type', [b('hash'), DEADLINE, b('unsupported-type')]],
    ['too-large for an unsupported type', [b('stream'), DEADLINE, b('too-large')]],
    ['a value of an unsupported type', [b('stream'), DEADLINE, b('ok'), b('x')]],
    ['a string without bytes', [b('string'), DEADLINE, b('ok')]],
    ['a string in two parts', [b('string'), DEADLINE, b('ok'), b('x'), b('y')]],
    ['an empty hash', [b('hash'), DEADLINE, b('ok')]],
    ['a hash with a field and no value', [b('hash'), DEADLINE, b('ok'), b('f'), b('v'), b('g')]],
    ['an empty list', [b('list'), DEADLINE, b('ok')]],
    ['an empty set', [b('set'), DEADLINE, b('ok')]],
    ['a sorted set member without score', [b('zset'), DEADLINE, b('ok'), b('m')]],
    ['a sorted set score that is not a number', [b('zset'), DEADLINE, b('ok'), b('m'), b('nan')]],
    ['a payload element that is a number', [b('list'), DEADLINE, b('ok'), 5]],
    ['a payload element that is a string', [b('list'), DEADLINE, b('ok'), 'x']],
    ['a nested payload', [b('list'), DEADLINE, b('ok'), [b('x')]]],
  ])('refuses %s with ScriptReplyError', (_what, reply) => {
    expect(() => valueRead.parse(reply)).toThrow(ScriptReplyError);
  });

  it("never puts the value's contents in the error", () => {
    const replies = [
      [b('string'), DEADLINE, b('ok'), b(SECRET), b(SECRET)],
      [b('zset'), DEADLINE, b('ok'), b(SECRET), b(SECRET)],
      [b('hash'), DEADLINE, b('ok'), b(SECRET)],
      [b(SECRET), DEADLINE, b('ok'), b(SECRET)],
      [b('string'), DEADLINE, b(SECRET)],
      b(SECRET),
    ];
    for (const reply of replies) {
      const error = (() => {
        try {
          valueRead.parse(reply);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ScriptReplyError);
      expect((error as Error).message).not.toContain(SECRET);
      expect((error as Error).message).not.toContain(b(SECRET).toString('hex'));
    }
  });
});

/** A stand-in for the Cluster client: records what the registry sends. */
function fakeClient(reply: (name: string, args: unknown[]) => Promise<unknown>) {
  const sent: { name: string; args: unknown[]; via: 'auto' | 'sendCommand' }[] = [];
  const client = {
    defineCommand: () => {},
    slots: Array.from({ length: 16384 }, (_, slot) => [slot < 8192 ? '127.0.0.1:1' : '127.0.0.1:2']),
    evalsha_roBuffer: (...args: unknown[]) => {
      sent.push({ name: 'evalsha_ro', args, via: 'auto' });
      return reply('evalsha_ro', args);
    },
    eval_roBuffer: (...args: unknown[]) => {
      sent.push({ name: 'eval_ro', args, via: 'auto' });
      return reply('eval_ro', args);
    },
    sendCommand: (command: Command) => {
      sent.push({ name: command.name, args: command.args, via: 'sendCommand' });
      return reply(command.name, command.args);
    },
  };
  return { client: client as unknown as Cluster, sent };
}

const GONE = [b('none'), -2, b('gone')];

describe('value-read: run by the registry read-only', () => {
  it('is read-only (no-writes first line) and runs with EVALSHA_RO, key and arguments as given', async () => {
    expect(valueRead.lua.startsWith('#!lua flags=no-writes\n')).toBe(true);
    expect(isReadOnly(valueRead)).toBe(true);
    const { client, sent } = fakeClient(async () => GONE);
    expect(await scriptsOn(client).runBuffer(valueRead, [b('k')], [65536, 100, 8192])).toEqual({
      status: 'gone',
    });
    expect(sent).toHaveLength(1);
    expect(sent[0]?.name).toBe('evalsha_ro');
    expect(sent[0]?.via).toBe('auto');
    const [sha, ...rest] = sent[0]?.args ?? [];
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(rest).toEqual([1, b('k'), 65536, 100, 8192]);
  });

  it('refuses to queue it on a pipeline (a pipeline cannot resend the text on NOSCRIPT)', () => {
    const { client } = fakeClient(async () => GONE);
    expect(() => scriptsOn(client).queue({} as never, valueRead, ['k'], [1, 1, 1])).toThrow(TypeError);
  });

  it('a key that is not valid UTF-8 bypasses auto-pipelining (ioredis would group it by a wrong slot)', async () => {
    const { client, sent } = fakeClient(async () => GONE);
    const key = Buffer.from([0xff, 0x6b]);
    await scriptsOn(client).runBuffer(valueRead, [key], [1, 1, 1]);
    expect(sent.map((s) => [s.name, s.via])).toEqual([['evalsha_ro', 'sendCommand']]);
    expect(sent[0]?.args.slice(1, 3)).toEqual(['1', key]);
  });

  it('on NOSCRIPT sends the text once per node at a time; the other reads of that node wait, then EVALSHA_RO again', async () => {
    const loaded = new Set<string>();
    const nodeOf = (key: Buffer) => (keySlot(key) < 8192 ? 1 : 2);
    let releaseLoad: (() => void) | undefined;
    const { client, sent } = fakeClient(async (name, args) => {
      const key = args[2] as Buffer;
      const node = String(nodeOf(key));
      if (name === 'evalsha_ro') {
        if (!loaded.has(node)) throw new Error('NOSCRIPT No matching script. Please use EVAL.');
        return GONE;
      }
      // EVAL_RO: the text reaches the node's cache; the first load is held until released.
      if (releaseLoad === undefined) await new Promise<void>((resolve) => (releaseLoad = resolve));
      loaded.add(node);
      return GONE;
    });
    const scripts = scriptsOn(client);
    const keys = Array.from({ length: 40 }, (_, i) => b(`key:${i}`));
    const onNode1 = keys.filter((k) => nodeOf(k) === 1);
    expect(onNode1.length).toBeGreaterThan(5);
    const reads = onNode1.map((key) => scripts.runBuffer(valueRead, [key], [1, 1, 1]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent.filter((s) => s.name === 'eval_ro')).toHaveLength(1);
    releaseLoad?.();
    expect(await Promise.all(reads)).toEqual(onNode1.map(() => ({ status: 'gone' })));
    expect(sent.filter((s) => s.name === 'eval_ro')).toHaveLength(1);
    expect(sent.filter((s) => s.name === 'evalsha_ro')).toHaveLength(2 * onNode1.length - 1);
    const text = sent.find((s) => s.name === 'eval_ro')?.args[0];
    expect(text).toBe(valueRead.lua);
  });

  it('passes other errors on unchanged, and after a NOSCRIPT falls back to EVAL_RO itself', async () => {
    const moved = new Error('MOVED 1 127.0.0.1:2');
    const { client } = fakeClient(async () => Promise.reject(moved));
    await expect(scriptsOn(client).runBuffer(valueRead, [b('k')], [1, 1, 1])).rejects.toBe(moved);
    let calls = 0;
    const { client: flushed, sent } = fakeClient(async (name) => {
      calls++;
      if (name === 'evalsha_ro') throw new Error('NOSCRIPT No matching script.');
      return GONE;
    });
    expect(await scriptsOn(flushed).runBuffer(valueRead, [b('k')], [1, 1, 1])).toEqual({ status: 'gone' });
    expect(sent.map((s) => s.name)).toEqual(['evalsha_ro', 'eval_ro']);
    expect(calls).toBe(2);
  });
});
