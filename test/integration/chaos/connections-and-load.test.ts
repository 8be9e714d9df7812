import { describe, expect } from 'vitest';
import { chaosScenarioTest, chaosSessionPerFile } from './chaos-setup.ts';

/**
 * Chaos scenarios on connections, topology and load (docs/chaos.md): one embedded cluster of 3
 * primaries x 1 replica for the file. drop-subscribers and scale-out-in run at 200 keys/s;
 * slow-handler at 2,000 keys/s with a small queue and replay window bound, so that the leader's backlog
 * overflows within the run.
 */
describe('chaos: connections, resharding and load', () => {
  const session = chaosSessionPerFile('three-primaries');

  chaosScenarioTest(session, "drop-subscribers: the leader's subscriber connections are killed twice", {
    scenario: 'drop-subscribers',
    durationS: 8,
  });

  chaosScenarioTest(session, 'scale-out-in: a primary added with slots, then removed', {
    scenario: 'scale-out-in',
    durationS: 10,
  });

  chaosScenarioTest(
    session,
    'slow-handler: the backlog overflows the window, the worker sheds, stays subscribed, its memory stays bounded',
    { scenario: 'slow-handler', durationS: 10 },
    (result) => {
      // The queue is filled only as it has room (whatever REPLAY_WINDOW_MS): the shedding happens in the window.
      expect
        .soft(result.account.shedByReason['backlog-full'] ?? 0, "events shed: the leader's backlog was full")
        .toBeGreaterThan(0);
      expect.soft(result.account.shedByReason['queue-full'] ?? 0, 'events shed: queue full').toBe(0);
    },
  );
});
