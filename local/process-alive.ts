import { existsSync, readdirSync, readFileSync } from 'node:fs';

const hasProcfs = existsSync('/proc/self/stat');

/**
 * Whether `pid` is a live process. `kill(pid, 0)` alone also answers for a zombie (killed but not yet
 * reaped by its parent), so on Linux the state letter in /proc/<pid>/stat is checked too.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (!hasProcfs) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": comm may contain spaces and parentheses, the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * The command line of a process (arguments joined by spaces) on Linux; undefined where /proc is not
 * available or the process is gone.
 */
export function processCommandLine(pid: number): string | undefined {
  if (!hasProcfs) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** Pids of every process visible in /proc (Linux); empty elsewhere. */
export function listProcessIds(): number[] {
  if (!hasProcfs) return [];
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
}
