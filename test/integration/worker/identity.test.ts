import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { type LogLine, randomSuffix, sleep, timeOf, WorkerProcess, workerEnv } from './helpers.ts';

/**
 * Sequence 11 of issue 11 with real processes: two workers started with one WORKER_ID by mistake.
 * The later one stands by (logs `worker.duplicate_id` once, never competes) until the other stops.
 */

/** The registry's publish interval (worker/leader/coverage-registry.ts default). */
const PUBLISH_INTERVAL_MS = 500;
/** The stated bound: 3 publish intervals after the later start. */
const DETECTION_BOUND_MS = 3 * PUBLISH_INTERVAL_MS;
/** Scheduling and Redis round trips of two child processes on a loaded 2-core machine. */
const PROCESS_MARGIN_MS = 1500;
/** The worker's lease timings (defaults): a newcomer that led steps down at its next renewal. */
const LEASE_RENEW_INTERVAL_MS = 1000;
const LEASE_TTL_MS = 3000;
const LEASE_RETRY_MS = 250;
/**
 * How long both run before "the newcomer never competes" counts: three renewals of the first, in
 * which a newcomer that did compete would have tried about twelve times (every LEASE_RETRY_MS).
 */
const OVERLAP_MS = 3 * LEASE_RENEW_INTERVAL_MS;

const leaderEvents = (w: WorkerProcess) =>
  w.lines.filter(
    (l) => l.event === 'leader.acquired' || l.event === 'leader.lost' || l.event === 'leader.released',
  );
const isLeading = (w: WorkerProcess) => leaderEvents(w).at(-1)?.event === 'leader.acquired';
const duplicateErrors = (w: WorkerProcess) =>
  w.lines.filter((l) => l.event === 'worker.duplicate_id' && l.level === 'error');

describe('sequence 11: two worker processes with one WORKER_ID', () => {
  let cluster: LocalRedisCluster;
  const workers: WorkerProcess[] = [];
  const figures: Record<string, number> = {};
  const start = (name: string, leaderName: string, workerId: string) => {
    const worker = WorkerProcess.start(
      name,
      workerEnv(cluster, { LEADER_NAME: leaderName, WORKER_ID: workerId }),
    );
    workers.push(worker);
    return worker;
  };

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({
      primaries: 3,
      replicasPerPrimary: 0,
      notifyKeyspaceEvents: 'Ex',
    });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await cluster?.stop();
    console.log(`[identity integration figures] ${JSON.stringify(figures)}`);
  });

  it('sequence 11: the newcomer says so once, never competes while the first runs, and takes over when it stops', async () => {
    const leaderName = `itid-${randomSuffix()}`;
    const first = start('first', leaderName, 'twin');
    await first.waitForEvent('leader.acquired', 30_000);
    const newcomer = start('newcomer', leaderName, 'twin');
    const started = await newcomer.waitForEvent('worker.started', 30_000);
    const line = await newcomer.waitForEvent(
      'worker.duplicate_id',
      DETECTION_BOUND_MS + PROCESS_MARGIN_MS,
      (l) => l.level === 'error',
    );
    figures.detectionAfterStartedMs = timeOf(line) - timeOf(started);
    expect(line).toMatchObject({
      role: 'newcomer',
      workerId: 'twin',
      action: expect.stringContaining('WORKER_ID'),
    });
    // Both run for a while: the first keeps leading, the newcomer never competes, one error line.
    const overlapUntil = timeOf(line) + OVERLAP_MS;
    while (Date.now() < overlapUntil) await sleep(100);
    expect(isLeading(first)).toBe(true);
    expect(leaderEvents(newcomer)).toEqual([]);
    expect(duplicateErrors(newcomer)).toHaveLength(1);
    expect(duplicateErrors(first)).toEqual([]);

    const stopAt = Date.now();
    first.signal('SIGTERM');
    expect((await first.exited).code).toBe(0);
    await newcomer.waitForEvent('worker.duplicate_id_cleared', 5000);
    const acquired = await newcomer.waitForEvent('leader.acquired', 5000);
    figures.takeOverAfterSigtermMs = timeOf(acquired) - stopAt;
    newcomer.signal('SIGTERM');
    expect((await newcomer.exited).code).toBe(0);
  });

  it('sequence 11: started together, exactly one stands by (stepping down if it led) and the other leads', async () => {
    const leaderName = `itid-${randomSuffix()}`;
    const pair = [start('left', leaderName, 'twin2'), start('right', leaderName, 'twin2')];
    await Promise.all(pair.map((w) => w.waitForEvent('worker.started', 30_000)));
    const lastStarted = Math.max(...pair.map((w) => timeOf(w.events('worker.started')[0] as LogLine)));
    const deadline = lastStarted + DETECTION_BOUND_MS + PROCESS_MARGIN_MS;
    while (Date.now() < deadline && !pair.some((w) => duplicateErrors(w).length > 0)) await sleep(50);
    const standing = pair.filter((w) => duplicateErrors(w).length > 0);
    expect(standing, pair.map((w) => w.tail(6)).join('\n')).toHaveLength(1);
    const [newcomer] = standing as [WorkerProcess];
    const other = pair.find((w) => w !== newcomer) as WorkerProcess;
    // If the newcomer won the lease before it knew, it steps down at its next renewal; the other
    // takes over at once on its `released` (which names another instance) or at its next retry.
    const settledBy =
      Date.now() + LEASE_RENEW_INTERVAL_MS + LEASE_TTL_MS + LEASE_RETRY_MS + PROCESS_MARGIN_MS;
    while (Date.now() < settledBy && !(isLeading(other) && !isLeading(newcomer))) await sleep(50);
    expect(isLeading(newcomer)).toBe(false);
    expect(isLeading(other)).toBe(true);
    // Every lease the newcomer won before it knew ended for that reason (none, when it never won one).
    const lost = newcomer.events('leader.lost');
    expect(lost.map((l) => l.reason)).toEqual(
      newcomer.events('leader.acquired').map(() => 'duplicate-worker-id'),
    );
    expect(duplicateErrors(other)).toEqual([]);
    figures.togetherNewcomerLedFirst = lost.length;
  });
});
