import type { Cluster } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { silentLogger } from '../../../../core/logger.ts';
import { createStreamHandler } from '../../../../worker/handlers/stream-handler.ts';

describe('stream handler (preliminary)', () => {
  it('appends the exact key bytes, node, receipt time and fencing token to the outbox stream, capped', async () => {
    const xadd = vi.fn(async () => '1-0');
    const keys = new KeyspaceKeys('orders');
    const handler = createStreamHandler({ cluster: { xadd } as unknown as Cluster, keys, maxLength: 500 });
    const keyBytes = Buffer.from([0x6b, 0xff]);
    await handler(
      { key: 'k\ufffd', keyBytes, node: '10.0.0.1:6379', receivedAt: 1234 },
      { fencingToken: 42, signal: new AbortController().signal, log: silentLogger },
    );
    expect(xadd).toHaveBeenCalledWith(
      '{kl:orders:o0}:outbox',
      'MAXLEN',
      '~',
      '500',
      '*',
      'key',
      keyBytes,
      'node',
      '10.0.0.1:6379',
      'receivedAt',
      '1234',
      'fencingToken',
      '42',
    );
  });
});
