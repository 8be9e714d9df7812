import fc from 'fast-check';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { randomSuffix, sleep, testClient, WorkerProcess, workerEnv } from '../worker/helpers.ts';
import { ExpiryRecorder, field, type OutboxEntry, OutboxReader, pollUntil } from './hostile-helpers.ts';

/**
 * Hostile keys through the whole pipeline (issue 8): a real 3-primary cluster, one worker with
 * HANDLER=stream, keys made of arbitrary bytes (spaces, newlines, NUL, invalid UTF-8, every byte
 * 0x00-0xff, JSON look-alikes, up to 64 KiB), each SET once with a short PX. Every key must come out
 * exactly once in the outbox with identical bytes, exactly once in a `key.processed` line whose
 * representation (`keyBase64` when present, else the UTF-8 of `key`) gives back the same bytes, and no
 * two keys may share a log representation. Keys starting with `{kl:` are the project's own and must
 * never reach the outbox or the handler.
 *
 * Every key carries the run's tag (`~hk<suffix>.<run>~`): at the start, or after a hostile head so
 * the first bytes of a key are arbitrary too. Events are matched to outbox entries through the
 * entry's `id` and the line's `eventId`, so a log line is compared with the exact bytes the worker
 * received, not with what the test hoped to find.
 */

const MAX_KEY_BYTES = 64 * 1024;
const OWN_PREFIX = Buffer.from('{kl:');
/** Per run: all keys of the batch must be in the outbox and the log within this bound. */
const ARRIVAL_TIMEOUT_MS = 15_000;
/** After all arrived: time for a duplicate to show up before the run is judged. */
const DUPLICATE_GRACE_MS = 200;

const utf8 = (text: string) => Buffer.from(text, 'utf8');
const bytes = (...values: number[]) => Buffer.from(values);
const hex = (key: Uint8Array) => Buffer.from(key).toString('hex');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text a key must have in logs: exact when the bytes are UTF-8, else lossy plus base64. */
function expectedRepresentation(key: Buffer): { key: string; keyBase64?: string } {
  try {
    return { key: strictUtf8.decode(key) };
  } catch {
    return { key: key.toString('utf8'), keyBase64: key.toString('base64') };
  }
}

/** The bytes a `key.processed` line claims: `keyBase64` when present, else the UTF-8 of `key`. */
function bytesFromLog(line: Readonly<Record<string, unknown>>): Buffer {
  if (typeof line.keyBase64 === 'string') return Buffer.from(line.keyBase64, 'base64');
  return utf8(String(line.key));
}

/** Byte sequences that break naive handling. */
const TOKENS: readonly Buffer[] = [
  utf8(' '),
  utf8('\n'),
  utf8('\r\n'),
  utf8('\t'),
  bytes(0x00),
  utf8('"'),
  utf8('\\'),
  utf8('{'),
  utf8('}'),
  utf8('{}'),
  utf8('*?[a-z]\\'),
  utf8('{"key":"x","keyBase64":"eA=="}'),
  utf8('","keyBase64":"'),
  utf8('{kl'),
  utf8('{KL:'),
  utf8('{kl:'), // inside a key, not at its start: an ordinary user key
  bytes(0xef, 0xbb, 0xbf), // UTF-8 byte order mark
  bytes(0xef, 0xbf, 0xbd), // U+FFFD, the replacement character itself
  bytes(0xff),
  bytes(0xfe, 0xff),
  bytes(0x80),
  bytes(0xc0, 0x80), // overlong NUL
  bytes(0xed, 0xa0, 0x80), // encoded surrogate
  bytes(0xf4, 0x90, 0x80, 0x80), // beyond U+10FFFF
  bytes(0xe2, 0x82), // truncated sequence
  utf8('\u2028\u2029'),
  utf8('\u0085'),
  utf8('😀'),
  utf8('é'),
  utf8('e\u0301'),
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
];

const segment = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)), weight: 3 },
  { arbitrary: fc.constantFrom(...TOKENS), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map(utf8), weight: 2 },
  { arbitrary: fc.json({ maxDepth: 2 }).map(utf8), weight: 1 },
);
const part = fc.array(segment, { maxLength: 5 }).map((segments) => Buffer.concat(segments));

interface KeySpec {
  /** Bytes before the run tag (empty when the tag comes first). */
  readonly head: Buffer;
  readonly tail: Buffer;
  /** When set, the tail is repeated (and cut) so the key is exactly this long. */
  readonly size?: number;
}

interface KeyCase {
  readonly spec: KeySpec;
  readonly ttlMs: number;
}

interface Batch {
  readonly keys: readonly KeyCase[];
  /** Tails of `{kl:`-prefixed keys written in the same batch. */
  readonly own: readonly { tail: Buffer; ttlMs: number }[];
}

const ttl = fc.integer({ min: 20, max: 200 });
const keySpec: fc.Arbitrary<KeySpec> = fc.oneof(
  {
    arbitrary: fc.record({ head: part, tail: part }),
    weight: 30,
  },
  {
    arbitrary: fc.record({
      head: part,
      tail: fc.oneof(
        fc.constantFrom(...TOKENS),
        fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => Buffer.from(b)),
      ),
      size: fc.integer({ min: 1024, max: MAX_KEY_BYTES }),
    }),
    // Weight 1 (of 31) left a run without a single random key of 1 KiB or more about once in 250
    // (sampled over 2,000 seeds: fast-check keeps early arrays short), failing the coverage check
    // below by luck. With 3 the fewest seen in 2,000 seeds was 3 such keys, the median 16.
    weight: 3,
  },
);
const batch: fc.Arbitrary<Batch> = fc.record({
  keys: fc.array(fc.record({ spec: keySpec, ttlMs: ttl }), { minLength: 1, maxLength: 24 }),
  own: fc.array(fc.record({ tail: part, ttlMs: ttl }), { maxLength: 3 }),
});

function repeatTo(unit: Buffer, length: number): Buffer {
  if (length <= 0) return Buffer.alloc(0);
  const source = unit.length > 0 ? unit : bytes(0x78);
  const out = Buffer.alloc(length);
  for (let offset = 0; offset < length; offset += source.length) source.copy(out, offset);
  return out;
}

/** The key of `spec` for one run: head + tag + tail, at most 64 KiB, never starting with `{kl:`. */
function buildKey(spec: KeySpec, tag: Buffer): Buffer {
  // A head that happens to start like an own key would make this an own key: put the tag first.
  const head = spec.head.subarray(0, 4).equals(OWN_PREFIX)
    ? Buffer.concat([tag, spec.head])
    : Buffer.concat([spec.head, tag]);
  const room = MAX_KEY_BYTES - head.length;
  const tail =
    spec.size !== undefined
      ? repeatTo(spec.tail, Math.min(spec.size - head.length, room))
      : spec.tail.subarray(0, Math.max(0, room));
  return Buffer.concat([head, tail]).subarray(0, MAX_KEY_BYTES);
}

const sized = (head: Buffer, tail: Buffer, size = MAX_KEY_BYTES): KeyCase => ({
  spec: { head, tail, size },
  ttlMs: 50,
});
const plain = (head: Buffer, tail: Buffer, ttlMs = 50): KeyCase => ({ spec: { head, tail }, ttlMs });

/** Hand-picked batches, run before the random ones: the 64 KiB extremes and the known look-alikes. */
const EXAMPLES: Batch[] = [
  {
    keys: [
      sized(Buffer.alloc(0), bytes(0x00)),
      sized(bytes(0xff, 0xfe), bytes(0xff)),
      sized(utf8('{"key":"'), utf8('\\"},{"a":[1,2,"\\u0000"]')),
      sized(utf8('€'), utf8('😀é')),
      sized(bytes(0xef, 0xbb, 0xbf), Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
    ],
    own: [{ tail: repeatTo(bytes(0xff, 0x00), MAX_KEY_BYTES - 64), ttlMs: 40 }],
  },
  {
    keys: [
      // Twins that differ only by a leading byte order mark.
      plain(bytes(0xef, 0xbb, 0xbf), utf8('bom')),
      plain(Buffer.alloc(0), utf8('bom')),
      // An invalid byte and the replacement character it decodes to.
      plain(bytes(0xff), utf8('fffd')),
      plain(bytes(0xef, 0xbf, 0xbd), utf8('fffd')),
      // Keys that look like the log line's own JSON, or like another key's representation.
      plain(utf8('{"key":"'), utf8('","keyBase64":"/w=="}')),
      plain(utf8(' \n\r\n\t'), bytes(0x00, 0x0a, 0x00)),
      plain(utf8('{kl'), utf8('near-miss')),
      plain(utf8(' {kl:'), utf8('near-miss')),
      plain(utf8('{KL:'), utf8('near-miss')),
      plain(bytes(0x00), utf8('{kl:')),
    ],
    own: [
      { tail: Buffer.alloc(0), ttlMs: 30 },
      { tail: utf8('}:lease'), ttlMs: 30 },
      { tail: bytes(0xff, 0x0a, 0x00), ttlMs: 30 },
    ],
  },
];

describe('hostile keys through the whole pipeline', () => {
  let cluster: LocalRedisCluster | undefined;
  let client: Cluster | undefined;
  let recorder: ExpiryRecorder | undefined;
  let worker: WorkerProcess | undefined;
  const suffix = randomSuffix();
  const leaderName = `bk-${suffix}`;
  /** Every `expired` event Redis published, by key (hex): the ground truth. */
  const published = new Map<string, number>();
  let fencingToken = 0;
  let primaryAddresses = new Set<string>();
  let outbox: OutboxReader;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      primaries: 3,
      replicasPerPrimary: 0,
      nodeTimeoutMs: 1000,
      notifyKeyspaceEvents: 'Ex',
    });
    primaryAddresses = new Set((await cluster.primaries()).map((p) => `${p.host}:${p.port}`));
    client = testClient(cluster);
    outbox = new OutboxReader(client, leaderName);
    recorder = await ExpiryRecorder.start(cluster, ({ key }) => {
      const k = hex(key);
      published.set(k, (published.get(k) ?? 0) + 1);
    });
    worker = WorkerProcess.start(
      'bk1',
      workerEnv(cluster, { LEADER_NAME: leaderName, HANDLER: 'stream', LOG_LEVEL: 'info', KEY_PATTERN: '*' }),
    );
    const acquired = await worker.waitForEvent('leader.acquired', 30_000);
    fencingToken = acquired.fencingToken as number;
    // Until the replay coordinator is live, events wait in the window; start from a settled leader.
    await worker.waitForEvent('replay.completed', 10_000);
  });

  afterAll(async () => {
    recorder?.stop();
    client?.disconnect();
    await worker?.kill();
    await cluster?.stop();
  });

  /**
   * What one test has written: keys that must reach the outbox (hex -> bytes), own keys that must not,
   * and where the outbox and the worker's log stood when the test began (each test is judged on its
   * own records, so one failure does not cascade).
   */
  interface Scope {
    readonly expected: Map<string, Buffer>;
    readonly ownKeys: Map<string, Buffer>;
    readonly outboxFrom: number;
    readonly logFrom: number;
  }
  const newScope = (): Scope => ({
    expected: new Map(),
    ownKeys: new Map(),
    outboxFrom: outbox.entries.length,
    logFrom: (worker as WorkerProcess).lines.length,
  });
  let run = 0;
  /** Hex of each outbox entry's key, computed once (keys are up to 64 KiB and polled every 50 ms). */
  const entryKeyHex = new WeakMap<OutboxEntry, string>();
  const keyHexOf = (entry: OutboxEntry): string => {
    let value = entryKeyHex.get(entry);
    if (value === undefined) {
      value = hex(field(entry, 'key'));
      entryKeyHex.set(entry, value);
    }
    return value;
  };
  const processedLines = (scope: Scope) =>
    (worker as WorkerProcess).lines.slice(scope.logFrom).filter((l) => l.event === 'key.processed');

  async function writeAll(cases: readonly { key: Buffer; ttlMs: number }[]): Promise<void> {
    const c = client as Cluster;
    await Promise.all(cases.map(({ key, ttlMs }) => c.set(key, '1', 'PX', ttlMs)));
  }

  /**
   * The test's record so far, checked as one: the outbox (every entry a written key, once, with
   * consistent fields), the `key.processed` lines (each matched to its outbox entry by event id, its
   * representation decoding to the entry's exact bytes, never shared by two keys), no failures, and
   * no own key anywhere.
   */
  function checkRecord(scope: Scope): void {
    const w = worker as WorkerProcess;
    const failed = w.lines.slice(scope.logFrom).filter((l) => l.event === 'handler.failed');
    expect(failed.map((l) => l.key)).toEqual([]);
    expect(w.hasExited).toBe(false);

    const entryById = new Map<string, OutboxEntry>();
    const outboxCount = new Map<string, number>();
    for (const entry of outbox.entries.slice(scope.outboxFrom)) {
      const key = field(entry, 'key');
      const keyHex = keyHexOf(entry);
      expect(key.subarray(0, 4).equals(OWN_PREFIX), `own key in the outbox: ${keyHex.slice(0, 80)}`).toBe(
        false,
      );
      expect(
        scope.expected.has(keyHex),
        `outbox holds a key the test never wrote: ${keyHex.slice(0, 80)}`,
      ).toBe(true);
      outboxCount.set(keyHex, (outboxCount.get(keyHex) ?? 0) + 1);
      const id = field(entry, 'id').toString('latin1');
      expect(entryById.has(id), `outbox id ${id} twice`).toBe(false);
      entryById.set(id, entry);
      expect(field(entry, 'replayed').toString()).toBe('0');
      expect(field(entry, 'fencingToken').toString()).toBe(String(fencingToken));
      expect(primaryAddresses.has(field(entry, 'node').toString())).toBe(true);
    }
    const duplicatedInOutbox = [...outboxCount].filter(([, n]) => n !== 1).map(([k]) => k.slice(0, 80));
    expect(duplicatedInOutbox, 'keys in the outbox more than once').toEqual([]);

    const loggedCount = new Map<string, number>();
    const keysByRepresentation = new Map<string, Set<string>>();
    const misreported: string[] = [];
    for (const line of processedLines(scope)) {
      const entry = entryById.get(String(line.eventId));
      expect(entry, `key.processed ${String(line.eventId)} has no outbox entry`).toBeDefined();
      const trueBytes = field(entry as OutboxEntry, 'key');
      const trueHex = keyHexOf(entry as OutboxEntry);
      const claimed = bytesFromLog(line);
      const wanted = expectedRepresentation(trueBytes);
      if (!claimed.equals(trueBytes) || line.key !== wanted.key || line.keyBase64 !== wanted.keyBase64) {
        misreported.push(
          `bytes ${trueHex.slice(0, 80)} logged as ${JSON.stringify({ key: line.key, keyBase64: line.keyBase64 }).slice(0, 120)}`,
        );
      }
      loggedCount.set(trueHex, (loggedCount.get(trueHex) ?? 0) + 1);
      const representation = JSON.stringify([line.key, line.keyBase64 ?? null]);
      const owners = keysByRepresentation.get(representation) ?? new Set<string>();
      owners.add(trueHex);
      keysByRepresentation.set(representation, owners);
      expect(line.replayed).toBe(false);
      expect(line.fencingToken).toBe(fencingToken);
    }
    const ambiguous = [...keysByRepresentation]
      .filter(([, owners]) => owners.size > 1)
      .map(
        ([representation, owners]) =>
          `${representation.slice(0, 80)} <- ${[...owners].map((o) => o.slice(0, 40))}`,
      );
    const duplicatedInLog = [...loggedCount].filter(([, n]) => n !== 1).map(([k]) => k.slice(0, 80));
    // One assertion, so a failure shows every kind of problem at once.
    expect({ misreported, ambiguous, duplicatedInLog }, 'key.processed lines vs the exact bytes').toEqual({
      misreported: [],
      ambiguous: [],
      duplicatedInLog: [],
    });

    // Every key written so far: published once by Redis, once in the outbox, once in the log.
    const wrong: string[] = [];
    for (const k of scope.expected.keys()) {
      const counts = [published.get(k) ?? 0, outboxCount.get(k) ?? 0, loggedCount.get(k) ?? 0];
      if (counts.some((n) => n !== 1)) wrong.push(`${k.slice(0, 80)} published/outbox/logged ${counts}`);
    }
    expect(wrong).toEqual([]);
    // Own keys expired (Redis published them, so the worker received them), yet reached nothing.
    for (const k of scope.ownKeys.keys())
      expect(published.get(k), `own key ${k.slice(0, 40)} not published once`).toBe(1);
    expect(recorder?.problems).toEqual([]);
  }

  /** Writes one batch, waits until each key is in the outbox and the log (and each own key expired), checks. */
  async function exercise(
    scope: Scope,
    cases: readonly { key: Buffer; ttlMs: number }[],
    own: readonly { key: Buffer; ttlMs: number }[],
  ): Promise<void> {
    for (const { key } of cases) scope.expected.set(hex(key), key);
    for (const { key } of own) scope.ownKeys.set(hex(key), key);
    await writeAll([...own, ...cases]);
    const wanted = cases.map(({ key }) => hex(key));
    const arrived = await pollUntil(
      async () => {
        await outbox.poll();
        const inOutbox = new Map(
          outbox.entries.slice(scope.outboxFrom).map((e) => [field(e, 'id').toString('latin1'), keyHexOf(e)]),
        );
        const logged = new Set(processedLines(scope).map((l) => inOutbox.get(String(l.eventId))));
        return wanted.every((k) => logged.has(k)) && own.every(({ key }) => published.has(hex(key)));
      },
      ARRIVAL_TIMEOUT_MS,
      50,
    );
    await sleep(DUPLICATE_GRACE_MS);
    await outbox.poll();
    if (!arrived) {
      const seen = new Set(outbox.entries.slice(scope.outboxFrom).map(keyHexOf));
      const missing = wanted.filter((k) => !seen.has(k)).map((k) => k.slice(0, 80));
      throw new Error(
        `run ${run}: not in the outbox within ${ARRIVAL_TIMEOUT_MS} ms: ${missing.join(', ')}\n${(worker as WorkerProcess).tail(5)}`,
      );
    }
    checkRecord(scope);
  }

  it('arbitrary keys arrive exactly once, byte for byte, in the outbox and in key.processed, and unambiguously', async () => {
    const scope = newScope();
    await fc.assert(
      fc.asyncProperty(batch, async ({ keys, own }) => {
        run++;
        const tag = utf8(`~hk${suffix}.${run}~`);
        const seen = new Set<string>();
        const cases: { key: Buffer; ttlMs: number }[] = [];
        for (const { spec, ttlMs } of keys) {
          const key = buildKey(spec, tag);
          if (!seen.has(hex(key))) cases.push({ key, ttlMs });
          seen.add(hex(key));
        }
        const ownCases = own.map(({ tail, ttlMs }, i) => ({
          key: Buffer.concat([OWN_PREFIX, utf8(`hostile-${suffix}.${run}.${i}`), tail]).subarray(
            0,
            MAX_KEY_BYTES,
          ),
          ttlMs,
        }));
        for (const { key } of cases) expect(key.length).toBeLessThanOrEqual(MAX_KEY_BYTES);
        await exercise(scope, cases, ownCases);
      }),
      // Shrinking would re-run the pipeline hundreds of times; the failure message names the keys.
      { numRuns: 30, endOnFailure: true, examples: EXAMPLES.map((b) => [b] as [Batch]) },
    );
    // The generator really produced what this test claims to cover (a test that cannot fail is a defect).
    const keys = [...scope.expected.values()];
    const count = (predicate: (key: Buffer) => boolean) => keys.filter(predicate).length;
    const coverage = {
      keys: keys.length,
      invalidUtf8: count((k) => expectedRepresentation(k).keyBase64 !== undefined),
      withNul: count((k) => k.includes(0x00)),
      withNewline: count((k) => k.includes(0x0a)),
      withSpace: count((k) => k.includes(0x20)),
      jsonLike: count((k) => k.includes('{"') || k.includes('["')),
      hostileFirstByte: count((k) => !k.subarray(0, 3).equals(utf8('~hk'))),
      atLeast1KiB: count((k) => k.length >= 1024),
      exactly64KiB: count((k) => k.length === MAX_KEY_BYTES),
    };
    if (process.env.HOSTILE_STATS) console.log(JSON.stringify(coverage));
    const minimum = {
      invalidUtf8: 20,
      withNul: 10,
      withNewline: 10,
      withSpace: 10,
      jsonLike: 5,
      hostileFirstByte: 20,
      atLeast1KiB: 6,
      exactly64KiB: 5,
    };
    const short = Object.entries(minimum).filter(
      ([name, min]) => coverage[name as keyof typeof coverage] < min,
    );
    expect(short, `generator coverage ${JSON.stringify(coverage)}`).toEqual([]);
  }, 60_000);

  it('keys that start with {kl: never reach the outbox or the handler, even when they expire', async () => {
    const scope = newScope();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ tail: part, ttlMs: fc.integer({ min: 20, max: 100 }) }), {
          minLength: 1,
          maxLength: 8,
        }),
        async (own) => {
          run++;
          const ownCases = own.map(({ tail, ttlMs }, i) => ({
            key: Buffer.concat([OWN_PREFIX, utf8(`hostile-${suffix}.${run}.${i}`), tail]),
            ttlMs,
          }));
          // A user key that expires after all of them shows the pipeline was live meanwhile.
          const canary = { key: utf8(`~hk${suffix}.${run}~canary`), ttlMs: 150 };
          await exercise(scope, [canary], ownCases);
        },
      ),
      { numRuns: 5, endOnFailure: true },
    );
    const ownInLog = processedLines(scope).filter((l) => bytesFromLog(l).subarray(0, 4).equals(OWN_PREFIX));
    expect(ownInLog).toEqual([]);
    expect(scope.ownKeys.size).toBeGreaterThanOrEqual(5);
  }, 30_000);
});
