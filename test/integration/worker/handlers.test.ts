import { fileURLToPath } from 'node:url';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { metricTotal, randomSuffix, sleep, testClient, WorkerProcess, workerEnv } from './helpers.ts';

/**
 * Module handlers in a real worker: failures and timeouts are logged and counted without touching
 * leadership; KEY_PATTERN and the project's own keys decide what reaches the handler; a module that
 * fails at import is reported and the worker still leads.
 */
const FAULTY = fileURLToPath(new URL('./fixtures/faulty-handler.ts', import.meta.url));
const BROKEN = fileURLToPath(new URL('./fixtures/broken-handler.ts', import.meta.url));
/** Bound on every call of a test's keys ending (the hanging ones end by HANDLER_TIMEOUT_MS, 300 ms). */
const SETTLE_BOUND_MS = 20_000;

describe('module handlers', () => {
  let cluster: LocalRedisCluster;
  let client: Cluster;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      primaries: 3,
      replicasPerPrimary: 0,
      nodeTimeoutMs: 1000,
      notifyKeyspaceEvents: 'Ex',
    });
    client = testClient(cluster);
  });

  afterAll(async () => {
    client?.disconnect();
    await Promise.all(workers.map((w) => w.kill()));
    await cluster?.stop();
  });

  it('failures and timeouts are logged and counted, leadership is kept, other events are processed, filters hold', async () => {
    const prefix = `h-${randomSuffix()}`;
    const leaderName = `ith-${randomSuffix()}`;
    const worker = WorkerProcess.start(
      'h1',
      workerEnv(cluster, {
        LEADER_NAME: leaderName,
        HANDLER: FAULTY,
        HANDLER_TIMEOUT_MS: '300',
        HANDLER_CONCURRENCY: '4',
        // Matches the test's keys and also the own key below, which must still never be handled.
        KEY_PATTERN: `*${prefix}*`,
      }),
    );
    workers.push(worker);
    await worker.waitForEvent('leader.acquired', 30_000);

    const ok = Array.from({ length: 20 }, (_, i) => `${prefix}:ok:${i}`);
    const throws = Array.from({ length: 5 }, (_, i) => `${prefix}:throws:${i}`);
    const rejects = Array.from({ length: 5 }, (_, i) => `${prefix}:rejects:${i}`);
    // More hanging calls than slots: only the timeout frees the slots for the rest.
    const hangs = Array.from({ length: 8 }, (_, i) => `${prefix}:hangs:${i}`);
    const outside = Array.from({ length: 5 }, (_, i) => `other-${randomSuffix()}:${i}`);
    const own = [`{kl:${prefix}}:canary:1`, `{kl:${leaderName}}:something-${prefix}`];
    const binary = Buffer.concat([Buffer.from(`${prefix}:ok:bin:`), Buffer.from([0xff, 0x00, 0xfe])]);

    for (const key of [...hangs, ...throws, ...rejects, ...outside, ...own])
      await client.set(key, '1', 'PX', 50);
    await client.set(binary, '1', 'PX', 50);
    for (const key of ok) await client.set(key, '1', 'PX', 50);

    const expectedHandled = ok.length + 1;
    const expectedFailed = throws.length + rejects.length + hangs.length;
    // Every call has ended, the hanging ones by their timeout: nothing is still to come from them. A
    // late extra call would still show: EventsProcessed at exit is compared with `processed` below.
    const deadline = Date.now() + SETTLE_BOUND_MS;
    while (
      Date.now() < deadline &&
      (worker.events('key.processed').length < expectedHandled ||
        worker.events('handler.failed').length < expectedFailed)
    )
      await sleep(200);

    const processed = worker.events('key.processed').map((l) => l.key);
    expect(processed.sort()).toEqual([...ok, binary.toString('utf8')].sort());
    const binaryLine = worker.events('key.processed').find((l) => l.keyBase64 !== undefined);
    expect(Buffer.from(binaryLine?.keyBase64 as string, 'base64').equals(binary)).toBe(true);

    const failed = worker.events('handler.failed');
    const failedKeys = (part: string) => failed.filter((l) => (l.key as string).includes(part));
    expect(failedKeys(':throws:').map((l) => (l.error as { message: string }).message)).toEqual(
      throws.map(() => 'fixture throws'),
    );
    expect(failedKeys(':rejects:').map((l) => (l.error as { message: string }).message)).toEqual(
      rejects.map(() => 'fixture rejects'),
    );
    expect(failedKeys(':hangs:').map((l) => (l.error as { code: string }).code)).toEqual(
      hangs.map(() => 'HANDLER_TIMEOUT'),
    );
    expect(failed).toHaveLength(expectedFailed);

    // What reached the handler at all: never a key outside KEY_PATTERN, never an own key.
    const called = new Set(
      worker.events('fixture.called').map((l) => Buffer.from(l.keyHex as string, 'hex').toString('latin1')),
    );
    for (const key of [...outside, ...own]) expect(called.has(key)).toBe(false);
    expect(called.size).toBe(ok.length + 1 + throws.length + rejects.length + hangs.length);

    // Leadership untouched.
    expect(worker.events('leader.acquired')).toHaveLength(1);
    expect(worker.events('leader.lost')).toEqual([]);

    // Shutdown flushes metrics: the counters match the log.
    worker.signal('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(metricTotal(worker, 'HandlerFailures')).toBe(failed.length);
    expect(metricTotal(worker, 'EventsProcessed')).toBe(processed.length);
    expect(metricTotal(worker, 'EventsReceived')).toBeGreaterThanOrEqual(
      called.size + outside.length + own.length,
    );
    expect(metricTotal(worker, 'ProcessingLatencyMs')).toBe(processed.length);
  });

  it('a module that fails at import is reported; the worker still leads and counts each event as a failure', async () => {
    const prefix = `b-${randomSuffix()}`;
    const worker = WorkerProcess.start(
      'b1',
      workerEnv(cluster, {
        LEADER_NAME: `itb-${randomSuffix()}`,
        HANDLER: BROKEN,
        KEY_PATTERN: `${prefix}:*`,
      }),
    );
    workers.push(worker);
    const loadFailed = await worker.waitForEvent('handler.load_failed', 30_000);
    expect(loadFailed).toMatchObject({ level: 'error', path: BROKEN });
    await worker.waitForEvent('leader.acquired', 30_000);
    for (let i = 0; i < 5; i++) await client.set(`${prefix}:${i}`, '1', 'PX', 50);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && worker.events('handler.failed').length < 5) await sleep(200);
    const failed = worker.events('handler.failed');
    expect(failed).toHaveLength(5);
    expect(failed.every((l) => (l.error as { code: string }).code === 'HANDLER_LOAD_FAILED')).toBe(true);
    expect(worker.events('key.processed')).toEqual([]);
    expect(worker.events('leader.lost')).toEqual([]);
    worker.signal('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  });

  describe('shutdown with handler calls that never finish', () => {
    const startHanging = async (name: string) => {
      const prefix = `s-${randomSuffix()}`;
      const worker = WorkerProcess.start(
        name,
        workerEnv(cluster, {
          LEADER_NAME: `its-${randomSuffix()}`,
          HANDLER: FAULTY,
          HANDLER_TIMEOUT_MS: '60000',
          KEY_PATTERN: `${prefix}:*`,
        }),
      );
      workers.push(worker);
      await worker.waitForEvent('leader.acquired', 30_000);
      for (let i = 0; i < 3; i++) await client.set(`${prefix}:hangs:${i}`, '1', 'PX', 50);
      await worker.waitFor((w) => w.events('fixture.called')[2], 10_000, 'three hanging calls');
      return worker;
    };

    it('SIGTERM: waits for running calls up to the bound, aborts them, releases, exits 0 within ~5 s', async () => {
      const worker = await startHanging('s1');
      const signalledAt = Date.now();
      worker.signal('SIGTERM');
      expect(await worker.exited).toEqual({ code: 0, signal: null });
      const tookMs = Date.now() - signalledAt;
      expect(tookMs).toBeGreaterThanOrEqual(1900); // the 2 s drain bound was honoured...
      expect(tookMs).toBeLessThan(5000); // ...and nothing else waited on the hung calls
      expect(worker.events('worker.stopped')).toEqual([
        expect.objectContaining({ drained: false, abortedCalls: 3, wasLeader: true }),
      ]);
      expect(worker.events('handler.failed').map((l) => (l.error as { code: string }).code)).toEqual([
        'HANDLER_ABORTED',
        'HANDLER_ABORTED',
        'HANDLER_ABORTED',
      ]);
      // Order: calls aborted, then the lease released, then stopped.
      const at = (event: string) => Date.parse(worker.events(event)[0]?.time as string);
      expect(at('leader.released')).toBeGreaterThanOrEqual(at('handler.failed'));
      expect(at('worker.stopped')).toBeGreaterThanOrEqual(at('leader.released'));
    });

    it('a second signal during shutdown exits at once with 128 + signal number', async () => {
      const worker = await startHanging('s2');
      worker.signal('SIGTERM');
      await worker.waitForEvent('worker.stopping', 5000);
      const secondAt = Date.now();
      worker.signal('SIGINT');
      expect(await worker.exited).toEqual({ code: 130, signal: null });
      expect(Date.now() - secondAt).toBeLessThan(1000);
    });
  });
});
