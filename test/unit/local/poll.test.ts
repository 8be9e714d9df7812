import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalClusterStoppedError, LocalClusterTimeoutError } from '../../../local/errors.ts';
import { pollUntil } from '../../../local/poll.ts';

describe('pollUntil', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('returns the first done value, treating a throwing probe as not yet', async () => {
    let calls = 0;
    const result = pollUntil(
      async () => {
        calls++;
        if (calls === 1) throw new Error('connection refused');
        return calls < 3 ? { problems: ['loading'] } : { done: calls };
      },
      { what: 'x', timeoutMs: 5000, intervalMs: 100 },
    );
    await vi.advanceTimersByTimeAsync(250);
    expect(await result).toBe(3);
  });

  it('times out with the last problems seen', async () => {
    const result = pollUntil(async () => ({ problems: [':7000 cluster_state:fail'] }), {
      what: 'cluster ok',
      timeoutMs: 1000,
    });
    const settled = result.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1200);
    const error = await settled;
    expect(error).toBeInstanceOf(LocalClusterTimeoutError);
    expect((error as Error).message).toBe(
      'cluster ok not reached within 1000 ms; last seen: :7000 cluster_state:fail',
    );
  });

  it('stops at once when abortIf returns an error', async () => {
    let stopped = false;
    const result = pollUntil(async () => ({ problems: ['not yet'] }), {
      what: 'x',
      timeoutMs: 60_000,
      abortIf: () => (stopped ? new LocalClusterStoppedError('wait') : undefined),
    });
    const settled = result.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(150);
    stopped = true;
    await vi.advanceTimersByTimeAsync(150);
    expect(await settled).toBeInstanceOf(LocalClusterStoppedError);
  });
});
