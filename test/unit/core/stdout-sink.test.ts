import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The worker writes log lines and EMF documents to one file descriptor, stdout, read by the log
 * driver (ECS) or the local runner. The defect (main as of 5cdc61e): the metrics wrote through Node's process.stdout, whose creation makes fd 1 non-blocking, so the
 * logger's synchronous writes met EAGAIN whenever the reader fell behind, and pino's destination then
 * froze the whole process for 100 ms per attempt (lease renewals, touches, every event). Found by the
 * on-time bench as of 5cdc61e: with 10,000 probes sharing a deadline, the worker's profile showed
 * ~300 ms in atomic-sleep under the logger's flush.
 */
const CHILD = fileURLToPath(new URL('./fixtures/logs-and-metrics.ts', import.meta.url));
/** How long the reader of the `stall` run stops reading once the child is ready. */
const READER_PAUSE_MS = 20;
/**
 * The child's flush of a burst bigger than the pipe, bounded: the reader's pause plus reading ~1 MB,
 * with room for a loaded machine; a writer that sleeps 100 ms per EAGAIN cannot meet it.
 */
const STALL_BOUND_MS = 95;

function run(args: string[], onStderr: (text: string, child: ReturnType<typeof spawn>) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    onStderr(stderr, child);
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

describe('stdout sink (logs and metrics)', () => {
  it('leaves stdout blocking once the logger and the metrics write to it', async () => {
    const { exited, output } = run(['flags'], () => {});
    await exited;
    expect(output().stderr).toContain('nonblocking false');
  }, 30_000);

  it('a reader that stops for a moment stalls the writer for about that moment, not 100 ms a try', async () => {
    let paused = false;
    const { exited, output } = run(['stall'], (text, c) => {
      if (text.includes('ready\n') && !paused) {
        paused = true;
        c.stdout?.pause();
        setTimeout(() => c.stdout?.resume(), READER_PAUSE_MS);
      }
      if (text.includes('took ')) c.kill('SIGTERM');
    });
    await exited;
    const took = Number(/took ([0-9.]+)/.exec(output().stderr)?.[1]);
    expect(took).toBeGreaterThan(0);
    expect(took).toBeLessThan(STALL_BOUND_MS);
  }, 30_000);
});
