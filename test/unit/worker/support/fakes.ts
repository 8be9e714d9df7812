import type { Clock } from '../../../../core/clock.ts';
import { EmfMetrics, parseEmfLine } from '../../../../core/metrics.ts';
import type { LeadershipGrant, LeadershipView } from '../../../../worker/leader/leadership.ts';

/** Shared fakes for the worker's unit tests (no network, fake timers drive Date.now). */

/** A clock read from Date.now, so vi.useFakeTimers() moves both readings. */
export const fakeClock: Clock = { monotonicMs: () => Date.now(), wallMs: () => Date.now() };

export { captureLogger } from '../../../support/log-capture.ts';

/** EmfMetrics that keeps its documents; `totals()` flushes and sums counters / keeps last gauges. */
export function captureMetrics(): { metrics: EmfMetrics; totals: () => Record<string, number> } {
  const lines: string[] = [];
  const metrics = new EmfMetrics({
    namespace: 'Test',
    leaderName: 'test',
    write: (line) => lines.push(line),
  });
  const sums: Record<string, number> = {};
  const totals = () => {
    metrics.flush();
    for (const line of lines.splice(0)) {
      for (const doc of parseEmfLine(line) ?? []) {
        for (const { name, unit } of doc.metrics) {
          const value = doc.fields[name];
          if (Array.isArray(value)) sums[name] = (sums[name] ?? 0) + value.length;
          else if (unit === 'Count' && name !== 'SubscribedPrimaries')
            sums[name] = (sums[name] ?? 0) + Number(value);
          else sums[name] = Number(value);
        }
      }
    }
    return { ...sums };
  };
  return { metrics, totals };
}

/** A LeadershipView whose grant the test controls; honours the deadline like the real elector. */
export class FakeLeadership implements LeadershipView {
  private grant: (LeadershipGrant & { controller: AbortController }) | undefined;

  lead(fencingToken: number, deadlineMs: number): LeadershipGrant {
    this.grant?.controller.abort();
    const controller = new AbortController();
    this.grant = { fencingToken, deadlineMs, signal: controller.signal, controller };
    return this.grant;
  }

  /** Moves the deadline (a renewal). */
  renew(deadlineMs: number): void {
    if (this.grant) this.grant = { ...this.grant, deadlineMs };
  }

  /** Stops leading: aborts the grant's signal. */
  stepDown(): void {
    this.grant?.controller.abort();
    this.grant = undefined;
  }

  current(nowMs: number): LeadershipGrant | undefined {
    const grant = this.grant;
    if (!grant || grant.signal.aborted || nowMs >= grant.deadlineMs) return undefined;
    return grant;
  }
}
