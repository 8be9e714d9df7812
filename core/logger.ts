import pino from 'pino';
import type { LogLevel } from './config.ts';
import type { LogEventAt, LogFieldsArgument } from './log-events.ts';

/**
 * Structured JSON logs (README.md, "Log events"): one object per line with `time` (ISO 8601), `level`
 * (a name), `event`, the base fields (`workerId`) and the event's fields. Secrets never reach the output: fields whose names denote a secret are
 * replaced by "[redacted]" at any depth, and every value given in `secrets` is scrubbed from every
 * string, error messages included.
 */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * The logger of the worker and the Lambda: event names, their levels and fields are those of the
 * catalog (core/log-events.ts), checked at compile time.
 */
export interface Logger {
  readonly level: LogLevel;
  debug<E extends LogEventAt<'debug'>>(event: E, ...fields: LogFieldsArgument<E>): void;
  info<E extends LogEventAt<'info'>>(event: E, ...fields: LogFieldsArgument<E>): void;
  warn<E extends LogEventAt<'warn'>>(event: E, ...fields: LogFieldsArgument<E>): void;
  error<E extends LogEventAt<'error'>>(event: E, ...fields: LogFieldsArgument<E>): void;
  /** A logger whose lines also carry `fields`; shares level, output and secrets with its parent. */
  child(fields: LogFields): Logger;
  /**
   * The same output (level, base fields, secrets) for event names outside the catalog: a handler
   * module's own lines (`ctx.log`).
   */
  lines(): LineLogger;
  /**
   * Writes every line logged so far out of the process, synchronously (lines are otherwise batched
   * until the end of the event-loop turn). Call it before acting on the fact that a line was written.
   */
  flush(): void;
  isEnabled(level: LogLevel): boolean;
}

/** A logger of any event name (a handler module's own events; the logger's own tests). */
export interface LineLogger {
  readonly level: LogLevel;
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger whose lines also carry `fields`; shares level, output and secrets with its parent. */
  child(fields: LogFields): LineLogger;
  /** Writes every line logged so far out of the process, synchronously (see Logger.flush). */
  flush(): void;
  isEnabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly base?: LogFields;
  /** Receives one complete line without the newline. Default: stdout, batched per turn (StdoutLines). */
  readonly write?: (line: string) => void;
  /** Writes out what `write` buffered, synchronously. Default: that of stdout; nothing with a custom `write`. */
  readonly flush?: () => void;
  /** Secret values (passwords, tokens) to scrub from every string. */
  readonly secrets?: readonly (string | undefined)[];
  readonly now?: () => Date;
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values are secrets, whatever they hold. `fencingToken` is not a secret. */
const SECRET_FIELD =
  /^(password|passwd|pass|secret|token|authtoken|auth|apikey|credentials?|passphrase)$|(password|secret|authtoken)$/i;

export const REDACTED = '[redacted]';

/** SECRET_FIELD's verdict per field name: a line has the same few names over and over. */
const secretFieldNames = new Map<string, boolean>();
const SECRET_FIELD_CACHE_LIMIT = 4096;
function isSecretField(name: string): boolean {
  let secret = secretFieldNames.get(name);
  if (secret === undefined) {
    secret = SECRET_FIELD.test(name);
    if (secretFieldNames.size < SECRET_FIELD_CACHE_LIMIT) secretFieldNames.set(name, secret);
  }
  return secret;
}

/** Copies `fields` into `record`, sanitized; primitives take a short path (the hot lines are flat). */
function addSanitized(record: Record<string, unknown>, fields: LogFields, secrets: SecretSet): void {
  for (const key in fields) {
    if (!Object.hasOwn(fields, key)) continue;
    const value = fields[key];
    if (value === undefined) {
      record[key] = undefined;
    } else if (isSecretField(key) && value !== null) {
      record[key] = REDACTED;
    } else if (typeof value === 'string') {
      record[key] = secrets.scrub(value);
    } else if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
      record[key] = value;
    } else {
      record[key] = sanitize(value, secrets, new WeakSet(), 1);
    }
  }
}

class SecretSet {
  private readonly values = new Set<string>();
  add(value: string | undefined): void {
    // Very short values would scrub ordinary text; an AUTH token is at least 16 characters.
    if (value !== undefined && value.length >= 4) this.values.add(value);
  }
  scrub(text: string): string {
    if (this.values.size === 0) return text;
    let out = text;
    for (const secret of this.values) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }
}

function sanitize(value: unknown, secrets: SecretSet, seen: WeakSet<object>, depth: number): unknown {
  if (typeof value === 'string') return secrets.scrub(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? String(value) : value;
  }
  if (seen.has(value)) return '[circular]';
  if (depth > 8) return '[depth]';
  seen.add(value);
  try {
    if (Buffer.isBuffer(value)) return { base64: value.toString('base64') };
    if (value instanceof Error) {
      const out: Record<string, unknown> = { name: value.name, message: secrets.scrub(value.message) };
      const code = (value as { code?: unknown }).code;
      if (code !== undefined) out.code = sanitize(code, secrets, seen, depth + 1);
      if (value.cause !== undefined) out.cause = sanitize(value.cause, secrets, seen, depth + 1);
      return out;
    }
    if (Array.isArray(value)) return value.map((item) => sanitize(item, secrets, seen, depth + 1));
    if (value instanceof Map) return sanitize(Object.fromEntries(value), secrets, seen, depth + 1);
    if (value instanceof Set) return sanitize([...value], secrets, seen, depth + 1);
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] =
        isSecretField(key) && item !== undefined && item !== null
          ? REDACTED
          : sanitize(item, secrets, seen, depth + 1);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

class JsonLogger implements LineLogger {
  constructor(
    readonly level: LogLevel,
    private readonly base: LogFields,
    private readonly write: (line: string) => void,
    private readonly flushLines: () => void,
    private readonly secrets: SecretSet,
    private readonly now: () => Date,
  ) {}

  flush(): void {
    this.flushLines();
  }

  isEnabled(level: LogLevel): boolean {
    return LEVEL_ORDER[level] >= LEVEL_ORDER[this.level];
  }

  private emit(level: LogLevel, event: string, fields: LogFields | undefined): void {
    if (!this.isEnabled(level)) return;
    // Field for field what sanitize() does to the whole record, in the same order (a later field wins).
    const record: Record<string, unknown> = {
      time: this.secrets.scrub(this.now().toISOString()),
      level,
      event: this.secrets.scrub(event),
    };
    addSanitized(record, this.base, this.secrets);
    if (fields !== undefined) addSanitized(record, fields, this.secrets);
    this.write(JSON.stringify(record));
  }

  debug(event: string, fields?: LogFields): void {
    this.emit('debug', event, fields);
  }
  info(event: string, fields?: LogFields): void {
    this.emit('info', event, fields);
  }
  warn(event: string, fields?: LogFields): void {
    this.emit('warn', event, fields);
  }
  error(event: string, fields?: LogFields): void {
    this.emit('error', event, fields);
  }
  child(fields: LogFields): JsonLogger {
    return new JsonLogger(
      this.level,
      { ...this.base, ...fields },
      this.write,
      this.flushLines,
      this.secrets,
      this.now,
    );
  }
  lines(): LineLogger {
    return this;
  }
}

/** Buffered lines are written at once past this many characters, without waiting for the turn's end. */
const STDOUT_FLUSH_CHARS = 64 * 1024;

/**
 * The default sink: stdout, written synchronously (pino's destination with `sync: true`), in batches.
 * Lines logged during one turn of the event loop are joined and written with one write at the end of
 * the turn (setImmediate), when more than STDOUT_FLUSH_CHARS are buffered, on `flush()`, and at process
 * exit. A line is in the kernel (the pipe to the log driver, or a file) once it is written, so a SIGKILL
 * or an OOM kill can only lose lines of the current turn that were never flushed.
 *
 * This matters for correctness: the `log` handler's output is its `key.processed` line, so the replay
 * coordinator calls `flush()` before it computes a processed mark, and a mark never covers an event
 * whose line is still in this process (test/unit/core/logger-durability.test.ts). Node's own
 * process.stdout on a pipe is asynchronous: a line in its user-space buffer would be counted as handled
 * and never replayed. The cost is back-pressure: a reader that falls behind (a full pipe) blocks the
 * writer until it reads.
 */
class StdoutLines {
  private readonly destination = pino.destination({ dest: 1, sync: true });
  private buffered: string[] = [];
  private bufferedChars = 0;
  private scheduled = false;

  constructor() {
    // Nothing to tell when stdout itself fails (EPIPE: the reader is gone); the process carries on.
    this.destination.on('error', () => {});
    process.on('exit', () => this.flush());
  }

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

  flush(): void {
    if (this.buffered.length === 0) return;
    const text = `${this.buffered.join('\n')}\n`;
    this.buffered = [];
    this.bufferedChars = 0;
    this.destination.write(text);
  }
}

/**
 * One StdoutLines per process, made by the first logger that writes to stdout, on purpose: it is
 * not an object each logger's creator owns.
 * - File descriptor 1 is one per process, and the durability contract above is about all of it: a
 *   `flush()` must write out every stdout line logged before it, whichever logger logged it (the
 *   worker's logger, its children, a handler's `ctx.log`). Two sinks on fd 1 would each hold their
 *   own batch: one's flush would leave the other's lines in the process (a processed mark could then
 *   cover an event whose line a SIGKILL loses), and their batches would reach the log out of order.
 * - The `exit` hook that writes the last batch is registered once, with the one sink; a sink per
 *   logger would add a listener per logger created (tests create many) and need closing by hand.
 * Whoever wants its own output passes `write` (and `flush`): the Lambda (Powertools), the CLI
 * (stderr), the local runner, the chaos suite, the bench and the tests do; only worker/main.ts and
 * test/unit/core/fixtures/log-then-wait.ts use this default.
 */
let stdoutLines: StdoutLines | undefined;
function stdout(): StdoutLines {
  stdoutLines ??= new StdoutLines();
  return stdoutLines;
}

/** The catalog-typed logger (the worker's and the Lambda's). */
export function createLogger(options: LoggerOptions = {}): Logger {
  // JsonLogger writes any event name; the Logger interface narrows what callers may pass.
  return createLineLogger(options) as JsonLogger & Logger;
}

/** A logger of any event name, for code whose events are not the catalog's (tests of the logger). */
export function createLineLogger(options: LoggerOptions = {}): LineLogger {
  const secrets = new SecretSet();
  for (const secret of options.secrets ?? []) secrets.add(secret);
  const write = options.write ?? ((line: string) => stdout().write(line));
  const flush = options.write ? (options.flush ?? (() => {})) : () => stdout().flush();
  return new JsonLogger(
    options.level ?? 'info',
    options.base ?? {},
    write,
    flush,
    secrets,
    options.now ?? (() => new Date()),
  );
}

/** A logger that drops everything (tests, and code paths that must not log). */
export const silentLogger: Logger = createLogger({ write: () => {}, level: 'error' });
