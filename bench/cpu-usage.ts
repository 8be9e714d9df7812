import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of processes, from /proc/<pid>/stat (Linux): to show where the 2 cores went during a
 * measurement (the bench, the workers and Redis share them). Undefined where /proc is not available.
 */

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** utime + stime in seconds from the text of /proc/<pid>/stat. Pure. */
export function parseStatCpuSeconds(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  // Fields after the command (which may contain spaces and parentheses) start after the last ')'.
  const fields = stat
    .slice(close + 2)
    .trim()
    .split(' ');
  if (fields.length < 13) return undefined;
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / TICKS_PER_SECOND : undefined;
}

/** One thread's time on a CPU and time runnable but waiting for one, in ms. */
export interface ThreadSchedule {
  readonly tid: number;
  readonly runMs: number;
  readonly waitMs: number;
}

/**
 * On-CPU and run-queue wait time from the text of /proc/<pid>/task/<tid>/schedstat (ns, unlike the
 * 10 ms ticks of /proc/<pid>/stat). Pure.
 */
export function parseSchedstat(text: string): { runMs: number; waitMs: number } | undefined {
  const [run, wait] = text.trim().split(' ');
  const runNs = Number(run);
  const waitNs = Number(wait);
  if (run === undefined || run === '' || !Number.isFinite(runNs) || !Number.isFinite(waitNs))
    return undefined;
  return { runMs: runNs / 1e6, waitMs: waitNs / 1e6 };
}

/**
 * Every thread of `pid` with its schedule, the main thread (tid = pid) first; undefined when the
 * process or /proc is gone. A thread that ends between the listing and its reading is left out.
 */
export function threadSchedules(pid: number): ThreadSchedule[] | undefined {
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return undefined;
  }
  const threads: ThreadSchedule[] = [];
  for (const tid of tids.sort((a, b) => (a === pid ? -1 : b === pid ? 1 : a - b))) {
    try {
      const schedule = parseSchedstat(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
      if (schedule) threads.push({ tid, ...schedule });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

/** VmRSS in KiB from the text of /proc/<pid>/status. Pure. */
export function parseVmRssKiB(status: string): number | undefined {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** utime + stime of `pid` in seconds; undefined when the process or /proc is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    return parseStatCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Resident set size of `pid` in KiB; undefined when the process or /proc is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    return parseVmRssKiB(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Sum of the CPU seconds of `pids` (processes that are gone count 0). */
export function totalCpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
}

export interface CpuShare {
  readonly name: string;
  /** Share of one core over the window, in percent (200% = both cores of a 2-core machine). */
  readonly percentOfOneCore: number;
}

/** Measures the CPU used by named groups of processes between `start()` and `stop()`. */
export class CpuMeter {
  private readonly startedAt = performance.now();
  private readonly before: Map<string, number>;

  constructor(private readonly groups: ReadonlyMap<string, readonly number[]>) {
    this.before = new Map([...groups].map(([name, pids]) => [name, totalCpuSeconds(pids)]));
  }

  stop(): CpuShare[] {
    const seconds = (performance.now() - this.startedAt) / 1000;
    return [...this.groups].map(([name, pids]) => ({
      name,
      percentOfOneCore:
        seconds > 0 ? ((totalCpuSeconds(pids) - (this.before.get(name) ?? 0)) / seconds) * 100 : 0,
    }));
  }
}
