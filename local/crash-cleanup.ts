import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  GUARD_READY_FILE,
  killClusterProcessesSync,
  removeFolderSync,
  writeTrackedPids,
} from './cluster-guard.ts';
import { LocalClusterStateError } from './errors.ts';

/**
 * Leaves nothing behind when the process that started a local cluster ends without calling stop():
 * - a detached guard process (cluster-guard.ts) that outlives a SIGKILL of this process;
 * - a process 'exit' hook (normal exit, process.exit(), an uncaught exception) that SIGKILLs the nodes
 *   and removes the folder synchronously;
 * - SIGINT / SIGTERM / SIGHUP hooks that do the same and then re-raise the signal, but only when no
 *   one else listens to that signal: a program with its own handler (npm start shuts its workers
 *   down before the cluster) keeps control, and the 'exit' hook and the guard remain the backstop.
 */

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type HookedSignal = (typeof SIGNALS)[number];

const armed = new Set<CrashCleanup>();

function cleanupAllSync(): void {
  for (const cleanup of armed) cleanup.cleanupSync();
}

function onExit(): void {
  cleanupAllSync();
}

function onSignal(signal: HookedSignal): void {
  if (process.listenerCount(signal) > 1) return;
  cleanupAllSync();
  uninstallHooks();
  process.kill(process.pid, signal);
}

const signalListeners = new Map<HookedSignal, () => void>(SIGNALS.map((s) => [s, () => onSignal(s)]));

function installHooks(): void {
  process.on('exit', onExit);
  for (const [signal, listener] of signalListeners) process.on(signal, listener);
}

function uninstallHooks(): void {
  process.off('exit', onExit);
  for (const [signal, listener] of signalListeners) process.off(signal, listener);
}

function guardCommand(folder: string): { command: string; args: string[] } {
  const require = createRequire(import.meta.url);
  // tsx by absolute URL: the guard must start whatever the current working directory is.
  const tsxLoader = pathToFileURL(require.resolve('tsx')).href;
  const script = fileURLToPath(new URL('./cluster-guard.ts', import.meta.url));
  return { command: process.execPath, args: ['--import', tsxLoader, script, String(process.pid), folder] };
}

export class CrashCleanup {
  private pids: readonly number[] = [];
  private disarmed = false;

  private guardHasExited = false;
  private readonly guardExited: Promise<void>;

  private constructor(
    readonly folder: string,
    private readonly guard: ChildProcess,
  ) {
    this.guardExited = new Promise<void>((resolve) => {
      const onGone = () => {
        this.guardHasExited = true;
        resolve();
      };
      guard.once('exit', onGone);
      guard.once('error', onGone);
    });
    // The guard must not keep this process alive.
    guard.unref();
  }

  /** Registers the hooks and starts the guard for `folder` (which must exist). */
  static arm(folder: string): CrashCleanup {
    const { command, args } = guardCommand(folder);
    const logFd = openSync(join(folder, 'guard.log'), 'a');
    let guard: ChildProcess;
    try {
      guard = spawn(command, args, { detached: true, stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    const cleanup = new CrashCleanup(folder, guard);
    if (armed.size === 0) installHooks();
    armed.add(cleanup);
    writeTrackedPids(folder, []);
    return cleanup;
  }

  /** Resolves once the guard watches this process (it writes guard.ready); rejects if it died. */
  async ready(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(join(this.folder, GUARD_READY_FILE))) {
      if (this.guardHasExited) {
        throw new LocalClusterStateError(
          `the crash guard exited at start (see ${join(this.folder, 'guard.log')})`,
        );
      }
      if (Date.now() > deadline)
        throw new LocalClusterStateError(`the crash guard did not start within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  get guardPid(): number | undefined {
    return this.guard.pid;
  }

  /** The pids of the cluster's live nodes, for the guard and the exit hook. */
  setPids(pids: readonly number[]): void {
    this.pids = [...pids];
    if (this.disarmed) return;
    try {
      writeTrackedPids(this.folder, this.pids);
    } catch {
      // The folder is being removed (stop); nothing left to guard.
    }
  }

  /** Kills the nodes and removes the folder, synchronously (exit and signal hooks). */
  cleanupSync(): void {
    killClusterProcessesSync(this.folder, this.pids);
    removeFolderSync(this.folder);
  }

  /** After a normal stop (nodes gone, folder removed): unhook and end the guard. Idempotent. */
  async disarm(): Promise<void> {
    if (this.disarmed) return;
    this.disarmed = true;
    armed.delete(this);
    if (armed.size === 0) uninstallHooks();
    if (!this.guardHasExited) {
      try {
        this.guard.kill('SIGTERM');
      } catch {
        // already gone
      }
    }
    // The timer is deliberately not unref'd: the guard is, so an unref'd timer would leave nothing to
    // keep the event loop alive, and a caller awaiting stop() last would see its process exit (code 0)
    // before stop() resolved.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.guardExited,
      new Promise((resolve) => {
        timer = setTimeout(resolve, 2000);
      }),
    ]);
    clearTimeout(timer);
  }
}
