import { KeyspaceLeaderError } from '../core/errors.ts';

/**
 * Typed errors of the embedded local cluster. Callers branch on the class or on `code`, never on the
 * message text; every error keeps its `cause`.
 */

/** `redis-server` is not installed (or too old) and could not be installed automatically. */
export class RedisServerMissingError extends KeyspaceLeaderError {
  /** Commands a person can run, by platform. */
  readonly installCommands: { readonly debian: string; readonly macos: string };
  constructor(detail: string, options?: { cause?: unknown }) {
    const installCommands = { debian: 'sudo apt-get install -y redis-server', macos: 'brew install redis' };
    super(
      'REDIS_SERVER_MISSING',
      `${detail}. Install Redis >= 7.0: on Debian/Ubuntu run \`${installCommands.debian}\`, on macOS run \`${installCommands.macos}\``,
      options,
    );
    this.installCommands = installCommands;
  }
}

/** `openssl` is needed for `tls: true` and is missing or failed. */
export class TlsSetupError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LOCAL_TLS_SETUP_FAILED', message, options);
  }
}

/** Invalid options given to `LocalRedisCluster.start`; lists every problem at once. */
export class LocalClusterOptionsError extends KeyspaceLeaderError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('LOCAL_CLUSTER_OPTIONS_INVALID', `invalid local cluster options: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/** A redis-server process could not be started or exited during startup (its log tail is in the message). */
export class RedisNodeStartError extends KeyspaceLeaderError {
  readonly port: number;
  constructor(port: number, message: string, options?: { cause?: unknown }) {
    super('LOCAL_NODE_START_FAILED', message, options);
    this.port = port;
  }
}

/** A wait for a cluster condition ran out of time; the message holds the last problems observed. */
export class LocalClusterTimeoutError extends KeyspaceLeaderError {
  readonly timeoutMs: number;
  readonly lastProblems: readonly string[];
  constructor(what: string, timeoutMs: number, lastProblems: readonly string[]) {
    super(
      'LOCAL_CLUSTER_TIMEOUT',
      `${what} not reached within ${timeoutMs} ms${lastProblems.length > 0 ? `; last seen: ${lastProblems.slice(0, 8).join('; ')}` : ''}`,
    );
    this.timeoutMs = timeoutMs;
    this.lastProblems = lastProblems;
  }
}

/** A chaos or admin operation was asked for something the cluster cannot do in its current state. */
export class LocalClusterStateError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LOCAL_CLUSTER_STATE', message, options);
  }
}

/** The cluster was used after `stop()`. */
export class LocalClusterStoppedError extends KeyspaceLeaderError {
  constructor(operation: string) {
    super('LOCAL_CLUSTER_STOPPED', `${operation}: the local cluster has been stopped`);
  }
}
