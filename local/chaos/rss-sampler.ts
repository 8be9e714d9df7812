import { execFile } from 'node:child_process';

/**
 * Samples the resident set size of processes with `ps -o pid=,rss=` at a fixed interval. A sample
 * that fails (a process gone) is skipped; samples never overlap.
 */

export interface RssSample {
  readonly id: string;
  readonly atMs: number;
  readonly rssKb: number;
}

export class RssSampler {
  readonly samples: RssSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    /** Current processes to sample, by id. */
    private readonly targets: () => ReadonlyMap<string, number>,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.running ??= this.sampleOnce()
        .catch(() => undefined)
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
  }

  /** Stops and waits for a sample in progress. Idempotent. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Largest sample of `id`, optionally only those at or after `sinceMs`. */
  max(id: string, sinceMs = Number.NEGATIVE_INFINITY): number | undefined {
    let max: number | undefined;
    for (const s of this.samples) {
      if (s.id === id && s.atMs >= sinceMs && (max === undefined || s.rssKb > max)) max = s.rssKb;
    }
    return max;
  }

  /** The last sample of `id` at or before `atMs` (else the first after it). */
  at(id: string, atMs: number): number | undefined {
    const own = this.samples.filter((s) => s.id === id);
    return (own.filter((s) => s.atMs <= atMs).at(-1) ?? own.find((s) => s.atMs > atMs))?.rssKb;
  }

  private async sampleOnce(): Promise<void> {
    const targets = this.targets();
    if (targets.size === 0) return;
    const idsByPid = new Map([...targets].map(([id, pid]) => [pid, id]));
    const atMs = this.now();
    const output = await new Promise<string>((resolve) => {
      execFile('ps', ['-o', 'pid=,rss=', '-p', [...idsByPid.keys()].join(',')], (_error, stdout) =>
        // ps exits 1 when one of the pids is gone; what it printed is still valid.
        resolve(stdout),
      );
    });
    for (const line of output.split('\n')) {
      const [pidText, rssText] = line.trim().split(/\s+/);
      const id = idsByPid.get(Number(pidText));
      const rssKb = Number(rssText);
      if (id !== undefined && Number.isFinite(rssKb)) this.samples.push({ id, atMs, rssKb });
    }
  }
}
