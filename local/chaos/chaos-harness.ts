import type { Cluster } from 'ioredis';
import type { RedisConnectionConfig } from '../../core/config.ts';
import { decodeLogRecord, loggedErrorMessage } from '../../core/log-decoder.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import { closeQuietly, createClusterClient, createNodeClient } from '../../core/redis-client.ts';
import { discoverTopology } from '../../core/topology.ts';
import { LocalRedisCluster } from '../cluster.ts';
import { ReferenceSubscribers } from '../runner/reference-subscribers.ts';
import { preciseNow } from '../runner/worker-supervisor.ts';
import {
  ChaosClusterShapeError,
  type ChaosResult,
  ChaosRun,
  ChaosRunError,
  type RunSettings,
} from './chaos-run.ts';
import type { ChaosScenario, ClusterProfile } from './chaos-scenario.ts';

/**
 * The embedded cluster of a chaos session and what every run shares: one LocalRedisCluster of a
 * profile (notify-keyspace-events `Egx` set with configSetAll, so restarted nodes get it too: the
 * workers' precise expiry, on by default, needs `expire` events besides `expired`), a
 * Cluster client for the key generator, and the reference subscribers (one bare subscriber per
 * primary, re-synced with the topology every 250 ms) that define "expected". Scenarios run one at a
 * time; after each, the cluster is put back in shape (paused nodes resumed, stopped nodes restarted,
 * the profile's primaries and replicas all healthy) before the next may start.
 *
 * `close()` (idempotent) stops the reference subscribers, the client and the cluster; the cluster's
 * own crash cleanup and the workers' parent-watch cover a harness process that dies without it.
 */

export interface ChaosHarnessOptions {
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal;
}

const HEALTHY_TIMEOUT_MS = 45_000;

export class ChaosHarness {
  private readonly listeners = new Set<(key: string, node: string, atMs: number) => void>();
  private closePromise: Promise<void> | undefined;
  private reference: ReferenceSubscribers | undefined;
  private client: Cluster | undefined;

  private constructor(
    readonly cluster: LocalRedisCluster,
    readonly profile: ClusterProfile,
    private readonly options: ChaosHarnessOptions,
    private readonly logger: Logger,
  ) {}

  static async start(profile: ClusterProfile, options: ChaosHarnessOptions): Promise<ChaosHarness> {
    const startedAtMs = preciseNow();
    const cluster = await LocalRedisCluster.start({
      primaries: profile.primaries,
      replicasPerPrimary: profile.replicasPerPrimary,
      nodeTimeoutMs: profile.nodeTimeoutMs,
      persistence: profile.persistence,
    });
    const logger = createLogger({
      level: 'warn',
      base: { workerId: 'chaos-harness' },
      write: (line) => {
        const record = decodeLogRecord(line);
        const node = record && 'node' in record ? record.node : undefined;
        const error = record && 'error' in record ? loggedErrorMessage(record.error) : undefined;
        options.log(`[harness] ${record?.event ?? '?'} ${node ?? ''} ${error ?? ''}`.trimEnd());
      },
    });
    const harness = new ChaosHarness(cluster, profile, options, logger);
    try {
      await harness.setUp();
    } catch (error) {
      await harness.close();
      throw error;
    }
    options.log(
      `[harness] cluster ${profile.primaries} primaries x ${profile.replicasPerPrimary} replica, node timeout ` +
        `${profile.nodeTimeoutMs} ms, persistence ${profile.persistence}: up in ${Math.round(preciseNow() - startedAtMs)} ms (${cluster.folder})`,
    );
    return harness;
  }

  private async setUp(): Promise<void> {
    await this.cluster.configSetAll('notify-keyspace-events', 'Egx');
    const redis: RedisConnectionConfig = {
      nodes: this.cluster.seeds,
      tls: false,
      tlsCaFile: undefined,
      username: undefined,
      password: undefined,
    };
    const client = createClusterClient(redis, {
      logger: this.logger,
      name: 'chaos-generator',
      commandTimeoutMs: 2000,
    });
    this.client = client;
    this.reference = new ReferenceSubscribers({
      discover: () =>
        discoverTopology((command, ...args) => client.call(command, ...args), { preferTls: false }),
      connect: (address) =>
        createNodeClient(address, redis, { logger: this.logger, name: 'chaos-reference' }),
      onEvent: (key, node, atMs) => {
        for (const listener of this.listeners) listener(key, node, atMs);
      },
      onNotice: (text) => this.options.log(`[harness] ${text}`),
      pollIntervalMs: 250,
      now: preciseNow,
    });
    await this.reference.start();
  }

  /** Runs one scenario, then puts the cluster back in shape (also when the run failed). */
  async run(scenario: ChaosScenario, settings: RunSettings): Promise<ChaosResult> {
    if (scenario.profile !== this.profile.name) {
      throw new ChaosRunError(
        `${scenario.name} needs the ${scenario.profile} cluster, this one is ${this.profile.name}`,
      );
    }
    const client = this.client;
    const reference = this.reference;
    if (!client || !reference || this.closePromise) throw new ChaosRunError('the harness is closed');
    const run = new ChaosRun(scenario, settings, {
      cluster: this.cluster,
      profile: this.profile,
      client,
      ownerOf: (key) => reference.ownerOf(key),
      onPublication: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
      log: this.options.log,
      signal: this.options.signal,
    });
    let result: ChaosResult;
    try {
      result = await run.execute();
    } catch (error) {
      // Interrupted: the cluster is about to be stopped, no repair. Otherwise repair, keeping the
      // run's error as the one reported.
      if (this.options.signal?.aborted) throw error;
      try {
        await this.ensureHealthy();
      } catch (repairError) {
        throw new ChaosClusterShapeError(
          `${scenario.name} failed and the cluster could not be put back in shape: ${describe(repairError)}`,
          { cause: error },
        );
      }
      throw error;
    }
    await this.ensureHealthy();
    return result;
  }

  /**
   * Resumes paused nodes, restarts stopped ones, and waits until the cluster has the profile's
   * primaries, each with its replicas, all healthy, and the reference subscribers follow every
   * primary. Throws when that is not reached: the next scenario would measure a broken cluster.
   */
  async ensureHealthy(): Promise<void> {
    for (const node of this.cluster.nodes) {
      if (node.state === 'paused') this.cluster.resumeNode(node.port);
    }
    for (const node of this.cluster.nodes) {
      if (node.state === 'stopped') {
        this.options.log(`[harness] restarting :${node.port} (left stopped by the scenario)`);
        await this.cluster.restartNode(node.port, { timeoutMs: HEALTHY_TIMEOUT_MS });
      }
    }
    await this.cluster.waitForClusterOk({ timeoutMs: HEALTHY_TIMEOUT_MS });
    const primaries = await this.cluster.primaries();
    const replicas = this.cluster.nodes.filter((n) => n.role === 'replica' && n.state === 'running').length;
    const wantedReplicas = this.profile.primaries * this.profile.replicasPerPrimary;
    if (primaries.length !== this.profile.primaries || replicas !== wantedReplicas) {
      throw new ChaosClusterShapeError(
        `cluster not back in shape: ${primaries.length} primaries (want ${this.profile.primaries}), ${replicas} replicas (want ${wantedReplicas})`,
      );
    }
    const reference = this.reference;
    const deadline = preciseNow() + HEALTHY_TIMEOUT_MS;
    while (reference && reference.subscribedPrimaryCount() !== primaries.length) {
      if (preciseNow() > deadline)
        throw new ChaosClusterShapeError('reference subscribers did not follow every primary');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Stops the reference subscribers, the client and the cluster. Idempotent. */
  close(): Promise<void> {
    this.closePromise ??= (async () => {
      this.listeners.clear();
      try {
        await this.reference?.stop();
      } finally {
        if (this.client) await closeQuietly(this.client);
        await this.cluster.stop();
      }
    })();
    return this.closePromise;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
