import { Redis } from 'ioredis';
import type { RedisConnectionConfig } from '../../core/config.ts';
import { withTimeout } from '../../core/errors.ts';
import { EXPIRED_CHANNEL } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import { attachErrorLogging, nodeRedisOptions } from '../../core/redis-client.ts';
import { type ClusterNode, nodeAddress } from '../../core/topology.ts';
import type { SubscriberConnection, SubscriberEvents, SubscriberFactory } from './subscriber-pool.ts';

/**
 * A dedicated connection to one primary, subscribed to `__keyevent@0__:expired`.
 *
 * - Built from the same options as every other node connection (core/redis-client.ts
 *   nodeRedisOptions: TLS, AUTH, backoff); ioredis reconnects on its own, forever, with backoff.
 * - RESP3 (ioredis 6's default) is kept: verified that SUBSCRIBE, push-frame delivery and binary
 *   payloads work under it, and it allows PING on the subscribed connection.
 * - `autoResubscribe` is off: this class subscribes itself on every `ready`, so it knows when the
 *   subscription is confirmed (`onUp`) rather than assuming it.
 * - Messages are read with `messageBuffer`, so a key's bytes arrive unchanged (binary-safe).
 * - A SUBSCRIBE that fails or does not complete in `subscribeTimeoutMs` is retried with backoff on the
 *   same connection (e.g. an ACL that lacks the channel: one log line per distinct error).
 */
export interface NodeSubscriberOptions {
  readonly redis: RedisConnectionConfig;
  readonly logger: Logger;
  readonly subscribeTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
}

const channelBytes = Buffer.from(EXPIRED_CHANNEL);

export class NodeSubscriber implements SubscriberConnection {
  private readonly client: Redis;
  private readonly address: string;
  private subscribed = false;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastFailure: string | undefined;

  constructor(
    node: ClusterNode,
    private readonly events: SubscriberEvents,
    private readonly options: NodeSubscriberOptions,
  ) {
    this.address = nodeAddress(node);
    this.client = new Redis({
      ...nodeRedisOptions(options.redis, {
        logger: options.logger,
        name: 'subscriber',
        connectTimeoutMs: options.connectTimeoutMs ?? 2000,
      }),
      host: node.host,
      port: node.port,
      lazyConnect: true,
      autoResubscribe: false,
    });
    attachErrorLogging(this.client, options.logger, { client: 'subscriber', node: this.address });
    this.client.on('error', () => this.events.onTrouble());
    this.client.on('ready', () => this.subscribe());
    this.client.on('close', () => this.lost('connection-closed'));
    this.client.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (!this.closed && channel.equals(channelBytes)) this.events.onMessage(message);
    });
    // Connection failures surface as 'error' events and reconnects; the promise adds nothing.
    this.client.connect().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.subscribed = false;
    // disconnect(), not QUIT: a node that is being removed may be dead or frozen, and QUIT would wait.
    this.client.disconnect();
  }

  private lost(reason: string): void {
    clearTimeout(this.retryTimer);
    if (this.closed) return;
    if (this.subscribed) {
      this.subscribed = false;
      this.events.onDown(reason);
    }
    this.events.onTrouble();
  }

  private subscribe(): void {
    clearTimeout(this.retryTimer);
    if (this.closed) return;
    const timeoutMs = this.options.subscribeTimeoutMs ?? 2000;
    withTimeout(this.client.subscribe(EXPIRED_CHANNEL), timeoutMs, `SUBSCRIBE on ${this.address}`).then(
      () => {
        if (this.closed || this.client.status !== 'ready') return;
        this.failures = 0;
        this.lastFailure = undefined;
        this.subscribed = true;
        this.events.onUp();
      },
      (error: unknown) => {
        if (this.closed) return;
        const message = error instanceof Error ? error.message : String(error);
        if (message !== this.lastFailure) {
          this.lastFailure = message;
          this.options.logger.warn('subscription.failed', { node: this.address, error });
        }
        this.failures++;
        this.retryTimer = setTimeout(
          () => {
            if (this.client.status === 'ready') this.subscribe();
          },
          Math.min(250 * 2 ** Math.min(this.failures, 5), 5000),
        );
      },
    );
  }
}

/** The SubscriberFactory main.ts gives the pool. */
export function nodeSubscriberFactory(options: NodeSubscriberOptions): SubscriberFactory {
  return (node, events) => new NodeSubscriber(node, events, options);
}
