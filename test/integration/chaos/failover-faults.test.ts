import { afterAll, beforeAll, describe, it } from 'vitest';
import { ChaosSession, expectGuarantees, HARNESS_TIMEOUT_MS, SCENARIO_TIMEOUT_MS } from './chaos-helpers.ts';

/**
 * Chaos scenarios on the subscriptions through planned and silent faults (docs/chaos.md): one
 * embedded cluster of 3 primaries x 1 replica for the file.
 */
describe('chaos: failover and subscription faults', () => {
  const session = new ChaosSession();
  beforeAll(() => session.start('three-primaries'), HARNESS_TIMEOUT_MS);
  afterAll(() => session.close(), HARNESS_TIMEOUT_MS);

  it(
    'sequence 1: graceful-failover: CLUSTER FAILOVER on a replica loses none of the promoted node events',
    async () => {
      const result = await session.run('graceful-failover', 8);
      expectGuarantees(result);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
