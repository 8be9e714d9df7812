import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster } from 'ioredis';
import { KeyspaceLeaderError } from '../../core/errors.ts';
import { KeyspaceKeys } from '../../core/keys.ts';
import { discoverTopology } from '../../core/topology.ts';
import { fixedPlacement } from '../../worker/leader/quorum-placement.ts';
import { MarkStore } from '../../worker/replay/mark-store.ts';
import type { LocalRedisCluster } from '../cluster.ts';
import { KeyGenerator } from '../runner/key-generator.ts';
import { preciseNow } from '../runner/worker-supervisor.ts';
import {
  type ChaosAccount,
  computeChaosAccount,
  type FaultMark,
  type GeneratedKey,
  type MarkSnapshot,
  type PrimaryOutage,
  type Publication,
} from './chaos-accounting.ts';
import {
  type BackpressureFigures,
  DEFAULT_BACKPRESSURE_BOUNDS,
  evaluateGuarantees,
  type Verdict,
} from './chaos-guarantees.ts';
import type {
  ChaosScenario,
  ClusterProfile,
  ScenarioContext,
  WaitForLeaderOptions,
} from './chaos-scenario.ts';
import { PubsubMonitor } from './pubsub-monitor.ts';
import { RssSampler } from './rss-sampler.ts';
import { type FleetWorker, WorkerFleet } from './worker-fleet.ts';

/**
 * One scenario, start to end, on a running cluster: workers -> ready (one leader, every worker
 * subscribed to every primary) -> key generator -> warm-up -> the scenario's fault -> keys keep
 * flowing -> generator stops -> the last keys expire (TTL + drain) -> workers stop (SIGTERM) -> the
 * scenario's restore steps -> accounting. Whatever fails, the generator, samplers and workers are
 * stopped and the restore steps run before the error propagates.
 */

export const WORKER_SCRIPT = fileURLToPath(new URL('../../worker/main.ts', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RunSettings {
  readonly rate: number;
  readonly durationS: number;
  readonly ttlMs: number;
  readonly workers: number;
  /** Keys flow this long before the fault. */
  readonly warmupMs: number;
  /** After the generator stops: TTL plus this, for the last events and replays. */
  readonly drainMs: number;
  /** Keys keep flowing at least this long after the fault is over. */
  readonly minAfterFaultMs: number;
}

export const DEFAULT_RATE = 200;
export const DEFAULT_TTL_MS = 1000;

export function defaultRunSettings(
  scenario: ChaosScenario,
  overrides: Partial<RunSettings> = {},
): RunSettings {
  return {
    rate: scenario.defaultRate ?? DEFAULT_RATE,
    durationS: scenario.defaultDurationS,
    ttlMs: DEFAULT_TTL_MS,
    workers: 3,
    warmupMs: 2000,
    drainMs: 2000,
    minAfterFaultMs: 3000,
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };
}

export interface ChaosResult {
  readonly scenario: string;
  readonly summary: string;
  readonly settings: RunSettings;
  readonly cluster: ClusterProfile;
  readonly leaderName: string;
  readonly keyPrefix: string;
  readonly account: ChaosAccount;
  readonly backpressure: BackpressureFigures | undefined;
  readonly maxRssKb: Readonly<Record<string, number>>;
  readonly verdicts: readonly Verdict[];
  readonly ok: boolean;
  readonly notes: readonly string[];
  /** Figures the scenario measured itself (`ScenarioContext.measure`), by name. */
  readonly measurements: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
}

/** What the harness lends a run. */
export interface RunResources {
  readonly cluster: LocalRedisCluster;
  readonly profile: ClusterProfile;
  /** A Cluster client for the generator's SETs. */
  readonly client: Cluster;
  /** Owner (`host:port`) of a key's slot, as the reference subscribers last polled it. */
  readonly ownerOf: (key: string) => string | undefined;
  /** Registers the run's receiver of reference `expired` events; returns the unregister function. */
  readonly onPublication: (listener: (key: string, node: string, atMs: number) => void) => () => void;
  readonly log: (line: string) => void;
  readonly signal: AbortSignal | undefined;
}

/** The run was aborted (Ctrl-C), a bounded wait ran out, or a scenario found the cluster unfit. */
export class ChaosRunError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHAOS_RUN_FAILED', message, options);
  }
}

/** After a scenario the cluster could not be put back in shape: no further scenario may use it. */
export class ChaosClusterShapeError extends KeyspaceLeaderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHAOS_CLUSTER_SHAPE', message, options);
  }
}

const READY_TIMEOUT_MS = 45_000;
/** Bound on each copy of the marks the harness reads (MarkStore bounds every copy on its own). */
const MARK_SNAPSHOT_COPY_TIMEOUT_MS = 1000;
const GENERATOR_ERROR_LINES = 3;
const OUTPUT_BUFFER_LOG_TEXT = 'overcoming of output buffer limits';

export class ChaosRun implements ScenarioContext {
  readonly leaderName: string;
  readonly keyPrefix: string;
  readonly fleet: WorkerFleet;
  private readonly notes: string[] = [];
  private readonly measurements: Record<string, number> = {};
  private readonly faults: FaultMark[] = [];
  private readonly outages: PrimaryOutage[] = [];
  private readonly markSnapshots: MarkSnapshot[] = [];
  private readonly generated: GeneratedKey[] = [];
  private readonly publications: Publication[] = [];
  private readonly restoreSteps: (() => Promise<void>)[] = [];
  private readonly rss: RssSampler;
  private readonly pubsub: PubsubMonitor | undefined;
  private generator: KeyGenerator | undefined;
  private setFailures = 0;
  private generatorErrorLines = 0;

  constructor(
    private readonly scenario: ChaosScenario,
    private readonly settings: RunSettings,
    private readonly resources: RunResources,
  ) {
    const runId = randomBytes(3).toString('hex');
    this.leaderName = `chaos-${scenario.name}-${runId}`;
    this.keyPrefix = `chaos:${runId}:`;
    this.fleet = new WorkerFleet({
      script: WORKER_SCRIPT,
      cwd: REPO_ROOT,
      env: {
        REDIS_NODES: resources.cluster.seeds.map((s) => `${s.host}:${s.port}`).join(','),
        LEADER_NAME: this.leaderName,
        HEALTH_PORT: '0',
        LOG_LEVEL: 'info',
        // The suite counts `key.processed` lines: one per completed call, whatever the caller's env says.
        PROCESSED_LOG: 'all',
        ...scenario.workerEnv,
      },
      idPrefix: `${scenario.name}-w`,
      onNotice: (text) => this.note(text),
    });
    this.rss = new RssSampler(
      () =>
        new Map(
          this.fleet
            .live()
            .filter((w): w is FleetWorker & { pid: number } => w.pid !== undefined)
            .map((w) => [w.id, w.pid]),
        ),
      scenario.backpressure ? 250 : 1000,
    );
    this.pubsub = scenario.backpressure ? new PubsubMonitor(resources.cluster, 500) : undefined;
  }

  get cluster(): LocalRedisCluster {
    return this.resources.cluster;
  }

  get rate(): number {
    return this.settings.rate;
  }

  now(): number {
    return preciseNow();
  }

  note(text: string): void {
    this.notes.push(text);
    this.resources.log(`[${this.scenario.name}] ${text}`);
  }

  fault(name: string, detail: string): void {
    this.faults.push({ name, detail, atMs: this.now() });
    this.note(`fault: ${name}: ${detail}`);
  }

  measure(name: string, value: number): void {
    this.measurements[name] = value;
  }

  outage(node: string, fromMs: number, toMs: number): void {
    this.outages.push({ node, fromMs, toMs });
  }

  restrictKeys(accept: ((owner: string | undefined) => boolean) | undefined): void {
    this.generator?.setKeyFilter(accept && ((key) => accept(this.resources.ownerOf(key))));
  }

  onRestore(step: () => Promise<void>): void {
    this.restoreSteps.push(step);
  }

  async snapshotMarks(fencingToken: number): Promise<void> {
    const topology = await discoverTopology(
      (command, ...args) => this.resources.client.call(command, ...args),
      {
        preferTls: false,
      },
    );
    const nodeIds = topology.shards.flatMap((s) => [
      ...(s.primary ? [s.primary.id] : []),
      ...s.replicas.map((r) => r.id),
    ]);
    const keys = new KeyspaceKeys(this.leaderName);
    const store = new MarkStore(
      this.resources.client,
      keys,
      fixedPlacement(keys).members.map((m) => m.partitionIndex),
      MARK_SNAPSHOT_COPY_TIMEOUT_MS,
    );
    const atMs = this.now();
    const { marks } = await store.read(nodeIds);
    const seqByNode: Record<string, number> = {};
    for (const [nodeId, mark] of marks) if (mark.fencingToken === fencingToken) seqByNode[nodeId] = mark.seq;
    this.markSnapshots.push({ fencingToken, atMs, seqByNode });
    this.note(`marks of token ${fencingToken}: ${Object.keys(seqByNode).length} primaries`);
  }

  sleep(ms: number): Promise<void> {
    const signal = this.resources.signal;
    if (signal?.aborted) return Promise.reject(new ChaosRunError('aborted'));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(new ChaosRunError('aborted'));
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = this.now() + timeoutMs;
    for (;;) {
      const found = probe();
      if (found !== undefined) return found;
      if (this.now() >= deadline) {
        throw new ChaosRunError(
          `${what}: not within ${timeoutMs} ms\n${this.fleet
            .all()
            .map((w) => this.fleet.tail(w.id))
            .join('\n')}`,
        );
      }
      await this.sleep(50);
    }
  }

  requireLeader(): FleetWorker {
    const leader = this.fleet.leader();
    if (!leader) throw new ChaosRunError('no leader at the moment of the fault');
    return leader;
  }

  waitForLeader(options: WaitForLeaderOptions): Promise<FleetWorker> {
    return this.waitFor(
      () => {
        const leader = this.fleet.leader();
        if (!leader) return undefined;
        if (options.notId !== undefined && leader.id === options.notId) return undefined;
        if (options.aboveToken !== undefined && (leader.fencingToken ?? 0) <= options.aboveToken)
          return undefined;
        return leader;
      },
      options.timeoutMs,
      'a new leader',
    );
  }

  async waitForCovered(id: string, timeoutMs: number): Promise<void> {
    const primaries = (await this.cluster.primaries()).length;
    await this.waitFor(
      () => {
        const worker = this.fleet.get(id);
        if (worker?.exited) throw new ChaosRunError(`${id} exited while starting\n${this.fleet.tail(id)}`);
        return worker && this.fleet.isCovered(worker, primaries) ? true : undefined;
      },
      timeoutMs,
      `${id} subscribed to every primary`,
    );
  }

  async execute(): Promise<ChaosResult> {
    const startedAtMs = this.now();
    const { settings, scenario } = this;
    const unregister = this.resources.onPublication((key, node, atMs) => {
      if (key.startsWith(this.keyPrefix)) this.publications.push({ key, node, atMs });
    });
    const bufferDisconnectsBefore = await this.countOutputBufferDisconnects();
    let generatorStartMs = 0;
    let generatorStopMs = 0;
    let workersStopMs: number | undefined;
    let subscribersAtEnd: number[] = [];
    let liveWorkersAtEnd = 0;
    let failure: unknown;
    try {
      this.note(
        `LEADER_NAME ${this.leaderName}, keys ${this.keyPrefix}<n>, ${settings.rate} keys/s, TTL ${settings.ttlMs} ms, ` +
          `${settings.durationS} s, ${settings.workers} workers`,
      );
      this.fleet.start(settings.workers);
      await this.waitUntilReady();
      this.generator = new KeyGenerator({
        client: this.resources.client,
        prefix: this.keyPrefix,
        ttlMs: settings.ttlMs,
        keysPerSecond: settings.rate,
        onSet: (key) => this.generated.push({ key, setAtMs: this.now(), owner: this.resources.ownerOf(key) }),
        onError: (error) => {
          // Distinct messages only, and few: a failover makes every slot's MOVED message different.
          if (++this.generatorErrorLines <= GENERATOR_ERROR_LINES) {
            this.note(
              `generator: SET failed: ${error.message}${this.generatorErrorLines === GENERATOR_ERROR_LINES ? ' (further SET errors only counted)' : ''}`,
            );
          }
        },
      });
      this.rss.start();
      this.pubsub?.start();
      generatorStartMs = this.now();
      this.generator.start();
      await this.sleep(settings.warmupMs);
      await scenario.inject(this);
      const endMs = Math.max(
        generatorStartMs + settings.durationS * 1000,
        this.now() + settings.minAfterFaultMs,
      );
      await this.sleep(endMs - this.now());
      await this.generator.stop();
      generatorStopMs = this.now();
      this.setFailures = this.generator.counts().failed;
      this.note(
        `generator stopped: ${this.generator.counts().sent} keys set, ${this.setFailures} SETs failed; draining ${settings.ttlMs + settings.drainMs} ms`,
      );
      await this.sleep(settings.ttlMs + settings.drainMs);
      if (this.pubsub) {
        await this.pubsub.stop();
        const last = await this.pubsub.sample();
        subscribersAtEnd = [...last.subscribers.values()];
      }
      liveWorkersAtEnd = this.fleet.live().length;
    } catch (error) {
      failure = error;
    } finally {
      await this.generator?.stop();
      await this.rss.stop();
      await this.pubsub?.stop();
      workersStopMs = this.now();
      await this.fleet.stop();
      unregister();
      // Interrupted: the cluster is about to be stopped, restoring it would only delay that.
      const restoreSteps = this.resources.signal?.aborted ? [] : this.restoreSteps.splice(0);
      for (const step of restoreSteps) {
        try {
          await step();
        } catch (error) {
          this.note(`restore step failed: ${error instanceof Error ? error.message : String(error)}`);
          failure ??= error;
        }
      }
    }
    if (failure !== undefined) throw failure;

    const account = computeChaosAccount({
      trackedPrefix: this.keyPrefix,
      ttlMs: settings.ttlMs,
      generatorStartMs,
      generatorStopMs,
      workersStopMs,
      generated: this.generated,
      setFailures: this.setFailures,
      publications: this.publications,
      records: this.fleet.records,
      lifecycle: this.fleet.lifecycle,
      outages: this.outages,
      faults: this.faults,
      markSnapshots: this.markSnapshots,
    });
    const backpressure = scenario.backpressure
      ? this.backpressureFigures(
          subscribersAtEnd,
          liveWorkersAtEnd,
          (await this.countOutputBufferDisconnects()) - bufferDisconnectsBefore,
        )
      : undefined;
    const verdicts = evaluateGuarantees(account, scenario.expectations, {
      rate: settings.rate,
      ...(backpressure
        ? { backpressure: { figures: backpressure, bounds: DEFAULT_BACKPRESSURE_BOUNDS } }
        : {}),
    });
    const maxRssKb: Record<string, number> = {};
    for (const worker of this.fleet.all()) {
      const max = this.rss.max(worker.id);
      if (max !== undefined) maxRssKb[worker.id] = max;
    }
    return {
      scenario: scenario.name,
      summary: scenario.summary,
      settings,
      cluster: this.resources.profile,
      leaderName: this.leaderName,
      keyPrefix: this.keyPrefix,
      account,
      backpressure,
      maxRssKb,
      verdicts,
      ok: verdicts.every((v) => v.ok),
      notes: this.notes,
      measurements: this.measurements,
      elapsedMs: Math.round(this.now() - startedAtMs),
    };
  }

  /** One leader, every worker subscribed to every primary. */
  private async waitUntilReady(): Promise<void> {
    const primaries = (await this.cluster.primaries()).length;
    await this.waitFor(
      () => {
        const crashed = this.fleet.all().find((w) => w.exited);
        if (crashed)
          throw new ChaosRunError(`${crashed.id} exited while starting\n${this.fleet.tail(crashed.id)}`);
        const live = this.fleet.live();
        if (live.length < this.settings.workers || !this.fleet.leader()) return undefined;
        return live.every((w) => this.fleet.isCovered(w, primaries)) ? true : undefined;
      },
      READY_TIMEOUT_MS,
      `${this.settings.workers} workers subscribed to ${primaries} primaries, with a leader`,
    );
    const leader = this.fleet.leader();
    this.note(
      `ready: ${leader?.id} leads (token ${leader?.fencingToken}), all subscribed to ${primaries} primaries`,
    );
  }

  private backpressureFigures(
    subscribersAtEnd: number[],
    liveWorkersAtEnd: number,
    outputBufferDisconnects: number,
  ): BackpressureFigures {
    // The leader's own overflow: its backlog in the replay window (`queue-full` only if an offer ever
    // met a full queue, which the coordinator's room check prevents).
    const firstShed = this.fleet.records.find(
      (r) =>
        r.event === 'events.shed' && (r.fields.reason === 'queue-full' || r.fields.reason === 'backlog-full'),
    );
    const leaderId = firstShed?.workerId ?? this.fleet.all()[0]?.id ?? '';
    return {
      rssAtFirstShedKb: firstShed ? this.rss.at(leaderId, firstShed.atMs) : undefined,
      maxRssAfterShedKb: firstShed ? this.rss.max(leaderId, firstShed.atMs) : undefined,
      maxRssKb: this.rss.max(leaderId),
      outputBufferDisconnects,
      maxSubscriberOmem: this.pubsub?.maxSubscriberOmem,
      subscribersAtEnd,
      liveWorkersAtEnd,
    };
  }

  /** Lines in the nodes' logs that report a client closed for its output buffer (any node, any time). */
  private async countOutputBufferDisconnects(): Promise<number> {
    let count = 0;
    let entries: string[];
    try {
      entries = await readdir(this.cluster.folder);
    } catch {
      return 0;
    }
    for (const entry of entries.filter((e) => e.startsWith('node-'))) {
      try {
        const text = await readFile(join(this.cluster.folder, entry, 'redis.log'), 'utf8');
        for (const line of text.split('\n')) if (line.includes(OUTPUT_BUFFER_LOG_TEXT)) count++;
      } catch {
        // a node folder without a log (removed meanwhile)
      }
    }
    return count;
  }
}
