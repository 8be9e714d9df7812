import pino from 'pino';

/** Buffered lines are written at once past this many characters, without waiting for the turn's end. */
const STDOUT_FLUSH_CHARS = 64 * 1024;

/**
 * The process's one writer of stdout: the logger's lines (core/logger.ts) and the EMF documents
 * (core/metrics.ts) both go through it. Lines written during one turn of the event loop are joined
 * and written synchronously (pino's destination with `sync: true`) with one write at the end of the
 * turn (setImmediate), when more than STDOUT_FLUSH_CHARS are buffered, on `flush()`, and at process
 * exit. A line is in the kernel (the pipe to the log driver, or a file) once it is written, so a
 * SIGKILL or an OOM kill can only lose lines of the current turn that were never flushed.
 *
 * This matters for correctness: the `log` handler's output is its `key.processed` line, so the replay
 * coordinator calls `flush()` before it computes a processed mark, and a mark never covers an event
 * whose line is still in this process (test/unit/core/logger-durability.test.ts). Node's own
 * process.stdout on a pipe is asynchronous: a line in its user-space buffer would be counted as handled
 * and never replayed.
 *
 * The cost is back-pressure: a reader that falls behind (a full pipe) blocks the writer until it
 * reads. Only until then: fd 1 is made blocking here. Node makes a pipe or socket non-blocking as soon
 * as anything touches `process.stdout` (the metrics did, a handler's console.log does), and on a
 * non-blocking fd pino's destination meets EAGAIN and sleeps 100 ms per try, freezing the whole
 * process (lease renewals, touches, events) however briefly the reader lagged
 * (test/unit/core/stdout-sink.test.ts). `process.stdout` is created here, first, and its handle set
 * blocking, so whoever writes to it later writes to the same blocking descriptor (what Node itself
 * does for a TTY). A file descriptor that is a file is blocking already and has no such handle.
 */
export class StdoutLines {
  private readonly destination = pino.destination({ dest: 1, sync: true });
  private buffered: string[] = [];
  private bufferedChars = 0;
  private scheduled = false;

  constructor() {
    makeStdoutBlocking();
    // Nothing to tell when stdout itself fails (EPIPE: the reader is gone); the process carries on.
    this.destination.on('error', () => {});
    process.on('exit', () => this.flush());
  }

  /** Takes one complete line, without its newline. */
  write(line: string): void {
    this.buffered.push(line);
    this.bufferedChars += line.length + 1;
    if (this.bufferedChars >= STDOUT_FLUSH_CHARS) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Writes every buffered line out of the process now (blocks while the reader is behind). */
  flush(): void {
    if (this.buffered.length === 0) return;
    const text = `${this.buffered.join('\n')}\n`;
    this.buffered = [];
    this.bufferedChars = 0;
    this.destination.write(text);
  }
}

/** A libuv stream handle: `setBlocking` clears O_NONBLOCK of its fd (pipes, sockets, TTYs). */
interface StreamHandle {
  setBlocking?: (blocking: boolean) => number;
}

function makeStdoutBlocking(): void {
  // `_handle` is Node's own (no public API sets a pipe blocking on POSIX); absent for a file.
  const handle = (process.stdout as unknown as { _handle?: StreamHandle })._handle;
  handle?.setBlocking?.(true);
  // Errors of process.stdout itself (EPIPE once the reader is gone) are nothing to act on.
  if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', () => {});
}

/**
 * One StdoutLines per process, made by the first writer of stdout, on purpose: it is not an object
 * each logger's or metrics' creator owns.
 * - File descriptor 1 is one per process, and the durability contract above is about all of it: a
 *   `flush()` must write out every stdout line logged before it, whoever wrote it (the worker's
 *   logger, its children, a handler's `ctx.log`, the metrics). Two sinks on fd 1 would each hold their
 *   own batch: one's flush would leave the other's lines in the process, and their batches would reach
 *   the log out of order (or cut each other: a line written synchronously while the other writer's
 *   is half out).
 * - The `exit` hook that writes the last batch is registered once, with the one sink; a sink per
 *   logger would add a listener per logger created (tests create many) and need closing by hand.
 * Whoever wants its own output passes `write` (and `flush`) to the logger or the metrics: the Lambda
 * (Powertools), the CLI (stderr), the local runner, the chaos suite, the bench and the tests do; only
 * worker/main.ts and the fixtures of test/unit/core use this default.
 */
let sink: StdoutLines | undefined;
export function stdoutLines(): StdoutLines {
  sink ??= new StdoutLines();
  return sink;
}
