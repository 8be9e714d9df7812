import type { Cluster, Redis } from 'ioredis';
import { withTimeout } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';

/** What a leader announces on `keys.releasedChannel` right after a graceful release. */
export interface ReleasedMessage {
  readonly workerId: string;
  /**
   * The releasing process (worker/worker-id.ts `newInstanceId`): a receiver ignores only its own
   * releases, even when another process shares its WORKER_ID. Absent from workers that predate it.
   */
  readonly instanceId?: string;
  readonly fencingToken: number;
  readonly releasedAt: string;
}

/**
 * The hand-over signal: followers try to acquire at once when a message arrives instead of waiting
 * for their next retry. Pub/sub is fire-and-forget; a lost message only costs the follower one retry
 * period, never safety (the lease decides, not the message).
 */
export interface ReleasedChannel {
  /** Registers `listener`; returns the function that removes it. Listeners must not throw. */
  onReleased(listener: (message: ReleasedMessage) => void): () => void;
  publish(message: ReleasedMessage): Promise<void>;
}

export function decodeReleasedMessage(text: string): ReleasedMessage | undefined {
  try {
    const data = JSON.parse(text) as Partial<ReleasedMessage>;
    if (typeof data.workerId !== 'string' || typeof data.fencingToken !== 'number') return undefined;
    return {
      workerId: data.workerId,
      ...(typeof data.instanceId === 'string' ? { instanceId: data.instanceId } : {}),
      fencingToken: data.fencingToken,
      releasedAt: String(data.releasedAt ?? ''),
    };
  } catch {
    return undefined;
  }
}

/**
 * The channel over Redis pub/sub. `subscriber` is a connection of its own (a subscribed connection
 * cannot run other commands); an ioredis Cluster in subscriber mode picks one node and moves to
 * another when it is lost. A plain PUBLISH is broadcast by the cluster bus to every node, so one
 * subscribed node, whichever it is, hears every release.
 */
export class RedisReleasedChannel implements ReleasedChannel {
  private readonly listeners = new Set<(message: ReleasedMessage) => void>();
  private closed = false;

  private constructor(
    private readonly subscriber: Cluster | Redis,
    private readonly publisher: Cluster | Redis,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Subscribes. Resolves once the first attempt settled, whether it succeeded or not: the channel
   * only speeds up a hand-over (followers retry every LEASE_RETRY_MS anyway), so a refused or failed
   * subscription (an ACL without the channel, a node down) must not stop the worker. It is logged
   * once per distinct error (`leader.released_subscribe_failed`) and retried in the background with
   * backoff up to 30 s.
   */
  static async open(options: {
    readonly subscriber: Cluster | Redis;
    readonly publisher: Cluster | Redis;
    readonly channel: string;
    readonly logger: Logger;
    /** Bound of a publish (stop() waits for it). */
    readonly timeoutMs?: number;
    readonly subscribeTimeoutMs?: number;
  }): Promise<RedisReleasedChannel> {
    const timeoutMs = options.timeoutMs ?? 1000;
    const channel = new RedisReleasedChannel(
      options.subscriber,
      options.publisher,
      options.channel,
      options.logger,
      timeoutMs,
    );
    options.subscriber.on('message', channel.onMessage);
    await channel.subscribeWithRetry(options.subscribeTimeoutMs ?? 10_000, 1000, undefined);
    return channel;
  }

  private retryTimer: NodeJS.Timeout | undefined;

  private async subscribeWithRetry(
    boundMs: number,
    delayMs: number,
    lastMessage: string | undefined,
  ): Promise<void> {
    if (this.closed) return;
    try {
      await withTimeout(this.subscriber.subscribe(this.channel), boundMs, `subscribe to ${this.channel}`);
      if (lastMessage !== undefined)
        this.logger.info('leader.released_subscribed', { channel: this.channel });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message !== lastMessage) {
        this.logger.warn('leader.released_subscribe_failed', {
          channel: this.channel,
          error,
          retryInMs: delayMs,
          effect: 'hand-overs wait for the followers’ next retry instead of happening at once',
        });
      }
      if (this.closed) return;
      this.retryTimer = setTimeout(() => {
        this.subscribeWithRetry(boundMs, Math.min(delayMs * 2, 30_000), message).catch(() => {});
      }, delayMs);
      this.retryTimer.unref();
    }
  }

  private readonly onMessage = (channel: string, text: string): void => {
    if (channel !== this.channel || this.closed) return;
    const message = decodeReleasedMessage(text);
    if (!message) {
      this.logger.debug('leader.released_message_ignored', { channel });
      return;
    }
    for (const listener of this.listeners) {
      try {
        listener(message);
      } catch (error) {
        this.logger.error('leader.callback_failed', { callback: 'onReleased', error });
      }
    }
  };

  onReleased(listener: (message: ReleasedMessage) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async publish(message: ReleasedMessage): Promise<void> {
    await withTimeout(
      this.publisher.publish(this.channel, JSON.stringify(message)),
      this.timeoutMs,
      `publish on ${this.channel}`,
    );
  }

  /** Stops delivering and unsubscribes; the connections belong to the caller. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.listeners.clear();
    this.subscriber.off('message', this.onMessage);
    await withTimeout(this.subscriber.unsubscribe(this.channel), this.timeoutMs, 'unsubscribe').catch(
      () => {},
    );
  }
}
