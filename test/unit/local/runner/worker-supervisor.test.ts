import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { WorkerSupervisor, type WorkerSupervisorEvents } from '../../../../local/runner/worker-supervisor.ts';

/**
 * The supervisor with tiny stand-in worker programs (no Redis): lines, replacement after an exit,
 * SIGTERM then SIGKILL on stop, crash-loop detection. Real child processes, so timings are generous.
 */

const folder = mkdtempSync(join(tmpdir(), 'kl-supervisor-test-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(folder, name);
  writeFileSync(path, body);
  return path;
}

// The handler is installed before the line that says the worker is up: the test signals as soon as
// it sees that line, and a child descheduled between the two (a loaded machine) would otherwise die of
// the default SIGTERM action without its `worker.stopped` line.
const polite = script(
  'polite.mjs',
  `process.on('SIGTERM', () => { console.log(JSON.stringify({ event: 'worker.stopped' })); process.exit(0); });
console.log(JSON.stringify({ event: 'worker.started', id: process.env.WORKER_ID, shared: process.env.SHARED }));
setInterval(() => {}, 1000);`,
);
const stubborn = script(
  'stubborn.mjs',
  `process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000);`,
);
const crashing = script('crashing.mjs', `console.error('boom'); process.exit(3);`);
/** Says it is up once, then writes nothing and handles no signal: only the parent-watch can end it. */
const quiet = script('quiet.mjs', `console.log('up'); setInterval(() => {}, 1000);`);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \([^)]*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function recorder() {
  const log: string[] = [];
  const events: WorkerSupervisorEvents = {
    onSpawn: (id) => log.push(`spawn ${id}`),
    onLine: (id, line) => log.push(`line ${id} ${line}`),
    onStderr: (id, line) => log.push(`stderr ${id} ${line}`),
    onExit: (id, code, signal) => log.push(`exit ${id} ${code ?? signal}`),
    onNotice: (text) => log.push(`notice ${text}`),
  };
  return { log, events };
}

/** Delay before a replacement is spawned, in the crash-loop test. */
const REPLACE_DELAY_MS = 50;
/** Ten replacement delays: a replacement armed before the supervisor gave up would have spawned. */
const NO_REPLACEMENT_WAIT_MS = 10 * REPLACE_DELAY_MS;

async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('WorkerSupervisor', () => {
  it('starts workers with their own WORKER_ID and the shared env, relays lines, replaces one that exits', async () => {
    const { log, events } = recorder();
    const supervisor = new WorkerSupervisor({
      script: polite,
      cwd: folder,
      env: { SHARED: 'yes' },
      events,
      replaceDelayMs: 100,
    });
    expect(supervisor.start(2)).toEqual(['worker-1', 'worker-2']);
    await until(() => log.filter((l) => l.includes('worker.started')).length === 2);
    expect(log).toContain('line worker-1 {"event":"worker.started","id":"worker-1","shared":"yes"}');
    expect(supervisor.signal('worker-1', 'SIGTERM')).toBe(true);
    await until(() => log.includes('spawn worker-3'));
    expect(log).toContain('line worker-1 {"event":"worker.stopped"}');
    expect(log.indexOf('line worker-1 {"event":"worker.stopped"}')).toBeLessThan(
      log.indexOf('exit worker-1 0'),
    );
    await supervisor.stop();
    expect(supervisor.liveIds()).toEqual([]);
    expect(log.filter((l) => l.startsWith('spawn'))).toHaveLength(3);
  }, 30_000);

  it('runs a JavaScript program (the bundle the image ships) without the TypeScript loader, with the parent-watch', async () => {
    const reporter = script(
      'reporter.mjs',
      `console.log(JSON.stringify({ execArgv: process.execArgv })); setInterval(() => {}, 1000);`,
    );
    const { log, events } = recorder();
    const supervisor = new WorkerSupervisor({ script: reporter, cwd: folder, env: {}, events });
    supervisor.start(1);
    await until(() => log.some((l) => l.startsWith('line worker-1 {')));
    const line = log.find((l) => l.startsWith('line worker-1 {')) as string;
    const { execArgv } = JSON.parse(line.slice('line worker-1 '.length)) as { execArgv: string[] };
    await supervisor.stop();
    // tsx would add a loader thread and ~25 MB of RSS to every measured worker (bench/on-time.ts).
    expect(execArgv.filter((arg) => arg.includes('tsx'))).toEqual([]);
    expect(execArgv.some((arg) => arg.includes('parent-watch'))).toBe(true);
  }, 30_000);

  it('SIGKILLs a worker that ignores SIGTERM once the stop bound has passed', async () => {
    const { log, events } = recorder();
    const supervisor = new WorkerSupervisor({
      script: stubborn,
      cwd: folder,
      env: {},
      events,
      stopTimeoutMs: 1000,
    });
    supervisor.start(1);
    await until(() => log.includes('line worker-1 up'));
    const began = Date.now();
    await supervisor.stop();
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);
    expect(log).toContain('exit worker-1 SIGKILL');
    expect(log.some((l) => l.startsWith('notice worker-1 did not stop within 1000 ms'))).toBe(true);
  }, 30_000);

  it('stops replacing after three workers in a row exit right after starting', async () => {
    const { log, events } = recorder();
    const supervisor = new WorkerSupervisor({
      script: crashing,
      cwd: folder,
      env: {},
      events,
      replaceDelayMs: REPLACE_DELAY_MS,
    });
    supervisor.start(1);
    await until(() => supervisor.gaveUp);
    // It gave up on the third exit: every exit was seen, so a fourth spawn could only come from a
    // replacement already armed, which fires within REPLACE_DELAY_MS.
    expect(log.filter((l) => l.startsWith('exit '))).toHaveLength(3);
    await new Promise((resolve) => setTimeout(resolve, NO_REPLACEMENT_WAIT_MS));
    expect(log.filter((l) => l.startsWith('spawn'))).toHaveLength(3);
    expect(log).toContain('stderr worker-1 boom');
    expect(log.some((l) => l.startsWith('notice 3 workers in a row exited'))).toBe(true);
    await supervisor.stop();
  }, 30_000);

  it('ends its workers, and removes the runner file naming it, when the supervising process is SIGKILLed', async () => {
    const supervisorModule = fileURLToPath(
      new URL('../../../../local/runner/worker-supervisor.ts', import.meta.url),
    );
    const runnerFile = join(folder, 'cluster.json');
    const parent = script(
      'parent.mts',
      `import { writeFileSync } from 'node:fs';
import { WorkerSupervisor } from ${JSON.stringify(supervisorModule)};
writeFileSync(${JSON.stringify(runnerFile)}, JSON.stringify({ nodes: [], tls: false, pid: process.pid }));
const noop = () => {};
const supervisor = new WorkerSupervisor({
  script: ${JSON.stringify(quiet)},
  cwd: ${JSON.stringify(folder)},
  env: { KL_RUNNER_CLUSTER_FILE: ${JSON.stringify(runnerFile)} },
  events: {
    onSpawn: (id, pid) => console.log('pid', pid),
    onLine: (id, line) => console.log(id, line),
    onStderr: noop,
    onExit: noop,
    onNotice: noop,
  },
});
supervisor.start(2);
setInterval(() => {}, 1000);`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', parent], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    // Both workers up: their preloaded parent-watch is in place (it loads before the program).
    await until(() => (output.match(/worker-\d up/g) ?? []).length === 2);
    const pids = [...output.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids.map(isAlive)).toEqual([true, true]);
    expect(existsSync(runnerFile)).toBe(true);
    child.kill('SIGKILL');
    // The quiet workers would run forever; the parent-watch ends them at once (SIGTERM: no handler).
    await until(() => !pids.some(isAlive), 10_000);
    expect(existsSync(runnerFile)).toBe(false);
  }, 30_000);
});
