import { execFile, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { RedisServerMissingError } from './errors.ts';

const execFileAsync = promisify(execFile);

/**
 * Finds `redis-server` (>= 7.0: ADDSLOTSRANGE, cluster-port, shutdown-on-sigterm). When it is missing
 * and this process runs as root on a machine with apt-get (CI containers, this dev VM), it installs
 * the distribution package, printing each command on stderr; otherwise it throws
 * RedisServerMissingError naming the command to run. The decision takes its dependencies as
 * arguments so it is unit-tested without touching apt.
 */

export const MIN_REDIS_VERSION: readonly [number, number] = [7, 0];

export interface RedisBinaryDeps {
  /** Absolute path of an executable found on PATH (or a usual system folder), undefined if none. */
  readonly findExecutable: (name: string) => Promise<string | undefined>;
  /** `x.y.z` from `redis-server --version`, undefined when it cannot be read. */
  readonly readVersion: (path: string) => Promise<string | undefined>;
  readonly isRoot: () => boolean;
  readonly platform: NodeJS.Platform;
  /** Runs a command to completion, its output on stderr; rejects on a non-zero exit. */
  readonly run: (command: string, args: readonly string[]) => Promise<void>;
  /** One line for a person (stderr). */
  readonly log: (line: string) => void;
}

function isAtLeast(version: string, minimum: readonly [number, number]): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > minimum[0] || (major === minimum[0] && minor >= minimum[1]);
}

async function checkedPath(path: string, deps: RedisBinaryDeps): Promise<string> {
  const version = await deps.readVersion(path);
  if (version === undefined) throw new RedisServerMissingError(`'${path} --version' did not print a version`);
  if (!isAtLeast(version, MIN_REDIS_VERSION)) {
    throw new RedisServerMissingError(
      `redis-server ${version} at ${path} is older than ${MIN_REDIS_VERSION.join('.')}`,
    );
  }
  return path;
}

/** Path of a usable `redis-server`, installing it with apt-get when allowed (see above). */
export async function ensureRedisServer(deps: RedisBinaryDeps = systemRedisBinaryDeps): Promise<string> {
  const found = await deps.findExecutable('redis-server');
  if (found !== undefined) return checkedPath(found, deps);

  const aptGet =
    deps.platform === 'linux' && deps.isRoot() ? await deps.findExecutable('apt-get') : undefined;
  if (aptGet === undefined) throw new RedisServerMissingError('redis-server was not found on PATH');

  deps.log('redis-server not found; installing it: apt-get update && apt-get install -y redis-server');
  try {
    deps.log('$ apt-get update');
    await deps.run(aptGet, ['update']);
    deps.log('$ apt-get install -y redis-server');
    await deps.run(aptGet, ['install', '-y', 'redis-server']);
  } catch (error) {
    throw new RedisServerMissingError('redis-server was not found and apt-get could not install it', {
      cause: error,
    });
  }
  const installed = await deps.findExecutable('redis-server');
  if (installed === undefined) {
    throw new RedisServerMissingError('apt-get installed redis-server but it is still not on PATH');
  }
  deps.log(`redis-server installed at ${installed}`);
  return checkedPath(installed, deps);
}

// Folders searched after PATH: sbin is often missing from a non-login root PATH; Homebrew on Apple silicon.
const EXTRA_DIRS = ['/usr/local/bin', '/usr/bin', '/usr/sbin', '/opt/homebrew/bin'];

async function findExecutable(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function readVersion(path: string): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync(path, ['--version'], { timeout: 10_000 });
    return /v=(\d+\.\d+\.\d+)/.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

function run(command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      // stdout of this process may carry machine-readable output (`npm run report -- --json`).
      stdio: ['ignore', process.stderr, process.stderr],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${signal ?? `code ${code}`}`));
    });
  });
}

export const systemRedisBinaryDeps: RedisBinaryDeps = {
  findExecutable,
  readVersion,
  isRoot: () => process.getuid?.() === 0,
  platform: process.platform,
  run,
  log: (line) => process.stderr.write(`[local-cluster] ${line}\n`),
};

let systemRedisServer: Promise<string> | undefined;

/** ensureRedisServer() with the real system, once per process (a failure is retried next call). */
export function resolveRedisServer(): Promise<string> {
  systemRedisServer ??= ensureRedisServer().catch((error: unknown) => {
    systemRedisServer = undefined;
    throw error;
  });
  return systemRedisServer;
}
