import { describe, expect } from 'vitest';
import { chaosScenarioTest, chaosSessionPerFile } from './chaos-setup.ts';

/**
 * Chaos scenarios that take a primary away (docs/chaos.md): one embedded cluster of 4 primaries x 1
 * replica with AOF for the file (four shards, so one primary holds no lease member), put back in
 * shape after each scenario. Keys whose primary was down at their expiry are not expected (reported
 * apart); everything else must be processed.
 */
describe('chaos: primary faults', () => {
  const session = chaosSessionPerFile('four-primaries');

  chaosScenarioTest(
    session,
    'kill-lease-primary: the lease survives the loss of one member',
    { scenario: 'kill-lease-primary', durationS: 8 },
    (result) => {
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
  );

  chaosScenarioTest(
    session,
    'kill-publishing-primary: processing goes on through the failover of a primary without lease keys',
    { scenario: 'kill-publishing-primary', durationS: 8 },
  );

  chaosScenarioTest(session, 'restart-node: a primary stopped and started again with its data', {
    scenario: 'restart-node',
    durationS: 8,
  });
});
