import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';

/**
 * Counts shed events (`EventsShed`) at once and logs `events.shed` (count, reason) at most once per
 * `intervalMs` with the count since the last line, so a sustained overflow is visible without a log
 * storm. Never silent: the first shed after a quiet period is logged immediately.
 */
export class ShedReporter {
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly reason: string,
    private readonly logger: Logger,
    private readonly metrics: EmfMetrics,
    private readonly intervalMs = 1000,
  ) {}

  note(count: number, fields: Record<string, unknown> = {}): void {
    this.metrics.count('EventsShed', count);
    this.pending += count;
    if (this.timer !== undefined) return;
    this.flush(fields);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.pending > 0) this.flush(fields);
    }, this.intervalMs);
    this.timer.unref();
  }

  flush(fields: Record<string, unknown> = {}): void {
    if (this.pending === 0) return;
    this.logger.warn('events.shed', { count: this.pending, reason: this.reason, ...fields });
    this.pending = 0;
  }
}
