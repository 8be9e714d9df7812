import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Runs worker processes the way ECS runs tasks: a fixed number of them, each replaced by a new one
 * (new WORKER_ID) when it exits, until `stop()`. Every worker is a direct child `node --import tsx
 * --import parent-watch.mjs <script>` (a JavaScript script, the bundle dist/worker/main.mjs, without
 * `--import tsx`: it runs as the image ships it): signals reach it without a tsx wrapper in between,
 * and the preloaded parent-watch stops it when this process dies (see parent-watch.mjs). Workers run
 * in their own process group, so a Ctrl-C in the terminal reaches only the runner, which stops them
 * in order.
 */

export interface WorkerSupervisorEvents {
  onSpawn(id: string, pid: number | undefined, atMs: number): void;
  onLine(id: string, line: string, atMs: number): void;
  onStderr(id: string, line: string, atMs: number): void;
  onExit(id: string, code: number | null, signal: string | null, atMs: number): void;
  /** Something the person running it should know (a crash loop stopped the replacements, ...). */
  onNotice(text: string, atMs: number): void;
}

export interface WorkerSupervisorOptions {
  /**
   * Absolute path of the worker program: TypeScript (worker/main.ts, bench/seed-baseline.ts) runs
   * under tsx; JavaScript (`.mjs`, `.js`: the bundle) runs without it, as the image runs it.
   */
  readonly script: string;
  readonly cwd: string;
  /** Environment shared by every worker (REDIS_NODES, LEADER_NAME, HEALTH_PORT, ...). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly idPrefix?: string;
  /** Start a new worker when one exits (default true). */
  readonly replace?: boolean;
  readonly replaceDelayMs?: number;
  /** SIGTERM, then SIGKILL after this bound, on stop(). */
  readonly stopTimeoutMs?: number;
  readonly events: WorkerSupervisorEvents;
  /** Wall-clock ms with sub-ms resolution where available. */
  readonly now?: () => number;
}

interface RunningWorker {
  readonly id: string;
  readonly child: ChildProcess;
  readonly spawnedAtMs: number;
  signalled: string | undefined;
  readonly exited: Promise<void>;
}

/** Early exits in a row (not signalled by us) after which replacements stop: a crash loop. */
const CRASH_LOOP_LIMIT = 3;
const EARLY_EXIT_MS = 10_000;

export const PARENT_WATCH_SCRIPT = fileURLToPath(new URL('./parent-watch.mjs', import.meta.url));

/** Node's arguments for `script`: the tsx loader only for TypeScript, the parent-watch always. */
export function workerNodeArgs(script: string): string[] {
  const watch = ['--import', pathToFileURL(PARENT_WATCH_SCRIPT).href];
  return /\.[cm]?js$/.test(script) ? [...watch, script] : ['--import', tsxLoaderUrl(), ...watch, script];
}

export function tsxLoaderUrl(): string {
  const require = createRequire(import.meta.url);
  return pathToFileURL(require.resolve('tsx')).href;
}

export const preciseNow = (): number => performance.timeOrigin + performance.now();

export class WorkerSupervisor {
  private readonly workers = new Map<string, RunningWorker>();
  private readonly pendingReplacements = new Set<NodeJS.Timeout>();
  private nextIndex = 1;
  private stopping = false;
  private earlyExitsInARow = 0;
  private gaveUpValue = false;
  private readonly now: () => number;

  constructor(private readonly options: WorkerSupervisorOptions) {
    this.now = options.now ?? preciseNow;
  }

  /** True once a crash loop stopped the replacements. */
  get gaveUp(): boolean {
    return this.gaveUpValue;
  }

  /** Starts `count` workers. */
  start(count: number): string[] {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(this.spawnOne());
    return ids;
  }

  spawnOne(): string {
    const id = `${this.options.idPrefix ?? 'worker-'}${this.nextIndex++}`;
    const child = spawn(process.execPath, workerNodeArgs(this.options.script), {
      cwd: this.options.cwd,
      env: { ...process.env, ...this.options.env, WORKER_ID: id, KL_PARENT_WATCH: 'stdin' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let resolveExited: () => void = () => {};
    const exited = new Promise<void>((resolve) => {
      resolveExited = resolve;
    });
    const worker: RunningWorker = { id, child, spawnedAtMs: this.now(), signalled: undefined, exited };
    this.workers.set(id, worker);
    // The stdin pipe is the parent-watch's lifeline: never written, never ended before the child exits.
    child.stdin?.on('error', () => {});
    child.on('error', (error) => {
      this.options.events.onNotice(`${id} could not be started: ${error.message}`, this.now());
    });
    if (child.stdout) {
      const lines = createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY });
      lines.on('line', (line) => this.options.events.onLine(id, line, this.now()));
    }
    if (child.stderr) {
      const lines = createInterface({ input: child.stderr, crlfDelay: Number.POSITIVE_INFINITY });
      lines.on('line', (line) => this.options.events.onStderr(id, line, this.now()));
    }
    // 'close', not 'exit': it comes after the last stdout line, so a `leader.released` written just
    // before exiting is seen before the exit.
    child.on('close', (code, signal) => {
      const atMs = this.now();
      this.workers.delete(id);
      this.options.events.onExit(id, code, signal, atMs);
      resolveExited();
      this.afterExit(worker, code, atMs);
    });
    this.options.events.onSpawn(id, child.pid, this.now());
    return id;
  }

  private afterExit(worker: RunningWorker, code: number | null, atMs: number): void {
    if (this.stopping || this.gaveUpValue || this.options.replace === false) return;
    const early = worker.signalled === undefined && code !== 0 && atMs - worker.spawnedAtMs < EARLY_EXIT_MS;
    this.earlyExitsInARow = early ? this.earlyExitsInARow + 1 : 0;
    if (this.earlyExitsInARow >= CRASH_LOOP_LIMIT) {
      this.gaveUpValue = true;
      for (const timer of this.pendingReplacements) clearTimeout(timer);
      this.pendingReplacements.clear();
      this.options.events.onNotice(
        `${CRASH_LOOP_LIMIT} workers in a row exited within ${EARLY_EXIT_MS / 1000} s of starting; not starting more (see their stderr)`,
        atMs,
      );
      return;
    }
    const timer = setTimeout(() => {
      this.pendingReplacements.delete(timer);
      if (!this.stopping) this.spawnOne();
    }, this.options.replaceDelayMs ?? 1000);
    this.pendingReplacements.add(timer);
  }

  /** Sends `signal` to a running worker; false when it is not running. */
  signal(id: string, signal: NodeJS.Signals): boolean {
    const worker = this.workers.get(id);
    if (!worker || worker.child.exitCode !== null || worker.child.signalCode !== null) return false;
    worker.signalled = signal;
    try {
      return worker.child.kill(signal);
    } catch {
      return false;
    }
  }

  liveIds(): string[] {
    return [...this.workers.keys()];
  }

  pids(): number[] {
    return [...this.workers.values()].map((w) => w.child.pid).filter((p): p is number => p !== undefined);
  }

  /** Stops replacing, SIGTERMs every worker, SIGKILLs those still running after the bound. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.pendingReplacements) clearTimeout(timer);
    this.pendingReplacements.clear();
    const workers = [...this.workers.values()];
    for (const worker of workers) this.signal(worker.id, 'SIGTERM');
    const bound = this.options.stopTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), bound);
    });
    const result = await Promise.race([
      Promise.all(workers.map((w) => w.exited)).then(() => 'done' as const),
      timedOut,
    ]);
    clearTimeout(timer);
    if (result === 'timeout') {
      for (const worker of this.workers.values()) {
        this.options.events.onNotice(`${worker.id} did not stop within ${bound} ms; SIGKILL`, this.now());
        this.signal(worker.id, 'SIGKILL');
      }
      await Promise.all(workers.map((w) => w.exited));
    }
  }

  /** Last resort from a synchronous exit hook: SIGKILL whatever still runs. */
  killAllSync(): void {
    this.stopping = true;
    for (const timer of this.pendingReplacements) clearTimeout(timer);
    for (const worker of this.workers.values()) {
      try {
        worker.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
