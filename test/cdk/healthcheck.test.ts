/**
 * worker/healthcheck.ts, the ECS container health command: exit 0 only on HTTP 200 from the
 * worker's /healthz within 2 s. Real HTTP on 127.0.0.1 with an ephemeral port.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_HEALTH_PORT,
  HEALTH_TIMEOUT_MS,
  HealthPortError,
  healthUrl,
  probe,
  runHealthcheck,
} from '../../worker/healthcheck.ts';

let server: Server | undefined;
afterEach(async () => {
  const s = server;
  server = undefined;
  if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
});

/** Serves /healthz with `status`, after `delayMs`; returns the port and the paths requested. */
async function serve(status: number, delayMs = 0): Promise<{ port: number; paths: string[] }> {
  const paths: string[] = [];
  const srv = createServer((req, res) => {
    paths.push(req.url ?? '');
    const timer = setTimeout(() => {
      res.statusCode = status;
      res.end(status === 200 ? 'ok' : 'not subscribed');
    }, delayMs);
    res.on('close', () => clearTimeout(timer));
  });
  server = srv;
  srv.on('error', () => {});
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { port: (srv.address() as AddressInfo).port, paths };
}

/** A port nobody listens on: bind, read the port, close. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('healthUrl', () => {
  it('defaults to port 8081 and honours HEALTH_PORT', () => {
    expect(DEFAULT_HEALTH_PORT).toBe(8081);
    expect(healthUrl({})).toBe('http://127.0.0.1:8081/healthz');
    expect(healthUrl({ HEALTH_PORT: ' 9000 ' })).toBe('http://127.0.0.1:9000/healthz');
  });

  it('rejects a port it cannot call', () => {
    for (const value of ['0', '65536', 'abc', '80.5', '-1']) {
      expect(() => healthUrl({ HEALTH_PORT: value }), value).toThrow(HealthPortError);
    }
  });
});

describe('probe and runHealthcheck', () => {
  it('is healthy on 200 from GET /healthz', async () => {
    const { port, paths } = await serve(200);
    expect(await probe(`http://127.0.0.1:${port}/healthz`)).toEqual({ healthy: true });
    expect(await runHealthcheck({ HEALTH_PORT: String(port) })).toBe(0);
    expect(paths).toEqual(['/healthz', '/healthz']);
  });

  it('is unhealthy on 503', async () => {
    const { port } = await serve(503);
    expect(await probe(`http://127.0.0.1:${port}/healthz`)).toEqual({ healthy: false, reason: 'HTTP 503' });
    expect(await runHealthcheck({ HEALTH_PORT: String(port) })).toBe(1);
  });

  it('is unhealthy when nothing listens', async () => {
    const port = await closedPort();
    expect((await probe(`http://127.0.0.1:${port}/healthz`)).healthy).toBe(false);
    expect(await runHealthcheck({ HEALTH_PORT: String(port) })).toBe(1);
  });

  it('gives up after its timeout when the worker does not answer', async () => {
    const { port } = await serve(200, 5_000);
    const started = performance.now();
    const result = await probe(`http://127.0.0.1:${port}/healthz`, 200);
    const elapsedMs = performance.now() - started;
    expect(result.healthy).toBe(false);
    expect(elapsedMs).toBeGreaterThanOrEqual(150);
    expect(elapsedMs).toBeLessThan(3_000);
    // The production timeout stays well inside the 5 s ECS health check timeout.
    expect(HEALTH_TIMEOUT_MS).toBe(2000);
  });

  it('fails on an invalid HEALTH_PORT without calling anything', async () => {
    expect(await runHealthcheck({ HEALTH_PORT: 'nope' })).toBe(1);
  });
});
