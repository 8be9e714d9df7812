import type { Cluster } from 'ioredis';
import { KeyspaceLeaderError } from '../../core/errors.ts';
import { crc16 } from '../../core/key-slot.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { ExpiryHandler } from './expiry-handler.ts';
import { UnsettledHandlerError } from './handler-errors.ts';

/**
 * The built-in `stream` handler (HANDLER=stream): a durable outbox. Each event the leader handles is
 * appended to one of `OUTBOX_PARTITIONS` Redis Streams, `{kl:<name>:o<p>}:outbox`, spread over the
 * shards by their hash tags; the partition is CRC16(key bytes) mod the partition count, so one key's
 * expirations stay in order in one stream. Consumers read them with consumer groups (XREADGROUP).
 *
 * Entry fields: `id` (`<nodeId>:<seq>`, the same for the same expiry on every worker: dedupe on it),
 * `key` (the key's exact bytes), `node`, `nodeId`, `seq`, `fencingToken`, `receivedAt` (ms since the
 * epoch), `replayed` (`1` when a new leader appended it from its replay window).
 *
 * Fenced writes: a Lua script keeps the highest fencing token that appended to a partition in
 * `{kl:<name>:o<p>}:fence` (same slot) and refuses an append with a lower token (FencedAppendError),
 * so a deposed leader that resumes after a pause can never append behind its successor. Each stream
 * is capped at about `maxLength` entries (MAXLEN ~).
 */
export const OUTBOX_PARTITIONS = 16;
export const DEFAULT_OUTBOX_MAX_LENGTH = 100_000;

export class FencedAppendError extends KeyspaceLeaderError {
  constructor(stream: string, options?: { cause?: unknown }) {
    super('FENCED', `append to ${stream} refused: a newer leader has written to it`, options);
  }
}

/**
 * The call's lease ended (`ctx.leaseValid()` false) before the append: nothing was appended, and the
 * event stays unsettled so the successor appends it under its own, higher token.
 */
export class OutboxLeaseEndedError extends UnsettledHandlerError {
  constructor(stream: string) {
    super('OUTBOX_LEASE_ENDED', `append to ${stream} not attempted: the lease of this call has ended`);
  }
}

const APPEND_SCRIPT = `
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
local token = tonumber(ARGV[1])
if token < fence then
  return redis.error_reply('FENCED token ' .. ARGV[1] .. ' is below ' .. fence)
end
if token > fence then
  redis.call('SET', KEYS[2], ARGV[1])
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
`;

type AppendCommand = (
  stream: string,
  fence: string,
  token: string,
  maxLength: string,
  ...fields: (string | Buffer)[]
) => Promise<string>;

export function outboxPartition(keyBytes: Uint8Array): number {
  return crc16(keyBytes) % OUTBOX_PARTITIONS;
}

export function createStreamHandler(deps: {
  readonly cluster: Cluster;
  readonly keys: KeyspaceKeys;
  readonly maxLength?: number;
}): ExpiryHandler {
  const maxLength = String(deps.maxLength ?? DEFAULT_OUTBOX_MAX_LENGTH);
  const cluster = deps.cluster as Cluster & { klOutboxAppend?: AppendCommand };
  if (typeof cluster.klOutboxAppend !== 'function') {
    cluster.defineCommand('klOutboxAppend', { numberOfKeys: 2, lua: APPEND_SCRIPT });
  }
  return async (event, ctx) => {
    const partition = outboxPartition(event.keyBytes);
    const stream = deps.keys.outbox(partition);
    // The fence refuses tokens below the partition's highest; this refuses the call's own token once
    // its lease ended (a successor that has not appended yet would not be protected by the fence).
    if (!ctx.leaseValid()) throw new OutboxLeaseEndedError(stream);
    try {
      await (cluster.klOutboxAppend as AppendCommand)(
        stream,
        deps.keys.outboxFence(partition),
        String(ctx.fencingToken),
        maxLength,
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
      );
    } catch (error) {
      // The script's own error reply; its first word is the code the script defines.
      if (error instanceof Error && error.message.startsWith('FENCED'))
        throw new FencedAppendError(stream, { cause: error });
      throw error;
    }
  };
}
