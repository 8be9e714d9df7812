import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Gives the process's threads other than the main one a lower scheduling priority (a higher nice
 * value), once, at start: on Linux those are V8's platform workers, which run the optimizing compiler
 * and the GC's concurrent and parallel work. The main thread runs every handler call; when the CPUs
 * are busy (a burst of expiries on a Fargate task's vCPU, or this machine's two cores shared with Redis
 * and the bench) it then gets the CPU before the helpers, which go on when it waits. Chromium runs
 * V8's background work the same way (its background priority is nice 10).
 *
 * Contracts:
 * - Only threads that exist when it is called are changed: call it first thing in the process, before
 *   anything starts libuv's thread pool (DNS lookups of the Redis endpoints, file I/O), whose threads
 *   keep the default priority.
 * - The nice value of a Linux thread is its own (setpriority(2) on a thread id changes that thread
 *   only), so the main thread keeps its priority. Raising a nice value needs no privilege.
 * - Never throws: where threads cannot be listed (no /proc: macOS, Windows) nothing is changed; a
 *   thread that cannot be changed (it ended meanwhile, a sandbox refuses) is counted in `failed`.
 *
 * Measured (docs/precise-expiry.md, "Helper threads at a lower priority"): on this machine's 2 cores,
 * the main thread's wait for a CPU during a 1,000-key burst fell from 38 to 26 ms (medians of 12 and
 * 14 worker runs), and the burst's p99 by 8-16 %.
 */
export interface HelperThreadDeps {
  /** The process's thread ids; undefined where they cannot be listed. */
  readonly threadIds: () => readonly number[] | undefined;
  /** The main thread's id (on Linux, the process id). */
  readonly mainThreadId: number;
  readonly setNice: (threadId: number, nice: number) => void;
}

export interface HelperThreadsResult {
  /** Threads given the lower priority. */
  readonly lowered: number;
  /** Threads that could not be changed. */
  readonly failed: number;
}

export function lowerHelperThreadPriority(
  nice: number,
  deps: HelperThreadDeps = linuxThreads(),
): HelperThreadsResult {
  if (!(Number.isInteger(nice) && nice >= 0 && nice <= 19)) {
    throw new RangeError(`nice must be an integer in [0, 19], got ${nice}`);
  }
  let lowered = 0;
  let failed = 0;
  for (const threadId of deps.threadIds() ?? []) {
    if (threadId === deps.mainThreadId) continue;
    try {
      deps.setNice(threadId, nice);
      lowered++;
    } catch {
      failed++;
    }
  }
  return { lowered, failed };
}

/** This process's threads from /proc/self/task (Linux); os.setPriority on a thread id. */
export function linuxThreads(): HelperThreadDeps {
  return {
    threadIds: () => {
      try {
        return readdirSync('/proc/self/task').map(Number).filter(Number.isInteger);
      } catch {
        return undefined;
      }
    },
    mainThreadId: process.pid,
    setNice: (threadId, nice) => setPriority(threadId, nice),
  };
}
