import { Redis } from 'ioredis';
import type { Clock } from '../../core/clock.ts';
import type { RedisConnectionConfig } from '../../core/config.ts';
import { SUBSCRIBER_DEFAULTS } from '../../core/defaults.ts';
import { withTimeout } from '../../core/errors.ts';
import { EXPIRE_CHANNEL, EXPIRED_CHANNEL } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import { attachErrorLogging, nodeRedisOptions } from '../../core/redis-client.ts';
import { type ClusterNode, nodeAddress } from '../../core/topology.ts';
import type { SubscriberConnection, SubscriberEvents, SubscriberFactory } from './subscriber-pool.ts';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  SubscriptionHeartbeat,
  stallDetectionBoundMs,
} from './subscription-heartbeat.ts';
import { SLICE_CHECK_EVERY, TurnSlice } from './turn-slice.ts';

/**
 * A dedicated connection to one node (a primary, or a replica held in advance of its promotion),
 * subscribed to `__keyevent@0__:expired` (and to `__keyevent@0__:expire` with on-time expiry on).
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
 * - A heartbeat (subscription-heartbeat.ts) watches every ready connection: PING when idle (allowed on
 *   a subscribed connection under RESP3; ioredis sends it like any command), progress judged by the
 *   socket's bytes read. A connection that reads nothing for the bound is stalled: logged
 *   `subscription.stalled`, reported down (`stalled`, a gap for a primary) and dropped; ioredis then
 *   connects anew and this class subscribes again.
 * - A backlog is decoded a slice at a time: once the messages of one turn of the event loop have run
 *   `turnSliceMs`, the socket is paused until the next turn (setImmediate). A backlog piles up in
 *   the kernel whenever the loop is held (a GC, a burst on another socket), and libuv reads up to
 *   2 MiB of a socket per turn (32 reads of 64 KiB): decoded at once, that was 15,000+ messages and
 *   hundreds of ms before any timer -- the lease renewal -- or any other socket -- its votes'
 *   replies -- got a turn (test/integration/worker/subscriber-turns.test.ts). Throughput is the same:
 *   the rest waits one turn, in the kernel or in the socket's buffer, not in Redis's output buffer
 *   for long (its pubsub limit would drop the connection).
 */
export interface NodeSubscriberOptions {
  readonly redis: RedisConnectionConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  /** @default 2000 */
  readonly subscribeTimeoutMs?: number;
  /** @default 2000 */
  readonly connectTimeoutMs?: number;
  /** Heartbeat check interval (idle time before a PING). @default 500 */
  readonly heartbeatIntervalMs?: number;
  /** No byte read for this long with a PING outstanding: stalled. @default 1500 */
  readonly stallTimeoutMs?: number;
  /**
   * Also subscribe to `__keyevent@0__:expire` (on-time expiry's source of deadlines): one SUBSCRIBE
   * for both channels, confirmed as one. @default false
   */
  readonly ttlEvents?: boolean;
  /** How long one turn of the event loop decodes messages before the socket pauses until the next. @default 2 */
  readonly turnSliceMs?: number;
}

const expiredChannelBytes = Buffer.from(EXPIRED_CHANNEL);
const expireChannelBytes = Buffer.from(EXPIRE_CHANNEL);

export class NodeSubscriber implements SubscriberConnection {
  private readonly client: Redis;
  private readonly address: string;
  private subscribed = false;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastFailure: string | undefined;
  private heartbeat: SubscriptionHeartbeat | undefined;
  private readonly slice: TurnSlice;
  private uncheckedMessages = 0;
  /** The socket is paused for the rest of this turn. */
  private pausedForTurn = false;

  constructor(
    node: ClusterNode,
    private readonly events: SubscriberEvents,
    private readonly options: NodeSubscriberOptions,
  ) {
    this.address = nodeAddress(node);
    this.slice = new TurnSlice(options.clock, options.turnSliceMs ?? SUBSCRIBER_DEFAULTS.turnSliceMs);
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
    this.client.on('ready', () => {
      this.watch();
      this.subscribe();
    });
    this.client.on('close', () => {
      this.heartbeat?.stop();
      this.lost('connection-closed');
    });
    this.client.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (this.closed) return;
      if (channel.equals(expiredChannelBytes)) this.events.onMessage(message);
      else if (channel.equals(expireChannelBytes)) this.events.onTtlSet(message);
      if (++this.uncheckedMessages >= SLICE_CHECK_EVERY) {
        this.uncheckedMessages = 0;
        if (this.slice.spent()) this.pauseForTurn();
      }
    });
    // Connection failures surface as 'error' events and reconnects; the promise adds nothing.
    this.client.connect().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.heartbeat?.stop();
    this.subscribed = false;
    // disconnect(), not QUIT: a node that is being removed may be dead or frozen, and QUIT would wait.
    this.client.disconnect();
  }

  /**
   * Stops reading the socket for the rest of this turn: the chunk being decoded still completes (at
   * most 64 KiB), later chunks wait. A socket replaced meanwhile (a reconnect) is resumed all the same.
   */
  private pauseForTurn(): void {
    if (this.pausedForTurn) return;
    const stream = this.client.stream;
    stream.pause();
    this.pausedForTurn = true;
    setImmediate(() => {
      this.pausedForTurn = false;
      stream.resume();
    });
  }

  /** A heartbeat for the connection that just became ready (its socket is `client.stream`). */
  private watch(): void {
    this.heartbeat?.stop();
    if (this.closed) return;
    const stream = this.client.stream;
    const { clock, logger } = this.options;
    const intervalMs = this.options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const stallTimeoutMs = this.options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    const heartbeat = new SubscriptionHeartbeat({
      clock,
      bytesRead: () => stream.bytesRead,
      ping: () => this.client.ping(),
      onStall: (silentMs) => {
        if (this.closed || this.heartbeat !== heartbeat) return;
        logger.warn('subscription.stalled', {
          node: this.address,
          silentMs,
          boundMs: stallDetectionBoundMs(intervalMs, stallTimeoutMs),
        });
        this.lost('stalled');
        // Destroy the stalled socket: ioredis sees it close and reconnects (its backoff); the next
        // `ready` subscribes again and starts a new heartbeat. Not `disconnect(true)`: that ends the
        // socket gracefully and waits up to 2 s for a FIN that a stalled path never delivers.
        stream.destroy();
      },
      intervalMs,
      stallTimeoutMs,
    });
    this.heartbeat = heartbeat;
    heartbeat.start();
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
    const channels = this.options.ttlEvents ? [EXPIRED_CHANNEL, EXPIRE_CHANNEL] : [EXPIRED_CHANNEL];
    withTimeout(this.client.subscribe(...channels), timeoutMs, `SUBSCRIBE on ${this.address}`).then(
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
