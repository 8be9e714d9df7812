import type { Cluster } from 'ioredis';
import { VALUE_READ_DEFAULTS } from '../../core/defaults.ts';
import type { ExpiredValue } from '../handlers/expiry-handler.ts';
import { scriptsOn } from '../scripts/registry.ts';
import { ScriptReplyError } from '../scripts/script-errors.ts';
import {
  type DEFERRED,
  VALUES_READ_MAX_KEYS,
  type ValueReadReply,
  valueRead,
} from '../scripts/value-read.ts';
import { groupByOwner } from './node-deadlines.ts';

/**
 * Reads expiring keys' values on their primaries (issue 14, value capture): with `nodes`, one
 * `values-read` call per chunk of up to 100 keys of one primary on that primary's own connection
 * (worker/scripts/value-read.ts); otherwise, and for what a batch could not read, one `value-read`
 * script per key, routed by the Cluster client to the slot's primary (it follows MOVED and ASK). Give
 * it a client with auto-pipelining on (core/redis-client.ts `autoPipelining`, as the on-time
 * expiry's). One read per key through the Cluster client cost the worker ~50-90 µs (profiled), most
 * of a burst's time; a batch call costs one command per 100 keys.
 *
 * Contract:
 * - `read(keys, limits)` resolves with one result per key, in order, and never rejects for one key's
 *   failure: an error reply (a connection, a timeout, CLUSTERDOWN, NOPERM) or a reply outside the
 *   script's contract (ScriptReplyError) is that key's Error. It rejects only on a caller's mistake
 *   (`limits` not one per key).
 * - `limits[i]` is the room the caller's budget gives key i, in payload bytes (as expiredValueSize
 *   counts them), clamped to [0, maxBytes]. A value over `maxBytes` (or with more than `maxElements`
 *   fields, items or members) is `missing: too-large`; one over its limit but within `maxBytes`
 *   `missing: over-budget`; a stream or a module type `missing: unsupported-type`. Sizes are checked
 *   on the primary before anything is read, and nothing over the limit is sent back.
 * - `deadlineMs` is the key's PEXPIRETIME at the read (the primary's clock): the caller compares it
 *   with the deadline it tracked to see a TTL change. `no-ttl`: the key has none (nothing is read);
 *   `gone`: no such key, which is NOT proof that it expired (a primary under CLIENT PAUSE reports a
 *   due key as gone without deleting it; expiry-toucher.ts).
 * - Values are user data: they are never logged here and never put in an error (a malformed reply's
 *   ScriptReplyError names its shape, not its contents).
 * - Read-only and bounded (the script's `no-writes` flag, EVALSHA_RO): it runs while writes are
 *   paused and while memory is full, and a worker with read-only rights on KEY_PATTERN may run it.
 *
 * Cost, measured on the local 3-primary cluster (Redis 7.0.15, 2 shared cores, one auto-pipelined
 * client): one read ~0.15 ms; a batch of 1,000 small strings 10-45 ms (~20,000-80,000 reads/s), of
 * 1,000 hashes of 20 fields 35-45 ms (~25,000 reads/s); on the primaries ~5 us per string read and
 * ~16 us per 20-field hash, ~1.5 ms for a collection of maxElements elements.
 */
export interface ValueReaderOptions {
  readonly cluster: Cluster;
  /**
   * Batches per primary (values-read on the primary's own connection, worker/scripts/value-read.ts):
   * `ownerOf` names the primary owning a key's slot in the last topology, `read` runs values-read there
   * with its ARGV. Keys without an owner, of a failed call, or deferred twice are read one by one
   * through `cluster`. @default none (every key one by one through `cluster`)
   */
  readonly nodes?: {
    readonly ownerOf: (key: Buffer) => string | undefined;
    readonly read: (
      nodeId: string,
      args: readonly (Buffer | number)[],
    ) => Promise<readonly (ValueReadReply | typeof DEFERRED)[]>;
  };
  /** VALUE_MAX_BYTES: payload bytes above which a value is not read. @default 65536 */
  readonly maxBytes?: number;
  /** Fields, items or members above which a collection is not read. @default 8192 */
  readonly maxElements?: number;
}

export type ValueReadResult =
  | {
      readonly kind: 'value';
      readonly deadlineMs: number;
      readonly value: ExpiredValue;
      /** Payload bytes (expiredValueSize). */
      readonly bytes: number;
    }
  | {
      readonly kind: 'missing';
      readonly deadlineMs: number;
      readonly reason: 'too-large' | 'unsupported-type' | 'over-budget';
    }
  | { readonly kind: 'no-ttl' }
  | { readonly kind: 'gone' };

export class ValueReader {
  readonly maxBytes: number;
  readonly maxElements: number;

  constructor(private readonly options: ValueReaderOptions) {
    this.maxBytes = options.maxBytes ?? VALUE_READ_DEFAULTS.maxBytes;
    this.maxElements = options.maxElements ?? VALUE_READ_DEFAULTS.maxElements;
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 0)
      throw new RangeError(`maxBytes must be an integer >= 0, got ${this.maxBytes}`);
    if (!Number.isSafeInteger(this.maxElements) || this.maxElements < 1)
      throw new RangeError(`maxElements must be an integer >= 1, got ${this.maxElements}`);
  }

  /** One result per key (an Error for that key's failure); `limits[i]` is key i's room in bytes. */
  async read(
    keys: readonly Buffer[],
    limits: readonly number[],
  ): Promise<readonly (ValueReadResult | Error)[]> {
    if (limits.length !== keys.length)
      throw new RangeError(`read: ${keys.length} keys but ${limits.length} limits`);
    const clamped = limits.map((limit) => this.clampLimit(limit));
    const nodes = this.options.nodes;
    if (nodes === undefined) return this.readEach(keys, clamped);
    const results: (ValueReadResult | Error)[] = new Array(keys.length);
    const { byOwner, unowned: oneByOne } = groupByOwner(keys, nodes.ownerOf);
    // Every chunk of a primary at once (they queue on its connection, each call bounded), then the
    // deferred keys once more; what is left goes one by one through the Cluster client.
    const readChunks = async (nodeId: string, indexes: readonly number[], retry: boolean): Promise<void> => {
      const chunks: number[][] = [];
      for (let i = 0; i < indexes.length; i += VALUES_READ_MAX_KEYS)
        chunks.push(indexes.slice(i, i + VALUES_READ_MAX_KEYS));
      const deferred: number[] = [];
      await Promise.all(
        chunks.map(async (chunk) => {
          const args: (Buffer | number)[] = [this.maxBytes, this.maxElements];
          for (const i of chunk) args.push(keys[i] as Buffer, clamped[i] as number);
          let replies: readonly (ValueReadReply | typeof DEFERRED)[] | undefined;
          try {
            replies = await nodes.read(nodeId, args);
          } catch {
            replies = undefined;
          }
          chunk.forEach((i, j) => {
            const reply = replies?.[j];
            if (reply === undefined) oneByOne.push(i);
            else if (reply.status === 'deferred') (retry ? deferred : oneByOne).push(i);
            else results[i] = resultOf(reply, clamped[i] as number);
          });
        }),
      );
      if (deferred.length > 0) await readChunks(nodeId, deferred, false);
    };
    await Promise.all([...byOwner].map(([nodeId, indexes]) => readChunks(nodeId, indexes, true)));
    if (oneByOne.length > 0) {
      const each = await this.readEach(
        oneByOne.map((i) => keys[i] as Buffer),
        oneByOne.map((i) => clamped[i] as number),
      );
      oneByOne.forEach((i, j) => {
        results[i] = each[j] as ValueReadResult | Error;
      });
    }
    return results;
  }

  /** Each key with value-read through the Cluster client (it routes each to its slot's primary). */
  private readEach(
    keys: readonly Buffer[],
    limits: readonly number[],
  ): Promise<readonly (ValueReadResult | Error)[]> {
    const scripts = scriptsOn(this.options.cluster);
    return Promise.all(
      keys.map((key, i) => {
        const limit = limits[i] as number;
        return scripts
          .runBuffer(valueRead, [key], [this.maxBytes, limit, this.maxElements])
          .then((reply) => resultOf(reply, limit), asError);
      }),
    );
  }

  private clampLimit(limit: number): number {
    if (!(limit > 0)) return 0;
    return Math.min(Math.floor(limit), this.maxBytes);
  }
}

function resultOf(reply: ValueReadReply, limit: number): ValueReadResult | Error {
  switch (reply.status) {
    case 'gone':
      return { kind: 'gone' };
    case 'no-ttl':
      return { kind: 'no-ttl' };
    case 'ok':
      // The script counted the same bytes; a value over the limit is a reply outside its contract.
      if (reply.bytes > limit)
        return new ScriptReplyError(valueRead.name, { status: 'ok', bytes: reply.bytes, limit });
      return { kind: 'value', deadlineMs: reply.deadlineMs, value: reply.value, bytes: reply.bytes };
    default:
      return { kind: 'missing', deadlineMs: reply.deadlineMs, reason: reply.status };
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
