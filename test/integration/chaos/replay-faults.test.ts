import { describe, expect } from 'vitest';
import { chaosScenarioTest, chaosSessionPerFile } from './chaos-setup.ts';

/**
 * Chaos scenarios of the replay path (docs/chaos.md): one embedded cluster of 3 primaries x 1
 * replica for the file, 3 workers. high-rate-crash runs at 1,000 keys/s with a 100-event handler
 * queue (HANDLER_QUEUE_CAPACITY), so the replay after the crash is ~30 times the queue: the logic of
 * a 6,000/s crash against the default 10,000-event queue, at a rate CI can afford.
 */
describe('chaos: replay faults', () => {
  const session = chaosSessionPerFile('three-primaries');

  chaosScenarioTest(
    session,
    'sequence 3: high-rate-crash: a replay larger than the queue is paced, nothing shed, nothing lost',
    { scenario: 'high-rate-crash', durationS: 8 },
    (result) => {
      // The queue never overflows (the coordinator offers only into room) and the backlog stays
      // far below REPLAY_MAX_EVENTS: nothing is shed on the way to the handler.
      expect.soft(result.account.shedByReason['queue-full'] ?? 0, 'events shed: queue full').toBe(0);
      expect.soft(result.account.shedByReason['backlog-full'] ?? 0, 'events shed: backlog full').toBe(0);
      // Crash gap: TTL 3 s + retry 250 ms, plus margin for 2 noisy cores (as leader-sigkill).
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
  );
});
