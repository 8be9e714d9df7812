import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The `log` handler's output is its `key.processed` line, and the replay coordinator flushes the
 * logger before it computes a processed mark. A line must therefore be out of the process once
 * `logger.flush()` returns (and, without it, once the turn of the event loop that logged it is over):
 * a line left in Node's user-space stdout buffer is lost by a SIGKILL (or an OOM kill) while the mark
 * already counts it, and the successor never replays it. Found by the bench's crash-loss runs: with the
 * bench reading stdout behind the worker, 356-3,939 events were lost per crash.
 */
const CHILD = fileURLToPath(new URL('./fixtures/log-then-wait.ts', import.meta.url));
/** Far more than a pipe holds (64 KiB on Linux), so lines must wait for the reader. */
const LINE_COUNT = 5000;
/** The reader starts this late: long enough for a child that buffers in user space to finish. */
const READER_START_DELAY_MS = 1000;

async function linesReadAfterKill(how: 'flush' | 'next-turn'): Promise<{ lines: string[]; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(LINE_COUNT), how], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout = child.stdout;
  stdout.pause();
  let received = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const drained = new Promise<void>((resolve) => stdout.on('end', () => resolve()));
  const startReading = () => {
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      received += chunk;
    });
    stdout.resume();
  };
  const startTimer = setTimeout(startReading, READER_START_DELAY_MS);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (stderr.includes('done\n')) child.kill('SIGKILL');
  });
  await exited;
  clearTimeout(startTimer);
  // What the pipe still holds is readable after the exit: only what never left the child is lost.
  if (!stdout.listenerCount('data')) startReading();
  await drained;
  return { lines: received.split('\n').filter((line) => line.includes('"key.processed"')), stderr };
}

describe('logger default sink (stdout)', () => {
  it('sequence 13: every line flushed before a SIGKILL reaches the reader', async () => {
    const { lines, stderr } = await linesReadAfterKill('flush');
    expect(stderr).toContain('done');
    expect(lines).toHaveLength(LINE_COUNT);
  }, 30_000);

  it('sequence 13: lines of a finished turn of the event loop are written without a flush', async () => {
    const { lines, stderr } = await linesReadAfterKill('next-turn');
    expect(stderr).toContain('done');
    expect(lines).toHaveLength(LINE_COUNT);
  }, 30_000);
});
