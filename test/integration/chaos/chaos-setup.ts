import { afterAll, beforeAll, it } from 'vitest';
import type { ChaosResult } from '../../../local/chaos/chaos-run.ts';
import type { ClusterProfileName } from '../../../local/chaos/chaos-scenario.ts';
import { ChaosSession, expectGuarantees, HARNESS_TIMEOUT_MS, SCENARIO_TIMEOUT_MS } from './chaos-helpers.ts';

/**
 * The setup every chaos integration file shares: one session (one embedded cluster of `profile`) for
 * the file, started before its first test and closed after its last; call inside the file's
 * `describe`.
 */
export function chaosSessionPerFile(profile: ClusterProfileName): ChaosSession {
  const session = new ChaosSession();
  beforeAll(() => session.start(profile), HARNESS_TIMEOUT_MS);
  afterAll(() => session.close(), HARNESS_TIMEOUT_MS);
  return session;
}

/** What one chaos test runs: a scenario of local/chaos/chaos-scenarios.ts for `durationS` seconds of keys. */
export interface ChaosScenarioRun {
  readonly scenario: string;
  readonly durationS: number;
}

/**
 * One scenario as one test (SCENARIO_TIMEOUT_MS): runs it on `session`, asserts the guarantees it
 * promises (expectGuarantees), then `expectMore`, the test's own assertions on the same result.
 */
export function chaosScenarioTest(
  session: ChaosSession,
  title: string,
  run: ChaosScenarioRun,
  expectMore?: (result: ChaosResult) => void,
): void {
  it(
    title,
    async () => {
      const result = await session.run(run.scenario, run.durationS);
      expectGuarantees(result);
      expectMore?.(result);
    },
    SCENARIO_TIMEOUT_MS,
  );
}
