import type { Cluster } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { MarkStore } from '../../../../worker/replay/mark-store.ts';
import { encodeProcessedMark, type ProcessedMark } from '../../../../worker/replay/processed-mark.ts';
import { setIfNotOlder } from '../../../../worker/scripts/set-if-not-older.ts';

const COPY_TIMEOUT_MS = 100;
const keys = new KeyspaceKeys('t');

function mark(seq: number, fencingToken: number, reservedThrough = seq + 10): ProcessedMark {
  return {
    nodeId: 'n1',
    seq,
    tail: ['a', 'b'],
    receivedAt: 0,
    fencingToken,
    lineEnd: reservedThrough,
    reservedThrough,
  };
}

/** A fake cluster whose copy `p` (its tag) answers from `values[p]`, or never when it is `hung`. */
function fakeCluster(values: Record<number, ProcessedMark | undefined>, hung: ReadonlySet<number>) {
  const partitionOf = (key: string) => [0, 1, 2].find((p) => key.startsWith(keys.processedMark(p, '')));
  const written: { partition: number | undefined; args: unknown[] }[] = [];
  const cluster = {
    mget: (...names: string[]) => {
      const p = partitionOf(names[0] as string) as number;
      if (hung.has(p)) return new Promise(() => {});
      const value = values[p];
      return Promise.resolve(names.map(() => (value ? encodeProcessedMark(value) : null)));
    },
    defineCommand: () => {},
    pipeline: () => {
      let partition: number | undefined;
      const batch: unknown[][] = [];
      const pipeline: Record<string, (...args: unknown[]) => unknown> = {
        // The registry's fenced write (worker/scripts/set-if-not-older.ts): KEYS[1], then its ARGV.
        [setIfNotOlder.command]: (...args: unknown[]) => {
          partition = partitionOf(args[0] as string);
          batch.push(args);
          return pipeline;
        },
        exec: () => {
          if (partition !== undefined && hung.has(partition)) return new Promise(() => {});
          for (const args of batch) written.push({ partition, args });
          return Promise.resolve(batch.map(() => [null, 1]));
        },
      };
      return pipeline;
    },
  };
  return { cluster: cluster as unknown as Cluster, written };
}

/** A timeout's verdict comes in the turn after its bound (core/errors.ts withTimeout): the next fake ms. */
const VERDICT_TURN_MS = 1;

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('MarkStore', () => {
  it('sequence 7: one unresponsive mark copy does not discard the others', async () => {
    const { cluster } = fakeCluster({ 1: mark(5, 1), 2: mark(9, 2) }, new Set([0]));
    const store = new MarkStore(cluster, keys, [0, 1, 2], COPY_TIMEOUT_MS);
    const read = store.read(['n1']);
    await vi.advanceTimersByTimeAsync(COPY_TIMEOUT_MS + VERDICT_TURN_MS);
    const result = await read;
    expect(result.copiesAnswered).toBe(2);
    expect(result.copies).toBe(3);
    // The newest over the copies that answered: the higher fencing token.
    expect(result.marks.get('n1')).toMatchObject({ seq: 9, fencingToken: 2 });
  });

  it('sequence 7: one answering copy is enough to return marks; none answering rejects', async () => {
    const one = new MarkStore(
      fakeCluster({ 2: mark(4, 1) }, new Set([0, 1])).cluster,
      keys,
      [0, 1, 2],
      COPY_TIMEOUT_MS,
    );
    const read = one.read(['n1']);
    await vi.advanceTimersByTimeAsync(COPY_TIMEOUT_MS + VERDICT_TURN_MS);
    expect(await read).toMatchObject({ copiesAnswered: 1 });
    const none = new MarkStore(fakeCluster({}, new Set([0, 1, 2])).cluster, keys, [0, 1, 2], COPY_TIMEOUT_MS);
    const failed = none.read(['n1']).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(COPY_TIMEOUT_MS + VERDICT_TURN_MS);
    expect(await failed).toBeInstanceOf(AggregateError);
  });

  it('sequence 7: a write reports the copies that took it, a hung copy bounded on its own; marks never expire', async () => {
    const { cluster, written } = fakeCluster({}, new Set([1]));
    const store = new MarkStore(cluster, keys, [0, 1, 2], COPY_TIMEOUT_MS);
    const write = store.write([mark(3, 1)]);
    await vi.advanceTimersByTimeAsync(COPY_TIMEOUT_MS + VERDICT_TURN_MS);
    expect(await write).toBe(2);
    expect(written.map((w) => w.partition).sort()).toEqual([0, 2]);
    // ARGV[3] (the expiry) is 0: a quiet primary's mark must outlive any silence.
    expect(written.every((w) => w.args[3] === '0')).toBe(true); // ARGV[3]: no expiry
  });

  it('takes, within one token, the copy with the larger reservation', async () => {
    const { cluster } = fakeCluster({ 0: mark(5, 3, 100), 1: mark(5, 3, 200) }, new Set());
    const store = new MarkStore(cluster, keys, [0, 1], COPY_TIMEOUT_MS);
    expect((await store.read(['n1'])).marks.get('n1')?.reservedThrough).toBe(200);
  });
});
