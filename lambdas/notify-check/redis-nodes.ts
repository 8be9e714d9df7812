import { Redis } from 'ioredis';
import type { RedisConnectionConfig, RedisNodeAddress } from '../../core/config.ts';
import { withTimeout } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { connectExplained, nodeRedisOptions } from '../../core/redis-client.ts';
import { nodeAddress } from '../../core/topology.ts';
import { NodeUnreachableError } from './errors.ts';

/**
 * Dedicated, short-lived connections to single nodes (no Cluster client): the run must talk to one
 * exact node at a time (CONFIG is node-local, keyspace events are node-local) and must bound every
 * step. The interfaces are what the run depends on, so tests can put a fake cluster behind them.
 */

export interface NodeConnection {
  readonly address: string;
  /** One command to this node; rejects with the server's reply error or core's TimeoutError. */
  call(command: string, args: readonly string[], timeoutMs: number): Promise<unknown>;
  /** Drops the connection at once (no round trip that a stalled node could hold). Never throws. */
  close(): Promise<void>;
}

export interface SubscriberConnection {
  readonly address: string;
  /** Subscribes to `channel`; `onMessage` then receives every message published on it by this node. */
  subscribe(channel: string, onMessage: (message: string) => void, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface RedisNodeFactory {
  /** Opens a connection; rejects with NodeUnreachableError when it is not ready within `timeoutMs`. */
  connect(address: RedisNodeAddress, timeoutMs: number): Promise<NodeConnection>;
  connectSubscriber(address: RedisNodeAddress, timeoutMs: number): Promise<SubscriberConnection>;
}

/** The production factory: ioredis node clients that never reconnect and queue nothing offline. */
export function createIoredisNodeFactory(config: RedisConnectionConfig, logger: Logger): RedisNodeFactory {
  const open = async (address: RedisNodeAddress, timeoutMs: number, role: string): Promise<Redis> => {
    const name = nodeAddress(address);
    const client = new Redis({
      ...nodeRedisOptions(config, {
        logger,
        name: `notify-check-${role}`,
        connectTimeoutMs: timeoutMs,
        maxRetries: 0,
      }),
      host: address.host,
      port: address.port,
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResubscribe: false,
    });
    // The run reports every failure itself; this listener only keeps an 'error' event from crashing
    // the process and leaves a trace at debug level.
    client.on('error', (error: Error) => logger.debug('redis.error', { node: name, role, error }));
    try {
      // connectExplained: the cause (WRONGPASS, a certificate error) rather than "Connection is closed."
      await withTimeout(connectExplained(client), timeoutMs, `connect to ${name}`);
      return client;
    } catch (cause) {
      client.disconnect();
      throw new NodeUnreachableError(name, { cause });
    }
  };

  return {
    async connect(address, timeoutMs) {
      const client = await open(address, timeoutMs, 'cmd');
      return {
        address: nodeAddress(address),
        call: (command, args, callTimeoutMs) =>
          withTimeout(
            client.call(command, [...args]),
            callTimeoutMs,
            `${command} on ${nodeAddress(address)}`,
          ),
        close: async () => client.disconnect(),
      };
    },
    async connectSubscriber(address, timeoutMs) {
      const client = await open(address, timeoutMs, 'sub');
      return {
        address: nodeAddress(address),
        subscribe: async (channel, onMessage, subscribeTimeoutMs) => {
          client.on('message', (received: string, message: string) => {
            if (received === channel) onMessage(message);
          });
          await withTimeout(
            client.subscribe(channel),
            subscribeTimeoutMs,
            `SUBSCRIBE on ${nodeAddress(address)}`,
          );
        },
        close: async () => client.disconnect(),
      };
    },
  };
}

/**
 * One command connection per node for the whole run, shared by enforcement, canary and leader read.
 * A failed connect is remembered: the node counts as unreachable for this run and is not retried
 * (each retry would cost another connect timeout).
 */
export class NodePool {
  private readonly connections = new Map<string, Promise<NodeConnection>>();

  constructor(private readonly factory: RedisNodeFactory) {}

  get(address: RedisNodeAddress, timeoutMs: number): Promise<NodeConnection> {
    const key = nodeAddress(address);
    let connection = this.connections.get(key);
    if (!connection) {
      connection = this.factory.connect(address, timeoutMs);
      // The pool holds the promise; callers await it. This catch only prevents an unhandled rejection
      // when no caller is waiting any more.
      connection.catch(() => {});
      this.connections.set(key, connection);
    }
    return connection;
  }

  /** Closes every connection that was opened; idempotent. */
  async closeAll(): Promise<void> {
    const pending = [...this.connections.values()];
    this.connections.clear();
    const settled = await Promise.allSettled(pending);
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.close() : undefined)));
  }
}
