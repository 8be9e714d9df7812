import { describe, expect } from 'vitest';
import { chaosScenarioTest, chaosSessionPerFile } from './chaos-setup.ts';

/**
 * Chaos scenarios that take the leader away (docs/chaos.md): one embedded cluster of 3 primaries x 1
 * replica for the file, 3 workers and 200 keys/s per scenario. Guarantees: no loss while a follower
 * is healthy, duplicates <= max(2, 0.1%), fencing tokens never go down, a paused leader processes
 * nothing once resumed.
 */
describe('chaos: leader faults', () => {
  const session = chaosSessionPerFile('three-primaries');

  chaosScenarioTest(
    session,
    'leader-sigkill: a follower takes over within the lease and replays the gap',
    { scenario: 'leader-sigkill', durationS: 8 },
    (result) => {
      // Crash gap: TTL 3 s + retry 250 ms, plus margin for 2 noisy cores.
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
  );

  chaosScenarioTest(
    session,
    'leader-sigterm: a graceful hand-over',
    { scenario: 'leader-sigterm', durationS: 6 },
    (result) => {
      expect
        .soft(result.account.faults[0]?.newLeaderAfterMs, 'SIGTERM to the next leader.acquired (ms)')
        .toBeLessThan(1000);
    },
  );

  chaosScenarioTest(
    session,
    'leader-sigstop: a leader frozen past its lease is replaced and stays idle after SIGCONT',
    { scenario: 'leader-sigstop', durationS: 11 },
    (result) => {
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(7000);
    },
  );

  chaosScenarioTest(
    session,
    'rolling-restart: every worker replaced one by one, the leader included',
    { scenario: 'rolling-restart', durationS: 8 },
    (result) => {
      expect.soft(result.account.longestGapMs, 'longest gap without a processor (ms)').toBeLessThan(2000);
    },
  );
});
