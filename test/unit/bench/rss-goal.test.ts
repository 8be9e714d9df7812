import { describe, expect, it } from 'vitest';
import type { FixedStepResult } from '../../../bench/fixed-step.ts';
import { type ResourcesVariant, RSS_GOAL_VARIANT } from '../../../bench/guarantees.ts';
import { rssGoalLines } from '../../../bench/guarantees-report.ts';

/** A step with only the fields the goal line reads. */
function step(verdict: string, leaderRssKiB: [number, number]): FixedStepResult {
  return {
    keysPerSecond: 20_000,
    verdict,
    usage: [
      { role: 'follower', rssBeforeKiB: 999_999, rssAfterKiB: 999_999 },
      { role: 'leader', rssBeforeKiB: leaderRssKiB[0], rssAfterKiB: leaderRssKiB[1] },
    ],
  } as unknown as FixedStepResult;
}

describe('rssGoalLines', () => {
  it("judges the leader's larger RSS sample against 150 MiB, and only a sustained step", () => {
    const variant = (s: FixedStepResult): ResourcesVariant[] => [{ variant: RSS_GOAL_VARIANT, step: s }];
    expect(rssGoalLines(variant(step('sustained', [100 * 1024, 140 * 1024])))[0]).toMatch(
      /140 MiB, sustained -> met/,
    );
    expect(rssGoalLines(variant(step('sustained', [160 * 1024, 120 * 1024])))[0]).toMatch(
      /160 MiB, sustained -> NOT met/,
    );
    expect(rssGoalLines(variant(step('fell behind', [100 * 1024, 100 * 1024])))[0]).toMatch(/NOT met/);
  });

  it('says nothing when the run had no such variant', () => {
    expect(rssGoalLines([{ variant: 'replay off', step: step('sustained', [1, 1]) }])).toEqual([]);
  });
});
