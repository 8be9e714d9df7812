import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChaosSession, expectGuarantees, HARNESS_TIMEOUT_MS, SCENARIO_TIMEOUT_MS } from './chaos-helpers.ts';

/**
 * Chaos scenarios that take the leader away (docs/chaos.md): one embedded cluster of 3 primaries x 1
 * replica for the file, 3 workers and 200 keys/s per scenario. Guarantees: no loss while a follower
 * is healthy, duplicates <= max(2, 0.1%), fencing tokens never go down, a paused leader processes
 * nothing once resumed.
 */
describe('chaos: leader faults', () => {
  const session = new ChaosSession();
  beforeAll(() => session.start('three-primaries'), HARNESS_TIMEOUT_MS);
  afterAll(() => session.close(), HARNESS_TIMEOUT_MS);

  it(
    'leader-sigkill: a follower takes over within the lease and replays the gap',
    async () => {
      const result = await session.run('leader-sigkill', 8);
      expectGuarantees(result);
      // Crash gap: TTL 3 s + retry 250 ms, plus margin for 2 noisy cores.
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'leader-sigterm: a graceful hand-over',
    async () => {
      const result = await session.run('leader-sigterm', 6);
      expectGuarantees(result);
      expect
        .soft(result.account.faults[0]?.newLeaderAfterMs, 'SIGTERM to the next leader.acquired (ms)')
        .toBeLessThan(1000);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'leader-sigstop: a leader frozen past its lease is replaced and stays idle after SIGCONT',
    async () => {
      const result = await session.run('leader-sigstop', 11);
      expectGuarantees(result);
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'rolling-restart: every worker replaced one by one, the leader included',
    async () => {
      const result = await session.run('rolling-restart', 8);
      expectGuarantees(result);
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(2000);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
