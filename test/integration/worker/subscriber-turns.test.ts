import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../core/clock.ts';
import { EXPIRED_CHANNEL } from '../../../core/keys.ts';
import { createLogger } from '../../../core/logger.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { NodeSubscriber } from '../../../worker/expiry/node-subscriber.ts';
import { randomSuffix, sleep } from './helpers.ts';
import { connectionConfig } from './leader/helpers.ts';

/**
 * A subscriber connection that has a backlog (the loop was blocked by a GC or a burst while a primary
 * published thousands of `expired` events) must not decode all of it in one turn of the event loop:
 * the lease renewal's timer and the replies to its votes wait behind that turn. Seen in the bench's
 * held-values scenario: a 100,000-key burst decoded in one 700-800 ms turn, the renewal's votes timed
 * out and the leader lost its lease (docs/precise-expiry.md).
 */
const MESSAGES = 40_000;
const WARM_UP = 100_000;
/**
 * Messages a subscriber may deliver between the end of the block and a zero-delay timer: a turn's
 * slice (2 ms) plus the rest of the socket chunk being decoded (64 KiB, about 1,000 of these
 * messages), with a wide margin. Without the bound the whole backlog the kernel buffered (tens of
 * thousands here) comes first.
 */
const MAX_BEFORE_TIMER = MESSAGES / 8;
/** How long the test blocks its loop once the first message is in: the backlog piles up meanwhile. */
const BLOCK_MS = 300;

describe('a node subscriber with a backlog', () => {
  let cluster: LocalRedisCluster;
  let publisher: Redis;
  let port: number;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      primaries: 1,
      replicasPerPrimary: 0,
      notifyKeyspaceEvents: 'Ex',
    });
    const [primary] = await cluster.primaries();
    if (!primary) throw new Error('no primary');
    port = primary.port;
    publisher = cluster.nodeClient(port);
  }, 60_000);

  afterAll(async () => {
    publisher?.disconnect();
    await cluster?.stop();
  });

  it('lets a due timer run after a slice of it, not after all of it', async () => {
    const prefix = `turns:${randomSuffix()}:${'k'.repeat(60)}:`;
    let received = 0;
    let receivedWhenTimerRan: number | undefined;
    let up!: () => void;
    const isUp = new Promise<void>((resolve) => {
      up = resolve;
    });
    const subscriber = new NodeSubscriber(
      { id: 'n1', host: '127.0.0.1', port, role: 'primary', health: 'online' },
      {
        onMessage: () => {
          received++;
          if (received !== WARM_UP + 1) return;
          // The first message is in: block the loop while the rest arrives, then ask for a timer.
          const until = performance.now() + BLOCK_MS;
          while (performance.now() < until) {}
          setTimeout(() => {
            receivedWhenTimerRan = received;
          }, 0);
        },
        onTtlSet: () => {},
        onUp: () => up(),
        onDown: () => {},
        onTrouble: () => {},
      },
      { redis: connectionConfig(cluster), logger: createLogger({ write: () => {} }), clock: systemClock },
    );
    try {
      await isUp;
      const publish = (count: number) =>
        publisher.eval(
          `for i = 1, tonumber(ARGV[2]) do redis.call('PUBLISH', KEYS[1], ARGV[1] .. i) end return 1`,
          1,
          EXPIRED_CHANNEL,
          prefix,
          String(count),
        );
      const receivedAll = async (count: number) => {
        const deadline = Date.now() + 30_000;
        while (received < count && Date.now() < deadline) await sleep(20);
      };
      // A busy subscription first: the kernel grows the socket's receive window, as it does under load.
      await publish(WARM_UP);
      await receivedAll(WARM_UP);
      // One script publishes them all: they reach the subscriber's output buffer at once.
      await publish(MESSAGES);
      await receivedAll(WARM_UP + MESSAGES);
      expect(received).toBe(WARM_UP + MESSAGES);
      expect(receivedWhenTimerRan).toBeDefined();
      expect((receivedWhenTimerRan as number) - WARM_UP).toBeLessThanOrEqual(MAX_BEFORE_TIMER);
    } finally {
      await subscriber.close();
    }
  }, 60_000);
});
