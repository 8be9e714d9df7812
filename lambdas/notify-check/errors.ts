import { KeyspaceLeaderError } from '../../core/errors.ts';

/**
 * Errors of the notify-check run. Only ClusterUnreachableError escapes `runNotifyCheck` (so the
 * invocation counts as an error and alarms); every other failure is a field of the report.
 */

/** No seed node answered the topology query: nothing about the cluster can be said. */
export class ClusterUnreachableError extends KeyspaceLeaderError {
  /** The `host:port` seeds that were tried. */
  readonly seeds: readonly string[];
  constructor(seeds: readonly string[], options?: { cause?: unknown }) {
    super('CLUSTER_UNREACHABLE', `no seed node of the cluster answered (${seeds.join(', ')})`, options);
    this.seeds = seeds;
  }
}

/** A connection to one node could not be opened within its bound. */
export class NodeUnreachableError extends KeyspaceLeaderError {
  readonly node: string;
  constructor(node: string, options?: { cause?: unknown }) {
    super('NODE_UNREACHABLE', `could not connect to ${node}`, options);
    this.node = node;
  }
}

/** Reading the Redis password from Secrets Manager failed (the secret value is never in the message). */
export class SecretReadError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SECRET_READ_FAILED', message, options);
  }
}

/** Short text of an error for the report: the message of the error, of its cause chain appended. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    if (current instanceof AggregateError) {
      parts.push(current.errors.map((e) => describeError(e)).join('; '));
      break;
    }
    if (current instanceof Error) {
      if (current.message !== '' && !parts.includes(current.message)) parts.push(current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(': ') || 'unknown error';
}
