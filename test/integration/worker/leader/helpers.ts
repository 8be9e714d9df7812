import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { systemClock } from '../../../../core/clock.ts';
import {
  DEFAULT_LEASE_TIMINGS,
  type LeaseTimings,
  type RedisConnectionConfig,
} from '../../../../core/config.ts';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { createLogger } from '../../../../core/logger.ts';
import { EmfMetrics } from '../../../../core/metrics.ts';
import { closeQuietly, createClusterClient } from '../../../../core/redis-client.ts';
import { discoverTopology } from '../../../../core/topology.ts';
import type { LocalRedisCluster } from '../../../../local/cluster.ts';
import {
  createLeaderElection,
  type LeaderElection,
} from '../../../../worker/leader/create-leader-election.ts';
import { LeaderElector } from '../../../../worker/leader/leader-elector.ts';
import type { StoppedLeadingReason } from '../../../../worker/leader/leadership.ts';
import { decodeStrict } from '../../../support/log-capture.ts';

/** A random LEADER_NAME per test: isolation within one cluster. */
export function randomLeaderName(): string {
  return `it-${randomBytes(4).toString('hex')}`;
}

export function connectionConfig(cluster: LocalRedisCluster): RedisConnectionConfig {
  const options = cluster.clientOptions();
  return {
    nodes: cluster.seeds,
    tls: false,
    tlsCaFile: undefined,
    username: options.username,
    password: options.password,
  };
}

export interface LogEntry {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** One worker's election, as main.ts wires it, with everything it did recorded. */
export interface TestWorker {
  readonly workerId: string;
  readonly client: Cluster;
  readonly election: LeaderElection;
  readonly elector: LeaderElector;
  readonly keys: KeyspaceKeys;
  readonly logs: LogEntry[];
  /** Calls of lease.acquire (attempts, whatever their outcome). */
  readonly acquireAttempts: () => number;
  /** performance.now() of each onStartedLeading, with its token. */
  readonly started: { atMs: number; token: number }[];
  readonly stopped: { atMs: number; reason: StoppedLeadingReason }[];
  close(): Promise<void>;
}

export async function startWorker(
  cluster: LocalRedisCluster,
  leaderName: string,
  workerId: string,
  options: { timings?: LeaseTimings; start?: boolean; placementCheckIntervalMs?: number } = {},
): Promise<TestWorker> {
  const keys = new KeyspaceKeys(leaderName);
  const logs: LogEntry[] = [];
  const logger = createLogger({
    level: 'debug',
    base: { workerId },
    write: (line) => logs.push(decodeStrict(line)),
  });
  const redis = connectionConfig(cluster);
  const client = createClusterClient(redis, { logger, name: `test-${workerId}` });
  const election = await createLeaderElection({
    cluster: client,
    redis,
    keys,
    logger,
    topology: () =>
      discoverTopology((command, ...args) => client.call(command, ...args), { preferTls: false }),
    ...(options.placementCheckIntervalMs === undefined
      ? {}
      : { placementCheckIntervalMs: options.placementCheckIntervalMs }),
  });
  let attempts = 0;
  const lease = election.lease;
  const countingLease: typeof lease = {
    mode: lease.mode,
    describe: () => lease.describe(),
    acquire: (ttlMs) => {
      attempts++;
      return lease.acquire(ttlMs);
    },
    extend: (hold, ttlMs) => lease.extend(hold, ttlMs),
    release: (hold) => lease.release(hold),
    stepDownReason: () => lease.stepDownReason?.(),
  };
  const started: TestWorker['started'] = [];
  const stopped: TestWorker['stopped'] = [];
  const elector = new LeaderElector({
    lease: countingLease,
    releasedChannel: election.releasedChannel,
    recordStore: election.recordStore,
    workerId,
    taskArn: null,
    timings: options.timings ?? DEFAULT_LEASE_TIMINGS,
    clock: systemClock,
    logger,
    metrics: new EmfMetrics({ namespace: 'Test', leaderName, write: () => {} }),
    callbacks: {
      onStartedLeading: (_signal, token) => started.push({ atMs: performance.now(), token }),
      onStoppedLeading: (reason) => stopped.push({ atMs: performance.now(), reason }),
    },
  });
  if (options.start !== false) elector.start();
  let closed = false;
  return {
    workerId,
    client,
    election,
    elector,
    keys,
    logs,
    acquireAttempts: () => attempts,
    started,
    stopped,
    async close() {
      if (closed) return;
      closed = true;
      await elector.stop({ release: true });
      await election.close();
      await closeQuietly(client);
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls every 10 ms until `check` is true; returns the elapsed ms, or undefined after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs: number): Promise<number | undefined> {
  const start = performance.now();
  while (performance.now() - start < timeoutMs) {
    if (check()) return performance.now() - start;
    await sleep(10);
  }
  return check() ? performance.now() - start : undefined;
}

/** Samples both workers every `everyMs` for `durationMs`: how often each held a grant, and both at once. */
export async function watchLeadership(
  workers: readonly TestWorker[],
  durationMs: number,
  everyMs = 20,
): Promise<{ samples: number; leading: number[]; overlaps: number }> {
  const leading = workers.map(() => 0);
  let samples = 0;
  let overlaps = 0;
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    const now = performance.now();
    const holders = workers.map((w) => w.elector.current(now) !== undefined);
    holders.forEach((h, i) => {
      if (h) leading[i] = (leading[i] ?? 0) + 1;
    });
    if (holders.filter(Boolean).length > 1) overlaps++;
    samples++;
    await sleep(everyMs);
  }
  return { samples, leading, overlaps };
}
