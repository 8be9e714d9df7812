import { MessageChannel } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TimeoutError, withTimeout } from '../../../core/errors.ts';

/** Holds the event loop, as a long GC or a burst of work does. */
function blockLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
}

describe('withTimeout', () => {
  describe('with fake timers', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('rejects with a TimeoutError once the bound has passed', async () => {
      const result = withTimeout(new Promise<never>(() => {}), 300, 'extend on k');
      const outcome = expect(result).rejects.toThrow(TimeoutError);
      await vi.advanceTimersByTimeAsync(300);
      let settled = false;
      result.then(
        () => {},
        () => {
          settled = true;
        },
      );
      await vi.advanceTimersByTimeAsync(0);
      // The bound has passed; the verdict waits for that turn's I/O (its setImmediate: the next fake ms).
      expect(settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await outcome;
      await expect(result).rejects.toMatchObject({ code: 'TIMEOUT' });
    });

    it('settles with the promise that settles first and leaves no timer behind', async () => {
      await expect(withTimeout(Promise.resolve(7), 300, 'x')).resolves.toBe(7);
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  // Real timers and a real I/O source: a reply that came in while this process was held (a GC, a
  // burst) is read in the poll phase, which libuv runs AFTER the timers phase. A timeout judged in
  // the timers phase would fail a vote whose answer is already in the socket (the lease renewals of
  // docs/precise-expiry.md, "a leader lost its lease").
  it('does not time out an answer that arrived while the loop was held past the bound', async () => {
    const { port1, port2 } = new MessageChannel();
    try {
      const answer = new Promise<string>((resolve) => port1.once('message', resolve));
      const result = withTimeout(answer, 20, 'extend on k');
      port2.postMessage('applied');
      blockLoop(60);
      await expect(result).resolves.toBe('applied');
    } finally {
      port1.close();
      port2.close();
    }
  });
});
