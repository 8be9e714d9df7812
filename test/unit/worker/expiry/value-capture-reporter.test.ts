import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EmfMetrics } from '../../../../core/metrics.ts';
import { ValueCaptureReporter } from '../../../../worker/expiry/value-capture-reporter.ts';
import { captureLogger } from '../support/fakes.ts';

const INTERVAL_MS = 10_000;

function harness() {
  const log = captureLogger();
  const lines: string[] = [];
  const metrics = new EmfMetrics({ namespace: 'T', leaderName: 't', write: (l) => lines.push(l) });
  const reporter = new ValueCaptureReporter({
    logger: log.logger,
    metrics,
    holdTimeoutMs: 60_000,
    intervalMs: INTERVAL_MS,
  });
  /** Flushes the metrics: plain counters, and ValuesMissing per Reason. */
  const flush = () => {
    metrics.flush();
    const docs = lines.splice(0).map((l) => JSON.parse(l) as Record<string, unknown>);
    const byReason: Record<string, number> = {};
    const plain: Record<string, unknown> = {};
    for (const doc of docs) {
      if (typeof doc.Reason === 'string') byReason[doc.Reason] = doc.ValuesMissing as number;
      else Object.assign(plain, doc);
    }
    return { byReason, plain };
  };
  const missingLines = () =>
    log.events('values.missing').map((r) => ({ level: r.level, reason: r.reason, count: r.count }));
  return { log, reporter, flush, missingLines };
}

describe('ValueCaptureReporter', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts captured values and missing ones by reason, capture-off included', () => {
    const { reporter, flush } = harness();
    reporter.handedOut({ value: { type: 'string', bytes: Buffer.from('secret-value') } });
    reporter.handedOut({ value: { type: 'list', items: [] } });
    reporter.handedOut({ valueMissing: 'too-large' });
    reporter.handedOut({ valueMissing: 'capture-off' });
    reporter.missing('over-budget', 5);
    const { plain, byReason } = flush();
    expect(plain.ValuesCaptured).toBe(2);
    expect(byReason).toEqual({ 'too-large': 1, 'capture-off': 1, 'over-budget': 5 });
  });

  it('logs the first miss of a reason at once, then at most one line per interval with the count since', () => {
    const { reporter, missingLines } = harness();
    reporter.missing('over-budget', 3);
    reporter.missing('too-large');
    expect(missingLines()).toEqual([
      { level: 'warn', reason: 'over-budget', count: 3 },
      { level: 'info', reason: 'too-large', count: 1 },
    ]);
    for (let i = 0; i < 1000; i++) reporter.missing('over-budget');
    expect(missingLines()).toHaveLength(2);
    vi.advanceTimersByTime(INTERVAL_MS);
    expect(missingLines().slice(2)).toEqual([{ level: 'warn', reason: 'over-budget', count: 1000 }]);
    // A quiet interval closes the window: the next miss is logged at once.
    vi.advanceTimersByTime(INTERVAL_MS);
    expect(missingLines()).toHaveLength(3);
    reporter.missing('over-budget', 2);
    reporter.missing('too-large');
    expect(missingLines().slice(3)).toEqual([
      { level: 'warn', reason: 'over-budget', count: 2 },
      { level: 'info', reason: 'too-large', count: 1 },
    ]);
    expect(vi.getTimerCount()).toBe(1); // one timer for every reason
  });

  it('never logs capture-off (the configuration, not an event)', () => {
    const { reporter, missingLines } = harness();
    reporter.missing('capture-off', 10);
    vi.advanceTimersByTime(INTERVAL_MS * 2);
    expect(missingLines()).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close writes what is pending and stops the timer', () => {
    const { reporter, missingLines } = harness();
    reporter.missing('read-failed');
    reporter.missing('read-failed', 4);
    reporter.close();
    expect(missingLines()).toEqual([
      { level: 'warn', reason: 'read-failed', count: 1 },
      { level: 'warn', reason: 'read-failed', count: 4 },
    ]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('released values are counted and logged with their bytes, never their contents', () => {
    const { reporter, flush, log } = harness();
    reporter.handedOut({ value: { type: 'string', bytes: Buffer.from('secret-value') } });
    reporter.released(3, 1234);
    expect(flush().plain.ValuesReleased).toBe(3);
    expect(log.events('values.released').map((r) => [r.level, r.count, r.bytes, r.holdTimeoutMs])).toEqual([
      ['warn', 3, 1234, 60_000],
    ]);
    expect(JSON.stringify(log.records)).not.toContain('secret-value');
  });
});
