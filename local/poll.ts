import { LocalClusterTimeoutError } from './errors.ts';

/**
 * Repeats `probe` until it returns `{ done: value }` or the time runs out. A probe that throws counts
 * as "not yet" (a node that is still starting refuses connections); its message becomes one of the
 * problems reported by the timeout error. `abortIf` aborts the wait with the error it returns (stop()).
 */
export type ProbeResult<T> = { readonly done: T } | { readonly problems: readonly string[] };

export interface PollSettings {
  readonly what: string;
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly abortIf?: () => Error | undefined;
}

export async function pollUntil<T>(probe: () => Promise<ProbeResult<T>>, settings: PollSettings): Promise<T> {
  const deadline = performance.now() + settings.timeoutMs;
  let lastProblems: readonly string[] = [];
  for (;;) {
    const abort = settings.abortIf?.();
    if (abort) throw abort;
    try {
      const result = await probe();
      if ('done' in result) return result.done;
      lastProblems = result.problems;
    } catch (error) {
      lastProblems = [error instanceof Error ? error.message : String(error)];
    }
    if (performance.now() >= deadline)
      throw new LocalClusterTimeoutError(settings.what, settings.timeoutMs, lastProblems);
    await new Promise((resolve) => setTimeout(resolve, settings.intervalMs ?? 100));
  }
}
