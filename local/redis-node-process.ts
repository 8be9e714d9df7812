import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One redis-server process of the local cluster. Spawned detached (its own process group: a Ctrl-C
 * in the terminal reaches this program, which decides, instead of every node at once) and unref'd
 * (a program that forgets stop() can still exit; the exit hook and the guard clean up). Output goes
 * to files in the node's folder: Redis' own log to redis.log, anything before it (config errors) to
 * stderr.log.
 */
export interface NodeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class RedisNodeProcess {
  private exit: NodeExit | undefined;
  private readonly exitedPromise: Promise<NodeExit>;

  private constructor(
    child: ChildProcess,
    readonly pid: number,
    readonly nodeDir: string,
    onExit: (exit: NodeExit, node: RedisNodeProcess) => void,
  ) {
    this.exitedPromise = new Promise<NodeExit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        onExit(this.exit, this);
        resolve(this.exit);
      });
    });
    child.unref();
  }

  /** Spawns `redis-server <configFile> ...args`; throws when the binary cannot be executed. */
  static async spawn(
    redisServerPath: string,
    configFile: string,
    args: readonly string[],
    nodeDir: string,
    onExit: (exit: NodeExit, node: RedisNodeProcess) => void,
  ): Promise<RedisNodeProcess> {
    const stderrFd = openSync(join(nodeDir, 'stderr.log'), 'a');
    let child: ChildProcess;
    try {
      child = spawn(redisServerPath, [configFile, ...args], {
        cwd: nodeDir,
        detached: true,
        stdio: ['ignore', stderrFd, stderrFd],
      });
    } finally {
      closeSync(stderrFd);
    }
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => {
        child.off('error', reject);
        // Later errors (a failed kill) are reported by the callers' own checks.
        child.on('error', () => {});
        resolve(child.pid as number);
      });
    });
    return new RedisNodeProcess(child, pid, nodeDir, onExit);
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  get exitInfo(): NodeExit | undefined {
    return this.exit;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exit !== undefined) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // exited between the check and the signal
    }
  }

  /** True when the process exited (and was reaped) within `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.exit !== undefined) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.exitedPromise.then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Last lines of the node's logs, for error messages. */
  logTail(lines = 8): string {
    const read = (file: string) => {
      try {
        return readFileSync(join(this.nodeDir, file), 'utf8').trim().split('\n').slice(-lines).join(' | ');
      } catch {
        return '';
      }
    };
    return [read('stderr.log'), read('redis.log')].filter((text) => text !== '').join(' | ');
  }
}
