/**
 * Typed errors shared by the worker and the Lambda. Callers branch on the class (`instanceof`) or on
 * `code`, never on message text. Every error keeps its `cause`.
 */
export class KeyspaceLeaderError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem with the configuration: the variable it concerns and what a person should do. */
export interface ConfigIssue {
  readonly variable: string;
  readonly message: string;
}

/** Invalid configuration. Carries every problem found, so they can all be reported at once. */
export class ConfigError extends KeyspaceLeaderError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(
      'CONFIG_INVALID',
      `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'})`,
    );
    this.issues = issues;
  }
}

/** The cluster's topology could not be read (no node answered CLUSTER SHARDS nor CLUSTER NODES). */
export class TopologyError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TOPOLOGY_UNAVAILABLE', message, options);
  }
}

/** A Redis round trip did not complete within its own bound. */
export class TimeoutError extends KeyspaceLeaderError {
  readonly timeoutMs: number;
  constructor(operation: string, timeoutMs: number) {
    super('TIMEOUT', `${operation} did not complete within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** The stored leader record could not be decoded. */
export class LeaderRecordError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LEADER_RECORD_INVALID', message, options);
  }
}

/** Redis refused a command for lack of permission (ACL NOPERM) or because it is restricted/unknown. */
export class CommandRefusedError extends KeyspaceLeaderError {
  readonly command: string;
  readonly reason: 'noperm' | 'unknown-command' | 'other';
  constructor(
    command: string,
    reason: 'noperm' | 'unknown-command' | 'other',
    options?: { cause?: unknown },
  ) {
    super('COMMAND_REFUSED', `Redis refused ${command} (${reason})`, options);
    this.command = command;
    this.reason = reason;
  }
}

/**
 * Classifies a Redis reply error by its error code (the first word of the reply, which is part of
 * the protocol, not free text): `NOPERM` for ACL refusals, `ERR unknown command` for commands
 * renamed or disabled (ElastiCache answers CONFIG this way).
 */
export function classifyRedisRefusal(error: unknown): 'noperm' | 'unknown-command' | undefined {
  if (!(error instanceof Error)) return undefined;
  const text = error.message;
  if (text.startsWith('NOPERM')) return 'noperm';
  if (/^ERR unknown command/i.test(text)) return 'unknown-command';
  return undefined;
}

/**
 * Rejects with TimeoutError when `promise` has not settled within `timeoutMs`.
 *
 * The verdict waits for the I/O of the turn in which the bound passed: the timer only queues it
 * (setImmediate), and libuv runs the poll phase -- socket reads -- between the timers phase and
 * that. A reply that arrived while this process was held past the bound (a long GC, a burst of
 * work, a CPU quota) is thus read and wins, instead of timing out an operation that completed: a
 * lease vote failed for this process's stall, not the member's (test/unit/core/errors.test.ts).
 */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, operation: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let verdict: NodeJS.Immediate | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      verdict = setImmediate(() => reject(new TimeoutError(operation, timeoutMs)));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    clearImmediate(verdict);
  }
}
