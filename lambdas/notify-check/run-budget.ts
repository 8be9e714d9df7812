import type { Clock } from '../../core/clock.ts';

/**
 * The time one run may spend, on the monotonic clock. Every network step takes
 * `budget.bound(stepTimeoutMs)`: its own bound, shortened to what is left of the run, so the sum of
 * the steps can never exceed the run's budget whatever fails (the Lambda's own timeout stays far away).
 */
export class RunBudget {
  private readonly deadlineMs: number;

  constructor(
    private readonly clock: Clock,
    readonly totalMs: number,
  ) {
    this.deadlineMs = clock.monotonicMs() + totalMs;
  }

  remainingMs(): number {
    return Math.max(0, this.deadlineMs - this.clock.monotonicMs());
  }

  /** `stepTimeoutMs`, or less when the run has less left; at least 1 ms so a step fails, not hangs. */
  bound(stepTimeoutMs: number): number {
    return Math.max(1, Math.min(stepTimeoutMs, Math.floor(this.remainingMs())));
  }
}
