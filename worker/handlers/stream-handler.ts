import { type Cluster, ReplyError } from 'ioredis';
import { KeyspaceLeaderError } from '../../core/errors.ts';
import { crc16, keySlot } from '../../core/key-slot.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import { outboxAppend } from '../scripts/outbox-append.ts';
import { outboxTrim } from '../scripts/outbox-trim.ts';
import { scriptsOn } from '../scripts/registry.ts';
import { FencedTokenError } from '../scripts/script-errors.ts';
import type { ExpiryHandler } from './expiry-handler.ts';
import { UnsettledHandlerError } from './handler-errors.ts';
import { encodeOutboxValue } from './outbox-value.ts';

/**
 * The built-in `stream` handler (HANDLER=stream): a durable outbox. Each event the leader handles is
 * appended to one of `OUTBOX_PARTITIONS` Redis Streams, `{kl:<name>:o<p>}:outbox`, spread over the
 * shards by their hash tags; the partition is CRC16(key bytes) mod the partition count, so one key's
 * expirations stay in order in one stream. Consumers read them with consumer groups (XREADGROUP).
 *
 * Entry fields: `id` (`<nodeId>:<seq>`: dedupe on it; a replayed expiry carries the previous leader's
 * id when the successor's window aligned with its mark, see HandlerEvent.id),
 * `key` (the key's exact bytes), `node`, `nodeId`, `seq`, `fencingToken`, `receivedAt` (ms since the
 * epoch), `replayed` (`1` when a new leader appended it from its replay window); then, when the event
 * has them, `deadlineMs` (the key's deadline in its primary's clock, ms since the epoch), and either
 * `valueType` and `value` (the captured value, encoded as outbox-value.ts says: binary-safe, one
 * field) or `valueMissing` (why there is none, one of VALUE_MISSING_REASONS). Bound: a value whose
 * encoding is over `maxValueBytes` is not carried; its entry says `valueMissing` `too-large`
 * instead, as for a value capture refused (VALUE_MAX_BYTES). Values are user data: the stream's
 * readers see them (docs/security.md, "Values"); nothing of a value is logged or put in an error.
 *
 * Fenced writes: a Lua script keeps the highest fencing token that appended to a partition in
 * `{kl:<name>:o<p>}:fence` (same slot) and refuses an append with a lower token (FencedAppendError),
 * so a deposed leader that resumes after a pause can never append behind its successor; a call whose
 * own lease ended (`ctx.leaseValid()` false) appends nothing (OutboxLeaseEndedError).
 *
 * Durability (docs/worker.md, "The stream outbox"): a call completes only after `WAIT 1
 * <replicaAckTimeoutMs>` on the stream's primary confirmed that a replica has the entry (and the fence
 * raise): sent after the script's reply on the connection that ran it, it covers that write; appends
 * in flight together share WAITs (ReplicaAckBatcher). An unconfirmed append (WAIT answered 0, or the round trip
 * failed) is tried again up to `appendAttempts` times in all; a retry first looks for the entry it may
 * already have written (by the stream id the earlier attempt got, else by the event `id` among the
 * newest `dedupeLookback` entries, reading at most `dedupeLookbackBytes` of them: entries carry
 * values) and appends only when it is not there, so a retry adds a second copy only when the first
 * is gone (lost in a failover, or already read and trimmed) or lies deeper than the lookback;
 * consumers dedupe by `id` in any case. Still unconfirmed after the last attempt:
 * the call throws OutboxUnconfirmedError, an UnsettledHandlerError, so the event stays unsettled and
 * the successor replays it. A cluster with no replica at all (ioredis knows none) cannot confirm
 * anything: appends are then settled without WAIT, warned once (`outbox.unreplicated`) and counted
 * (`OutboxAppendsUnreplicated`).
 *
 * Trimming: appends carry no MAXLEN. Every `trimEveryAppends` confirmed appends to a partition, one
 * script on that stream drops what every consumer group has read (XTRIM MINID to the oldest entry a
 * group still needs: its oldest pending entry, else the one after its last-delivered-id), then applies the length
 * bound `maxLength` (MAXLEN ~) to what remains. Entries the length bound drops are ones some group
 * has not read (or there is no group at all): they are counted (`OutboxEntriesTrimmedUnread`) and
 * logged (`outbox.trimmed_unread`), never dropped silently.
 */
export const OUTBOX_PARTITIONS = 16;
export const DEFAULT_OUTBOX_MAX_LENGTH = 100_000;

export class FencedAppendError extends KeyspaceLeaderError {
  constructor(stream: string, options?: { cause?: unknown }) {
    super('FENCED', `append to ${stream} refused: a newer leader has written to it`, options);
  }
}

/**
 * The call's lease ended (`ctx.leaseValid()` false) before an append: nothing more is appended, and
 * the event stays unsettled so the successor appends it under its own, higher token.
 */
export class OutboxLeaseEndedError extends UnsettledHandlerError {
  constructor(stream: string) {
    super('OUTBOX_LEASE_ENDED', `append to ${stream} not attempted: the lease of this call has ended`);
  }
}

/** No replica confirmed the append after every attempt: the event stays unsettled for the successor. */
export class OutboxUnconfirmedError extends UnsettledHandlerError {
  readonly stream: string;
  readonly attempts: number;
  constructor(stream: string, attempts: number, options?: { cause?: unknown }) {
    super(
      'OUTBOX_UNCONFIRMED',
      `append to ${stream} not confirmed by a replica after ${attempts} attempt(s)`,
      options,
    );
    this.stream = stream;
    this.attempts = attempts;
  }
}

/** WAIT answered fewer replicas than asked within its bound. */
export class ReplicaAckTimeoutError extends KeyspaceLeaderError {
  constructor(stream: string, timeoutMs: number) {
    super(
      'OUTBOX_REPLICA_ACK_TIMEOUT',
      `no replica acknowledged the append to ${stream} within ${timeoutMs} ms`,
    );
  }
}

/** What one append attempt's round trip answered. */
export interface AppendReply {
  /**
   * The script's reply (worker/scripts/outbox-append.ts), or its error reply: FencedTokenError when
   * the fence refused the token, else the reply error as it came (MOVED, CLUSTERDOWN, ...).
   */
  readonly script: { readonly streamId: string; readonly appended: boolean } | Error;
  /** WAIT's reply (replicas that acknowledged); undefined when WAIT was not sent or failed. */
  readonly acked: number | undefined;
}

export interface TrimReply {
  readonly groups: number;
  readonly trimmedRead: number;
  readonly trimmedUnread: number;
}

/** The Redis side of the outbox, narrow so the handler's logic is testable without a cluster. */
export interface OutboxRedis {
  /** True when the cluster has at least one replica (known to the client). */
  hasReplicas(): boolean;
  /**
   * Runs the append script on `stream`'s node and, when `waitMs` is given, then `WAIT 1 <waitMs>` on
   * the same connection (one WAIT may answer for several appends). A reply error of the script comes
   * back as `script` (FencedTokenError for the fence's refusal); rejects only when the round trip
   * itself failed (the append may have happened).
   */
  append(
    stream: string,
    fence: string,
    args: readonly (string | Buffer)[],
    waitMs?: number,
  ): Promise<AppendReply>;
  trim(stream: string, maxLength: number): Promise<TrimReply>;
}

/** ioredis' class of a Redis error reply (`-ERR ...`), typed `any` by its declarations. */
const RedisReplyError = ReplyError as new (...args: unknown[]) => Error;

/**
 * One WAIT at a time per primary, shared by every append that completed before it was sent (group
 * commit). WAIT answers for the connection's latest write, so a WAIT sent after an append's reply
 * arrived covers that append; one already in flight may not (it may have been sent first), so an
 * append that finds one in flight joins the next, which starts when the current one ends. At most
 * two WAITs per primary are outstanding, whatever the number of appends in flight.
 */
class ReplicaAckBatcher {
  private inFlight: Promise<number | undefined> | undefined;
  private queued: Promise<number | undefined> | undefined;

  acked(send: () => Promise<number | undefined>): Promise<number | undefined> {
    if (this.inFlight === undefined) return this.start(send);
    this.queued ??= this.inFlight.then(
      () => this.startQueued(send),
      () => this.startQueued(send),
    );
    return this.queued;
  }

  private startQueued(send: () => Promise<number | undefined>): Promise<number | undefined> {
    this.queued = undefined;
    return this.start(send);
  }

  private start(send: () => Promise<number | undefined>): Promise<number | undefined> {
    const wait = send();
    this.inFlight = wait;
    const clear = () => {
      if (this.inFlight === wait) this.inFlight = undefined;
    };
    wait.then(clear, clear);
    return wait;
  }
}

/**
 * OutboxRedis over an ioredis Cluster. Give it a client of its own (worker/main.ts does): WAIT holds
 * its connection for up to its bound when no replica answers, and nothing else should queue behind it.
 * The WAIT is sent in a pipeline behind a keyed read of the stream (EXISTS): ioredis sends a cluster
 * pipeline to the node of its keyed commands, on the one connection this client has to that node, the
 * connection that took the append; WAIT itself has no key and would otherwise go to any node.
 */
export function clusterOutboxRedis(cluster: Cluster): OutboxRedis {
  const scripts = scriptsOn(cluster);
  const batchers = new Map<string, ReplicaAckBatcher>();
  const sendWait = async (stream: string, waitMs: number): Promise<number | undefined> => {
    const results = (await cluster.pipeline().exists(stream).wait(1, waitMs).exec()) ?? [];
    const [waitError, waitReply] = results[1] ?? [new Error('empty pipeline reply'), undefined];
    return waitError ? undefined : Number(waitReply);
  };
  /** The batcher of the primary serving `stream` now (by ioredis' slot map; the stream itself if unknown). */
  const batcherFor = (stream: string): ReplicaAckBatcher => {
    const slots = (cluster as unknown as { slots: (string[] | undefined)[] }).slots;
    const node = slots[keySlot(stream)]?.[0] ?? stream;
    let batcher = batchers.get(node);
    if (batcher === undefined) {
      batcher = new ReplicaAckBatcher();
      batchers.set(node, batcher);
    }
    return batcher;
  };
  return {
    hasReplicas: () => cluster.nodes('slave').length > 0,
    async append(stream, fence, args, waitMs) {
      let script: { readonly streamId: string; readonly appended: boolean };
      try {
        // NOSCRIPT is answered by ioredis itself (the script's text sent again): worker/scripts/registry.ts.
        script = await scripts.run(outboxAppend, [stream, fence], args);
      } catch (error) {
        // A reply error (FENCED, MOVED, CLUSTERDOWN, ...): the script did not append. Anything else is
        // a failed round trip (the append may have happened): that one rejects.
        if (error instanceof FencedTokenError || error instanceof RedisReplyError)
          return { script: error, acked: undefined };
        throw error;
      }
      if (waitMs === undefined) return { script, acked: undefined };
      const acked = await batcherFor(stream).acked(() => sendWait(stream, waitMs));
      return { script, acked };
    },
    trim: (stream, maxLength) => scripts.run(outboxTrim, [stream], [String(maxLength)]),
  };
}

export function outboxPartition(keyBytes: Uint8Array): number {
  return crc16(keyBytes) % OUTBOX_PARTITIONS;
}

export interface StreamHandlerOptions {
  readonly redis: OutboxRedis;
  readonly keys: KeyspaceKeys;
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
  /**
   * Length bound per stream, applied when a trim runs (entries it drops are counted).
   * @default 100000
   */
  readonly maxLength?: number;
  /**
   * Bound of each `WAIT 1 <ms>` (ms).
   * @default 250
   */
  readonly replicaAckTimeoutMs?: number;
  /**
   * Attempts per call, the first included, before the call is left unsettled.
   * @default 3
   */
  readonly appendAttempts?: number;
  /**
   * Pause before another attempt after a failed round trip (ms); after a WAIT that answered 0 the next
   * attempt starts at once (that WAIT already waited its bound).
   * @default 50
   */
  readonly retryDelayMs?: number;
  /**
   * Newest entries a retry searches for the event `id` when the earlier attempt's reply was lost.
   * @default 256
   */
  readonly dedupeLookback?: number;
  /**
   * Bytes of entries (every field and value counted) a retry reads at most while it looks for its
   * earlier copy by event id: the lookback stops at `dedupeLookback` entries or at this, whichever
   * comes first, so entries that carry values cannot make one script read megabytes on a primary.
   * @default 4194304
   */
  readonly dedupeLookbackBytes?: number;
  /**
   * A trim runs on a partition after every this many confirmed appends to it.
   * @default 100
   */
  readonly trimEveryAppends?: number;
  /**
   * Bound of a captured value in an entry, in bytes of its encoding (the `value` field,
   * outbox-value.ts). Over it the entry carries `valueMissing` `too-large` instead of the value. The
   * default is 4 x VALUE_MAX_BYTES' default: a value capture accepted at its default fits, unless it
   * holds tens of thousands of elements of a few bytes (each element costs its length's digits + 2).
   * @default 262144
   */
  readonly maxValueBytes?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export const OUTBOX_DEFAULTS = {
  maxLength: DEFAULT_OUTBOX_MAX_LENGTH,
  replicaAckTimeoutMs: 250,
  appendAttempts: 3,
  retryDelayMs: 50,
  dedupeLookback: 256,
  dedupeLookbackBytes: 4 * 1024 * 1024,
  trimEveryAppends: 100,
  maxValueBytes: 256 * 1024,
} as const;

export function createStreamHandler(options: StreamHandlerOptions): ExpiryHandler {
  const settings = {
    maxLength: options.maxLength ?? OUTBOX_DEFAULTS.maxLength,
    replicaAckTimeoutMs: options.replicaAckTimeoutMs ?? OUTBOX_DEFAULTS.replicaAckTimeoutMs,
    appendAttempts: options.appendAttempts ?? OUTBOX_DEFAULTS.appendAttempts,
    retryDelayMs: options.retryDelayMs ?? OUTBOX_DEFAULTS.retryDelayMs,
    dedupeLookback: options.dedupeLookback ?? OUTBOX_DEFAULTS.dedupeLookback,
    dedupeLookbackBytes: options.dedupeLookbackBytes ?? OUTBOX_DEFAULTS.dedupeLookbackBytes,
    trimEveryAppends: options.trimEveryAppends ?? OUTBOX_DEFAULTS.trimEveryAppends,
    maxValueBytes: options.maxValueBytes ?? OUTBOX_DEFAULTS.maxValueBytes,
  };
  const { redis, keys, logger, metrics } = options;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const appendsSinceTrim = new Array<number>(OUTBOX_PARTITIONS).fill(0);
  let warnedUnreplicated = false;

  const trim = async (partition: number, stream: string) => {
    try {
      const reply = await redis.trim(stream, settings.maxLength);
      if (reply.trimmedUnread > 0) {
        metrics.count('OutboxEntriesTrimmedUnread', reply.trimmedUnread);
        logger.warn('outbox.trimmed_unread', {
          stream,
          partition,
          count: reply.trimmedUnread,
          maxLength: settings.maxLength,
          consumerGroups: reply.groups,
          reason: reply.groups === 0 ? 'no-consumer-group' : 'consumer-group-behind',
        });
      }
    } catch (error) {
      // Trimming is housekeeping: a failure never fails the append; the next trim catches up.
      logger.warn('outbox.trim_failed', { stream, partition, error });
    }
  };

  return async (event, ctx) => {
    const partition = outboxPartition(event.keyBytes);
    const stream = keys.outbox(partition);
    const fence = keys.outboxFence(partition);
    const fields: (string | Buffer)[] = [
      'id',
      event.id,
      'key',
      event.keyBytes,
      'node',
      event.node,
      'nodeId',
      event.nodeId,
      'seq',
      String(event.seq),
      'fencingToken',
      String(ctx.fencingToken),
      'receivedAt',
      String(event.receivedAt),
      'replayed',
      event.replayed ? '1' : '0',
    ];
    if (event.deadlineMs !== undefined) fields.push('deadlineMs', String(event.deadlineMs));
    if (event.value !== undefined) {
      const encoded = encodeOutboxValue(event.value, settings.maxValueBytes);
      if (encoded !== undefined) fields.push('valueType', event.value.type, 'value', encoded);
      else fields.push('valueMissing', 'too-large');
    } else if (event.valueMissing !== undefined) fields.push('valueMissing', event.valueMissing);
    let streamId = '';
    let lastProblem: unknown;
    for (let attempt = 1; attempt <= settings.appendAttempts; attempt++) {
      // The fence refuses tokens below the partition's highest; this refuses the call's own token once
      // its lease ended (a successor that has not appended yet is not protected by the fence).
      if (!ctx.leaseValid()) {
        if (attempt === 1) throw new OutboxLeaseEndedError(stream);
        throw new OutboxUnconfirmedError(stream, attempt - 1, { cause: new OutboxLeaseEndedError(stream) });
      }
      const requireAck = redis.hasReplicas();
      const lookback = attempt === 1 ? 0 : settings.dedupeLookback;
      const lookbackBytes = attempt === 1 ? 0 : settings.dedupeLookbackBytes;
      let reply: AppendReply;
      try {
        reply = await redis.append(
          stream,
          fence,
          [String(ctx.fencingToken), String(lookback), streamId, String(lookbackBytes), ...fields],
          requireAck ? settings.replicaAckTimeoutMs : undefined,
        );
      } catch (error) {
        // The reply is unknown (the entry may be there): the next attempt looks it up by event id.
        lastProblem = error;
        if (attempt < settings.appendAttempts) await sleep(settings.retryDelayMs);
        continue;
      }
      if (reply.script instanceof Error) {
        // The script's own error reply, mapped by the script (worker/scripts/outbox-append.ts).
        if (reply.script instanceof FencedTokenError)
          throw new FencedAppendError(stream, { cause: reply.script });
        lastProblem = reply.script; // not run (MOVED, CLUSTERDOWN, ...): nothing was written
        if (attempt < settings.appendAttempts) await sleep(settings.retryDelayMs);
        continue;
      }
      streamId = reply.script.streamId;
      if (!requireAck) {
        metrics.count('OutboxAppendsUnreplicated');
        if (!warnedUnreplicated) {
          warnedUnreplicated = true;
          logger.warn('outbox.unreplicated', {
            stream,
            reason: 'the cluster has no replica: outbox appends are settled without WAIT',
          });
        }
      } else if ((reply.acked ?? 0) < 1) {
        lastProblem = new ReplicaAckTimeoutError(stream, settings.replicaAckTimeoutMs);
        continue;
      }
      appendsSinceTrim[partition] = (appendsSinceTrim[partition] ?? 0) + 1;
      if ((appendsSinceTrim[partition] ?? 0) >= settings.trimEveryAppends) {
        appendsSinceTrim[partition] = 0;
        await trim(partition, stream);
      }
      return;
    }
    metrics.count('OutboxAppendsUnconfirmed');
    throw new OutboxUnconfirmedError(stream, settings.appendAttempts, { cause: lastProblem });
  };
}
