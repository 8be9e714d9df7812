import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerProcess } from './helpers.ts';

/**
 * `npm run worker` with an invalid environment: exit 78, every problem on stderr, and no connection
 * attempted. REDIS_NODES points at a local TCP listener that counts connections.
 */
describe('npm run worker with invalid configuration', () => {
  let server: Server;
  let port: number;
  const connections: Socket[] = [];

  beforeAll(async () => {
    server = createServer((socket) => {
      connections.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('exits 78 listing every problem and connects to nothing', async () => {
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      REDIS_NODES: `127.0.0.1:${port}`,
      LEASE_TTL_MS: 'soon',
      HANDLER_CONCURRENCY: '0',
      LOG_LEVEL: 'loud',
      HANDLER: './no/such/handler.mjs',
    };
    const worker = WorkerProcess.command('invalid', env, ['npm', 'run', '--silent', 'worker']);
    const exit = await worker.exited;
    expect(exit.code).toBe(78);
    for (const variable of ['LEASE_TTL_MS', 'HANDLER_CONCURRENCY', 'LOG_LEVEL'])
      expect(worker.stderr).toContain(variable);
    expect(worker.stderr).toContain('invalid configuration');
    expect(worker.lines).toEqual([]);
    expect(connections).toHaveLength(0);
  });

  it('reports the lease timing rule and an unreadable HANDLER together', async () => {
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      REDIS_NODES: `127.0.0.1:${port}`,
      LEASE_TTL_MS: '1000',
      LEASE_RENEW_DEADLINE_MS: '2000',
      HANDLER: './no/such/handler.mjs',
    };
    const worker = WorkerProcess.command('invalid-2', env, ['npm', 'run', '--silent', 'worker']);
    expect((await worker.exited).code).toBe(78);
    expect(worker.stderr).toContain('LEASE_RENEW_DEADLINE_MS');
    expect(worker.stderr).toContain('HANDLER');
    expect(connections).toHaveLength(0);
  });
});
