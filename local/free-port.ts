import { createServer } from 'node:net';
import { LocalClusterStateError } from './errors.ts';

/**
 * Free TCP ports on 127.0.0.1 for local Redis nodes.
 *
 * Ports are drawn at random from 20000-31999: below 55535, so the default bus port (port + 10000)
 * would be valid too, and below Linux's ephemeral range (32768+), so an outgoing connection cannot
 * take the port of a node that a test stopped and is about to restart. Each port is checked by
 * binding it; a port handed out once is not handed out again in this process (two clusters started
 * at once cannot collide). Another process can still take a port between the check and redis-server's
 * bind; the caller then retries with new ports.
 */

export const PORT_RANGE = { first: 20000, last: 31999 } as const;

const handedOut = new Set<number>();

export interface FreePortDeps {
  readonly isPortFree: (port: number) => Promise<boolean>;
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

const defaultDeps: FreePortDeps = { isPortFree, random: Math.random };

/** `count` distinct free ports, never one handed out before by this process. */
export async function findFreePorts(count: number, deps: FreePortDeps = defaultDeps): Promise<number[]> {
  const ports: number[] = [];
  const span = PORT_RANGE.last - PORT_RANGE.first + 1;
  let attempts = 0;
  while (ports.length < count) {
    attempts++;
    if (attempts > count * 50 + 100) {
      throw new LocalClusterStateError(
        `no free port found in ${PORT_RANGE.first}-${PORT_RANGE.last} after ${attempts - 1} attempts`,
      );
    }
    const candidate = PORT_RANGE.first + Math.floor(deps.random() * span);
    if (handedOut.has(candidate)) continue;
    // Reserve before the await so that concurrent callers never test the same candidate.
    handedOut.add(candidate);
    if (await deps.isPortFree(candidate)) ports.push(candidate);
  }
  return ports;
}
