import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import {
  KeyWriter,
  type LogLine,
  randomSuffix,
  testClient,
  timeOf,
  WorkerProcess,
  workerEnv,
} from './helpers.ts';

/**
 * REPLAY_WINDOW_MS=0 runs the same path as replay on (docs/worker.md, "The path of an event"): only
 * the leader hands events to its handler, and `id` keeps its one meaning, the shared numbering of the
 * processed marks. Two workers of one family: the second starts after the first has handled events
 * (its own receipt counts are behind, as the old per-worker ids were), then takes over by a graceful
 * hand-over.
 */

/** Bound on a worker's start and first acquisition on a fresh cluster. */
const START_BOUND_MS = 20_000;
/** Events the first leader handles before the second worker starts. */
const EVENTS_BEFORE_SECOND = 20;
/** Events the second leader handles after the hand-over before the checks. */
const EVENTS_AFTER_HANDOVER = 30;
/** Bound on either count being reached (the writer writes 100 keys a second). */
const EVENTS_BOUND_MS = 10_000;

describe('replay off (REPLAY_WINDOW_MS=0): one path', () => {
  const leaderName = `itro-${randomSuffix()}`;
  const prefix = `ro-${randomSuffix()}`;
  const workers: WorkerProcess[] = [];
  let cluster: LocalRedisCluster;
  let client: Cluster;
  let writer: KeyWriter | undefined;

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
    await writer?.stop();
    client?.disconnect();
    await Promise.all(workers.map((w) => w.kill()));
    await cluster?.stop();
  });

  it('followers hand nothing to the handler; two successive leaders never give one id to two different keys', async () => {
    const spawn = (name: string) => {
      const worker = WorkerProcess.start(
        name,
        workerEnv(cluster, { LEADER_NAME: leaderName, REPLAY_WINDOW_MS: '0', KEY_PATTERN: `${prefix}:*` }),
      );
      workers.push(worker);
      return worker;
    };
    const handled = (worker: WorkerProcess) => worker.events('key.processed');
    const first = spawn('ro1');
    await first.waitForEvent('leader.acquired', START_BOUND_MS);
    writer = new KeyWriter(client, prefix, { perTick: 5, tickMs: 50, ttlMs: 200 });
    writer.start();
    await first.waitFor((w) => handled(w)[EVENTS_BEFORE_SECOND - 1], EVENTS_BOUND_MS, 'first events');

    const second = spawn('ro2');
    await second.waitFor(
      (w) => w.events('subscription.up').filter((l) => l.role === 'primary')[2],
      START_BOUND_MS,
      'the second worker subscribed to every primary',
    );
    first.signal('SIGTERM');
    const acquired = await second.waitForEvent('leader.acquired', EVENTS_BOUND_MS);
    await second.waitFor((w) => handled(w)[EVENTS_AFTER_HANDOVER - 1], EVENTS_BOUND_MS, 'events after it');
    expect(await first.exited).toEqual({ code: 0, signal: null });

    // The follower handed nothing to its handler before it led, and only under its own token after.
    const secondHandled = handled(second);
    expect(secondHandled.filter((l) => timeOf(l) < timeOf(acquired))).toEqual([]);
    expect(new Set(secondHandled.map((l) => l.fencingToken))).toEqual(new Set([acquired.fencingToken]));
    expect(handled(first).length).toBeGreaterThanOrEqual(EVENTS_BEFORE_SECOND);

    // One id, one key, across both leaders (with per-worker receipt counts as ids, the second one's
    // `<nodeId>:<count>` fell on ids the first had given other keys).
    const keysById = new Map<string, Set<string>>();
    for (const line of [...handled(first), ...secondHandled] as LogLine[]) {
      const keys = keysById.get(line.eventId as string) ?? new Set<string>();
      keys.add(line.key as string);
      keysById.set(line.eventId as string, keys);
    }
    const idsNamingTwoKeys = [...keysById].filter(([, keys]) => keys.size > 1).map(([id]) => id);
    expect(idsNamingTwoKeys).toEqual([]);
  });
});
