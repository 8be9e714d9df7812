import { describe, expect, it } from 'vitest';
import { WORKER_HEALTH_CHECK, WORKER_STOP_TIMEOUT } from '../../cdk/constructs/worker-service.ts';
import { DEPLOY_OVERLAP_MS } from '../../worker/leader/identity-check.ts';

/** CoverageRegistry's default freshness: a killed task's report is ignored after this. */
const REPORT_FRESHNESS_MS = 2000;

describe('the deploy overlap the worker expects (sequence 11)', () => {
  it('sequence 11: DEPLOY_OVERLAP_MS covers the slowest healthy new task plus the old tasks’ stop timeout', () => {
    const h = WORKER_HEALTH_CHECK;
    // The latest a new task can still be marked healthy: the start period, then `retries` failed
    // checks at `interval` (one more makes it unhealthy), the last one taking its whole timeout.
    const slowestHealthyMs = (h.startPeriodSeconds + h.retries * h.intervalSeconds + h.timeoutSeconds) * 1000;
    const overlapMs = slowestHealthyMs + WORKER_STOP_TIMEOUT.toMilliseconds() + REPORT_FRESHNESS_MS;
    expect(overlapMs).toBe(142_000);
    expect(DEPLOY_OVERLAP_MS).toBeGreaterThanOrEqual(overlapMs);
    // Not so much larger that a real mismatch is reported late.
    expect(DEPLOY_OVERLAP_MS - overlapMs).toBeLessThanOrEqual(10_000);
  });
});
