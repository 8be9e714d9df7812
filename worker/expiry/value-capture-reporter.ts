import { VALUE_CAPTURE_DEFAULTS } from '../../core/defaults.ts';
import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import type { ValueMissingReason } from '../handlers/expiry-handler.ts';
import type { HeldOutcome } from './held-values.ts';

/**
 * Value capture's metrics and log lines (issue 14), in one place: every handler call's outcome counts
 * `ValuesCaptured` or `ValuesMissing` by `Reason` at once; `values.missing` (count, reason) is
 * logged for the first miss of a reason after a quiet period, then at most once per `intervalMs` per
 * reason with the count since the last line, so a sustained over-budget is visible without a log
 * storm. `capture-off` is the configuration, not an event: the worker never reports it here (with
 * capture off there is no reporter; precise-expiry.ts answers `capture-off` itself), and if it came it
 * would be counted but never logged. Released
 * held values count `ValuesReleased` and are logged at once (held-values.ts calls `onReleased` at most
 * once per sweep). Counts and sizes only: a value's contents never reach this class.
 */
export interface ValueCaptureReporterOptions {
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
  /** The hold bound the store runs with, stated in `values.released` lines. */
  readonly holdTimeoutMs: number;
  /** At most one `values.missing` line per reason per this long. @default 10000 */
  readonly intervalMs?: number;
}

/** Reasons that say this system fell short (warn); the others are facts about the key (info). */
const WARN_REASONS: ReadonlySet<ValueMissingReason> = new Set(['over-budget', 'read-failed', 'read-late']);

export class ValueCaptureReporter {
  private readonly pending = new Map<ValueMissingReason, number>();
  /** Reasons logged within the current interval: their next misses wait for the timer. */
  private readonly inWindow = new Set<ValueMissingReason>();
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;

  constructor(private readonly options: ValueCaptureReporterOptions) {
    this.intervalMs = options.intervalMs ?? VALUE_CAPTURE_DEFAULTS.missingLogIntervalMs;
    if (!(this.intervalMs >= 1)) throw new RangeError(`intervalMs must be >= 1, got ${this.intervalMs}`);
  }

  /** One handler call's event: it carried its value, or why not. */
  handedOut(outcome: HeldOutcome): void {
    if ('value' in outcome) {
      this.options.metrics.count('ValuesCaptured');
      return;
    }
    this.missing(outcome.valueMissing);
  }

  /** `count` events came without their value for `reason`. */
  missing(reason: ValueMissingReason, count = 1): void {
    this.options.metrics.countBy('ValuesMissing', reason, count);
    if (reason === 'capture-off') return;
    this.pending.set(reason, (this.pending.get(reason) ?? 0) + count);
    if (this.inWindow.has(reason)) return;
    this.log(reason);
    this.inWindow.add(reason);
    this.arm();
  }

  /** Held values released by the hold bound (HeldValues `onReleased`). */
  released(count: number, bytes: number): void {
    this.options.metrics.count('ValuesReleased', count);
    this.options.logger.warn('values.released', { count, bytes, holdTimeoutMs: this.options.holdTimeoutMs });
  }

  /** Writes what is pending and stops the timer (shutdown). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const reason of [...this.pending.keys()]) this.log(reason);
    this.inWindow.clear();
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    // A reason with misses since its line gets the next line now and stays rate-limited; a quiet one
    // leaves the window, so its next miss is logged at once.
    for (const reason of [...this.inWindow]) {
      if (this.pending.has(reason)) this.log(reason);
      else this.inWindow.delete(reason);
    }
    if (this.inWindow.size > 0) this.arm();
  }

  private log(reason: ValueMissingReason): void {
    const count = this.pending.get(reason);
    if (count === undefined) return;
    this.pending.delete(reason);
    const fields = { count, reason, intervalMs: this.intervalMs };
    if (WARN_REASONS.has(reason)) this.options.logger.warn('values.missing', fields);
    else this.options.logger.info('values.missing', fields);
  }
}
