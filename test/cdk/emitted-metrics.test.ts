/**
 * The production bundle runs, and the dashboards and alarms only use metrics the code emits.
 *
 * 1. `npm run build:worker` the way worker/Dockerfile does, then run `node dist/worker/main.mjs` (the
 *    image's entry point, without Docker) against an embedded cluster: it starts, leads, processes an
 *    expiry and exits 0 on SIGTERM within the ECS stop timeout.
 * 2. Run the notify-check logic once (ECS answered by aws-sdk-client-mock, so its ECS metrics exist).
 * 3. Every custom metric the synthesized dashboards and alarms reference -- namespace, name and
 *    dimension names and values -- must appear in the EMF documents of 1 and 2. A breakdown's value
 *    (ValuesMissing by Reason: the dashboard shows every reason of the closed list, an alarm one) is
 *    the exception: one run meets only some reasons, so such a reference needs the metric emitted
 *    under the same dimension names with some value of that dimension (the run expires a stream, whose
 *    value is never read), and its own value in the closed list.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { DescribeTasksCommand, ECSClient, ListTasksCommand } from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC_BREAKDOWNS, VALUE_MISSING_REASONS } from '../../cdk/metric-names.ts';
import { referencedMetrics } from '../../cdk/referenced-metrics.ts';
import { parseReportConfig } from '../../core/config.ts';
import { KeyspaceKeys } from '../../core/keys.ts';
import { decodeLeaderRecord } from '../../core/leader-record.ts';
import { silentLogger } from '../../core/logger.ts';
import { EmfMetrics, parseEmfLine } from '../../core/metrics.ts';
import { runNotifyCheck } from '../../lambdas/notify-check/notify-check.ts';
import { LocalRedisCluster } from '../../local/cluster.ts';
import { REPO_ROOT, synthesize } from './synth.ts';

// The stack's defaults: namespace KeyspaceLeader, LeaderName "default" (the dashboards' dimension value).
const LEADER_NAME = 'default';
/** A renewal comes every LEASE_RENEW_INTERVAL_MS (1 s by default): this is three of them. */
const RENEWAL_BOUND_MS = 3000;
const NAMESPACE = 'KeyspaceLeader';

let cluster: LocalRedisCluster | undefined;
let worker: ChildProcess | undefined;
const workerLines: Record<string, unknown>[] = [];
const emitted = new Set<string>();
/** As `emitted`, with a breakdown's dimension value replaced by ANY_VALUE. */
const emittedShapes = new Set<string>();
const ANY_VALUE = '*';
const BREAKDOWNS: Readonly<Record<string, string>> = METRIC_BREAKDOWNS;
/** The closed list of each breakdown's dimension values. */
const BREAKDOWN_VALUES: Readonly<Record<string, readonly string[]>> = {
  ValuesMissing: VALUE_MISSING_REASONS,
};

function signature(namespace: string, name: string, dimensions: Record<string, string>): string {
  const dims = Object.entries(dimensions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${namespace}/${name}[${dims}]`;
}

function collectEmf(line: string): void {
  for (const doc of parseEmfLine(line) ?? []) {
    for (const dimensionSet of doc.dimensions) {
      const dims = Object.fromEntries(dimensionSet.map((d) => [d, String(doc.fields[d])]));
      for (const metric of doc.metrics) {
        emitted.add(signature(doc.namespace, metric.name, dims));
        const dimension = BREAKDOWNS[metric.name];
        if (dimension !== undefined && dimension in dims)
          emittedShapes.add(signature(doc.namespace, metric.name, { ...dims, [dimension]: ANY_VALUE }));
      }
    }
  }
}

async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  const build = spawnSync('npx', ['tsx', 'worker/bundle.ts'], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(build.status, build.stderr).toBe(0);
  cluster = await LocalRedisCluster.start({
    primaries: 3,
    replicasPerPrimary: 0,
    // Egx: the stack's parameter group with precise expiry (the default), so the worker tracks the
    // keys below and emits ExpiryLagMs, TrackedKeys and NativeExpiryPrimaries.
    notifyKeyspaceEvents: 'Egx',
  });
}, 120_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  await cluster?.stop();
});

describe('the bundled worker (the image entry point, without Docker)', () => {
  it('starts, leads, processes an expiry and exits 0 on SIGTERM (the Lambda logic runs meanwhile)', async () => {
    const seeds = (cluster as LocalRedisCluster).seeds.map((s) => `${s.host}:${s.port}`).join(',');
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist', 'worker', 'main.mjs')], {
      env: {
        PATH: process.env.PATH,
        REDIS_NODES: seeds,
        LEADER_NAME,
        HEALTH_PORT: '0',
        WORKER_ID: 'bundle-1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker = child;
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        collectEmf(line);
        try {
          workerLines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not JSON: ignored
        }
      }
    });
    const events = () => workerLines.map((l) => l.event);
    await waitFor(() => events().includes('leader.acquired'), 20_000, 'leader.acquired');

    const cl = (await (cluster as LocalRedisCluster).primaries()).map((p) => p.port);
    await Promise.all(
      cl.map(async (port, i) => {
        const c = (cluster as LocalRedisCluster).nodeClient(port);
        try {
          const key = await findKeyFor(c, `bundle:${i}`);
          await c.set(key, '1', 'PX', 50);
        } finally {
          c.disconnect();
        }
      }),
    );
    await waitFor(
      () => workerLines.filter((l) => l.event === 'key.processed').length >= cl.length,
      10_000,
      'key.processed from every primary',
    );
    // A stream: its value is never read, so its call counts ValuesMissing under a Reason.
    const streamKey = 'bundle:stream';
    const streamClient = new Cluster((cluster as LocalRedisCluster).seeds, {
      redisOptions: (cluster as LocalRedisCluster).clientOptions(),
    });
    streamClient.on('error', () => {});
    try {
      await streamClient.xadd(streamKey, '*', 'field', 'value');
      await streamClient.pexpire(streamKey, 300);
    } finally {
      streamClient.disconnect();
    }
    await waitFor(
      () => workerLines.some((l) => l.event === 'key.processed' && l.key === streamKey),
      10_000,
      'key.processed of the stream',
    );
    const streamLine = workerLines.find((l) => l.event === 'key.processed' && l.key === streamKey);
    expect(VALUE_MISSING_REASONS).toContain(streamLine?.valueMissing);

    // LeaseRenewLatencyMs exists once the leader renewed: wait for the record's renewedAt to move on.
    const recordClient = new Cluster((cluster as LocalRedisCluster).seeds, {
      redisOptions: (cluster as LocalRedisCluster).clientOptions(),
    });
    recordClient.on('error', () => {});
    try {
      const leaderKey = new KeyspaceKeys(LEADER_NAME).leader;
      const renewedBy = Date.now() + RENEWAL_BOUND_MS;
      let renewed = false;
      while (!renewed && Date.now() < renewedBy) {
        const text = await recordClient.get(leaderKey);
        const record = text === null ? undefined : decodeLeaderRecord(text);
        renewed = record !== undefined && record.renewedAt !== record.acquiredAt;
        if (!renewed) await new Promise((r) => setTimeout(r, 100));
      }
      expect(renewed).toBe(true);
    } finally {
      recordClient.disconnect();
    }

    const ecs = mockClient(ECSClient);
    const taskArn = 'arn:aws:ecs:us-east-1:123456789012:task/workers/abc';
    ecs.on(ListTasksCommand).resolves({ taskArns: [taskArn] });
    ecs
      .on(DescribeTasksCommand)
      .resolves({ tasks: [{ taskArn, lastStatus: 'RUNNING', healthStatus: 'HEALTHY' }] });
    const config = parseReportConfig({
      REDIS_NODES: seeds,
      LEADER_NAME,
      METRICS_NAMESPACE: NAMESPACE,
      ECS_CLUSTER: 'workers',
      ECS_SERVICE: 'svc',
    });
    // While the worker leads, so the leader metrics (LeaderAgeSeconds, FencingToken) are present.
    await runNotifyCheck({
      config,
      ecs: new ECSClient({ region: 'us-east-1' }),
      logger: silentLogger,
      metrics: new EmfMetrics({ namespace: NAMESPACE, leaderName: LEADER_NAME, write: collectEmf }),
    });
    ecs.restore();

    const exitCode = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const stopAt = Date.now();
    child.kill('SIGTERM');
    expect(await exitCode).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    expect(events()).toContain('worker.stopped');
    expect(events()).toContain('leader.released');
  });
});

/** A key whose slot the connected primary owns (tries suffixes until CLUSTER KEYSLOT lands in its ranges). */
async function findKeyFor(
  client: ReturnType<LocalRedisCluster['nodeClient']>,
  base: string,
): Promise<string> {
  const nodes = String(await client.call('CLUSTER', 'NODES'));
  const mine = nodes.split('\n').find((l) => l.includes('myself')) ?? '';
  const ranges = mine
    .split(' ')
    .slice(8)
    .filter((s) => /^\d/.test(s))
    .map((s) => s.split('-').map(Number) as [number, number?]);
  for (let i = 0; i < 100_000; i++) {
    const key = `${base}:${i}`;
    const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
    if (ranges.some(([a, b]) => slot >= a && slot <= (b ?? a))) return key;
  }
  throw new Error('no key found for this primary');
}

describe('dashboards and alarms', () => {
  it('reference only metrics that the worker and the Lambda emit', () => {
    const { json } = synthesize();
    // AWS-provided namespaces (AWS/ElastiCache, AWS/Lambda, ECS/ContainerInsights) are not ours to emit.
    const custom = referencedMetrics(json).filter((m) => m.namespace === NAMESPACE);
    expect(custom.length).toBeGreaterThanOrEqual(10);
    const covered = (m: (typeof custom)[number]): boolean => {
      if (emitted.has(signature(m.namespace, m.metricName, m.dimensions))) return true;
      const dimension = BREAKDOWNS[m.metricName];
      const value = dimension === undefined ? undefined : m.dimensions[dimension];
      if (dimension === undefined || value === undefined) return false;
      return (
        (BREAKDOWN_VALUES[m.metricName] ?? []).includes(value) &&
        emittedShapes.has(signature(m.namespace, m.metricName, { ...m.dimensions, [dimension]: ANY_VALUE }))
      );
    };
    const missing = custom
      .filter((m) => !covered(m))
      .map((m) => signature(m.namespace, m.metricName, m.dimensions));
    expect(missing, `emitted: ${[...emitted].join(' ')}`).toEqual([]);
    // The value capture metrics are among those checked (the worker runs with CAPTURE_VALUES on).
    expect(custom.map((m) => m.metricName)).toEqual(
      expect.arrayContaining(['ValuesCaptured', 'ValuesMissing', 'ValuesReleased', 'HeldValueBytes']),
    );
  });
});
