import { readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Preloaded into every worker the runner starts (`node [--import tsx] --import <this file> <program>`)
 * so that no worker outlives the runner, even a runner killed with SIGKILL, without changing
 * worker/main.ts. The runner holds the write end of the worker's stdin pipe and never writes to it;
 * the kernel closes it when the runner dies in any way, and the worker then reads end-of-file.
 *
 * On end-of-file the worker gets SIGTERM (its own graceful stop: release and exit) and, should that
 * hang on a cluster that is going away too, SIGKILL after PARENT_GONE_KILL_AFTER_MS.
 *
 * The stdin handle is unref'd: it never keeps a worker alive by itself.
 *
 * Plain JavaScript, so that a JavaScript program (the bundle dist/worker/main.mjs the image ships,
 * which the bench measures) runs without the TypeScript loader in its process: tsx adds a loader
 * thread with a heap of its own (a worker at rest in the on-time bench: 264 MiB RSS under tsx, 79
 * without; local/runner/worker-supervisor.ts).
 */

export const PARENT_GONE_KILL_AFTER_MS = 5000;

let fired = false;
/** Read now: once the runner is gone, `process.ppid` names whoever adopted this process. */
const runnerPid = process.ppid;

/**
 * `.local/cluster.json` names the runner's pid; a SIGKILLed runner cannot remove it, so its workers
 * do, but only while it still names that runner (a new `npm start` may have replaced it already).
 */
function removeRunnerFile() {
  const path = process.env.KL_RUNNER_CLUSTER_FILE;
  if (!path) return;
  try {
    const content = JSON.parse(readFileSync(path, 'utf8'));
    if (content.pid !== runnerPid) return;
    rmSync(path, { force: true });
    const folder = dirname(path);
    if (readdirSync(folder).length === 0) rmdirSync(folder);
  } catch {
    // gone already, or being replaced: nothing to do
  }
}

function onParentGone() {
  if (fired) return;
  fired = true;
  process.stderr.write('parent-watch: the runner is gone; stopping this worker\n');
  removeRunnerFile();
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), PARENT_GONE_KILL_AFTER_MS).unref();
  process.kill(process.pid, 'SIGTERM');
}

if (process.env.KL_PARENT_WATCH === 'stdin' && !process.stdin.isTTY) {
  process.stdin.on('end', onParentGone);
  process.stdin.on('close', onParentGone);
  process.stdin.on('error', onParentGone);
  process.stdin.resume();
  process.stdin.unref?.();
}
