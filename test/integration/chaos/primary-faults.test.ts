import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChaosSession, expectGuarantees, HARNESS_TIMEOUT_MS, SCENARIO_TIMEOUT_MS } from './chaos-helpers.ts';

/**
 * Chaos scenarios that take a primary away (docs/chaos.md): one embedded cluster of 4 primaries x 1
 * replica with AOF for the file (four shards, so one primary holds no lease member), put back in
 * shape after each scenario. Keys whose primary was down at their expiry are not expected (reported
 * apart); everything else must be processed.
 */
describe('chaos: primary faults', () => {
  const session = new ChaosSession();
  beforeAll(() => session.start('four-primaries'), HARNESS_TIMEOUT_MS);
  afterAll(() => session.close(), HARNESS_TIMEOUT_MS);

  it(
    'kill-lease-primary: the lease survives the loss of one member',
    async () => {
      const result = await session.run('kill-lease-primary', 8);
      expectGuarantees(result);
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'kill-publishing-primary: processing goes on through the failover of a primary without lease keys',
    async () => {
      const result = await session.run('kill-publishing-primary', 8);
      expectGuarantees(result);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'restart-node: a primary stopped and started again with its data',
    async () => {
      const result = await session.run('restart-node', 8);
      expectGuarantees(result);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
