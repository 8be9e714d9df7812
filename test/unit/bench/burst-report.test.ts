import { describe, expect, it } from 'vitest';
import type { BurstVariant } from '../../../bench/burst.ts';
import { BURST_DRAIN_GOAL_FACTOR, burstConsole, burstLines } from '../../../bench/burst-report.ts';

function variant(over: Partial<BurstVariant>): BurstVariant {
  return {
    variant: 'no-op',
    keys: 100_000,
    set: 100_000,
    bareReceived: 100_000,
    bareDrainMs: 2000,
    handled: 100_000,
    workerDrainMs: 2100,
    shed: 0,
    renewals: 12,
    renewLatencyP99Ms: 40,
    renewLatencyMaxMs: 55,
    leadershipLost: 0,
    ...over,
  };
}

describe('burst report', () => {
  it('shows drain times beside the bare subscribers and says the goal is met', () => {
    const text = burstLines([variant({}), variant({ variant: 'log', workerDrainMs: 9000 })]).join('\n');
    expect(text).toContain('## Burst: 100,000 keys sharing one deadline');
    expect(text).toMatch(
      /\| no-op +\| 100,000 of 100,000 +\| 2,000 ms +\| 100,000 +\| 2,100 ms +\| 1\.05x +\| 0 +\|/,
    );
    expect(text).toContain('**met**');
  });

  it('says NOT met when the no-op drain is beyond the factor, a key is missing, or a leader lost its lease', () => {
    const slow = variant({ workerDrainMs: 2000 * BURST_DRAIN_GOAL_FACTOR + 1 });
    expect(burstLines([slow]).join('\n')).toContain('**NOT met**');
    expect(burstLines([variant({ handled: 99_999 })]).join('\n')).toContain('**NOT met**');
    expect(burstLines([variant({}), variant({ variant: 'log', leadershipLost: 1 })]).join('\n')).toContain(
      '**NOT met**',
    );
  });

  it('prints one console row per handler', () => {
    const rows = burstConsole([variant({}), variant({ variant: 'log' })]);
    expect(rows.map((r) => r[0])).toEqual(['burst 100,000 (no-op)', 'burst 100,000 (log)']);
    expect(rows[0]?.[1]).toContain('1.05x');
  });
});
