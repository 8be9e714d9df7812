import type { Cluster } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { silentLogger } from '../../../../core/logger.ts';
import { UnsettledHandlerError } from '../../../../worker/handlers/handler-errors.ts';
import {
  createStreamHandler,
  FencedAppendError,
  OUTBOX_PARTITIONS,
  outboxPartition,
} from '../../../../worker/handlers/stream-handler.ts';

const event = (keyBytes: Buffer) => ({
  id: 'node-a:7',
  key: keyBytes.toString(),
  keyBytes,
  node: '10.0.0.1:6379',
  nodeId: 'node-a',
  seq: 7,
  receivedAt: 1234,
  replayed: true,
});

function fakeCluster(append: (...args: unknown[]) => Promise<string>) {
  const cluster = {
    defineCommand: vi.fn((name: string) => {
      (cluster as unknown as Record<string, unknown>)[name] = append;
    }),
  };
  return cluster as unknown as Cluster;
}

describe('stream handler (outbox)', () => {
  it('appends identity, exact key bytes, node, sequence, token and receipt time to the key partition', async () => {
    const append = vi.fn(async () => '1-0');
    const keys = new KeyspaceKeys('orders');
    const handler = createStreamHandler({ cluster: fakeCluster(append), keys, maxLength: 500 });
    const keyBytes = Buffer.from([0x6b, 0xff]);
    await handler(event(keyBytes), {
      fencingToken: 42,
      signal: new AbortController().signal,
      leaseValid: () => true,
      log: silentLogger,
    });
    const p = outboxPartition(keyBytes);
    expect(append).toHaveBeenCalledWith(
      `{kl:orders:o${p}}:outbox`,
      `{kl:orders:o${p}}:fence`,
      '42',
      '500',
      'id',
      'node-a:7',
      'key',
      keyBytes,
      'node',
      '10.0.0.1:6379',
      'nodeId',
      'node-a',
      'seq',
      '7',
      'fencingToken',
      '42',
      'receivedAt',
      '1234',
      'replayed',
      '1',
    );
  });

  it('spreads keys over every partition', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(outboxPartition(Buffer.from(`key:${i}`)));
    expect(seen.size).toBe(OUTBOX_PARTITIONS);
  });

  it('turns the script refusal into a typed FencedAppendError', async () => {
    const append = vi.fn(async () => {
      throw new Error('FENCED token 3 is below 4');
    });
    const handler = createStreamHandler({ cluster: fakeCluster(append), keys: new KeyspaceKeys('x') });
    await expect(
      handler(event(Buffer.from('k')), {
        fencingToken: 3,
        signal: new AbortController().signal,
        leaseValid: () => true,
        log: silentLogger,
      }),
    ).rejects.toBeInstanceOf(FencedAppendError);
  });

  it('sequence 10: appends nothing once the lease is no longer valid, and leaves the event unsettled', async () => {
    const append = vi.fn(async () => '1-0');
    const handler = createStreamHandler({ cluster: fakeCluster(append), keys: new KeyspaceKeys('x') });
    const call = handler(event(Buffer.from('k')), {
      fencingToken: 3,
      signal: new AbortController().signal, // a pause: the deadline timer has not fired yet
      leaseValid: () => false,
      log: silentLogger,
    });
    await expect(call).rejects.toBeInstanceOf(UnsettledHandlerError);
    expect(append).not.toHaveBeenCalled();
  });
});
