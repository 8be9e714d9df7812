import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { silentLogger } from '../../../../core/logger.ts';
import type { HandlerContext, HandlerEvent } from '../../../../worker/handlers/expiry-handler.ts';
import { HandlerLoadError } from '../../../../worker/handlers/handler-errors.ts';
import { loadHandler } from '../../../../worker/handlers/load-handler.ts';
import { logHandler } from '../../../../worker/handlers/log-handler.ts';
import { captureLogger, captureMetrics } from '../support/fakes.ts';

const folder = mkdtempSync(join(tmpdir(), 'kl-handler-test-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function moduleFile(name: string, source: string): string {
  const path = join(folder, name);
  writeFileSync(path, source);
  return path;
}

const deps = {
  cluster: {} as Cluster,
  keys: new KeyspaceKeys('test'),
  logger: silentLogger,
  metrics: captureMetrics().metrics,
};
const event: HandlerEvent = {
  id: 'n:1',
  key: 'k',
  keyBytes: Buffer.from('k'),
  node: '127.0.0.1:7000',
  nodeId: 'n',
  seq: 1,
  receivedAt: 0,
  replayed: false,
};
const ctx: HandlerContext = {
  fencingToken: 1,
  signal: new AbortController().signal,
  leaseValid: () => true,
  log: silentLogger,
};

describe('loadHandler', () => {
  it('gives the built-in log handler for HANDLER=log', async () => {
    const loaded = await loadHandler({ kind: 'log' }, deps);
    expect(loaded).toMatchObject({ name: 'log', loadError: undefined });
    expect(loaded.handler).toBe(logHandler);
  });

  it('uses a module default export', async () => {
    const path = moduleFile(
      'default.mjs',
      'export default async (event, ctx) => { globalThis.__klSeen = [event.key, ctx.fencingToken]; };',
    );
    const loaded = await loadHandler({ kind: 'module', path }, deps);
    await loaded.handler(event, ctx);
    expect((globalThis as { __klSeen?: unknown }).__klSeen).toEqual(['k', 1]);
  });

  it('uses a named export `handle` when there is no default function', async () => {
    const path = moduleFile(
      'named.mjs',
      'export const handle = (event) => { globalThis.__klNamed = event.node; };',
    );
    const loaded = await loadHandler({ kind: 'module', path }, deps);
    await loaded.handler(event, ctx);
    expect((globalThis as { __klNamed?: unknown }).__klNamed).toBe('127.0.0.1:7000');
  });

  it('reports a module that throws at import, and fails every call with the load error', async () => {
    const path = moduleFile('broken.mjs', "throw new Error('broken at import');");
    const log = captureLogger();
    const loaded = await loadHandler({ kind: 'module', path }, { ...deps, logger: log.logger });
    expect(loaded.loadError).toBeInstanceOf(HandlerLoadError);
    expect(log.events('handler.load_failed')).toEqual([
      expect.objectContaining({
        level: 'error',
        path,
        error: expect.objectContaining({ cause: expect.objectContaining({ message: 'broken at import' }) }),
      }),
    ]);
    expect(() => loaded.handler(event, ctx)).toThrow(HandlerLoadError);
  });

  it('reports a module without a handler export', async () => {
    const path = moduleFile('empty.mjs', 'export const notAHandler = 1;');
    const loaded = await loadHandler({ kind: 'module', path }, deps);
    expect(loaded.loadError?.message).toContain('exports no handler');
  });
});
