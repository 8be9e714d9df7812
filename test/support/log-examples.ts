import { LOG_EVENTS, type LogEventFields, type LogEventName, type LogLine } from '../../core/log-events.ts';

/**
 * Complete example lines of the catalog's events for tests that feed readers (the status model, the
 * chaos accounting) without running a worker: a test names only the fields it is about, the rest
 * take these defaults, and the result is a line the decoder accepts.
 */
const EXAMPLES = {
  'worker.started': () => ({
    pid: 1,
    instanceId: 'instance-1',
    taskArn: null,
    leaderName: 'test',
    handler: 'log',
    keyPattern: '*',
    handlerConcurrency: 16,
    handlerQueueCapacity: 10_000,
    handlerTimeoutMs: 5000,
    leaseTtlMs: 3000,
    leaseRenewIntervalMs: 1000,
    leaseRenewDeadlineMs: 2000,
    leaseRetryMs: 250,
    seeds: ['127.0.0.1:7000'],
  }),
  'worker.crashed': () => ({ kind: 'uncaught-exception', error: { name: 'Error', message: 'example' } }),
  'leader.acquired': () => ({ fencingToken: 1, mode: 'quorum' as const }),
  'leader.released': () => ({ fencingToken: 1 }),
  'leader.lost': () => ({ reason: 'renew-deadline-missed', fencingToken: 1 }),
  'topology.changed': () => ({ primaries: [], added: [], removed: [], replicas: [] }),
  'subscription.up': (given: { node?: string }) => ({
    node: given.node ?? '127.0.0.1:7000',
    nodeId: `id-${given.node ?? '127.0.0.1:7000'}`,
    role: 'primary' as const,
  }),
  'subscription.down': (given: { node?: string }) => ({
    node: given.node ?? '127.0.0.1:7000',
    nodeId: `id-${given.node ?? '127.0.0.1:7000'}`,
    role: 'primary' as const,
    reason: 'connection-closed',
  }),
  'subscription.role_changed': (given: { node?: string }) => ({
    node: given.node ?? '127.0.0.1:7000',
    nodeId: `id-${given.node ?? '127.0.0.1:7000'}`,
    role: 'primary' as const,
    subscribed: true,
  }),
  // The event id defaults to one per key, so two keys never share an id.
  'key.processed': (given: { key?: string }) => ({
    key: given.key ?? 'k',
    node: '127.0.0.1:7000',
    fencingToken: 1,
    eventId: `example:${given.key ?? 'k'}`,
    latencyMs: 1,
    handlerMs: 0,
    replayed: false,
  }),
  'handler.failed': (given: { key?: string }) => ({
    key: given.key ?? 'k',
    node: '127.0.0.1:7000',
    fencingToken: 1,
    eventId: `example:${given.key ?? 'k'}`,
    handlerMs: 0,
    error: { name: 'Error', message: 'example' },
  }),
  'events.shed': () => ({ count: 1, reason: 'queue-full' }),
} satisfies { readonly [E in LogEventName]?: (given: Partial<LogEventFields<E>>) => LogEventFields<E> };

type ExampleEvent = keyof typeof EXAMPLES;

/** The fields a test gives: any subset for an event with an example, all of them otherwise. */
export type GivenFields<E extends LogEventName> = E extends ExampleEvent
  ? Partial<LogEventFields<E>>
  : LogEventFields<E>;

/** One decoded record of `event` at `atMs`, at the event's first catalogued level unless `level` says. */
export function exampleRecord<E extends LogEventName>(
  event: E,
  atMs: number,
  given: GivenFields<E> = {} as GivenFields<E>,
  level: LogLine<E>['level'] = LOG_EVENTS[event].levels[0] as LogLine<E>['level'],
): LogLine<E> {
  const defaults = (EXAMPLES as Record<string, (given: object) => object>)[event]?.(given) ?? {};
  return {
    time: new Date(atMs).toISOString(),
    level,
    event,
    workerId: 'example',
    ...defaults,
    ...given,
  } as LogLine<E>;
}

/** The same as a stdout line. */
export function exampleLine<E extends LogEventName>(
  event: E,
  atMs: number,
  given?: GivenFields<E>,
  level?: LogLine<E>['level'],
): string {
  return JSON.stringify(exampleRecord(event, atMs, given, level));
}

/** The events with default fields. */
export const EXAMPLE_EVENTS = Object.keys(EXAMPLES) as ExampleEvent[];
