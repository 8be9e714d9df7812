import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { RedisConnectionConfig, RedisNodeAddress } from './config.ts';
import type { Logger } from './logger.ts';

/**
 * Builds ioredis clients from the parsed configuration, the same way for the worker and the Lambda.
 * Every client gets an `error` listener (an unhandled 'error' event would crash the process) that logs
 * once per distinct message, so a wrong password or CA gives one clear line, not a storm.
 */

export interface ClientFactoryOptions {
  readonly logger: Logger;
  /** Shown in logs and as CLIENT SETNAME (`kl-<name>`). */
  readonly name: string;
  /** Per-command bound; undefined leaves ioredis' default (none). */
  readonly commandTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** For one-shot callers (the Lambda): give up instead of retrying forever. */
  readonly maxRetries?: number;
}

function tlsOptions(config: RedisConnectionConfig): ConnectionOptions | undefined {
  if (!config.tls) return undefined;
  return config.tlsCaFile ? { ca: readFileSync(config.tlsCaFile) } : {};
}

/** Options for a connection to one node, shared by both factories. */
export function nodeRedisOptions(config: RedisConnectionConfig, options: ClientFactoryOptions): RedisOptions {
  const tls = tlsOptions(config);
  return {
    ...(tls ? { tls } : {}),
    ...(config.username ? { username: config.username } : {}),
    ...(config.password ? { password: config.password } : {}),
    connectionName: `kl-${options.name}`,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    ...(options.commandTimeoutMs ? { commandTimeout: options.commandTimeoutMs } : {}),
    // Offline commands are queued only while a connection is being (re)established; the callers bound
    // their own waits, so a queue that grows without limit is not possible.
    enableOfflineQueue: true,
    maxRetriesPerRequest: options.maxRetries ?? 2,
    retryStrategy: (times: number) =>
      options.maxRetries !== undefined && times > options.maxRetries
        ? null
        : Math.min(100 * 2 ** Math.min(times, 5), 3000),
  };
}

/** Logs a connection error once per distinct message until the connection is ready again. */
export function attachErrorLogging(
  emitter: NodeJS.EventEmitter,
  logger: Logger,
  fields: Record<string, unknown>,
): void {
  let lastMessage: string | undefined;
  emitter.on('error', (error: Error) => {
    if (error.message === lastMessage) return;
    lastMessage = error.message;
    logger.warn('redis.error', { ...fields, error });
  });
  emitter.on('ready', () => {
    lastMessage = undefined;
  });
}

export function createClusterClient(config: RedisConnectionConfig, options: ClientFactoryOptions): Cluster {
  const redisOptions = nodeRedisOptions(config, options);
  const clusterOptions: ClusterOptions = {
    redisOptions,
    // ElastiCache with TLS: the certificate names the configuration endpoint's hostnames; resolving
    // them here would make ioredis connect by IP and fail the host name check (ioredis README).
    dnsLookup: (address, callback) => callback(null, address),
    enableOfflineQueue: true,
    enableReadyCheck: true,
    slotsRefreshTimeout: 2000,
    clusterRetryStrategy: (times: number) =>
      options.maxRetries !== undefined && times > options.maxRetries
        ? null
        : Math.min(100 * 2 ** Math.min(times, 5), 3000),
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
  };
  const cluster = new Cluster(
    config.nodes.map((n) => ({ host: n.host, port: n.port })),
    clusterOptions,
  );
  attachErrorLogging(cluster, options.logger, { client: options.name });
  return cluster;
}

export function createNodeClient(
  address: RedisNodeAddress,
  config: RedisConnectionConfig,
  options: ClientFactoryOptions & { readonly lazyConnect?: boolean },
): Redis {
  const client = new Redis({
    ...nodeRedisOptions(config, options),
    host: address.host,
    port: address.port,
    lazyConnect: options.lazyConnect ?? false,
  });
  attachErrorLogging(client, options.logger, {
    client: options.name,
    node: `${address.host}:${address.port}`,
  });
  return client;
}

/** Closes a client without throwing (QUIT when connected, else disconnect). */
export async function closeQuietly(client: Redis | Cluster): Promise<void> {
  try {
    if (client.status === 'ready') await client.quit();
    else client.disconnect();
  } catch {
    client.disconnect();
  }
}
