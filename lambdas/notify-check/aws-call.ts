import { withTimeout } from '../../core/errors.ts';

/**
 * One AWS SDK call bounded by `timeoutMs` (core's TimeoutError when it runs out): the SDK's own retries
 * and socket timeouts are not a bound on the whole call. The request is aborted when the bound is hit
 * or the call fails, so nothing keeps running after the run has moved on.
 */
export async function sendBounded<T>(
  send: (options: { abortSignal: AbortSignal }) => Promise<T>,
  timeoutMs: number,
  operation: string,
): Promise<T> {
  const controller = new AbortController();
  try {
    return await withTimeout(send({ abortSignal: controller.signal }), timeoutMs, operation);
  } catch (error) {
    controller.abort();
    throw error;
  }
}

/** Runs `work` over `items` with at most `limit` in flight, results in input order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
