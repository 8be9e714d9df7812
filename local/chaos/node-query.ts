import { withTimeout } from '../../core/errors.ts';
import { replyText, withAdminConnection } from '../admin-connection.ts';
import type { LocalRedisCluster } from '../cluster.ts';

/**
 * One command on one node of the local cluster over a short-lived admin connection (RESP2, never
 * retried), bounded as a whole: a dead or paused node fails the call after `timeoutMs` instead of
 * holding the caller. Returns the reply as text when it is a string, else as is.
 */
export function queryNode(
  cluster: LocalRedisCluster,
  port: number,
  args: readonly (string | number)[],
  timeoutMs = 2000,
): Promise<unknown> {
  const options = cluster.clientOptions();
  const [command, ...rest] = args;
  return withTimeout(
    withAdminConnection(
      {
        host: '127.0.0.1',
        port,
        tls: options.tls,
        username: options.username,
        password: options.password,
        connectTimeoutMs: timeoutMs,
        commandTimeoutMs: timeoutMs,
      },
      async (client) => {
        const reply = await client.call(String(command), ...rest.map(String));
        return typeof reply === 'string' || Buffer.isBuffer(reply) ? replyText(reply) : reply;
      },
    ),
    timeoutMs + 500,
    `${String(command)} on :${port}`,
  );
}
