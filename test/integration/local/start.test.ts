import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSummaryLine } from '../../../local/runner/plain-view.ts';

/**
 * `npm start` end to end, as a person (or CI) runs it: a real embedded cluster, real workers, the
 * generator, and the guarantee that nothing is left afterwards.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLUSTER_FILE = join(ROOT, '.local', 'cluster.json');

interface Run {
  readonly child: ChildProcess;
  output: string;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
}

function start(command: string, args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
  const run: Run = {
    child,
    output: '',
    exited: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    run.output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    run.output += chunk.toString('utf8');
  });
  return run;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) is not running.
  try {
    return !/^\d+ \([^)]*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Live processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (commandLine.includes(text) && isAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

/** Every pid the runner announced: redis-server nodes, the crash guard, the workers. */
function announcedPids(output: string): number[] {
  const pids = new Set<number>();
  for (const match of output.matchAll(/pid (\d+)/g)) pids.add(Number(match[1]));
  return [...pids];
}

async function waitFor<T>(
  probe: () => T | undefined,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits (generously: 2 cores) until none of `pids` runs and nothing mentions `folder`; returns what still runs. */
async function leftovers(pids: readonly number[], folder: string): Promise<number[]> {
  const still = await waitFor(
    () => {
      const running = [...pids.filter(isAlive), ...processesMentioning(folder)];
      return running.length === 0 ? [] : undefined;
    },
    15_000,
    200,
  );
  return still ?? [...pids.filter(isAlive), ...processesMentioning(folder)];
}

describe('npm start', () => {
  it('runs the whole system with --plain --for 15: one leader, processed close to expected, exit 0, nothing left', async () => {
    const run = start('npm', ['start', '--', '--plain', '--for', '15', '--interval', '5']);
    const { code } = await run.exited;
    const output = run.output;
    const lines = output.split('\n');

    expect(code, output).toBe(0);
    const summary = lines.map(parseSummaryLine).find((s) => s !== undefined);
    expect(summary, output).toBeDefined();
    const s = summary as Record<string, string>;
    expect(s.leaders, output).toBe('1');
    const expected = Number(s.expected);
    const processed = Number(s.processed);
    // 50 keys/s for 15 s: ~750. The generator starts once a leader leads, so nearly every one is processed.
    expect(expected, output).toBeGreaterThan(300);
    expect(processed, output).toBeGreaterThan(0);
    expect(processed / expected, output).toBeGreaterThanOrEqual(0.95);
    expect(Number(s.duplicates), output).toBeLessThanOrEqual(expected * 0.02);
    expect(output).toMatch(
      /notify-check \(the Lambda's logic, run once\): notify-keyspace-events set on 6\/6 nodes/,
    );
    expect(output).toMatch(/canary verified on 3\/3 primaries/);
    // Precise expiry is on by default: the check enforced Egx (read back gxE) and saw expire events.
    expect(output).toMatch(/now "gxE"\); canary verified/);
    expect(output).toMatch(/expire events on 3\/3 primaries/);
    expect(lines.filter((l) => /^ {2}worker-\d+ pid \d+ /.test(l)).length).toBeGreaterThanOrEqual(3);

    const folder = /folder (\S+);/.exec(output)?.[1];
    expect(folder, output).toMatch(/kl-redis-cluster-/);
    const pids = announcedPids(output);
    // 6 redis-server nodes, the crash guard, 3 workers.
    expect(pids.length, output).toBeGreaterThanOrEqual(10);
    expect(await leftovers(pids, folder as string)).toEqual([]);
    expect(existsSync(folder as string)).toBe(false);
    expect(existsSync(CLUSTER_FILE)).toBe(false);
  }, 150_000);

  it('shows tracked expiry lag with --volatile 20000, and deletes the background keys at the end: nothing left', async () => {
    const run = start('npm', [
      'start',
      '--',
      '--plain',
      '--for',
      '5',
      '--interval',
      '2',
      '--volatile',
      '20000',
    ]);
    const { code } = await run.exited;
    const output = run.output;
    const lines = output.split('\n');

    expect(code, output).toBe(0);
    expect(output).toMatch(/loaded 20000 volatile keys volatile:1\.\.20000 \(TTL 1 h\)/);
    // The cluster publishes `expire` events (class g): the workers track the demo keys as they are set.
    expect(output).toMatch(
      /notify-keyspace-events (set on 6\/6 nodes \(.*now "[^"]*g[^"]*"|"[^"]*g[^"]*" on every node)/,
    );
    const lagLines = lines.filter((l) =>
      /^ {2}expiry lag: tracked p50 \S+ ms p99 \S+ ms \(\d[\d,]* keys\) \| native /.test(l),
    );
    expect(lagLines.length, output).toBeGreaterThan(0);
    expect(
      lagLines.some((l) => /volatile keys 20,000 \(TTL 1 h\)/.test(l)),
      output,
    ).toBe(true);

    const s = lines.map(parseSummaryLine).find((x) => x !== undefined) as Record<string, string>;
    expect(s, output).toBeDefined();
    expect(s.leaders, output).toBe('1');
    // ~50 keys/s for 5 s, every one tracked through its `expire` event; lag bound generous (2 cores).
    expect(Number(s.lagTracked), output).toBeGreaterThan(100);
    expect(Number(s.lagTrackedP99), output).toBeLessThan(2000);
    expect(s.volatileKeys, output).toBe('20000');
    expect(s.volatileLeft, output).toBe('0');
    expect(output).toMatch(/deleted 20000 volatile keys; 0 left/);

    const folder = /folder (\S+);/.exec(output)?.[1];
    expect(folder, output).toMatch(/kl-redis-cluster-/);
    const pids = announcedPids(output);
    expect(pids.length, output).toBeGreaterThanOrEqual(10);
    expect(await leftovers(pids, folder as string)).toEqual([]);
    expect(existsSync(folder as string)).toBe(false);
    expect(existsSync(CLUSTER_FILE)).toBe(false);
  }, 150_000);

  it('runs TLS-only with ACL users under --tls: one leader, keys processed, exit 0, no password printed, nothing left', async () => {
    const secretsFolder = mkdtempSync(join(tmpdir(), 'kl-start-tls-'));
    const secretsFile = join(secretsFolder, 'secrets.json');
    try {
      const run = start('npm', ['start', '--', '--plain', '--tls', '--for', '10', '--interval', '5'], {
        KL_TEST_SECRETS_FILE: secretsFile,
      });
      // While it runs: .local/cluster.json says TLS and names the CA, and holds no password.
      const clusterFile = await waitFor(
        () => {
          if (run.child.exitCode !== null || !existsSync(CLUSTER_FILE)) return undefined;
          try {
            return readFileSync(CLUSTER_FILE, 'utf8');
          } catch {
            return undefined;
          }
        },
        90_000,
        100,
      );
      const { code } = await run.exited;
      const output = run.output;
      const lines = output.split('\n');

      expect(code, output).toBe(0);
      const summary = lines.map(parseSummaryLine).find((s) => s !== undefined) as Record<string, string>;
      expect(summary, output).toBeDefined();
      expect(summary.leaders, output).toBe('1');
      expect(Number(summary.processed), output).toBeGreaterThan(0);
      // The check ran as its own ACL user over TLS (no fallback to the cluster's admin connection).
      expect(output).toMatch(
        /notify-check \(the Lambda's logic, run once\): notify-keyspace-events set on 6\/6 nodes/,
      );
      expect(output).not.toMatch(/notify-check could not run/);
      expect(output).toMatch(/TLS only \(CA \S+ca\.crt\), default user off; ACL users worker/);
      expect(lines.filter((l) => l.endsWith('| TLS, ACL users worker/check')).length).toBeGreaterThan(0);

      expect(clusterFile, output).toBeDefined();
      const file = JSON.parse(clusterFile as string) as Record<string, unknown>;
      expect(file.tls).toBe(true);
      expect(file.caFile).toEqual(expect.stringMatching(/ca\.crt$/));
      expect(Object.keys(file).some((k) => /pass|secret|user/i.test(k))).toBe(false);

      // The passwords generated for this run appear nowhere: not in the output, not in the file.
      const { passwords } = JSON.parse(readFileSync(secretsFile, 'utf8')) as { passwords: string[] };
      expect(passwords).toHaveLength(2);
      for (const password of passwords) {
        expect(password.length).toBeGreaterThanOrEqual(32);
        expect(output.includes(password)).toBe(false);
        expect((clusterFile as string).includes(password)).toBe(false);
      }

      const folder = /folder (\S+);/.exec(output)?.[1];
      expect(folder, output).toMatch(/kl-redis-cluster-/);
      const pids = announcedPids(output);
      expect(pids.length, output).toBeGreaterThanOrEqual(10);
      expect(await leftovers(pids, folder as string)).toEqual([]);
      expect(existsSync(folder as string)).toBe(false);
      expect(existsSync(CLUSTER_FILE)).toBe(false);
    } finally {
      rmSync(secretsFolder, { recursive: true, force: true });
    }
  }, 150_000);

  it('leaves no worker, Redis node or cluster file behind when the runner itself is SIGKILLed', async () => {
    // The runner directly (no npm/tsx wrapper in between), so the SIGKILL hits it and only it.
    const run = start(process.execPath, ['--import', 'tsx', 'local/start.ts', '--plain', '--interval', '60']);
    try {
      const ready = await waitFor(
        () => (/ready: worker-\d+ leads/.test(run.output) ? true : undefined),
        90_000,
        200,
      );
      expect(ready, run.output).toBe(true);
      expect(existsSync(CLUSTER_FILE)).toBe(true);
      run.child.kill('SIGKILL');
      await run.exited;
      const folder = /folder (\S+);/.exec(run.output)?.[1] as string;
      const pids = announcedPids(run.output);
      expect(pids.length, run.output).toBeGreaterThanOrEqual(10);
      expect(await leftovers(pids, folder)).toEqual([]);
      expect(existsSync(folder)).toBe(false);
      // The workers' parent-watch removes the file of their dead runner.
      expect(await waitFor(() => (existsSync(CLUSTER_FILE) ? undefined : true), 10_000)).toBe(true);
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    }
  }, 150_000);
});
