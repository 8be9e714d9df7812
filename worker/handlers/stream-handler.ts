import type { Cluster } from 'ioredis';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { ExpiryHandler } from './expiry-handler.ts';

/**
 * The built-in `stream` handler (HANDLER=stream), preliminary: appends each event to the outbox
 * stream `keys.outbox(0)` (one partition for now) with the key's exact bytes, the node, the receipt
 * time and the fencing token, so a consumer can discard entries from a deposed leader. The stream is
 * capped (approximately) at `maxLength` entries. Partitioning and fenced writes come in a later issue.
 */
export const OUTBOX_PARTITION = 0;
export const DEFAULT_OUTBOX_MAX_LENGTH = 100_000;

export function createStreamHandler(deps: {
  readonly cluster: Cluster;
  readonly keys: KeyspaceKeys;
  readonly maxLength?: number;
}): ExpiryHandler {
  const stream = deps.keys.outbox(OUTBOX_PARTITION);
  const maxLength = String(deps.maxLength ?? DEFAULT_OUTBOX_MAX_LENGTH);
  return async (event, ctx) => {
    await deps.cluster.xadd(
      stream,
      'MAXLEN',
      '~',
      maxLength,
      '*',
      'key',
      event.keyBytes,
      'node',
      event.node,
      'receivedAt',
      String(event.receivedAt),
      'fencingToken',
      String(ctx.fencingToken),
    );
  };
}
