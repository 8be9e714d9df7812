import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { RedisConnectionConfig, RedisNodeAddress } from './config.ts';
import type { Logger } from './logger.ts';

/**
 * Builds ioredis clients from the parsed configuration, the same way for the worker and the Lambda.
 * Every client gets an `error` listener (an unhandled 'error' event would crash the process) that logs
 * each distinct cause once (then at most once a minute), naming it: a wrong password, CA, host name or
 * missing permission gives one clear line, not a storm, while the client retries with backoff.
 */

export interface ClientFactoryOptions {
  readonly logger: Logger;
  /** Shown in logs and as CLIENT SETNAME (`kl-<name>`). */
  readonly name: string;
  /** Per-command bound; undefined leaves ioredis' default (none). */
  readonly commandTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /**
   * Cluster clients only: ioredis auto-pipelining (commands issued in one event-loop turn leave as one
   * write per node). For the precise-expiry client, whose batches of lookups and touches are large.
   * @default false
   */
  readonly autoPipelining?: boolean;
  /** For one-shot callers (the Lambda): give up instead of retrying forever. */
  readonly maxRetries?: number;
}

function tlsOptions(config: RedisConnectionConfig): ConnectionOptions | undefined {
  if (!config.tls) return undefined;
  return config.tlsCaFile ? { ca: readFileSync(config.tlsCaFile) } : {};
}

/** Options for a connection to one node, shared by both factories. */
export function nodeRedisOptions(config: RedisConnectionConfig, options: ClientFactoryOptions): RedisOptions {
  const tls = tlsOptions(config);
  return {
    ...(tls ? { tls } : {}),
    ...(config.username ? { username: config.username } : {}),
    ...(config.password ? { password: config.password } : {}),
    connectionName: `kl-${options.name}`,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    ...(options.commandTimeoutMs ? { commandTimeout: options.commandTimeoutMs } : {}),
    // Offline commands are queued only while a connection is being (re)established; the callers bound
    // their own waits, so a queue that grows without limit is not possible.
    enableOfflineQueue: true,
    maxRetriesPerRequest: options.maxRetries ?? 2,
    retryStrategy: (times: number) =>
      options.maxRetries !== undefined && times > options.maxRetries
        ? null
        : Math.min(100 * 2 ** Math.min(times, 5), 3000),
  };
}

/** What a connection error means for the operator; `redis.error` lines carry it as `problem`. */
export type ConnectionProblem =
  | 'authentication'
  | 'permission'
  | 'tls-certificate'
  | 'tls-hostname'
  | 'unreachable'
  | 'other';

const PROBLEM_HINTS: Partial<Record<ConnectionProblem, string>> = {
  authentication:
    'the server refused the credentials: check REDIS_USERNAME and REDIS_PASSWORD (the secret) and that the user is on',
  permission:
    'the ACL user lacks a command, key or channel this client needs: compare its access string with docs/security.md',
  'tls-certificate':
    "the server's certificate does not chain to a trusted CA: check REDIS_TLS_CA_FILE (unset: the system CAs)",
  'tls-hostname':
    'the certificate does not name the host this client connected to: use a host name from the certificate in REDIS_NODES',
  unreachable: 'no connection: check REDIS_NODES, security groups/network path, and REDIS_TLS',
};

/** Node's TLS verification codes that mean "not signed by a CA we trust" (or not valid now). */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/**
 * The error that explains a connection failure. A Cluster client reports a failed slot refresh as
 * `ClusterAllFailedError` ("Failed to refresh slots cache."), which names no cause; the last node's
 * own error (WRONGPASS, a certificate error, NOPERM) is its `lastNodeError`.
 */
export function rootConnectionError(error: Error): Error {
  const last = (error as { lastNodeError?: unknown }).lastNodeError;
  return last instanceof Error && last !== error ? rootConnectionError(last) : error;
}

/**
 * Classifies by error code only: Node's `code` for TLS and socket errors, and for Redis replies the
 * reply's error code (its first word, part of the protocol).
 */
export function classifyConnectionError(error: Error): ConnectionProblem {
  const root = rootConnectionError(error);
  const code = (root as NodeJS.ErrnoException).code;
  const replyCode = root.message.split(' ', 1)[0];
  if (replyCode === 'WRONGPASS' || replyCode === 'NOAUTH') return 'authentication';
  if (replyCode === 'NOPERM') return 'permission';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'tls-hostname';
  if (code !== undefined && CERTIFICATE_CODES.has(code)) return 'tls-certificate';
  if (code !== undefined && NETWORK_CODES.has(code)) return 'unreachable';
  return 'other';
}

/** A cause that persists is logged again after this long, with the count of repeats meanwhile. */
export const ERROR_REPEAT_INTERVAL_MS = 60_000;
/** At most this many `redis.error` lines per client and interval, whatever the causes. */
export const ERROR_LINES_PER_INTERVAL = 10;

export interface ErrorLoggingOptions {
  /** A Cluster client: also log its 'node error' events (they carry the node's own error). */
  readonly nodeErrors?: boolean;
  /**
   * Finds the cause of an error that names none: a Cluster whose slot refresh fails on a TLS
   * handshake reports only "Connection is closed." (ioredis opens that connection itself and drops
   * its error). Called at most once until the client is ready again; resolves with the error a
   * direct connection attempt met (and where), or undefined when it connected.
   */
  readonly diagnose?: () => Promise<{ readonly error: Error; readonly node: string } | undefined>;
  /** Wall clock in ms (tests). */
  readonly now?: () => number;
}

/**
 * Logs connection errors as `redis.error` lines that name their cause (`error` is the root error,
 * `problem` its class, `hint` what to check, `node` the node when known). A client that retries a
 * wrong password or an untrusted certificate with backoff writes one line, then one a minute while
 * the cause persists (`repeated`: occurrences in between), not one per retry; `ready` starts afresh.
 * A generic error ("Connection is closed.") is not logged while a classified cause explains it, and
 * with `diagnose` it is replaced by the diagnosis.
 */
export function attachErrorLogging(
  emitter: NodeJS.EventEmitter,
  logger: Logger,
  fields: Record<string, unknown>,
  options: ErrorLoggingOptions = {},
): void {
  const now = options.now ?? Date.now;
  /** Per cause: when it was last logged and how often it occurred since. */
  const causes = new Map<string, { loggedAtMs: number; repeated: number }>();
  let classifiedAtMs: number | undefined;
  let windowStartMs = Number.NEGATIVE_INFINITY;
  let linesInWindow = 0;
  let diagnosis: 'none' | 'pending' | 'done' = 'none';
  const log = (error: Error, extra: Record<string, unknown>) => {
    const atMs = now();
    const root = rootConnectionError(error);
    const problem = classifyConnectionError(root);
    if (
      problem === 'other' &&
      classifiedAtMs !== undefined &&
      atMs - classifiedAtMs < ERROR_REPEAT_INTERVAL_MS
    )
      return;
    const cause = `${problem}:${root.message}`;
    const seen = causes.get(cause);
    if (seen && atMs - seen.loggedAtMs < ERROR_REPEAT_INTERVAL_MS) {
      seen.repeated++;
      return;
    }
    if (atMs - windowStartMs >= ERROR_REPEAT_INTERVAL_MS) {
      windowStartMs = atMs;
      linesInWindow = 0;
    }
    if (linesInWindow >= ERROR_LINES_PER_INTERVAL) return;
    linesInWindow++;
    causes.set(cause, { loggedAtMs: atMs, repeated: 0 });
    if (problem !== 'other') classifiedAtMs = atMs;
    const hint = PROBLEM_HINTS[problem];
    logger.warn('redis.error', {
      ...fields,
      ...extra,
      problem,
      ...(hint === undefined ? {} : { hint }),
      error: root,
      ...(root === error ? {} : { reportedAs: error.message }),
      ...(seen ? { repeated: seen.repeated } : {}),
    });
  };
  const onError = (error: Error, node?: string) => {
    const extra = node === undefined ? {} : { node };
    const { diagnose } = options;
    if (diagnose === undefined || classifyConnectionError(error) !== 'other') return log(error, extra);
    // A cause-less error: diagnose once; errors meanwhile are what the diagnosis explains.
    if (diagnosis === 'pending') return;
    if (diagnosis === 'done') return log(error, extra);
    diagnosis = 'pending';
    void diagnose().then(
      (found) => {
        diagnosis = 'done';
        if (found) log(found.error, { node: found.node, diagnosedBy: 'direct-connection' });
        else log(error, extra);
      },
      () => {
        diagnosis = 'done';
        log(error, extra);
      },
    );
  };
  emitter.on('error', (error: Error) => onError(error));
  if (options.nodeErrors) emitter.on('node error', (error: Error, node: string) => onError(error, node));
  emitter.on('ready', () => {
    causes.clear();
    classifiedAtMs = undefined;
    // A diagnosis still pending logs its finding; the next outage starts a new one.
    diagnosis = 'none';
  });
}

/**
 * `client.connect()` for a client that does not retry, rejecting with the error the connection met
 * (WRONGPASS, a certificate or host name error) instead of the "Connection is closed." with which
 * ioredis rejects `connect()` after such an error.
 */
export async function connectExplained(client: Redis): Promise<void> {
  let first: Error | undefined;
  const onError = (error: Error) => {
    first ??= error;
  };
  client.on('error', onError);
  try {
    await client.connect();
  } catch (error) {
    throw first ?? error;
  } finally {
    client.off('error', onError);
  }
}

/**
 * One connection attempt to the first seed with the client's own TLS and credentials, no retries:
 * resolves with the error it met (a certificate or host name error, WRONGPASS, ECONNRESET) and the
 * seed's address, or undefined when it connected.
 */
export async function probeSeed(
  config: RedisConnectionConfig,
  options: ClientFactoryOptions,
): Promise<{ error: Error; node: string } | undefined> {
  const seed = config.nodes[0];
  if (seed === undefined) return undefined;
  const probe = new Redis({
    ...nodeRedisOptions(config, { ...options, name: `${options.name}-probe`, maxRetries: 0 }),
    host: seed.host,
    port: seed.port,
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: false,
  });
  probe.on('error', () => {});
  let failure: Error | undefined;
  try {
    await connectExplained(probe);
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
  } finally {
    probe.disconnect();
  }
  return failure === undefined ? undefined : { error: failure, node: `${seed.host}:${seed.port}` };
}

export function createClusterClient(config: RedisConnectionConfig, options: ClientFactoryOptions): Cluster {
  const redisOptions = nodeRedisOptions(config, options);
  const clusterOptions: ClusterOptions = {
    redisOptions,
    // ElastiCache with TLS: the certificate names the configuration endpoint's hostnames; resolving
    // them here would make ioredis connect by IP and fail the host name check (ioredis README).
    dnsLookup: (address, callback) => callback(null, address),
    enableOfflineQueue: true,
    enableReadyCheck: true,
    slotsRefreshTimeout: 2000,
    clusterRetryStrategy: (times: number) =>
      options.maxRetries !== undefined && times > options.maxRetries
        ? null
        : Math.min(100 * 2 ** Math.min(times, 5), 3000),
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    enableAutoPipelining: options.autoPipelining ?? false,
  };
  const cluster = new Cluster(
    config.nodes.map((n) => ({ host: n.host, port: n.port })),
    clusterOptions,
  );
  attachErrorLogging(
    cluster,
    options.logger,
    { client: options.name },
    { nodeErrors: true, diagnose: () => probeSeed(config, options) },
  );
  return cluster;
}

export function createNodeClient(
  address: RedisNodeAddress,
  config: RedisConnectionConfig,
  options: ClientFactoryOptions & { readonly lazyConnect?: boolean },
): Redis {
  const client = new Redis({
    ...nodeRedisOptions(config, options),
    host: address.host,
    port: address.port,
    lazyConnect: options.lazyConnect ?? false,
  });
  attachErrorLogging(client, options.logger, {
    client: options.name,
    node: `${address.host}:${address.port}`,
  });
  return client;
}

/** Closes a client without throwing (QUIT when connected, else disconnect). */
export async function closeQuietly(client: Redis | Cluster): Promise<void> {
  try {
    if (client.status === 'ready') await client.quit();
    else client.disconnect();
  } catch {
    client.disconnect();
  }
}
