import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';

/**
 * Short-lived connections the local cluster uses for its own work (startup, health polls, chaos
 * controls). One connection per operation, never retried by ioredis: a node that is down or paused
 * fails the operation quickly (connect/command timeouts) and the caller's poll loop decides what
 * to do. RESP2, so INFO and CLUSTER replies are plain strings.
 */

export interface NodeConnectionSettings {
  readonly host: string;
  readonly port: number;
  readonly tls: ConnectionOptions | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly connectTimeoutMs?: number;
  readonly commandTimeoutMs?: number;
}

export function createAdminConnection(settings: NodeConnectionSettings): Redis {
  const client = new Redis({
    host: settings.host,
    port: settings.port,
    ...(settings.tls ? { tls: settings.tls } : {}),
    ...(settings.username ? { username: settings.username } : {}),
    ...(settings.password ? { password: settings.password } : {}),
    protocol: 2,
    lazyConnect: true,
    enableReadyCheck: false,
    disableClientInfo: true,
    connectionName: 'kl-local-admin',
    connectTimeout: settings.connectTimeoutMs ?? 2000,
    commandTimeout: settings.commandTimeoutMs ?? 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // Errors reach the caller through the rejected command or connect(); the listener only keeps an
  // 'error' event from crashing the process.
  client.on('error', () => {});
  return client;
}

/** Runs `use` on a fresh connection to one node and always disconnects. */
export async function withAdminConnection<T>(
  settings: NodeConnectionSettings,
  use: (client: Redis) => Promise<T>,
): Promise<T> {
  const client = createAdminConnection(settings);
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** Reply of `call` as text (RESP2 bulk strings arrive as strings; Buffers are decoded). */
export function replyText(reply: unknown): string {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  return String(reply);
}
