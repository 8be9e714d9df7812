import { describe, expect } from 'vitest';
import { chaosScenarioTest, chaosSessionPerFile } from './chaos-setup.ts';

/**
 * Chaos scenarios about event identity (docs/chaos.md): one embedded cluster of 3 primaries x 1
 * replica for the file, 3 workers and 200 keys/s. Guarantees: those of every hand-over (no loss,
 * duplicates <= max(2, 0.1%), fencing) and no event id naming two different keys.
 */
describe('chaos: identity faults', () => {
  const session = chaosSessionPerFile('three-primaries');

  chaosScenarioTest(
    session,
    'sequence 2: quiet-primary-handover: a primary quiet past the replay window keeps unique ids across a crash',
    { scenario: 'quiet-primary-handover', durationS: 18 },
    (result) => {
      expect.soft(result.account.idsNamingTwoKeys, 'ids naming two different keys').toBe(0);
      // Crash gap: TTL 3 s + retry 250 ms, plus margin for 2 noisy cores (as leader-sigkill).
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
  );
});
