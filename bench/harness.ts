import { Cluster } from 'ioredis';
import type { RedisConnectionConfig } from '../core/config.ts';
import { KeyspaceKeys } from '../core/keys.ts';
import { decodeLeaderRecord } from '../core/leader-record.ts';
import { decodeLogLine } from '../core/log-decoder.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { parseEmfLine } from '../core/metrics.ts';
import { closeQuietly, createClusterClient, createNodeClient } from '../core/redis-client.ts';
import { discoverTopology } from '../core/topology.ts';
import { LocalRedisCluster } from '../local/cluster.ts';
import { KeyGenerator } from '../local/runner/key-generator.ts';
import { ReferenceSubscribers } from '../local/runner/reference-subscribers.ts';
import { StatusModel, type WorkerRow } from '../local/runner/status-model.ts';
import { preciseNow, WorkerSupervisor } from '../local/runner/worker-supervisor.ts';
import type { ProcessedRecord } from './analysis.ts';

/**
 * What every benchmark runs on: one embedded cluster with notifications on, bare reference
 * subscribers (one per primary), a generator client, and groups of worker processes whose log lines
 * and EMF documents are recorded. Times are wall-clock ms with sub-ms resolution (performance.timeOrigin
 * + performance.now()) on this one machine, so the workers' `time` fields and the bench's stamps share
 * a clock.
 */

export const ROOT = new URL('../', import.meta.url).pathname;

/** Events of one measurement: keys under `prefix` only. */
export class Recorder {
  readonly reference = new Map<string, number>();
  readonly processed = new Map<string, ProcessedRecord>();
  constructor(readonly prefix: string) {}

  onReference(key: string, atMs: number): void {
    if (!this.reference.has(key)) this.reference.set(key, atMs);
  }

  /** The latest arrival of a `key.processed` line under this prefix (0: none yet). */
  lastProcessedArrivalMs = 0;

  onProcessed(key: string, record: Omit<ProcessedRecord, 'calls'>): void {
    this.lastProcessedArrivalMs = Math.max(this.lastProcessedArrivalMs, record.arrivalMs);
    const existing = this.processed.get(key);
    if (existing) existing.calls++;
    else this.processed.set(key, { ...record, calls: 1 });
  }
}

/** EMF figures of one worker process, summed over its flushes. */
export interface WorkerMetrics {
  eventsReceived: number;
  eventsProcessed: number;
  eventsShed: number;
  latencySamples: number[];
  /** LeaseRenewLatencyMs samples (the leader's renewals). */
  renewLatencySamples: number[];
}

/** One `expiry.scan_completed` line of a worker. */
export interface ScanPass {
  readonly workerId: string;
  readonly nodeId: string;
  readonly round: number;
  readonly trackedKeys: number;
  readonly durationMs: number;
  /** When the bench read the line (wall-clock ms). */
  readonly atMs: number;
}

export interface WorkerGroupOptions {
  readonly script: string;
  readonly count: number;
  readonly env: Readonly<Record<string, string>>;
  readonly leaderName: string;
  readonly replace: boolean;
  readonly idPrefix?: string;
}

function numbers(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class WorkerGroup {
  readonly model: StatusModel;
  readonly metrics = new Map<string, WorkerMetrics>();
  readonly stderr: string[] = [];
  /** `subscription.down` at warn: a worker lost a primary's stream (events published meanwhile are gone). */
  subscriptionDrops = 0;
  /** `leader.lost` lines (any reason): a leader of this group lost its lease without handing it over. */
  leadershipLosses = 0;
  /** Lines that were not complete JSON (a worker stopped in the middle of writing one). */
  truncatedLines = 0;
  /** `expiry.scan_completed` lines (the first pass over each primary is the index's readiness signal). */
  readonly scanPasses: ScanPass[] = [];
  /** The latest `TrackedKeys` gauge of each worker (EMF, flushed every 10 s). */
  readonly trackedKeys = new Map<string, number>();
  /** When each worker was spawned (wall-clock ms). */
  readonly spawnedAtMs = new Map<string, number>();
  private readonly supervisor: WorkerSupervisor;

  constructor(
    private readonly harness: BenchHarness,
    readonly options: WorkerGroupOptions,
  ) {
    this.model = new StatusModel({
      startedAtMs: Date.now(),
      settings: {
        keysPerSecond: 0,
        keyTtlMs: 0,
        primaries: harness.primaries,
        replicasPerPrimary: 0,
        leaderName: options.leaderName,
      },
      isTrackedKey: () => false,
    });
    this.supervisor = new WorkerSupervisor({
      script: options.script,
      cwd: ROOT,
      env: {
        REDIS_NODES: harness.seedList,
        LEADER_NAME: options.leaderName,
        HEALTH_PORT: '0',
        // The bench counts `key.processed` lines: one per completed call, whatever the caller's env says.
        PROCESSED_LOG: 'all',
        // The pipeline's scenarios measure the path of an `expired` event beside bare subscribers, with
        // on-time expiry off (its lookups, scan and touches are measured by the on-time scenario, which
        // turns it on in its env).
        PRECISE_EXPIRY: 'false',
        ...options.env,
      },
      replace: options.replace,
      replaceDelayMs: 1000,
      stopTimeoutMs: 10_000,
      idPrefix: options.idPrefix ?? 'w',
      now: preciseNow,
      events: {
        onSpawn: (id, pid, atMs) => {
          this.spawnedAtMs.set(id, atMs);
          this.model.workerSpawned(id, pid, atMs);
        },
        onLine: (id, line, atMs) => this.onLine(id, line, atMs),
        onStderr: (id, line) => {
          this.stderr.push(`${id}: ${line}`);
          if (this.stderr.length > 50) this.stderr.shift();
        },
        onExit: (id, code, signal, atMs) => this.model.workerExited(id, code, signal, atMs),
        onNotice: (text) => this.harness.log(`  notice: ${text}`),
      },
    });
  }

  /** With `--dump`: every line but key.processed, prefixed by its arrival time and worker id. */
  readonly diagnosticLines: string[] = [];
  private onLine(id: string, line: string, atMs: number): void {
    // Each line is decoded once (core/log-decoder.ts); key.processed lines (thousands a second) go
    // to the harness, the others to the status model.
    const decoded = decodeLogLine(line);
    if (decoded.kind === 'event' && decoded.record.event === 'key.processed') {
      const record = decoded.record;
      this.harness.processed(record.key, {
        lineMs: Date.parse(record.time),
        arrivalMs: atMs,
        latencyMs: record.latencyMs,
        workerId: id,
        deadlineMs: record.deadlineMs,
        lagMs: record.lagMs,
        valueType: record.valueType,
        valueBytes: record.valueBytes,
        valueMissing: record.valueMissing,
      });
      return;
    }
    if (this.harness.dumpDir !== undefined) this.diagnosticLines.push(`${atMs.toFixed(1)} ${id} ${line}`);
    // A worker that exits (or is killed) in the middle of a write leaves half a line.
    if (decoded.kind === 'invalid' && decoded.reason === 'not-json') this.truncatedLines++;
    this.model.workerDecoded(id, decoded, line, atMs);
    if (decoded.kind === 'event') {
      const record = decoded.record;
      // A planned close (shutdown, topology change) is logged at info; a lost stream at warn.
      if (record.event === 'subscription.down' && record.level === 'warn') this.subscriptionDrops++;
      if (record.event === 'leader.lost') this.leadershipLosses++;
      if (record.event === 'expiry.scan_completed') {
        this.scanPasses.push({
          workerId: id,
          nodeId: record.nodeId,
          round: record.round,
          trackedKeys: record.trackedKeys,
          durationMs: record.durationMs,
          atMs,
        });
      }
    }
    if (decoded.kind !== 'metrics') return;
    const documents = parseEmfLine(line);
    if (!documents?.[0]) return;
    const fields = documents[0].fields;
    let m = this.metrics.get(id);
    if (!m) {
      m = {
        eventsReceived: 0,
        eventsProcessed: 0,
        eventsShed: 0,
        latencySamples: [],
        renewLatencySamples: [],
      };
      this.metrics.set(id, m);
    }
    const tracked = numbers(fields.TrackedKeys).at(-1);
    if (tracked !== undefined) this.trackedKeys.set(id, tracked);
    for (const v of numbers(fields.EventsReceived)) m.eventsReceived += v;
    for (const v of numbers(fields.EventsProcessed)) m.eventsProcessed += v;
    for (const v of numbers(fields.EventsShed)) m.eventsShed += v;
    m.latencySamples.push(...numbers(fields.ProcessingLatencyMs));
    m.renewLatencySamples.push(...numbers(fields.LeaseRenewLatencyMs));
  }

  start(): void {
    this.supervisor.start(this.options.count);
  }

  pids(): number[] {
    return this.supervisor.pids();
  }

  leader(): WorkerRow | undefined {
    const leaders = this.model.snapshot(Date.now()).leaders;
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  handoverCount(): number {
    return this.model.snapshot(Date.now()).handovers.length;
  }

  /** Waits for exactly one leader and `count` running workers subscribed to every primary. */
  async waitStable(timeoutMs: number): Promise<WorkerRow> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const snapshot = this.model.snapshot(Date.now());
      const live = snapshot.workers.filter((w) => w.state !== 'exited' && w.state !== 'stopping');
      const leader = snapshot.leaders.length === 1 ? snapshot.leaders[0] : undefined;
      const covered = live.every((w) => (w.subscribedPrimaries ?? 0) >= this.harness.primaries);
      if (leader && live.length >= this.options.count && covered) return leader;
      await sleep(100);
    }
    throw new Error(
      `${this.options.leaderName}: no stable leader within ${timeoutMs} ms; stderr: ${this.stderr.slice(-5).join(' | ')}`,
    );
  }

  /**
   * Waits until the leader record names one of this group's workers: for workers started with
   * LOG_LEVEL=warn, whose `leader.acquired` line is not written. A worker leads only once it is
   * subscribed to every primary (worker/main.ts, canLead).
   */
  async waitLeaderRecord(timeoutMs: number): Promise<string> {
    const key = new KeyspaceKeys(this.options.leaderName).leader;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const text = await this.harness.client.get(key).catch(() => null);
      if (text) {
        const record = decodeLeaderRecord(text);
        if (record.workerId.startsWith(this.options.idPrefix ?? 'w')) return record.workerId;
      }
      await sleep(100);
    }
    throw new Error(
      `${this.options.leaderName}: no leader record within ${timeoutMs} ms; stderr: ${this.stderr.slice(-5).join(' | ')}`,
    );
  }

  /** Waits for a `leader.acquired` after the `after`-th hand-over, by another worker than `notId`. */
  async waitNewLeader(
    after: number,
    timeoutMs: number,
  ): Promise<{ id: string; acquiredAtMs: number; gapMs: number | undefined; cause: string } | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const handovers = this.model.snapshot(Date.now()).handovers;
      const next = handovers[after];
      if (handovers.length > after && next) {
        return { id: next.to, acquiredAtMs: next.acquiredAtMs, gapMs: next.gapMs, cause: next.cause };
      }
      await sleep(20);
    }
    return undefined;
  }

  /** The `index`-th hand-over as the model knows it now (a late release line can still amend it). */
  handoverAt(
    index: number,
  ): { id: string; acquiredAtMs: number; gapMs: number | undefined; cause: string } | undefined {
    const handover = this.model.snapshot(Date.now()).handovers[index];
    return handover
      ? { id: handover.to, acquiredAtMs: handover.acquiredAtMs, gapMs: handover.gapMs, cause: handover.cause }
      : undefined;
  }

  signal(id: string, signal: 'SIGTERM' | 'SIGKILL'): number {
    const atMs = preciseNow();
    this.model.workerSignalled(id, signal, atMs);
    this.supervisor.signal(id, signal);
    return atMs;
  }

  /** EMF figures summed over every worker of the group. */
  totals(): WorkerMetrics {
    const total: WorkerMetrics = {
      eventsReceived: 0,
      eventsProcessed: 0,
      eventsShed: 0,
      latencySamples: [],
      renewLatencySamples: [],
    };
    for (const m of this.metrics.values()) {
      total.eventsReceived += m.eventsReceived;
      total.eventsProcessed += m.eventsProcessed;
      total.eventsShed += m.eventsShed;
      total.latencySamples.push(...m.latencySamples);
      total.renewLatencySamples.push(...m.renewLatencySamples);
    }
    return total;
  }

  stop(): Promise<void> {
    return this.supervisor.stop();
  }

  killAllSync(): void {
    this.supervisor.killAllSync();
  }
}

export class BenchHarness {
  private readonly recorders = new Set<Recorder>();
  private readonly groups = new Set<WorkerGroup>();
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly cluster: LocalRedisCluster,
    /** Generator client: a Cluster client with auto-pipelining (many SETs per round trip). */
    readonly client: Cluster,
    private readonly topologyClient: Cluster,
    readonly reference: ReferenceSubscribers,
    readonly primaries: number,
    readonly log: (line: string) => void,
    /** `--dump`: where crash runs write their diagnostics (undefined: none are kept). */
    readonly dumpDir: string | undefined,
  ) {}

  static async start(options: {
    primaries: number;
    replicasPerPrimary: number;
    log: (line: string) => void;
    dumpDir?: string | undefined;
  }): Promise<BenchHarness> {
    const cluster = await LocalRedisCluster.start({
      primaries: options.primaries,
      replicasPerPrimary: options.replicasPerPrimary,
      persistence: 'off',
    });
    try {
      await cluster.configSetAll('notify-keyspace-events', 'Ex');
      const redis: RedisConnectionConfig = {
        nodes: cluster.seeds,
        tls: false,
        tlsCaFile: undefined,
        username: undefined,
        password: undefined,
      };
      const logger: Logger = createLogger({
        level: 'warn',
        write: (line) => options.log(`  redis: ${line}`),
      });
      const client = new Cluster(cluster.seeds, {
        enableAutoPipelining: true,
        redisOptions: cluster.clientOptions(),
      });
      client.on('error', () => {});
      const topologyClient = createClusterClient(redis, { logger, name: 'bench' });
      let harness: BenchHarness | undefined;
      const reference = new ReferenceSubscribers({
        discover: () => discoverTopology((c, ...a) => topologyClient.call(c, ...a), { preferTls: false }),
        connect: (address) => createNodeClient(address, redis, { logger, name: 'bench-reference' }),
        onEvent: (key, _node, atMs) => harness?.referenceEvent(key, atMs),
        onNotice: (text) => options.log(`  ${text}`),
        now: preciseNow,
      });
      harness = new BenchHarness(
        cluster,
        client,
        topologyClient,
        reference,
        options.primaries,
        options.log,
        options.dumpDir,
      );
      await reference.start();
      return harness;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  get seedList(): string {
    return this.cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',');
  }

  private referenceEvent(key: string, atMs: number): void {
    for (const recorder of this.recorders)
      if (key.startsWith(recorder.prefix)) recorder.onReference(key, atMs);
  }

  processed(key: string, record: Omit<ProcessedRecord, 'calls'>): void {
    for (const recorder of this.recorders)
      if (key.startsWith(recorder.prefix)) recorder.onProcessed(key, record);
  }

  recorder(prefix: string): Recorder {
    const recorder = new Recorder(prefix);
    this.recorders.add(recorder);
    return recorder;
  }

  release(recorder: Recorder): void {
    this.recorders.delete(recorder);
  }

  workers(options: WorkerGroupOptions): WorkerGroup {
    const group = new WorkerGroup(this, options);
    this.groups.add(group);
    group.start();
    return group;
  }

  async stopWorkers(group: WorkerGroup): Promise<void> {
    await group.stop();
    this.groups.delete(group);
  }

  generator(prefix: string, keysPerSecond: number, ttlMs: number): KeyGenerator {
    return new KeyGenerator({
      client: this.client,
      prefix,
      ttlMs,
      keysPerSecond,
      maxInFlight: 50_000,
      onError: (error) => this.log(`  generator: ${error.message}`),
    });
  }

  /** Stops every worker group, the subscribers, the clients and the cluster. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([...this.groups].map((g) => g.stop().catch(() => undefined)));
      this.groups.clear();
      await this.reference.stop().catch(() => undefined);
      await closeQuietly(this.client);
      await closeQuietly(this.topologyClient);
      // LocalRedisCluster.stop() ends with a wait on an unref'd child and an unref'd timer: with nothing
      // else pending, Node would exit in the middle of it, before the report is written.
      const keepAlive = setInterval(() => {}, 1000);
      try {
        await this.cluster.stop();
      } finally {
        clearInterval(keepAlive);
      }
    })();
    return this.stopping;
  }

  /** From a synchronous exit hook. */
  killWorkersSync(): void {
    for (const group of this.groups) group.killAllSync();
  }
}
