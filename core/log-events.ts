import { EXPIRED_VALUE_TYPES, VALUE_MISSING_REASONS } from './captured-values.ts';
import type { LogLevel } from './config.ts';

/**
 * The catalog of log events: every `event` name the worker and the notify-check Lambda write through
 * core/logger.ts, with the level(s) it is written at and its fields. The typed Logger (core/logger.ts)
 * takes its event names, levels and fields from here, so a misspelt event, a wrong level, a missing or
 * an unlisted field is a compile error; the decoder (core/log-decoder.ts) checks a line against the same
 * entry. docs/worker.md "Log events", the README's "Log events" and docs/notify-check.md list exactly
 * these events (test/unit/core/log-events-docs.test.ts).
 *
 * Every line also carries `time` (ISO 8601), `level` (a name), `event` and the logger's base fields
 * (`workerId` in the worker, `runId` in the Lambda); a child logger adds its own base fields (the
 * Lambda's per-node lines carry `node`, listed here as optional fields).
 */

/** What a field holds in the JSON line; the decoder checks this much (not enumerations). */
export type FieldKind = 'string' | 'number' | 'boolean' | 'array' | 'object' | 'any';

/** One field: its JSON kind, and the TypeScript type a writer passes (phantom `T`). */
export interface FieldSpec<T = unknown> {
  readonly kind: FieldKind;
  readonly optional: boolean;
  readonly nullable: boolean;
  /** Never set; carries the field's TypeScript type. */
  readonly type?: T;
}

const spec = <T>(kind: FieldKind): FieldSpec<T> => ({ kind, optional: false, nullable: false });

const str = spec<string>('string');
const num = spec<number>('number');
const bool = spec<boolean>('boolean');
const strings = spec<readonly string[]>('array');
/** An error or any value the logger serialises (Error objects become `{ name, message, code?, cause? }`). */
const value = spec<unknown>('any');
const oneOf = <const T extends string>(..._values: readonly T[]): FieldSpec<T> => spec<T>('string');
const opt = <T>(field: FieldSpec<T>): FieldSpec<T> & { readonly optional: true } => ({
  ...field,
  optional: true,
});
const nullable = <T>(field: FieldSpec<T>): FieldSpec<T | null> => ({ ...field, nullable: true });

/** Which program writes an event (the docs page that lists it). */
export type LogWriter = 'worker' | 'notify-check';

export interface LogEventSpec {
  readonly writers: readonly LogWriter[];
  readonly levels: readonly LogLevel[];
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

const worker = ['worker'] as const;
const lambda = ['notify-check'] as const;
const both = ['worker', 'notify-check'] as const;

const keyFields = { key: str, keyBase64: opt(str) } as const;
const nodeRole = oneOf('primary', 'replica');
const signal = oneOf('SIGINT', 'SIGTERM');
const placementStrategy = oneOf('fixed', 'topology');
const mismatchFields = {
  differs: spec<readonly ('KEY_PATTERN' | 'HANDLER')[]>('array'),
  fingerprint: str,
  peerFingerprint: str,
  peers: strings,
  peerCount: num,
  expectedOverlapMs: num,
  meaning: str,
} as const;
const ecsFields = {
  cluster: str,
  service: str,
  tasksListed: num,
  workersRunning: num,
  leaderTaskStopped: bool,
} as const;

export const LOG_EVENTS = {
  // Worker lifecycle (worker/main.ts)
  'worker.started': {
    writers: worker,
    levels: ['info'],
    fields: {
      pid: num,
      instanceId: str,
      taskArn: nullable(str),
      leaderName: str,
      handler: str,
      keyPattern: str,
      handlerConcurrency: num,
      handlerQueueCapacity: num,
      handlerTimeoutMs: num,
      leaseTtlMs: num,
      leaseRenewIntervalMs: num,
      leaseRenewDeadlineMs: num,
      leaseRetryMs: num,
      healthPort: opt(num),
      seeds: strings,
      /** Threads other than the main one given nice THREAD_DEFAULTS.helperThreadNice at start. */
      helperThreadsLowered: opt(num),
    },
  },
  'worker.stopping': { writers: worker, levels: ['info'], fields: { signal } },
  'worker.stopped': {
    writers: worker,
    levels: ['info', 'warn'],
    fields: {
      signal,
      forced: opt(bool),
      wasLeader: opt(bool),
      drained: opt(bool),
      abortedCalls: opt(num),
      droppedEvents: opt(num),
      backlogEvents: opt(num),
      durationMs: opt(num),
    },
  },
  'worker.stop_timeout': { writers: worker, levels: ['error'], fields: { signal, boundMs: num } },
  'worker.stop_step_failed': { writers: worker, levels: ['warn'], fields: { step: str, error: value } },
  'worker.crashed': { writers: worker, levels: ['error'], fields: { kind: str, error: value } },
  'worker.identity': {
    writers: worker,
    levels: ['warn'],
    fields: { source: oneOf('env', 'ecs', 'host'), error: str },
  },
  'health.unavailable': { writers: worker, levels: ['warn'], fields: { port: num, error: value } },
  'health.error': { writers: worker, levels: ['warn'], fields: { error: value } },

  // Identity and configuration checks (worker/leader/identity-check.ts)
  'worker.duplicate_id': {
    writers: worker,
    levels: ['error', 'debug'],
    fields: {
      role: str,
      instanceId: str,
      startedAt: str,
      otherInstanceId: str,
      otherStartedAt: nullable(str),
      effect: opt(str),
      action: opt(str),
    },
  },
  'worker.duplicate_id_cleared': {
    writers: worker,
    levels: ['info'],
    fields: { instanceId: str, effect: str },
  },
  'config.mismatch_seen': { writers: worker, levels: ['info'], fields: mismatchFields },
  'config.mismatch': {
    writers: worker,
    levels: ['warn'],
    fields: { ...mismatchFields, persistedMs: num, action: str },
  },

  // Leadership (worker/leader/*)
  'lease.configured': { writers: worker, levels: ['info'], fields: { shards: num } },
  'leader.acquired': {
    writers: worker,
    levels: ['info'],
    fields: { fencingToken: num, mode: oneOf('quorum', 'single-key') },
  },
  'leader.acquire_failed': {
    writers: worker,
    levels: ['warn', 'debug'],
    fields: { error: value, causes: strings },
  },
  'leader.renew_failed': { writers: worker, levels: ['warn'], fields: { fencingToken: num, error: value } },
  'leader.lost': { writers: worker, levels: ['warn', 'info'], fields: { reason: str, fencingToken: num } },
  'leader.released': { writers: worker, levels: ['info'], fields: { fencingToken: num } },
  'leader.release_failed': {
    writers: worker,
    levels: ['warn', 'debug'],
    fields: { fencingToken: num, error: value },
  },
  'leader.release_publish_failed': {
    writers: worker,
    levels: ['warn', 'debug'],
    fields: { fencingToken: num, error: value },
  },
  'leader.record_read_failed': { writers: worker, levels: ['debug'], fields: { error: value } },
  'leader.record_write_failed': {
    writers: worker,
    levels: ['debug'],
    fields: { fencingToken: num, error: value },
  },
  'leader.record_superseded': { writers: worker, levels: ['warn'], fields: { fencingToken: num } },
  'leader.callback_failed': { writers: worker, levels: ['error'], fields: { callback: str, error: value } },
  'leader.internal_error': { writers: worker, levels: ['error'], fields: { error: value } },
  'leader.released_subscribed': { writers: worker, levels: ['info'], fields: { channel: str } },
  'leader.released_subscribe_failed': {
    writers: worker,
    levels: ['warn'],
    fields: { channel: str, error: value, retryInMs: num, effect: str },
  },
  'leader.released_message_ignored': { writers: worker, levels: ['debug'], fields: { channel: str } },
  'lease.placement_stale': {
    writers: worker,
    levels: ['warn'],
    fields: { members: strings, next: strings, strategy: placementStrategy, holding: bool },
  },
  'lease.placement_changed': {
    writers: worker,
    levels: ['warn'],
    fields: { from: strings, to: strings, strategy: placementStrategy },
  },
  'lease.placement_move_waiting': {
    writers: worker,
    levels: ['debug'],
    fields: { members: strings, answered: num, heldByOthers: num },
  },
  'lease.placement_move_cancelled': { writers: worker, levels: ['info'], fields: { members: strings } },
  'lease.placement_check_failed': {
    writers: worker,
    levels: ['debug'],
    fields: { reason: opt(str), shards: opt(num), error: opt(value) },
  },
  'coverage.publish_failed': { writers: worker, levels: ['warn', 'debug'], fields: { error: value } },

  // Subscriptions and topology (worker/expiry/*)
  'topology.changed': {
    writers: worker,
    levels: ['info'],
    fields: { primaries: strings, added: strings, removed: strings, replicas: strings },
  },
  'topology.failed': { writers: worker, levels: ['warn'], fields: { error: value, knownPrimaries: num } },
  'subscription.up': {
    writers: worker,
    levels: ['info'],
    fields: { node: str, nodeId: str, role: nodeRole },
  },
  'subscription.down': {
    writers: worker,
    levels: ['warn', 'info'],
    fields: { node: str, nodeId: str, role: nodeRole, reason: str },
  },
  'subscription.stalled': {
    writers: worker,
    levels: ['warn'],
    fields: { node: str, silentMs: num, boundMs: num },
  },
  'subscription.role_changed': {
    writers: worker,
    levels: ['info'],
    fields: { node: str, nodeId: str, role: nodeRole, subscribed: bool },
  },
  'subscription.failed': { writers: worker, levels: ['warn'], fields: { node: str, error: value } },
  'subscription.close_failed': { writers: worker, levels: ['warn'], fields: { node: str, error: value } },

  // Processing (worker/expiry/processor.ts, worker/replay/shed-reporter.ts)
  'key.processed': {
    writers: worker,
    levels: ['info'],
    fields: {
      ...keyFields,
      node: str,
      fencingToken: num,
      eventId: str,
      latencyMs: num,
      handlerMs: num,
      replayed: bool,
      deadlineMs: opt(num),
      lagMs: opt(num),
      // Value capture (issue 14): a captured value's type and payload bytes, never its contents
      // (docs/security.md, "Values"); or why the event came without one.
      valueType: opt(oneOf(...EXPIRED_VALUE_TYPES)),
      valueBytes: opt(num),
      valueMissing: opt(oneOf(...VALUE_MISSING_REASONS)),
    },
  },
  'handler.failed': {
    writers: worker,
    levels: ['error'],
    fields: { ...keyFields, node: str, fencingToken: num, eventId: str, handlerMs: num, error: value },
  },
  'handler.load_failed': { writers: worker, levels: ['error'], fields: { path: str, error: value } },
  'events.shed': {
    writers: worker,
    levels: ['warn'],
    fields: { count: num, reason: str, queueCapacity: opt(num) },
  },

  // The stream outbox (worker/handlers/stream-handler.ts)
  'outbox.unreplicated': { writers: worker, levels: ['warn'], fields: { stream: str, reason: str } },
  'outbox.trimmed_unread': {
    writers: worker,
    levels: ['warn'],
    fields: {
      stream: str,
      partition: num,
      count: num,
      maxLength: num,
      consumerGroups: num,
      reason: str,
    },
  },
  'outbox.trim_failed': {
    writers: worker,
    levels: ['warn'],
    fields: { stream: str, partition: num, error: value },
  },

  // On-time expiry (worker/expiry/: primary-clocks.ts, keyspace-scanner.ts, precise-expiry.ts)
  'expiry.clock_offset': {
    writers: worker,
    levels: ['info'],
    fields: { nodeId: str, offsetMs: num, roundTripMs: num },
  },
  'expiry.clock_offset_failed': { writers: worker, levels: ['debug'], fields: { nodeId: str, error: value } },
  'expiry.scan_failed': { writers: worker, levels: ['debug'], fields: { nodeId: str, error: value } },
  'expiry.scan_completed': {
    writers: worker,
    levels: ['info', 'debug'],
    fields: { nodeId: str, round: num, keysScanned: num, trackedKeys: num, durationMs: num },
  },
  'expiry.expire_events_missing': {
    writers: worker,
    levels: ['warn'],
    fields: { node: str, nodeId: str, waitedMs: num },
  },
  'expiry.expire_events_flowing': { writers: worker, levels: ['info'], fields: { node: str, nodeId: str } },
  'expiry.probe_failed': { writers: worker, levels: ['debug'], fields: { nodeId: str, error: value } },
  'expiry.native_fallback': {
    writers: worker,
    levels: ['warn'],
    fields: { node: str, nodeId: str, reason: oneOf('no-pexpiretime') },
  },

  // Value capture (worker/expiry/held-values.ts and the read-ahead). Counts and sizes only: never a
  // value's contents, at any level.
  'values.missing': {
    writers: worker,
    levels: ['warn', 'info'],
    // reason: one of VALUE_MISSING_REASONS (worker/handlers/expiry-handler.ts), never `capture-off`.
    fields: { count: num, reason: str, intervalMs: num },
  },
  'values.released': {
    writers: worker,
    levels: ['warn'],
    fields: { count: num, bytes: num, holdTimeoutMs: num },
  },

  // Replay (worker/replay/replay-coordinator.ts)
  'replay.completed': {
    writers: worker,
    levels: ['info'],
    fields: {
      fencingToken: num,
      replayed: num,
      primaries: spec<Readonly<Record<string, number>>>('object'),
      freshLines: num,
      marksRead: bool,
      copiesAnswered: num,
      durationMs: num,
    },
  },
  'replay.primaries_planned': {
    writers: worker,
    levels: ['info'],
    fields: { fencingToken: num, planned: num, primaries: spec<Readonly<Record<string, number>>>('object') },
  },
  'replay.primary_held': { writers: worker, levels: ['info'], fields: { nodeId: str, fencingToken: num } },
  'replay.primary_suspended': {
    writers: worker,
    levels: ['info'],
    fields: { nodeId: str, fencingToken: num },
  },
  'replay.primary_resumed': { writers: worker, levels: ['info'], fields: { nodeId: str, events: num } },
  'replay.alignment_ambiguous': {
    writers: worker,
    levels: ['warn'],
    fields: { nodeId: str, matches: num, events: num },
  },
  'replay.marks_unavailable': {
    writers: worker,
    levels: ['warn'],
    fields: { primaries: num, copiesAnswered: num, copies: opt(num), error: opt(value) },
  },
  'replay.mark_write_failed': {
    writers: worker,
    levels: ['warn'],
    fields: { copiesWritten: opt(num), copies: opt(num), error: opt(value) },
  },
  'replay.failed': { writers: worker, levels: ['error'], fields: { error: value } },

  // Connections (core/redis-client.ts in both; lambdas/notify-check/redis-nodes.ts at debug)
  'redis.error': {
    writers: both,
    levels: ['warn', 'debug'],
    fields: {
      error: value,
      problem: opt(
        oneOf('authentication', 'permission', 'tls-certificate', 'tls-hostname', 'unreachable', 'other'),
      ),
      hint: opt(str),
      node: opt(str),
      role: opt(str),
      reportedAs: opt(str),
      repeated: opt(num),
    },
  },

  // The notify-check Lambda (lambdas/notify-check/*)
  'config.invalid': {
    writers: lambda,
    levels: ['error'],
    fields: { issues: spec<readonly unknown[]>('array') },
  },
  'report.started': {
    writers: lambda,
    levels: ['info'],
    fields: { notifyMode: oneOf('auto', 'config', 'parameter-group'), preciseExpiry: bool, seeds: strings },
  },
  'report.discovered': {
    writers: lambda,
    levels: ['info'],
    fields: { answeredBy: str, primaries: num, nodes: strings },
  },
  'report.completed': {
    writers: lambda,
    levels: ['info'],
    fields: {
      ok: bool,
      durationMs: num,
      metrics: spec<Readonly<Partial<Record<string, number>>>>('object'),
      problems: strings,
      changes: strings,
    },
  },
  'report.failed': { writers: lambda, levels: ['error'], fields: { error: value } },
  'notify.node_ok': { writers: lambda, levels: ['debug'], fields: { node: opt(str), value: str } },
  'notify.node_repaired': {
    writers: lambda,
    levels: ['info'],
    fields: { node: opt(str), before: str, after: str, added: strings },
  },
  'notify.node_unreachable': {
    writers: lambda,
    levels: ['warn'],
    fields: { node: opt(str), error: value },
  },
  'notify.node_refused': {
    writers: lambda,
    levels: ['warn'],
    fields: { node: opt(str), refusal: oneOf('noperm', 'unknown-command'), error: value },
  },
  'notify.node_failed': {
    writers: lambda,
    levels: ['warn'],
    fields: { node: opt(str), before: opt(str), after: opt(str), reason: opt(str), error: opt(value) },
  },
  'notify.fallback': {
    writers: lambda,
    levels: ['info'],
    fields: { reason: str, replicationGroupId: str },
  },
  'notify.group_ok': { writers: lambda, levels: ['debug'], fields: { parameterGroup: opt(str), value: str } },
  'notify.group_modified': {
    writers: lambda,
    levels: ['info'],
    fields: { parameterGroup: opt(str), before: str, after: str, added: strings },
  },
  'notify.group_refused': {
    writers: lambda,
    levels: ['error'],
    fields: { parameterGroup: opt(str), reason: str, value: str },
  },
  'notify.group_failed': {
    writers: lambda,
    levels: ['warn'],
    fields: { parameterGroup: opt(str), replicationGroupId: opt(str), error: value },
  },
  'canary.verified': {
    writers: lambda,
    levels: ['debug'],
    fields: { node: opt(str), key: str, latencyMs: num, expireEventsFlow: nullable(bool) },
  },
  'canary.no_expire_events': {
    writers: lambda,
    levels: ['warn'],
    fields: { node: opt(str), key: str },
  },
  'canary.failed': {
    writers: lambda,
    levels: ['warn'],
    fields: { node: opt(str), key: str, waitMs: opt(num), error: value },
  },
  'leader.reported': {
    writers: lambda,
    levels: ['info'],
    fields: {
      state: oneOf('leading', 'lapsed', 'none', 'unreadable'),
      leaderWorkerId: nullable(str),
      fencingToken: nullable(num),
      noLeaderSince: nullable(str),
    },
  },
  'leader.unreadable': { writers: lambda, levels: ['warn'], fields: { error: value } },
  'ecs.checked': {
    writers: lambda,
    levels: ['info'],
    fields: { ...ecsFields, leaderTask: nullable(value) },
  },
  'ecs.leader_task_stopped': {
    writers: lambda,
    levels: ['warn'],
    fields: { ...ecsFields, leaderTask: value },
  },
  'ecs.failed': {
    writers: lambda,
    levels: ['warn'],
    fields: { cluster: str, service: str, error: value },
  },
} as const satisfies Readonly<Record<string, LogEventSpec>>;

export type LogEventName = keyof typeof LOG_EVENTS;

/** Events written at `level`. */
export type LogEventAt<L extends LogLevel> = {
  [E in LogEventName]: L extends (typeof LOG_EVENTS)[E]['levels'][number] ? E : never;
}[LogEventName];

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type TypeOf<F> = F extends FieldSpec<infer T> ? T : never;
type RequiredNames<Fields> = {
  [K in keyof Fields]: Fields[K] extends { readonly optional: true } ? never : K;
}[keyof Fields];

type FieldsFrom<Fields> = Simplify<
  { readonly [K in RequiredNames<Fields>]: TypeOf<Fields[K]> } & {
    readonly [K in Exclude<keyof Fields, RequiredNames<Fields>>]?: TypeOf<Fields[K]> | undefined;
  }
>;

/** The fields a writer passes for event `E` (besides the logger's base fields). */
export type LogEventFields<E extends LogEventName> = FieldsFrom<(typeof LOG_EVENTS)[E]['fields']>;

/** The fields argument of a log call: required when the event has a required field. */
export type LogFieldsArgument<E extends LogEventName> =
  RequiredNames<(typeof LOG_EVENTS)[E]['fields']> extends never
    ? [fields?: LogEventFields<E>]
    : [fields: LogEventFields<E>];

/** One decoded line of event `E`: the common fields and the event's own. */
export type LogLine<E extends LogEventName> = Simplify<
  {
    readonly time: string;
    readonly level: (typeof LOG_EVENTS)[E]['levels'][number];
    readonly event: E;
    /** The worker's base field. */
    readonly workerId?: string;
    /** The Lambda's base field. */
    readonly runId?: string;
  } & LogEventFields<E>
>;

/** A decoded line of any catalogued event: narrow it by `event`. */
export type LogRecord = { [E in LogEventName]: LogLine<E> }[LogEventName];

export const LOG_EVENT_NAMES = Object.keys(LOG_EVENTS) as LogEventName[];

/** The catalogued events `writer` writes, in catalog order. */
export function logEventsOf(writer: LogWriter): LogEventName[] {
  return LOG_EVENT_NAMES.filter((name) =>
    (LOG_EVENTS[name].writers as readonly LogWriter[]).includes(writer),
  );
}

export function isLogEventName(name: string): name is LogEventName {
  return Object.hasOwn(LOG_EVENTS, name);
}
