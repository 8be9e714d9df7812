import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChaosSession, expectGuarantees, HARNESS_TIMEOUT_MS, SCENARIO_TIMEOUT_MS } from './chaos-helpers.ts';

/**
 * Chaos scenarios on connections, topology and load (docs/chaos.md): one embedded cluster of 3
 * primaries x 1 replica for the file. drop-subscribers and scale-out-in run at 200 keys/s;
 * slow-handler at 2,000 keys/s with a small queue and replay window bound, so that the leader's backlog
 * overflows within the run.
 */
describe('chaos: connections, resharding and load', () => {
  const session = new ChaosSession();
  beforeAll(() => session.start('three-primaries'), HARNESS_TIMEOUT_MS);
  afterAll(() => session.close(), HARNESS_TIMEOUT_MS);

  it(
    "drop-subscribers: the leader's subscriber connections are killed twice",
    async () => {
      const result = await session.run('drop-subscribers', 8);
      expectGuarantees(result);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'scale-out-in: a primary added with slots, then removed',
    async () => {
      const result = await session.run('scale-out-in', 10);
      expectGuarantees(result);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'slow-handler: the backlog overflows the window, the worker sheds, stays subscribed, its memory stays bounded',
    async () => {
      const result = await session.run('slow-handler', 10);
      expectGuarantees(result);
      // The queue is filled only as it has room (whatever REPLAY_WINDOW_MS): the shedding happens in the window.
      expect
        .soft(result.account.shedByReason['backlog-full'] ?? 0, "events shed: the leader's backlog was full")
        .toBeGreaterThan(0);
      expect.soft(result.account.shedByReason['queue-full'] ?? 0, 'events shed: queue full').toBe(0);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
