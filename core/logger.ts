import type { LogLevel } from './config.ts';
import type { LogEventAt, LogFieldsArgument } from './log-events.ts';
import { stdoutLines } from './stdout-lines.ts';

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
  /** Receives one complete line without the newline. Default: stdout, batched per turn (core/stdout-lines.ts). */
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

/** Field names remembered per cache at most (lines have the same few names over and over). */
const FIELD_NAME_CACHE_LIMIT = 4096;

/** `compute` of a field name, remembered for the first FIELD_NAME_CACHE_LIMIT names. */
function perFieldName<T>(compute: (name: string) => T): (name: string) => T {
  const cache = new Map<string, T>();
  return (name) => {
    let result = cache.get(name);
    if (result === undefined) {
      result = compute(name);
      if (cache.size < FIELD_NAME_CACHE_LIMIT) cache.set(name, result);
    }
    return result;
  };
}

/** SECRET_FIELD's verdict per field name. */
const isSecretField = perFieldName((name) => SECRET_FIELD.test(name));

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

/**
 * The names every line starts with, and `__proto__` (a record cannot hold it as a field): a field of one
 * of these names takes the record path (emit).
 */
const RESERVED_FIELDS: ReadonlySet<string> = new Set(['time', 'level', 'event', '__proto__']);

/**
 * `fields` as the text JSON.stringify gives them inside an object (`,"name":value` each, '' for none),
 * when the line can be written straight as text: `fields` is a plain object whose values are all
 * primitives JSON writes as they are (strings, numbers, booleans, null; undefined is left out, as
 * JSON.stringify leaves it out), no name is in `taken` or names a secret, and no string holds a secret.
 * Undefined otherwise: the caller builds the record then (sanitize: redaction, scrubbing, errors,
 * buffers, and the later field winning). One JSON.stringify writes a flat string, where text built
 * field by field was a rope of dozens of pieces for the batch's join to flatten: a `key.processed` line
 * with its share of that join and write costs 7.0-7.5 us (median of 40 bursts of 1,000 lines, Node 20,
 * this machine) where the field-by-field text cost 8.0-9.1.
 */
function plainJson(fields: LogFields, secrets: SecretSet, taken: ReadonlySet<string>): string | undefined {
  const prototype = Object.getPrototypeOf(fields);
  // A class instance may have a toJSON, or getters JSON.stringify would not see as fields.
  if (prototype !== Object.prototype && prototype !== null) return undefined;
  // Object.keys: own enumerable string keys, in the order JSON.stringify writes them.
  const keys = Object.keys(fields);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (taken.has(key)) return undefined;
    const value = fields[key];
    if (value === undefined) continue;
    if (typeof value === 'string') {
      if (secrets.holdsAny(value)) return undefined;
    } else if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
      // written as they are (JSON.stringify writes NaN and the infinities as null, as sanitize's record does)
    } else {
      return undefined;
    }
    if (isSecretField(key) && value !== null) return undefined;
  }
  const json = JSON.stringify(fields);
  return json.length === 2 ? '' : `,${json.slice(1, -1)}`;
}

class SecretSet {
  private readonly values = new Set<string>();
  add(value: string | undefined): void {
    // Very short values would scrub ordinary text; an AUTH token is at least 16 characters.
    if (value !== undefined && value.length >= 4) this.values.add(value);
  }
  /** True when `text` holds one of the secrets (scrub would change it). */
  holdsAny(text: string): boolean {
    if (this.values.size === 0) return false;
    for (const secret of this.values) if (text.includes(secret)) return true;
    return false;
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
      // Its message is often empty: what failed is in its members (a lease vote's, one per member).
      if (value instanceof AggregateError) out.errors = sanitize(value.errors, secrets, seen, depth + 1);
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
  /**
   * The base fields as text (`,"name":value...`), made once when every one of them is a primitive
   * (their text cannot change); undefined otherwise, and then made per line.
   */
  private readonly baseJson: string | undefined;
  /** Names a line's own fields must not repeat to be written as text: the head's and the base's. */
  private readonly takenFields: ReadonlySet<string>;
  private isoAtMs = Number.NaN;
  private iso = '';

  constructor(
    readonly level: LogLevel,
    private readonly base: LogFields,
    private readonly write: (line: string) => void,
    private readonly flushLines: () => void,
    private readonly secrets: SecretSet,
    private readonly now: () => Date,
  ) {
    const names = Object.keys(base);
    this.takenFields = new Set([...RESERVED_FIELDS, ...names]);
    const primitive = names.every((name) => {
      const value = base[name];
      return value === null || (typeof value !== 'object' && typeof value !== 'function');
    });
    this.baseJson = primitive ? plainJson(base, secrets, RESERVED_FIELDS) : undefined;
  }

  flush(): void {
    this.flushLines();
  }

  isEnabled(level: LogLevel): boolean {
    return LEVEL_ORDER[level] >= LEVEL_ORDER[this.level];
  }

  private emit(level: LogLevel, event: string, fields: LogFields | undefined): void {
    if (!this.isEnabled(level)) return;
    const head = `{"time":${JSON.stringify(this.secrets.scrub(this.isoNow()))},"level":"${level}","event":${JSON.stringify(this.secrets.scrub(event))}`;
    const base = this.baseJson ?? plainJson(this.base, this.secrets, RESERVED_FIELDS);
    const rest = fields === undefined ? '' : plainJson(fields, this.secrets, this.takenFields);
    if (base === undefined || rest === undefined) {
      this.write(JSON.stringify(this.recordOf(level, event, fields)));
      return;
    }
    this.write(`${head}${base}${rest}}`);
  }

  /**
   * The line as one record, field for field what sanitize() does to the whole record, in the same
   * order (a later field wins): the path of a line whose fields repeat a name of the line's head or
   * of the base fields. emit() writes every other line straight as text, with the same result.
   */
  private recordOf(level: LogLevel, event: string, fields: LogFields | undefined): Record<string, unknown> {
    const record: Record<string, unknown> = {
      time: this.secrets.scrub(this.isoNow()),
      level,
      event: this.secrets.scrub(event),
    };
    addSanitized(record, this.base, this.secrets);
    if (fields !== undefined) addSanitized(record, fields, this.secrets);
    return record;
  }

  /** now() in ISO 8601, formatted once per millisecond (a busy worker writes thousands of lines a second). */
  private isoNow(): string {
    const date = this.now();
    const ms = date.getTime();
    if (ms !== this.isoAtMs) {
      this.isoAtMs = ms;
      this.iso = date.toISOString();
    }
    return this.iso;
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

/** The catalog-typed logger (the worker's and the Lambda's). */
export function createLogger(options: LoggerOptions = {}): Logger {
  // JsonLogger writes any event name; the Logger interface narrows what callers may pass.
  return createLineLogger(options) as JsonLogger & Logger;
}

/** A logger of any event name, for code whose events are not the catalog's (tests of the logger). */
export function createLineLogger(options: LoggerOptions = {}): LineLogger {
  const secrets = new SecretSet();
  for (const secret of options.secrets ?? []) secrets.add(secret);
  const write = options.write ?? ((line: string) => stdoutLines().write(line));
  const flush = options.write ? (options.flush ?? (() => {})) : () => stdoutLines().flush();
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
