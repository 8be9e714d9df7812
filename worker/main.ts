import type { Cluster } from 'ioredis';
import { type Clock, preciseClock, systemClock } from '../core/clock.ts';
import { parseOrExit, parseWorkerConfig, type WorkerConfig } from '../core/config.ts';
import { REPLAY_DEFAULTS, THREAD_DEFAULTS } from '../core/defaults.ts';
import { withTimeout } from '../core/errors.ts';
import { KeyspaceKeys } from '../core/keys.ts';
import { readLocalClusterFile } from '../core/local-cluster-file.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { EmfMetrics } from '../core/metrics.ts';
import { closeQuietly, createClusterClient } from '../core/redis-client.ts';
import { discoverTopology } from '../core/topology.ts';
import { FanIn } from './expiry/fan-in.ts';
import { compileKeyFilter, type KeyMatcher } from './expiry/key-pattern.ts';
import { nodeSubscriberFactory } from './expiry/node-subscriber.ts';
import { PreciseExpiry } from './expiry/precise-expiry.ts';
import { CAPTURE_OFF, Processor } from './expiry/processor.ts';
import { SubscriberPool } from './expiry/subscriber-pool.ts';
import { TopologyWatcher } from './expiry/topology-watcher.ts';
import { loadHandler } from './handlers/load-handler.ts';
import { HealthServer } from './health-server.ts';
import { type HelperThreadsResult, lowerHelperThreadPriority } from './helper-threads.ts';
import { CoverageRegistry } from './leader/coverage-registry.ts';
import { configFingerprint } from './leader/coverage-report.ts';
import { createLeaderElection } from './leader/create-leader-election.ts';
import { LeaderElector } from './leader/leader-elector.ts';
import { LeadershipState } from './leader/leadership-state.ts';
import { fixedPlacement } from './leader/quorum-placement.ts';
import { MarkStore } from './replay/mark-store.ts';
import { ReplayCoordinator } from './replay/replay-coordinator.ts';
import { ReplayWindow } from './replay/replay-window.ts';
import { ShedReporter } from './replay/shed-reporter.ts';
import { newInstanceId, resolveWorkerIdentity } from './worker-id.ts';

/**
 * `npm run worker`: one worker. This file only wires (docs/worker.md has the whole picture).
 *
 * Shutdown on SIGTERM/SIGINT, in this order, each step bounded (ECS waits 30 s before SIGKILL):
 * 1. stop intake, let queued events and running handler calls finish for up to DRAIN_BOUND_MS, then
 *    abort what still runs (outcome `unsettled`: the marks stay before it), write the processed marks
 *    and count the leader's backlog left in the replay window as shed; 2. `elector.stop({ release: true })` (deletes the lease and publishes
 * `released`, so a follower takes over at once); 3. stop the coverage registry, close the topology
 * timer, the subscribers, the election's clients, the health endpoint and the cluster clients; 4. flush metrics; 5. log
 * `worker.stopped` and exit 0. A second signal during shutdown exits at once (130 SIGINT, 143
 * SIGTERM); a shutdown that overruns STOP_WATCHDOG_MS exits 1.
 */

const PROGRAM = 'keyspace-leader worker';
const DRAIN_BOUND_MS = 2000;
const RELEASE_BOUND_MS = 1500;
const CLOSE_BOUND_MS = 1000;
const STOP_WATCHDOG_MS = 8000;
const METRICS_FLUSH_INTERVAL_MS = 10_000;
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
// The replay's defaults, written once in core/defaults.ts (REPLAY_DEFAULTS, with their reasons).
const MARK_INTERVAL_MS = REPLAY_DEFAULTS.markIntervalMs;
const MARK_TAIL_LENGTH = REPLAY_DEFAULTS.markTailLength;
const MARK_READ_TIMEOUT_MS = REPLAY_DEFAULTS.markReadTimeoutMs;
const MARK_COPY_TIMEOUT_MS = REPLAY_DEFAULTS.markCopyTimeoutMs;
const REPLAY_TIME_TOLERANCE_MS = REPLAY_DEFAULTS.timeToleranceMs;

/** Everything a started worker runs, built by `startWorker` in dependency order; `stop` takes it apart. */
interface RunningWorker {
  readonly cluster: Cluster;
  readonly outboxCluster: Cluster | undefined;
  /** On-time expiry and its own Cluster client (PRECISE_EXPIRY); undefined when off. */
  readonly precise: { readonly expiry: PreciseExpiry; readonly cluster: Cluster } | undefined;
  readonly processor: Processor;
  readonly replay: ReplayCoordinator;
  readonly pool: SubscriberPool;
  readonly watcher: TopologyWatcher;
  readonly coverage: CoverageRegistry;
  readonly health: HealthServer | undefined;
  readonly election: LeaderElection;
  /** Not started when a stop signal came during startup. */
  readonly elector: LeaderElector;
  readonly leadership: LeadershipState;
  readonly flushTimer: NodeJS.Timeout;
}

type LeaderElection = Awaited<ReturnType<typeof createLeaderElection>>;
type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

interface Process {
  readonly config: WorkerConfig;
  readonly workerId: string;
  readonly taskArn: string | null;
  readonly instanceId: string;
  readonly startedAtWallMs: number;
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
  readonly clock: Clock;
  /**
   * The clock of on-time expiry and its lag: wall time to a fraction of a ms, compared with the
   * primaries' clocks (core/clock.ts, preciseClock).
   */
  readonly expiryClock: Clock;
  /** True once a stop signal came: the worker never starts competing for the lease then. */
  readonly stopping: () => boolean;
  /** The threads given a lower priority at start (helper-threads.ts). */
  readonly helperThreads: HelperThreadsResult;
}

async function main(): Promise<void> {
  // First, before anything starts libuv's thread pool: V8's helper threads yield the CPU to the main
  // thread, which runs the handler calls (worker/helper-threads.ts).
  const helperThreads = lowerHelperThreadPriority(THREAD_DEFAULTS.helperThreadNice);
  // Nothing connects before the configuration is valid: exit 78 with every problem otherwise.
  const config = parseOrExit(
    () => parseWorkerConfig(process.env, { localCluster: readLocalClusterFile() }),
    PROGRAM,
  );
  const identity = await resolveWorkerIdentity({
    workerId: config.workerId,
    metadataUri: process.env.ECS_CONTAINER_METADATA_URI_V4,
  });
  const logger = createLogger({
    level: config.logLevel,
    base: { workerId: identity.workerId },
    secrets: [config.redis.password],
  });
  const metrics = new EmfMetrics({ namespace: config.metricsNamespace, leaderName: config.leaderName });
  metrics.declareCounters(['EventsReceived', 'EventsProcessed', 'HandlerFailures', 'EventsShed']);
  // Declared whatever the handler (0 unless HANDLER=stream): the dashboard shows them for every worker.
  metrics.declareCounters([
    'OutboxAppendsUnconfirmed',
    'OutboxAppendsUnreplicated',
    'OutboxEntriesTrimmedUnread',
  ]);
  const clock = systemClock;

  const crash = (kind: string, error: unknown) => {
    logger.error('worker.crashed', { kind, error });
    metrics.flush();
    process.exit(1);
  };
  process.on('unhandledRejection', (reason) => crash('unhandled-rejection', reason));
  process.on('uncaughtException', (error) => crash('uncaught-exception', error));

  let stopSignal: StopSignal | undefined;
  let startup: Promise<RunningWorker> | undefined;
  const onSignal = (signal: StopSignal) => {
    if (stopSignal !== undefined) {
      logger.warn('worker.stopped', { signal, forced: true });
      process.exit(SIGNAL_EXIT_CODES[signal]);
    }
    stopSignal = signal;
    stop(signal, startup, { logger, metrics, clock }).catch((error: unknown) =>
      crash('shutdown-failed', error),
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  if (identity.metadataError)
    logger.warn('worker.identity', { source: identity.source, error: identity.metadataError });

  startup = startWorker({
    config,
    workerId: identity.workerId,
    taskArn: identity.taskArn,
    // This process, told apart from any other started with the same WORKER_ID by mistake.
    instanceId: newInstanceId(),
    startedAtWallMs: clock.wallMs(),
    logger,
    metrics,
    clock,
    expiryClock: preciseClock,
    stopping: () => stopSignal !== undefined,
    helperThreads,
  });
  await startup.catch((error: unknown) => crash('startup-failed', error));
}

/**
 * Builds the worker in dependency order (each part is given only parts built before it; the parts
 * below tell the parts above through listeners they register, docs/worker.md "The path of an event"),
 * then starts it: subscriptions first, the election last.
 */
async function startWorker(p: Process): Promise<RunningWorker> {
  const { config, logger, metrics, clock } = p;
  const keys = new KeyspaceKeys(config.leaderName);
  const cluster = createClusterClient(config.redis, { logger, name: 'worker', commandTimeoutMs: 2000 });
  const topology = () =>
    discoverTopology((command, ...args) => cluster.call(command, ...args), { preferTls: config.redis.tls });
  // The outbox gets a client of its own: its WAIT may hold a connection for up to its bound, and
  // lease renewals and mark writes must not queue behind it.
  const outboxCluster =
    config.handler.kind === 'stream'
      ? createClusterClient(config.redis, { logger, name: 'outbox', commandTimeoutMs: 2000 })
      : undefined;
  const handler = await loadHandler(config.handler, {
    cluster: outboxCluster ?? cluster,
    keys,
    logger,
    metrics,
  });

  // The gate reads the grant the elector (built last) publishes here.
  const leadership = new LeadershipState();
  // The one key filter, before anything keeps an event or a deadline: what no handler may see takes
  // no window memory and no index entry.
  const accepts = compileKeyFilter(config.keyPattern);
  const pool = new SubscriberPool({
    connect: nodeSubscriberFactory({ redis: config.redis, logger, clock, ttlEvents: config.preciseExpiry }),
    logger,
    metrics,
  });
  // On-time expiry (docs/precise-expiry.md): the deadline index and its toucher. Its lookups and
  // touches go through a Cluster client of their own (auto-pipelined batches never queue in front of
  // a lease renewal).
  const precise = config.preciseExpiry ? createPreciseExpiry(p, accepts, leadership) : undefined;
  if (precise) pool.onTtlSet((node, key) => precise.expiry.onTtlSet(node.id, key));
  const processor = new Processor({
    handler: handler.handler,
    leadership,
    // Its lag (deadline -> handler) is measured on the clock that estimated the primaries' offsets.
    clock: p.expiryClock,
    logger,
    metrics,
    concurrency: config.handlerConcurrency,
    queueCapacity: config.handlerQueueCapacity,
    handlerTimeoutMs: config.handlerTimeoutMs,
    processedLog: config.processedLog,
    // Value capture (CAPTURE_VALUES): each call takes its value (or why there is none) when it starts.
    // ... and waits for it while its read is still out (a first burst can get the event before the reply).
    takeValue: precise ? (event) => precise.expiry.takeValue(event) : () => CAPTURE_OFF,
    valueReady: (event) => precise?.expiry.valueReady(event),
  });
  // The one owner of "this worker missed events of a primary": coverage, gaps per primary (remembered
  // for REPLAY_WINDOW_MS), suspensions, and the election's canLead / shouldStepDown.
  const coverage = new CoverageRegistry({
    cluster,
    keys,
    workerId: p.workerId,
    instanceId: p.instanceId,
    startedAtWallMs: p.startedAtWallMs,
    configFingerprint: configFingerprint(config.keyPattern, config.handler),
    clock,
    logger,
    metrics,
    isCovered: () => pool.coverage().complete,
    replayWindowMs: config.replayWindowMs,
  });
  // One path whatever REPLAY_WINDOW_MS (worker/replay/): every worker keeps a window (with 0 a
  // follower keeps nothing), the leader numbers every event with the shared numbering and writes marks.
  const replay = createReplay(p, { cluster, keys, processor, pool, suspensions: coverage });
  const fanIn = new FanIn({
    clock,
    metrics,
    accepts,
    sink: (event) => replay.onEvent(event),
    ...(precise ? { takeDeadline: (key: Buffer) => precise.expiry.takeDeadline(key) } : {}),
  });
  pool.onEvent((node, key) => fanIn.push(node, key));
  pool.onGap((node) => {
    // The events received before the gap go into the window before the gap is noted there (the
    // registry tells the replay coordinator, which notes it in the window and stands the cursor still).
    fanIn.flush();
    coverage.noteGap(node.id);
  });
  let knownPrimaries = '';
  const watcher = new TopologyWatcher({
    // On-time expiry takes every discovery too: the primaries its scan reads, the slot map of its clocks.
    discover: precise
      ? async () => {
          const discovered = await topology();
          precise.expiry.syncTopology(discovered);
          return discovered;
        }
      : topology,
    onPrimaries: (primaries, replicas) => {
      pool.sync(primaries, replicas);
      const fingerprint = primaries
        .map((primary) => primary.id)
        .sort()
        .join(',');
      if (fingerprint !== knownPrimaries) coverage.noteTopologyChange();
      knownPrimaries = fingerprint;
    },
    clock,
    logger,
  });
  pool.onTrouble(() => watcher.requestSync());
  // Subscriptions come first: a worker leads only when covered, or when no covered peer exists.
  watcher.start();
  precise?.expiry.start();

  let healthPort: number | undefined;
  const health =
    config.healthPort === 0
      ? undefined
      : new HealthServer({
          status: () => ({
            clusterReady: cluster.status === 'ready',
            coverage: pool.coverage(),
            isLeader: leadership.current(clock.monotonicMs()) !== undefined,
          }),
          logger,
        });
  if (health) {
    try {
      healthPort = await health.listen(config.healthPort);
    } catch (error) {
      // Processing matters more than the probe; the container health check reports the problem.
      logger.warn('health.unavailable', { port: config.healthPort, error });
    }
  }

  const election = await createLeaderElection({ cluster, redis: config.redis, keys, logger, topology });
  const elector = new LeaderElector({
    lease: election.lease,
    releasedChannel: election.releasedChannel,
    recordStore: election.recordStore,
    workerId: p.workerId,
    instanceId: p.instanceId,
    taskArn: p.taskArn,
    // Only the four timings: the elector validates every field it is given.
    timings: {
      leaseTtlMs: config.leaseTtlMs,
      leaseRenewIntervalMs: config.leaseRenewIntervalMs,
      leaseRenewDeadlineMs: config.leaseRenewDeadlineMs,
      leaseRetryMs: config.leaseRetryMs,
    },
    clock,
    logger,
    metrics,
    state: leadership,
    // The processor reads leadership through `leadership` at dequeue time; the replay coordinator
    // catches up on what the previous leader left and records progress while this worker leads.
    callbacks: {
      onStartedLeading: (signal, fencingToken) => {
        // What was received so far is in the window before the new leader plans from it.
        fanIn.flush();
        replay.onStartedLeading(signal, fencingToken);
        precise?.expiry.leadershipChanged();
      },
      onStoppedLeading: () => {
        replay.onStoppedLeading();
        precise?.expiry.leadershipChanged();
      },
    },
    canLead: () => coverage.canLead(),
    shouldStepDown: () => coverage.shouldStepDown(),
  });
  const flushTimer = setInterval(() => metrics.flush(), METRICS_FLUSH_INTERVAL_MS);
  flushTimer.unref();
  const running: RunningWorker = {
    cluster,
    outboxCluster,
    precise,
    processor,
    replay,
    pool,
    watcher,
    coverage,
    health,
    election,
    elector,
    leadership,
    flushTimer,
  };
  if (p.stopping()) return running; // stopping already: never start competing for the lease
  coverage.start();
  elector.start();

  logger.info('worker.started', {
    pid: process.pid,
    instanceId: p.instanceId,
    taskArn: p.taskArn,
    leaderName: config.leaderName,
    handler: handler.name,
    keyPattern: config.keyPattern,
    handlerConcurrency: config.handlerConcurrency,
    handlerQueueCapacity: config.handlerQueueCapacity,
    handlerTimeoutMs: config.handlerTimeoutMs,
    leaseTtlMs: config.leaseTtlMs,
    leaseRenewIntervalMs: config.leaseRenewIntervalMs,
    leaseRenewDeadlineMs: config.leaseRenewDeadlineMs,
    leaseRetryMs: config.leaseRetryMs,
    healthPort,
    seeds: config.redis.nodes.map((n) => `${n.host}:${n.port}`),
    helperThreadsLowered: p.helperThreads.lowered,
  });
  return running;
}

/** On-time expiry with its own auto-pipelined Cluster client (PRECISE_EXPIRY=true). */
function createPreciseExpiry(
  p: Process,
  accepts: KeyMatcher,
  leadership: LeadershipState,
): { readonly expiry: PreciseExpiry; readonly cluster: Cluster } {
  const { config, logger, metrics, expiryClock: clock } = p;
  const cluster = createClusterClient(config.redis, {
    logger,
    name: 'expiry',
    commandTimeoutMs: 2000,
    autoPipelining: true,
  });
  const expiry = new PreciseExpiry({
    cluster,
    redis: config.redis,
    accepts,
    keyPattern: config.keyPattern,
    leadership,
    keys: new KeyspaceKeys(config.leaderName),
    instanceId: p.instanceId,
    clock,
    logger,
    metrics,
    maxKeys: config.expiryTrackMaxKeys,
    scanKeysPerS: config.expiryScanKeysPerS,
    ...(config.captureValues
      ? {
          capture: {
            readAheadMs: config.expiryReadAheadMs,
            maxBytes: config.valueMaxBytes,
            budgetBytes: config.valueBudgetBytes,
          },
        }
      : {}),
  });
  return { expiry, cluster };
}

/** The replay coordinator with its window (time bound REPLAY_WINDOW_MS, 0 included) and mark store. */
function createReplay(
  p: Process,
  deps: {
    cluster: Cluster;
    keys: KeyspaceKeys;
    processor: Processor;
    pool: SubscriberPool;
    suspensions: CoverageRegistry;
  },
): ReplayCoordinator {
  const { config, logger, metrics, clock } = p;
  const windowShed = new ShedReporter('replay-window-full', logger, metrics);
  // The leader's backlog beyond REPLAY_MAX_EVENTS per primary: lost to it, counted and settled.
  const backlogShed = new ShedReporter('backlog-full', logger, metrics);
  return new ReplayCoordinator({
    window: new ReplayWindow({
      windowMs: config.replayWindowMs,
      maxEventsPerPrimary: config.replayMaxEvents,
      timeToleranceMs: REPLAY_TIME_TOLERANCE_MS,
      onShed: (count, nodeId) => windowShed.note(count, { nodeId }),
    }),
    // Beside the three quorum lease members: three different primaries on an evenly split slot map.
    marks: new MarkStore(
      deps.cluster,
      deps.keys,
      fixedPlacement(deps.keys).members.map((m) => m.partitionIndex),
      MARK_COPY_TIMEOUT_MS,
    ),
    processor: deps.processor,
    // The registry decides which primaries are suspended; the coordinator listens and asks.
    suspensions: deps.suspensions,
    clock,
    logger,
    markIntervalMs: MARK_INTERVAL_MS,
    tailLength: MARK_TAIL_LENGTH,
    markReadTimeoutMs: MARK_READ_TIMEOUT_MS,
    // Every primary it may number has its mark read at acquisition, quiet ones included.
    knownPrimaryIds: () => deps.pool.coverage().primaries.map((primary) => primary.nodeId),
    onBacklogShed: (count, nodeId) =>
      backlogShed.note(count, { nodeId, maxEventsPerPrimary: config.replayMaxEvents }),
  });
}

/**
 * The ordered shutdown (see the comment at the top). Exits the process. A signal during startup waits
 * for startup to reach its end (it does not start the election then) for at most CLOSE_BOUND_MS;
 * a startup still running after that has not competed for the lease, so there is nothing to hand over.
 */
async function stop(
  signal: StopSignal,
  startup: Promise<RunningWorker> | undefined,
  deps: { logger: Logger; metrics: EmfMetrics; clock: Clock },
): Promise<never> {
  const { logger, metrics, clock } = deps;
  const beganMs = clock.monotonicMs();
  logger.info('worker.stopping', { signal });
  setTimeout(() => {
    logger.error('worker.stop_timeout', { signal, boundMs: STOP_WATCHDOG_MS });
    metrics.flush();
    process.exit(1);
  }, STOP_WATCHDOG_MS).unref();

  const worker = startup === undefined ? undefined : await boundedValue(startup, CLOSE_BOUND_MS, logger);
  if (worker === undefined) {
    metrics.flush();
    logger.info('worker.stopped', {
      signal,
      wasLeader: false,
      durationMs: Math.round(clock.monotonicMs() - beganMs),
    });
    process.exit(0);
  }
  const { processor, replay, elector, coverage, watcher, pool, election, health } = worker;
  const drain = await processor.drain(DRAIN_BOUND_MS);
  // The successor aligns with these marks: write them after the drain and before the release. A call
  // aborted at the drain bound is `unsettled`, so the marks stay before it and the successor replays it.
  await bounded(replay.flushMarks(), CLOSE_BOUND_MS, 'replay.flush_marks', logger);
  // The leader's backlog still in the window is not handled here either: counted like the queue's
  // (EventsShed, reason `shutdown`); unsettled, so the successor replays it.
  const backlogEvents = replay.backlog();
  if (backlogEvents > 0)
    new ShedReporter('shutdown', logger, metrics).note(backlogEvents, { where: 'replay-window' });
  replay.close();
  const wasLeader = elector.isLeader;
  await bounded(elector.stop({ release: true }), RELEASE_BOUND_MS, 'elector.stop', logger);
  await bounded(coverage.stop(), CLOSE_BOUND_MS, 'coverage.stop', logger);
  await bounded(watcher.stop(), CLOSE_BOUND_MS, 'watcher.stop', logger);
  worker.precise?.expiry.stop();
  await bounded(pool.close(), CLOSE_BOUND_MS, 'subscribers.close', logger);
  await bounded(election.close(), CLOSE_BOUND_MS, 'election.close', logger);
  await bounded(health?.close(), CLOSE_BOUND_MS, 'health.close', logger);
  await bounded(
    worker.outboxCluster && closeQuietly(worker.outboxCluster),
    CLOSE_BOUND_MS,
    'outbox.close',
    logger,
  );
  await bounded(
    worker.precise && closeQuietly(worker.precise.cluster),
    CLOSE_BOUND_MS,
    'expiry.close',
    logger,
  );
  await bounded(closeQuietly(worker.cluster), CLOSE_BOUND_MS, 'cluster.close', logger);
  clearInterval(worker.flushTimer);
  metrics.flush();
  logger.info('worker.stopped', {
    signal,
    wasLeader,
    ...drain,
    backlogEvents,
    durationMs: Math.round(clock.monotonicMs() - beganMs),
  });
  process.exit(0);
}

/** Awaits startup for at most `boundMs`: its worker, or undefined (overran or failed: logged). */
async function boundedValue(
  startup: Promise<RunningWorker>,
  boundMs: number,
  logger: Logger,
): Promise<RunningWorker | undefined> {
  try {
    return await withTimeout(startup, boundMs, 'startup');
  } catch (error) {
    logger.warn('worker.stop_step_failed', { step: 'startup', error });
    return undefined;
  }
}

/** Awaits one shutdown step for at most `boundMs`; a failure or overrun is logged, never thrown. */
async function bounded(
  step: Promise<unknown> | undefined,
  boundMs: number,
  name: string,
  logger: Logger,
): Promise<void> {
  if (!step) return;
  try {
    await withTimeout(step, boundMs, name);
  } catch (error) {
    logger.warn('worker.stop_step_failed', { step: name, error });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${PROGRAM}: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
