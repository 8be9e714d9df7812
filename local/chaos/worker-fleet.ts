import { decodeLogLine } from '../../core/log-decoder.ts';
import type { LogRecord } from '../../core/log-events.ts';
import { preciseNow, WorkerSupervisor } from '../runner/worker-supervisor.ts';
import type { LifecycleEvent, WorkerRecord } from './chaos-accounting.ts';

/**
 * The workers of one chaos run: child processes started through the runner's WorkerSupervisor
 * (`node --import tsx --import parent-watch.mjs worker/main.ts`: the worker itself is the child, so
 * SIGKILL / SIGSTOP reach it and not a wrapper such as npx; no worker outlives this process). Every
 * JSON line they write is kept as a WorkerRecord (time = the line's `time` field), every spawn, signal
 * and exit as a LifecycleEvent, and a live view (leader, subscriptions) is kept for the waits.
 *
 * Workers are never replaced automatically: scenarios decide (rolling-restart spawns replacements).
 */

export interface FleetWorker {
  readonly id: string;
  readonly pid: number | undefined;
  readonly exited: boolean;
  readonly paused: boolean;
  readonly isLeader: boolean;
  readonly fencingToken: number | undefined;
  /** Primaries with a confirmed subscription. */
  readonly subscribed: ReadonlySet<string>;
  /** Primaries in its last `topology.changed`. */
  readonly known: readonly string[] | undefined;
}

export interface WorkerFleetOptions {
  readonly script: string;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly idPrefix: string;
  readonly onNotice: (text: string) => void;
  /** SIGTERM, then SIGKILL after this bound, at stop(). */
  readonly stopTimeoutMs?: number;
}

interface LiveWorker {
  id: string;
  pid: number | undefined;
  exited: boolean;
  paused: boolean;
  isLeader: boolean;
  fencingToken: number | undefined;
  subscribed: Set<string>;
  known: string[] | undefined;
  stderr: string[];
  lastLines: string[];
  exitedPromise: Promise<void>;
  resolveExited: () => void;
}

const TAIL_LINES = 12;

export class WorkerFleet {
  readonly records: WorkerRecord[] = [];
  readonly lifecycle: LifecycleEvent[] = [];
  private readonly workers = new Map<string, LiveWorker>();
  private readonly supervisor: WorkerSupervisor;
  private stopPromise: Promise<void> | undefined;

  constructor(options: WorkerFleetOptions) {
    this.supervisor = new WorkerSupervisor({
      script: options.script,
      cwd: options.cwd,
      env: options.env,
      idPrefix: options.idPrefix,
      replace: false,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      now: preciseNow,
      events: {
        onSpawn: (id, pid, atMs) => this.onSpawn(id, pid, atMs),
        onLine: (id, line, atMs) => this.onLine(id, line, atMs),
        onStderr: (id, line) => {
          const worker = this.workers.get(id);
          if (worker) keepTail(worker.stderr, line);
        },
        onExit: (id, code, signal, atMs) => this.onExit(id, code, signal, atMs),
        onNotice: (text) => options.onNotice(text),
      },
    });
  }

  start(count: number): string[] {
    return this.supervisor.start(count);
  }

  spawn(): string {
    return this.supervisor.spawnOne();
  }

  /** Sends a signal and records it (the accounting needs the instant of SIGKILL, SIGSTOP, SIGCONT). */
  signal(id: string, signal: NodeJS.Signals): boolean {
    const worker = this.workers.get(id);
    if (!worker || worker.exited) return false;
    const atMs = preciseNow();
    const sent = this.supervisor.signal(id, signal);
    if (!sent) return false;
    this.lifecycle.push({ workerId: id, kind: 'signalled', atMs, signal });
    if (signal === 'SIGSTOP') worker.paused = true;
    if (signal === 'SIGCONT') worker.paused = false;
    return true;
  }

  get(id: string): FleetWorker | undefined {
    return this.workers.get(id);
  }

  all(): FleetWorker[] {
    return [...this.workers.values()];
  }

  live(): FleetWorker[] {
    return this.all().filter((w) => !w.exited);
  }

  /** The running worker whose last leadership line is `leader.acquired` (highest token if several). */
  leader(): FleetWorker | undefined {
    return this.live()
      .filter((w) => w.isLeader && !w.paused)
      .sort((a, b) => (b.fencingToken ?? 0) - (a.fencingToken ?? 0))[0];
  }

  /** Subscribed to every primary of its last topology, which lists `primaries` primaries. */
  isCovered(worker: FleetWorker, primaries: number): boolean {
    const known = worker.known;
    return (
      known !== undefined && known.length === primaries && known.every((node) => worker.subscribed.has(node))
    );
  }

  exited(id: string): Promise<void> {
    return this.workers.get(id)?.exitedPromise ?? Promise.resolve();
  }

  /** Last lines and stderr of a worker, for error messages. */
  tail(id: string): string {
    const worker = this.workers.get(id);
    if (!worker) return `${id}: unknown`;
    return [`--- ${id} (pid ${worker.pid ?? '?'})`, ...worker.lastLines, ...worker.stderr].join('\n');
  }

  /** Resumes paused workers, then SIGTERM (SIGKILL after the bound) to every worker. Idempotent. */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      const atMs = preciseNow();
      for (const worker of this.workers.values()) {
        if (worker.exited) continue;
        if (worker.paused) this.signal(worker.id, 'SIGCONT');
        // supervisor.stop() sends it; recorded here so the exit counts as asked for.
        this.lifecycle.push({ workerId: worker.id, kind: 'signalled', atMs, signal: 'SIGTERM' });
      }
      await this.supervisor.stop();
    })();
    return this.stopPromise;
  }

  /** Synchronous last resort (process exit hook). */
  killAllSync(): void {
    this.supervisor.killAllSync();
  }

  private onSpawn(id: string, pid: number | undefined, atMs: number): void {
    let resolveExited: () => void = () => {};
    const exitedPromise = new Promise<void>((resolve) => {
      resolveExited = resolve;
    });
    this.workers.set(id, {
      id,
      pid,
      exited: false,
      paused: false,
      isLeader: false,
      fencingToken: undefined,
      subscribed: new Set(),
      known: undefined,
      stderr: [],
      lastLines: [],
      exitedPromise,
      resolveExited,
    });
    this.lifecycle.push({ workerId: id, kind: 'spawned', atMs });
  }

  private onExit(id: string, code: number | null, signal: string | null, atMs: number): void {
    const worker = this.workers.get(id);
    this.lifecycle.push({ workerId: id, kind: 'exited', atMs, signal: signal ?? undefined, code });
    if (!worker) return;
    worker.exited = true;
    worker.isLeader = false;
    worker.subscribed.clear();
    worker.resolveExited();
  }

  private onLine(id: string, line: string, receivedAtMs: number): void {
    const worker = this.workers.get(id);
    if (!worker) return;
    const decoded = decodeLogLine(line);
    if (decoded.kind === 'metrics') return;
    if (decoded.kind === 'invalid') {
      // Half a line (a kill mid-write), or a line the catalog does not know: kept for the report.
      keepTail(worker.stderr, `[stdout, ${decoded.reason}: ${decoded.detail}] ${line}`);
      return;
    }
    const record = decoded.record;
    const time = Date.parse(record.time);
    const atMs = Number.isFinite(time) ? time : receivedAtMs;
    // `event` and `fields` come from one record (TypeScript cannot correlate the two unions).
    this.records.push({ workerId: id, atMs, event: record.event, fields: record } as WorkerRecord);
    if (record.event !== 'key.processed') keepTail(worker.lastLines, line);
    this.follow(worker, record);
  }

  private follow(worker: LiveWorker, record: LogRecord): void {
    switch (record.event) {
      case 'leader.acquired':
        worker.isLeader = true;
        worker.fencingToken = record.fencingToken;
        return;
      case 'leader.lost':
      case 'leader.released':
        worker.isLeader = false;
        return;
      case 'subscription.up':
        worker.subscribed.add(record.node);
        return;
      case 'subscription.down':
        worker.subscribed.delete(record.node);
        return;
      case 'topology.changed':
        worker.known = [...record.primaries];
        return;
      default:
    }
  }
}

function keepTail(lines: string[], line: string): void {
  lines.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
  if (lines.length > TAIL_LINES) lines.shift();
}
