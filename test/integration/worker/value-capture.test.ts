import fc from 'fast-check';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot } from '../../../core/key-slot.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { expiredValueSize } from '../../../worker/expiry/expired-value.ts';
import type { ExpiredValue } from '../../../worker/handlers/expiry-handler.ts';
import { decodeOutboxValue } from '../../../worker/handlers/outbox-value.ts';
import {
  type LogLine,
  type OutboxEntry,
  randomSuffix,
  readOutbox,
  scoreText,
  testClient,
  WorkerProcess,
  workerEnv,
  writeValue,
} from './helpers.ts';

/**
 * Value capture end to end (issue 14; README "Values"): a real worker process (HANDLER=stream) on the
 * local cluster reads each tracked key's value EXPIRY_READ_AHEAD_MS before its deadline and hands it
 * to the handler with the `expired` event; the outbox entry (docs/worker.md, "Entry format") is what
 * the handler was given: `deadlineMs`, and `valueType` + `value` or `valueMissing`.
 *
 * - A fast-check property writes batches of random values of the five types (binary and empty
 *   elements, non-UTF-8 bytes, sizes at VALUE_MAX_BYTES - 1, + 0 and + 1, keys that are not UTF-8)
 *   with deadlines a few hundred ms ahead, all of a batch at once: each arrives byte-identical with its
 *   deadline, or `too-large` over the bound.
 * - The contract, case by case, on one primary whose MONITOR stream shows when the value-read script
 *   ran (its `TYPE` call, the only one any of the worker's scripts makes): every change is written
 *   after (or before) the read in the primary's own order of commands, never at a guessed time, and
 *   the order is asserted. Writes keeping the TTL before and after the read; a deadline moved later
 *   and one moved earlier after the read; a TTL removed after it; a stream (`unsupported-type`).
 */

/** Small, so that values on both sides of the bound are cheap. */
const VALUE_MAX_BYTES = 256;
/** Long, so that the window between the read and the deadline is wide enough to write in. */
const READ_AHEAD_MS = 300;
/** Keys of one property run (one batch: written together, awaited together). */
const FREE_CASES = 60;
const PROPERTY_RUNS = 2;
/** The property's deadlines: this far after the batch is written, plus up to DEADLINE_SPREAD_MS. */
const DEADLINE_AFTER_MS = 700;
const DEADLINE_SPREAD_MS = 200;
/** A handled event's wait: its deadline, then the touch and the outbox append (well under it). */
const HANDLED_WITHIN_MS = 3000;
/**
 * How much earlier than `deadline - EXPIRY_READ_AHEAD_MS` a read may run: the rank of a key among the
 * keys of its 10 ms slice of deadlines (k / 5 ms, a few keys here) and the error of the worker's
 * estimate of the primary's clock (same machine).
 */
const READ_EARLY_SLACK_MS = 25;

const TYPES = ['string', 'hash', 'list', 'set', 'zset'] as const;
type ValueType = (typeof TYPES)[number];

const hex = (bytes: Buffer) => bytes.toString('hex');
/** A key's identity in this test: its exact bytes, as base64. */
const keyId = (key: Buffer | string) => Buffer.from(key).toString('base64');
/** The same for a `key.processed` line: `keyBase64` when the key is not UTF-8, else `key`. */
const lineKeyId = (line: LogLine) => (line.keyBase64 as string | undefined) ?? keyId(line.key as string);
const byBytes = (a: Buffer, c: Buffer) => Buffer.compare(a, c);

/**
 * A value in the order the contract defines (README "Values", worker/handlers/expiry-handler.ts
 * ExpiredValue): a string's bytes and a list's items as they are; a hash's fields and a set's members
 * in Redis' iteration order, which is not the insertion order, so compared sorted; a sorted set's
 * members by score, ties by member bytes (Redis' order). -0 compares as 0: Redis itself keeps the
 * sign in a skiplist-encoded sorted set but writes 0 in a listpack-encoded one.
 */
function canonical(value: ExpiredValue, order: 'as-is' | 'sorted'): unknown {
  switch (value.type) {
    case 'string':
      return { type: 'string', bytes: hex(value.bytes) };
    case 'list':
      return { type: 'list', items: value.items.map(hex) };
    case 'hash':
      return {
        type: 'hash',
        fields: [...value.fields].sort(([a], [c]) => byBytes(a, c)).map(([f, v]) => [hex(f), hex(v)]),
      };
    case 'set':
      return { type: 'set', members: [...value.members].sort(byBytes).map(hex) };
    case 'zset': {
      const members =
        order === 'sorted'
          ? [...value.members].sort(([ma, sa], [mc, sc]) => (sa === sc ? byBytes(ma, mc) : sa < sc ? -1 : 1))
          : value.members;
      return { type: 'zset', members: members.map(([m, s]) => [hex(m), scoreText(s === 0 ? 0 : s)]) };
    }
  }
}

// Elements: empty ones often, random bytes otherwise (almost always not UTF-8).
const bytesArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a)) },
);
const uniqueBytes = (maxLength: number) =>
  fc.uniqueArray(bytesArb, { minLength: 1, maxLength, selector: hex });
const scoreArb = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e300, -5e-324),
  fc.double({ noNaN: true }),
  fc.integer({ min: -1000, max: 1000 }),
);
/** Values of one type, of sizes from empty to about twice VALUE_MAX_BYTES. */
const valuesOf: { readonly [T in ValueType]: fc.Arbitrary<ExpiredValue> } = {
  string: fc
    .uint8Array({ maxLength: VALUE_MAX_BYTES + 40 })
    .map((a) => ({ type: 'string' as const, bytes: Buffer.from(a) })),
  hash: fc
    .tuple(uniqueBytes(10), fc.array(bytesArb, { minLength: 10, maxLength: 10 }))
    .map(([fields, values]) => ({
      type: 'hash' as const,
      fields: fields.map((f, i) => [f, values[i] as Buffer] as const),
    })),
  list: fc
    .array(bytesArb, { minLength: 1, maxLength: 12 })
    .map((items) => ({ type: 'list' as const, items })),
  set: uniqueBytes(12).map((members) => ({ type: 'set' as const, members })),
  zset: fc
    .tuple(uniqueBytes(12), fc.array(scoreArb, { minLength: 12, maxLength: 12 }))
    .map(([members, scores]) => ({
      type: 'zset' as const,
      members: members.map((m, i) => [m, scores[i] as number] as const),
    })),
};

/** A `length`-byte element not in `taken` (hex), or undefined when there is none to pick. */
function uniquePad(length: number, taken: ReadonlySet<string>): Buffer | undefined {
  for (let fill = 0xff; fill >= 0; fill--) {
    const pad = Buffer.alloc(length, fill);
    if (!taken.has(hex(pad))) return pad;
    if (length === 0) return undefined;
  }
  return undefined;
}

/**
 * Elements of `elements` (from the start) and one padding element, so that the sizes add up to
 * exactly `target`: drops elements from the end until a pad fits (`pad(room, kept)`, undefined when
 * none of that room can be added).
 */
function fitElements<E>(
  elements: readonly E[],
  sizeOf: (element: E) => number,
  target: number,
  pad: (room: number, kept: readonly E[]) => E | undefined,
): E[] {
  const kept = [...elements];
  for (;;) {
    const size = kept.reduce((sum, element) => sum + sizeOf(element), 0);
    if (size === target && kept.length > 0) return kept;
    if (size < target) {
      const extra = pad(target - size, kept);
      if (extra !== undefined) return [...kept, extra];
    }
    if (kept.length === 0) throw new Error(`no value of ${target} bytes from these elements`);
    kept.pop();
  }
}

/** `value` changed to exactly `target` payload bytes (as expiredValueSize counts them). */
function fitTo(value: ExpiredValue, target: number): ExpiredValue {
  const takenOf = (buffers: readonly Buffer[]) => new Set(buffers.map(hex));
  switch (value.type) {
    case 'string':
      return {
        type: 'string',
        bytes: Buffer.concat([value.bytes, Buffer.alloc(target, 0xff)]).subarray(0, target),
      };
    case 'list':
      return {
        type: 'list',
        items: fitElements(
          value.items,
          (item) => item.length,
          target,
          (room) => Buffer.alloc(room, 0xfe),
        ),
      };
    case 'set':
      return {
        type: 'set',
        members: fitElements(
          value.members,
          (m) => m.length,
          target,
          (room, kept) => uniquePad(room, takenOf(kept)),
        ),
      };
    case 'hash':
      return {
        type: 'hash',
        fields: fitElements(
          value.fields,
          ([f, v]) => f.length + v.length,
          target,
          (room, kept) => {
            const field = uniquePad(Math.min(room, 2), takenOf(kept.map(([f]) => f)));
            return field && ([field, Buffer.alloc(room - field.length, 0xfd)] as const);
          },
        ),
      };
    case 'zset':
      return {
        type: 'zset',
        members: fitElements(
          value.members,
          ([m]) => m.length + 8,
          target,
          (room, kept) => {
            if (room < 8) return undefined;
            const member = uniquePad(room - 8, takenOf(kept.map(([m]) => m)));
            return member && ([member, 0.5] as const);
          },
        ),
      };
  }
}

/** A key's last bytes: none, or bytes that are not UTF-8 (the index keeps keys as latin1 text). */
const keyTailArb = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => Buffer.from([0xff, ...a])),
);

/** One property run: the boundary cases of every type, then free ones of any type and size. */
const batchArb = fc
  .tuple(
    fc.tuple(
      ...TYPES.flatMap((type) =>
        [VALUE_MAX_BYTES - 1, VALUE_MAX_BYTES, VALUE_MAX_BYTES + 1].map((target) =>
          valuesOf[type].map((value) => fitTo(value, target)),
        ),
      ),
    ),
    fc.array(fc.oneof(...TYPES.map((type) => valuesOf[type])), {
      minLength: FREE_CASES,
      maxLength: FREE_CASES,
    }),
    fc.array(fc.integer({ min: 0, max: DEADLINE_SPREAD_MS }), {
      minLength: 15 + FREE_CASES,
      maxLength: 15 + FREE_CASES,
    }),
    fc.array(keyTailArb, { minLength: 15 + FREE_CASES, maxLength: 15 + FREE_CASES }),
  )
  .map(([boundary, free, spreads, tails]) => ({ values: [...boundary, ...free], spreads, tails }));

/** What the handler was given for one key, from its outbox entry. */
function handed(entry: OutboxEntry): {
  deadlineMs: number | undefined;
  value?: unknown;
  valueMissing?: string;
} {
  const deadline = entry.fields.get('deadlineMs');
  const deadlineMs = deadline === undefined ? undefined : Number(deadline.toString('latin1'));
  const valueType = entry.fields.get('valueType');
  const value = entry.fields.get('value');
  const missing = entry.fields.get('valueMissing');
  if (valueType !== undefined && value !== undefined && missing === undefined)
    return { deadlineMs, value: canonical(decodeOutboxValue(valueType.toString('latin1'), value), 'as-is') };
  if (valueType === undefined && value === undefined && missing !== undefined)
    return { deadlineMs, valueMissing: missing.toString('latin1') };
  return {
    deadlineMs,
    valueMissing: `<entry with valueType ${valueType} value ${value?.length} valueMissing ${missing}>`,
  };
}

/**
 * The commands one primary ran (MONITOR), in its own order, each with the primary's clock: a
 * script's own commands have the source `lua`. Keys and arguments are the test's ASCII ones.
 */
class CommandLog {
  readonly commands: { readonly atMs: number; readonly source: string; readonly args: readonly string[] }[] =
    [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly monitor: Redis) {
    monitor.on('monitor', (time: string, args: string[], source: string) => {
      this.commands.push({ atMs: Number(time) * 1000, source, args });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async start(node: Redis): Promise<CommandLog> {
    return new CommandLog(await node.monitor());
  }

  /** Index in `commands` of each run of the value-read script on `key` (its TYPE call). */
  reads(key: string): number[] {
    return this.indexesOf(
      (c) => c.source === 'lua' && c.args[0]?.toLowerCase() === 'type' && c.args[1] === key,
    );
  }

  /** Indexes in `commands` of the commands the test's client sent named `name` with the first key `key`. */
  sent(name: string, key: string): number[] {
    return this.indexesOf(
      (c) => c.source !== 'lua' && c.args[0]?.toLowerCase() === name && c.args[1] === key,
    );
  }

  /** The index of the last such command (the change, for a key written before). */
  lastSent(name: string, key: string): number {
    const index = this.sent(name, key).at(-1);
    if (index === undefined) throw new Error(`${name} ${key} not seen by MONITOR`);
    return index;
  }

  atMs(index: number): number {
    return (this.commands[index] as { atMs: number }).atMs;
  }

  /** Resolves with the index of the `n`-th read of `key` (1-based), once the primary has run it. */
  async waitForRead(key: string, n: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.reads(key)[n - 1];
      if (index !== undefined) return index;
      if (Date.now() >= deadline) throw new Error(`read ${n} of ${key} not seen within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  stop(): void {
    this.monitor.disconnect();
  }

  private indexesOf(match: (command: (typeof this.commands)[number]) => boolean): number[] {
    const found: number[] = [];
    for (let i = 0; i < this.commands.length; i++)
      if (match(this.commands[i] as (typeof this.commands)[number])) found.push(i);
    return found;
  }
}

describe('value capture through a worker process (HANDLER=stream)', () => {
  const leaderName = `itvc-${randomSuffix()}`;
  const prefix = `vc-${randomSuffix()}`;
  let cluster: LocalRedisCluster;
  let client: Cluster;
  let worker: WorkerProcess;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      primaries: 3,
      replicasPerPrimary: 0,
      nodeTimeoutMs: 1000,
      notifyKeyspaceEvents: 'Egx',
    });
    client = testClient(cluster);
    worker = WorkerProcess.start(
      'vc1',
      workerEnv(cluster, {
        LEADER_NAME: leaderName,
        HANDLER: 'stream',
        KEY_PATTERN: `${prefix}:*`,
        VALUE_MAX_BYTES: String(VALUE_MAX_BYTES),
        EXPIRY_READ_AHEAD_MS: String(READ_AHEAD_MS),
      }),
    );
    await worker.waitForEvent('leader.acquired', 20_000);
    // Until the replay coordinator is live, events wait in its window: start from a settled leader.
    await worker.waitForEvent('replay.completed', 10_000);
  });

  afterAll(async () => {
    client?.disconnect();
    await worker?.kill();
    await cluster?.stop();
  });

  /** Waits until every key of `keys` has its `key.processed` line (the handler call completed). */
  async function handledAll(keys: readonly (Buffer | string)[], timeoutMs: number): Promise<void> {
    const wanted = new Set(keys.map(keyId));
    await worker.waitFor(
      (w) => {
        const done = new Set(w.events('key.processed').map(lineKeyId));
        return [...wanted].every((k) => done.has(k)) ? w.lines[w.lines.length - 1] : undefined;
      },
      timeoutMs,
      `${wanted.size} keys handled`,
    );
  }

  /** The outbox entries of `keys`, by keyId (an entry's `key` field is the key's exact bytes). */
  async function entriesOf(keys: readonly (Buffer | string)[]): Promise<Map<string, OutboxEntry[]>> {
    const byKey = new Map<string, OutboxEntry[]>(keys.map((k) => [keyId(k), []]));
    for (const entry of await readOutbox(client, leaderName)) {
      const key = entry.fields.get('key');
      if (key !== undefined) byKey.get(keyId(key))?.push(entry);
    }
    return byKey;
  }

  it('property: random values of the five types arrive byte-identical with their deadline, or too-large over VALUE_MAX_BYTES', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(batchArb, async ({ values, spreads, tails }) => {
        run++;
        const keys = values.map((_, i) =>
          Buffer.concat([Buffer.from(`${prefix}:p${run}:${i}:`), tails[i] as Buffer]),
        );
        const baseMs = Date.now() + DEADLINE_AFTER_MS;
        const deadlines = spreads.map((spread) => baseMs + spread);
        await Promise.all(
          values.map((value, i) => writeValue(client, keys[i] as Buffer, value, deadlines[i] as number)),
        );
        // Written before every deadline (a key tracked after its read-ahead time but before its
        // deadline is read at once, so that case is held to the same expectation).
        expect(Date.now()).toBeLessThan(baseMs);
        await handledAll(keys, DEADLINE_AFTER_MS + DEADLINE_SPREAD_MS + HANDLED_WITHIN_MS);

        const entries = await entriesOf(keys);
        const lines = new Map(worker.events('key.processed').map((line) => [lineKeyId(line), line] as const));
        const got = keys.map((key) => {
          const found = entries.get(keyId(key)) ?? [];
          return found.length === 1 ? handed(found[0] as OutboxEntry) : { entries: found.length };
        });
        // The contract (README "Values", "Bounds"): a value of at most VALUE_MAX_BYTES payload bytes is
        // handed over as it was written (in the contract's order), one over it is `too-large`; both
        // with the key's deadline.
        const want = values.map((value, i) => {
          const deadlineMs = deadlines[i];
          return expiredValueSize(value).bytes > VALUE_MAX_BYTES
            ? { deadlineMs, valueMissing: 'too-large' }
            : { deadlineMs, value: canonical(value, 'sorted') };
        });
        expect(got).toEqual(want);
        // key.processed carries the value's type and size, or the reason, never the value (README "Values").
        for (const [i, value] of values.entries()) {
          const line = lines.get(keyId(keys[i] as Buffer));
          const { bytes } = expiredValueSize(value);
          if (bytes > VALUE_MAX_BYTES) expect(line).toMatchObject({ valueMissing: 'too-large' });
          else expect(line).toMatchObject({ valueType: value.type, valueBytes: bytes });
          expect(Object.keys(line ?? {})).not.toContain('value');
        }
      }),
      { numRuns: PROPERTY_RUNS, endOnFailure: true },
    );
    expect(run).toBe(PROPERTY_RUNS);
  });

  it('the contract: a change before the read is seen, one after it is not; a TTL moved after it is read again; a TTL removed after it gives no event', async () => {
    const tag = `{${prefix}:contract}`;
    const key = (name: string) => `${prefix}:${tag}:${name}`;
    const slot = keySlot(tag);
    const primary = (await cluster.primaries()).find((p) => p.slots.some(([a, b]) => slot >= a && slot <= b));
    if (primary === undefined) throw new Error(`no primary serves slot ${slot}`);
    const node = cluster.nodeClient(primary.port);
    const log = await CommandLog.start(node);
    try {
      const K = {
        outString: key('out-string'),
        outHash: key('out-hash'),
        inString: key('in-string'),
        inHash: key('in-hash'),
        inList: key('in-list'),
        moved: key('moved'),
        movedEarlier: key('moved-earlier'),
        persisted: key('persisted'),
        stream: key('stream'),
      };
      const deadlineMs = Date.now() + 1000;
      /** The moved key's new deadline: its read-ahead comes after the first deadline. */
      const movedDeadlineMs = deadlineMs + 800;
      /** The other moved key's new deadline: earlier, inside the first read-ahead window. */
      const earlierDeadlineMs = deadlineMs - 120;
      await client.set(K.outString, 'old', 'PXAT', deadlineMs);
      await client.hset(K.outHash, 'f', 'old');
      await client.pexpireat(K.outHash, deadlineMs);
      await client.set(K.inString, 'old', 'PXAT', deadlineMs);
      await client.hset(K.inHash, 'f', 'old');
      await client.pexpireat(K.inHash, deadlineMs);
      await client.rpush(K.inList, 'a');
      await client.pexpireat(K.inList, deadlineMs);
      await client.set(K.moved, 'v1', 'PXAT', deadlineMs);
      await client.set(K.movedEarlier, 'v1', 'PXAT', deadlineMs);
      await client.set(K.persisted, 'v', 'PXAT', deadlineMs);
      await client.xadd(K.stream, '*', 'f', 'v');
      await client.pexpireat(K.stream, deadlineMs);

      // Outside the window, long before the read-ahead: writes that keep the TTL (SET ... KEEPTTL, HSET).
      expect(await client.set(K.outString, 'new', 'KEEPTTL', 'XX')).toBe('OK');
      expect(await client.hset(K.outHash, 'f', 'new', 'g', 'added')).toBe(1);

      // Inside the window: each change once the primary has run the key's read, and before the
      // deadline (each reply proves the key was still there: XX, an updated field, a longer list...).
      const READ_WITHIN_MS = deadlineMs - Date.now() + 500;
      const afterRead = async (k: string, change: () => Promise<unknown>, reply: unknown) => {
        await log.waitForRead(k, 1, READ_WITHIN_MS);
        expect(await change()).toEqual(reply);
      };
      await Promise.all([
        afterRead(K.inString, () => client.set(K.inString, 'new', 'KEEPTTL', 'XX'), 'OK'),
        afterRead(K.inHash, () => client.hset(K.inHash, 'f', 'new'), 0),
        afterRead(K.inList, () => client.rpush(K.inList, 'b'), 2),
        afterRead(K.persisted, () => client.persist(K.persisted), 1),
        (async () => {
          await afterRead(K.moved, () => client.pexpireat(K.moved, movedDeadlineMs), 1);
          // Between the cancelled read and the one for the new deadline: this is what must arrive.
          expect(await client.set(K.moved, 'v2', 'KEEPTTL', 'XX')).toBe('OK');
          await log.waitForRead(K.moved, 2, movedDeadlineMs - Date.now() + 500);
          // After the second read, inside the new window: not reflected.
          expect(await client.set(K.moved, 'v3', 'KEEPTTL', 'XX')).toBe('OK');
        })(),
        (async () => {
          // A change, then the TTL moved earlier: the key is read again at once (its new read-ahead
          // time has passed, its new deadline has not), after the change.
          await afterRead(K.movedEarlier, () => client.set(K.movedEarlier, 'v2', 'KEEPTTL', 'XX'), 'OK');
          expect(await client.pexpireat(K.movedEarlier, earlierDeadlineMs)).toBe(1);
          await log.waitForRead(K.movedEarlier, 2, earlierDeadlineMs - Date.now() + 500);
        })(),
      ]);

      const handledKeys = [
        K.outString,
        K.outHash,
        K.inString,
        K.inHash,
        K.inList,
        K.moved,
        K.movedEarlier,
        K.stream,
      ];
      await handledAll(handledKeys, movedDeadlineMs - Date.now() + HANDLED_WITHIN_MS);
      const entries = await entriesOf([...handledKeys, K.persisted]);
      const only = (k: string) => {
        const found = entries.get(keyId(k)) ?? [];
        expect(found, k).toHaveLength(1);
        return handed(found[0] as OutboxEntry);
      };
      const str = (text: string) => ({ type: 'string', bytes: hex(Buffer.from(text)) });

      // The order of the primary's own commands: each change before (outside) or after (inside) the
      // key's read, and every change and read before the deadline it concerned.
      expect(log.lastSent('set', K.outString)).toBeLessThan(log.reads(K.outString)[0] ?? -1);
      expect(log.lastSent('hset', K.outHash)).toBeLessThan(log.reads(K.outHash)[0] ?? -1);
      const inChanges: [string, string][] = [
        [K.inString, 'set'],
        [K.inHash, 'hset'],
        [K.inList, 'rpush'],
        [K.persisted, 'persist'],
        [K.moved, 'pexpireat'],
      ];
      for (const [k, command] of inChanges) {
        const change = log.lastSent(command, k);
        expect(change, k).toBeGreaterThan(log.reads(k)[0] ?? Number.POSITIVE_INFINITY);
        expect(log.atMs(change), k).toBeLessThan(deadlineMs);
      }
      // The moved key: v2 between its two reads, v3 after the second, before the new deadline.
      const [movedRead1, movedRead2] = log.reads(K.moved) as [number, number];
      const [, v2, v3] = log.sent('set', K.moved) as [number, number, number];
      expect([movedRead1 < v2, v2 < movedRead2, movedRead2 < v3]).toEqual([true, true, true]);
      expect(log.atMs(v3)).toBeLessThan(movedDeadlineMs);
      // The key moved earlier: read, changed, moved, read again before its new deadline.
      const [earlierRead1, earlierRead2] = log.reads(K.movedEarlier) as [number, number];
      const earlierChange = log.lastSent('set', K.movedEarlier);
      const earlierMove = log.lastSent('pexpireat', K.movedEarlier);
      expect([earlierRead1 < earlierChange, earlierChange < earlierMove, earlierMove < earlierRead2]).toEqual(
        [true, true, true],
      );
      expect(log.atMs(earlierRead2)).toBeLessThan(earlierDeadlineMs);
      expect(log.reads(K.movedEarlier)).toHaveLength(2);
      // Every read ran within the read-ahead before its deadline (README "Values": the value is as it
      // was at most the read-ahead before it expired), the moved key's second read for its new one.
      for (const k of [
        K.outString,
        K.outHash,
        K.inString,
        K.inHash,
        K.inList,
        K.persisted,
        K.moved,
        K.movedEarlier,
        K.stream,
      ]) {
        const atMs = log.atMs(log.reads(k)[0] as number);
        expect(atMs, k).toBeGreaterThanOrEqual(deadlineMs - READ_AHEAD_MS - READ_EARLY_SLACK_MS);
        expect(atMs, k).toBeLessThan(deadlineMs);
      }
      const secondRead = log.atMs(log.reads(K.moved)[1] as number);
      expect(secondRead).toBeGreaterThanOrEqual(movedDeadlineMs - READ_AHEAD_MS - READ_EARLY_SLACK_MS);
      expect(secondRead).toBeLessThan(movedDeadlineMs);
      expect(log.reads(K.moved)).toHaveLength(2);

      // A write outside the window (before the read) is reflected: the handler sees the new value.
      expect(only(K.outString)).toEqual({ deadlineMs, value: str('new') });
      expect(only(K.outHash)).toEqual({
        deadlineMs,
        value: {
          type: 'hash',
          fields: [
            [hex(Buffer.from('f')), hex(Buffer.from('new'))],
            [hex(Buffer.from('g')), hex(Buffer.from('added'))],
          ],
        },
      });
      // "A write in that last window that left the TTL alone (SET ... KEEPTTL, HSET, RPUSH...) is not
      // reflected: the handler gets the value read before it."
      expect(only(K.inString)).toEqual({ deadlineMs, value: str('old') });
      expect(only(K.inHash)).toEqual({
        deadlineMs,
        value: { type: 'hash', fields: [[hex(Buffer.from('f')), hex(Buffer.from('old'))]] },
      });
      expect(only(K.inList)).toEqual({ deadlineMs, value: { type: 'list', items: [hex(Buffer.from('a'))] } });
      // "A TTL change in it cancels the read: the key's expire event reschedules it, and it is read
      // again for its new deadline": one event, with the new deadline and the value of the second
      // read (v2, written between the reads), not the first read's (v1) nor the later write's (v3).
      expect(only(K.moved)).toEqual({ deadlineMs: movedDeadlineMs, value: str('v2') });
      // The same for a deadline moved earlier: the value of the read for the new deadline.
      expect(only(K.movedEarlier)).toEqual({ deadlineMs: earlierDeadlineMs, value: str('v2') });
      // "A TTL removed in it (PERSIST, ...) means no expiry at all": no event, although the worker
      // looked at the key after its deadline (its touch, PEXPIRETIME) and keys due later were handled.
      expect(entries.get(keyId(K.persisted))).toEqual([]);
      expect(worker.events('key.processed').filter((l) => l.key === K.persisted)).toEqual([]);
      const touched = log.commands.filter(
        (c) => c.args[0]?.toLowerCase() === 'pexpiretime' && c.args[1] === K.persisted && c.atMs > deadlineMs,
      );
      expect(touched.length).toBeGreaterThan(0);
      expect(await client.get(K.persisted)).toBe('v');
      expect(await client.pttl(K.persisted)).toBe(-1);
      // A stream is not read (README "Values": `unsupported-type`), and still has its deadline.
      expect(only(K.stream)).toEqual({ deadlineMs, valueMissing: 'unsupported-type' });
    } finally {
      log.stop();
      node.disconnect();
    }
  });
});
