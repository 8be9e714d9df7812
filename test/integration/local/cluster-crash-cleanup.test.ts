import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../../local/process-alive.ts';
import { eventually } from './helpers.ts';

// A program that started a cluster and died without stop() must leave nothing behind: after SIGKILL
// only the detached guard can clean up; after SIGINT the process' own signal hook does.

interface Started {
  readonly folder: string;
  readonly pids: number[];
  readonly guardPid: number;
}

const fixture = fileURLToPath(new URL('./fixtures/start-cluster-child.ts', import.meta.url));
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

const children: ChildProcess[] = [];

function startChild(): Promise<{ child: ChildProcess; started: Started }> {
  const child = spawn(process.execPath, ['--import', tsxLoader, fixture], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line) resolve({ child, started: JSON.parse(line) as Started });
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`child exited early (${signal ?? code}): ${stderr}`)),
    );
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function expectNothingLeft(started: Started): Promise<void> {
  const gone = () => started.pids.every((pid) => !isProcessAlive(pid)) && !existsSync(started.folder);
  expect(await eventually(gone, 5000)).toBe(true);
  expect(await eventually(() => !isProcessAlive(started.guardPid), 5000)).toBe(true);
}

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

describe('crash cleanup of a local cluster', () => {
  it('a SIGKILLed owner leaves no redis-server and no folder within a few seconds (the guard)', async () => {
    const { child, started } = await startChild();
    expect(started.pids).toHaveLength(1);
    expect(started.pids.every((pid) => isProcessAlive(pid))).toBe(true);
    expect(existsSync(started.folder)).toBe(true);
    expect(isProcessAlive(started.guardPid)).toBe(true);

    child.kill('SIGKILL');
    await exited(child);
    await expectNothingLeft(started);
  });

  it('a SIGINTed owner with no handler of its own cleans up and still dies of SIGINT (the hooks)', async () => {
    const { child, started } = await startChild();
    child.kill('SIGINT');
    await exited(child);
    expect(child.signalCode).toBe('SIGINT');
    await expectNothingLeft(started);
  });
});
