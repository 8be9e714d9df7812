import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChaosSession, expectGuarantees, HARNESS_TIMEOUT_MS, SCENARIO_TIMEOUT_MS } from './chaos-helpers.ts';

/**
 * Chaos scenarios of the replay path (docs/chaos.md): one embedded cluster of 3 primaries x 1
 * replica for the file, 3 workers. high-rate-crash runs at 1,000 keys/s with a 100-event handler
 * queue (HANDLER_QUEUE_CAPACITY), so the replay after the crash is ~30 times the queue: the logic of
 * a 6,000/s crash against the default 10,000-event queue, at a rate CI can afford.
 */
describe('chaos: replay faults', () => {
  const session = new ChaosSession();
  beforeAll(() => session.start('three-primaries'), HARNESS_TIMEOUT_MS);
  afterAll(() => session.close(), HARNESS_TIMEOUT_MS);

  it(
    'sequence 3: high-rate-crash: a replay larger than the queue is paced, nothing shed, nothing lost',
    async () => {
      const result = await session.run('high-rate-crash', 8);
      expectGuarantees(result);
      // The queue never overflows (the coordinator offers only into room) and the backlog stays
      // far below REPLAY_MAX_EVENTS: nothing is shed on the way to the handler.
      expect.soft(result.account.shedByReason['queue-full'] ?? 0, 'events shed: queue full').toBe(0);
      expect.soft(result.account.shedByReason['backlog-full'] ?? 0, 'events shed: backlog full').toBe(0);
      // Crash gap: TTL 3 s + retry 250 ms, plus margin for 2 noisy cores (as leader-sigkill).
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
