import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isProcessAlive, listProcessIds, processCommandLine } from './process-alive.ts';

/**
 * Crash cleanup of a local cluster, as a program and as functions.
 *
 * As a program (`node --import tsx local/cluster-guard.ts <parentPid> <folder>`), started detached by
 * crash-cleanup.ts: it polls its parent; when the parent is gone (SIGKILL, crash, exit without
 * stop()), it SIGKILLs every redis-server of the cluster and removes the folder, then exits. It exits
 * quietly when the folder disappears (a normal stop()) or on SIGTERM from the parent.
 *
 * The processes of a cluster are: the pids the parent lists in `<folder>/pids.json` (rewritten on every
 * start and exit of a node), the `redis.pid` files of its nodes, and on Linux every process whose
 * command line is `redis-server <folder>/...` (that also covers a node spawned just before the
 * parent died, before it was listed). On Linux a listed pid is only killed if its command line still
 * names the folder, so a recycled pid is never hit.
 */

export const PIDS_FILE = 'pids.json';
export const GUARD_READY_FILE = 'guard.ready';

/** Writes the parent's list of live node pids (atomically enough: one small write). */
export function writeTrackedPids(folder: string, pids: readonly number[]): void {
  writeFileSync(join(folder, PIDS_FILE), JSON.stringify({ pids }));
}

function readJsonPids(folder: string): number[] {
  try {
    const data = JSON.parse(readFileSync(join(folder, PIDS_FILE), 'utf8')) as { pids?: unknown };
    return Array.isArray(data.pids) ? data.pids.filter((p): p is number => Number.isInteger(p) && p > 0) : [];
  } catch {
    return [];
  }
}

function readPidFiles(folder: string): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(folder);
  } catch {
    return pids;
  }
  for (const entry of entries) {
    try {
      const pid = Number(readFileSync(join(folder, entry, 'redis.pid'), 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0) pids.push(pid);
    } catch {
      // not a node folder, or the node removed its pid file on a clean exit
    }
  }
  return pids;
}

function namesFolder(commandLine: string, folder: string): boolean {
  return commandLine.includes('redis-server') && commandLine.includes(`${folder}/`);
}

/** Every live redis-server process of the cluster in `folder` (see the header). */
export function findClusterProcesses(folder: string, knownPids: readonly number[] = []): number[] {
  const candidates = new Set([...knownPids, ...readJsonPids(folder), ...readPidFiles(folder)]);
  const found = new Set<number>();
  for (const pid of candidates) {
    if (pid === process.pid || !isProcessAlive(pid)) continue;
    const commandLine = processCommandLine(pid);
    // Without /proc (macOS) the listed pids are trusted as they are.
    if (commandLine === undefined || namesFolder(commandLine, folder)) found.add(pid);
  }
  for (const pid of listProcessIds()) {
    if (pid === process.pid || found.has(pid)) continue;
    const commandLine = processCommandLine(pid);
    if (commandLine !== undefined && namesFolder(commandLine, folder) && isProcessAlive(pid)) found.add(pid);
  }
  return [...found];
}

/** SIGKILLs the cluster's processes; returns the pids signalled. Synchronous: usable in 'exit' hooks. */
export function killClusterProcessesSync(folder: string, knownPids: readonly number[] = []): number[] {
  const pids = findClusterProcesses(folder, knownPids);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids;
}

/** Removes the folder; a node that is still dying may add a file meanwhile, so it retries. */
export function removeFolderSync(folder: string): boolean {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      rmSync(folder, { recursive: true, force: true });
      if (!existsSync(folder)) return true;
    } catch {
      // ENOTEMPTY while a file is being written: try again
    }
  }
  return !existsSync(folder);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface GuardSettings {
  readonly parentPid: number;
  readonly folder: string;
  readonly pollIntervalMs: number;
}

/** The guard's loop; resolves with what ended it. */
export async function runClusterGuard(settings: GuardSettings): Promise<'parent-died' | 'folder-removed'> {
  const { parentPid, folder, pollIntervalMs } = settings;
  const parentAlive = () => process.ppid === parentPid && isProcessAlive(parentPid);
  if (parentAlive() && existsSync(folder)) writeFileSync(join(folder, GUARD_READY_FILE), String(process.pid));
  for (;;) {
    if (!existsSync(folder)) return 'folder-removed';
    if (!parentAlive()) break;
    await sleep(pollIntervalMs);
  }
  // The parent is gone: kill until nothing of the cluster runs any more (bounded), then remove the folder.
  const deadline = Date.now() + 5000;
  while (killClusterProcessesSync(folder).length > 0 && Date.now() < deadline) await sleep(50);
  removeFolderSync(folder);
  return 'parent-died';
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const parentPid = Number(process.argv[2]);
  const folder = process.argv[3];
  if (!Number.isInteger(parentPid) || parentPid <= 0 || folder === undefined || folder === '') {
    process.stderr.write('usage: cluster-guard.ts <parentPid> <folder>\n');
    process.exit(64);
  }
  runClusterGuard({ parentPid, folder, pollIntervalMs: 200 }).then(
    (reason) => {
      process.stderr.write(`cluster-guard: ${reason}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`cluster-guard failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
