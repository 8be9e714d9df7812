import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChaosSession, expectGuarantees, HARNESS_TIMEOUT_MS, SCENARIO_TIMEOUT_MS } from './chaos-helpers.ts';

/**
 * Chaos scenarios about event identity (docs/chaos.md): one embedded cluster of 3 primaries x 1
 * replica for the file, 3 workers and 200 keys/s. Guarantees: those of every hand-over (no loss,
 * duplicates <= max(2, 0.1%), fencing) and no event id naming two different keys.
 */
describe('chaos: identity faults', () => {
  const session = new ChaosSession();
  beforeAll(() => session.start('three-primaries'), HARNESS_TIMEOUT_MS);
  afterAll(() => session.close(), HARNESS_TIMEOUT_MS);

  it(
    'sequence 2: quiet-primary-handover: a primary quiet past the replay window keeps unique ids across a crash',
    async () => {
      const result = await session.run('quiet-primary-handover', 18);
      expectGuarantees(result);
      expect.soft(result.account.idsNamingTwoKeys, 'ids naming two different keys').toBe(0);
      // Crash gap: TTL 3 s + retry 250 ms, plus margin for 2 noisy cores (as leader-sigkill).
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
