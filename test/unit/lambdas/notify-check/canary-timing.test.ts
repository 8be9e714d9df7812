import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runNotifyCheck } from '../../../../lambdas/notify-check/notify-check.ts';
import { FakeCluster, type FakeNode } from './fake-cluster.ts';
import { capture, deps, reportConfig } from './helpers.ts';

/**
 * The bounds of a run on fake time: a canary whose event never comes is given up at exactly
 * CANARY_TIMEOUT_MS, and a hung node costs one step bound, whatever the defaults are.
 */
describe('notify-check bounds (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives up on a silent primary at CANARY_TIMEOUT_MS, not before and not much after', async () => {
    const cluster = FakeCluster.build();
    const silent = cluster.primaries()[0] as FakeNode;
    const startedAt = performance.now();
    let finishedAt: number | undefined;
    const running = runNotifyCheck(
      deps(cluster, capture(), {
        config: reportConfig(cluster, { CANARY_TIMEOUT_MS: '3000' }),
        timeouts: { canaryTtlMs: 30, canaryPokeIntervalMs: 25 },
        hooks: {
          afterEnforcement: async () => {
            silent.notify = '';
          },
        },
      }),
    ).then((report) => {
      finishedAt = performance.now();
      return report;
    });
    await vi.advanceTimersByTimeAsync(2900);
    expect(finishedAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(200);
    // Finished within those 200 ms, before anything awaits it (awaiting would hide a later finish).
    expect(finishedAt).toBeDefined();
    const report = await running;
    expect((finishedAt as number) - startedAt).toBeGreaterThanOrEqual(3000);
    expect(report.canaries.filter((c) => !c.verified).map((c) => c.node)).toEqual([silent.address]);
    expect(report.canaries.find((c) => c.node === silent.address)?.error).toMatch(/within 3000 ms/);
    // The silent primary was touched every poke interval after the TTL, so lazy expiry had every chance.
    const pokes = cluster.calls.filter((c) => c.node === silent.address && c.command.startsWith('EXISTS'));
    expect(pokes.length).toBeGreaterThan(50);
  });

  it('a hung node costs one connect bound (default 1500 ms) and the run still ends', async () => {
    const cluster = FakeCluster.build();
    (cluster.nodes[1] as FakeNode).failure = 'hang';
    let done = false;
    const running = runNotifyCheck(
      deps(cluster, capture(), { timeouts: { canaryTtlMs: 30, canaryPokeIntervalMs: 25 } }),
    ).then((report) => {
      done = true;
      return report;
    });
    await vi.advanceTimersByTimeAsync(1400);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(300);
    const report = await running;
    expect(done).toBe(true);
    expect(report.nodes[1]).toMatchObject({ status: 'unreachable' });
    expect(report.metrics.PrimariesVerified).toBe(3);
  });
});
