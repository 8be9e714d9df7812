import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReportConfig } from '../../../../core/config.ts';
import { keySlot } from '../../../../core/key-slot.ts';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { encodeLeaderRecord, type LeaderRecord } from '../../../../core/leader-record.ts';
import { createLogger } from '../../../../core/logger.ts';
import { EmfMetrics, LAMBDA_METRICS, parseEmfLine } from '../../../../core/metrics.ts';
import { configValueOf } from '../../../../lambdas/notify-check/enforce-by-config.ts';
import { ClusterUnreachableError } from '../../../../lambdas/notify-check/errors.ts';
import { type NotifyCheckDeps, runNotifyCheck } from '../../../../lambdas/notify-check/notify-check.ts';
import type { NotifyCheckReport } from '../../../../lambdas/notify-check/report.ts';
import { LocalRedisCluster } from '../../../../local/cluster.ts';

/**
 * The notify-check run against a real local Redis Cluster (3 primaries, 1 replica each, keyspace
 * notifications off at start). The leader name is random per file run, so every key of this file
 * (leader record, canaries) is its own.
 */

const leaderName = `it-${randomBytes(4).toString('hex')}`;
const keys = new KeyspaceKeys(leaderName);
let cluster: LocalRedisCluster;
let redisNodes: string;

beforeAll(async () => {
  cluster = await LocalRedisCluster.start({ primaries: 3, replicasPerPrimary: 1 });
  redisNodes = cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',');
});

afterAll(async () => {
  await cluster?.stop();
});

async function notifyOf(port: number): Promise<string> {
  const client = cluster.nodeClient(port);
  try {
    return (
      configValueOf(await client.call('CONFIG', 'GET', 'notify-keyspace-events'), 'notify-keyspace-events') ??
      ''
    );
  } finally {
    client.disconnect();
  }
}

async function setNotify(port: number, value: string): Promise<void> {
  const client = cluster.nodeClient(port);
  try {
    await client.call('CONFIG', 'SET', 'notify-keyspace-events', value);
  } finally {
    client.disconnect();
  }
}

interface Run {
  readonly report: NotifyCheckReport;
  readonly emfLines: string[];
  readonly logLines: string[];
}

async function run(overrides: Partial<NotifyCheckDeps> = {}, env: Record<string, string> = {}): Promise<Run> {
  const emfLines: string[] = [];
  const logLines: string[] = [];
  const config = parseReportConfig({ REDIS_NODES: redisNodes, LEADER_NAME: leaderName, ...env });
  const report = await runNotifyCheck({
    config,
    logger: createLogger({ level: 'debug', write: (line) => logLines.push(line) }),
    metrics: new EmfMetrics({
      namespace: config.metricsNamespace,
      leaderName,
      write: (line) => emfLines.push(line),
    }),
    ...overrides,
  });
  return { report, emfLines, logLines };
}

/** The values of the run's EMF documents, after checking them against the names of core/metrics.ts. */
function emf(lines: readonly string[]): Record<string, number> {
  const values: Record<string, number> = {};
  for (const line of lines) {
    for (const doc of parseEmfLine(line) ?? []) {
      expect(doc.namespace).toBe('KeyspaceLeader');
      expect(doc.dimensions).toEqual([['LeaderName']]);
      expect(doc.fields.LeaderName).toBe(leaderName);
      for (const metric of doc.metrics) {
        expect(LAMBDA_METRICS).toContain(metric.name);
        values[metric.name] = doc.fields[metric.name] as number;
      }
    }
  }
  return values;
}

async function allPorts(): Promise<{ primaries: number[]; replicas: number[] }> {
  const primaries = (await cluster.primaries()).map((p) => p.port);
  const replicas = cluster.nodes.filter((n) => !primaries.includes(n.port)).map((n) => n.port);
  return { primaries, replicas };
}

describe('notify-check on a real cluster', () => {
  it('notifications off everywhere: one run enables Egx on every node and verifies every primary and its expire events', async () => {
    const { primaries, replicas } = await allPorts();
    for (const port of [...primaries, ...replicas]) expect(await notifyOf(port)).toBe('');

    const { report, emfLines } = await run();

    // Redis 7.0 reads `Egx` back as `gxE`: what the merge wrote, so the read-back matches.
    for (const port of [...primaries, ...replicas]) expect(await notifyOf(port)).toBe('gxE');
    expect(report.nodes.every((n) => n.after === 'gxE' && n.configured)).toBe(true);
    expect(report.canaries.map((c) => c.expireEventsFlow)).toEqual([true, true, true]);
    expect(report.nodes).toHaveLength(6);
    expect(report.nodes.filter((n) => n.role === 'replica')).toHaveLength(3);
    expect(report.canaries).toHaveLength(3);
    expect(report.canaries.every((c) => c.verified)).toBe(true);
    expect(new Set(report.canaries.map((c) => c.node))).toEqual(
      new Set(primaries.map((p) => `127.0.0.1:${p}`)),
    );
    expect(emf(emfLines)).toMatchObject({
      PrimariesTotal: 3,
      PrimariesVerified: 3,
      NodesConfigured: 6,
      NodesDrifted: 6,
    });
    expect(report.durationMs).toBeLessThan(15_000);
  });

  it('keeps flags someone else set (Kg becomes K, g, E and x)', async () => {
    await cluster.configSetAll('notify-keyspace-events', 'Kg');
    const { report } = await run();
    for (const node of cluster.nodes) {
      const value = await notifyOf(node.port);
      for (const flag of ['K', 'g', 'E', 'x']) expect(value).toContain(flag);
    }
    expect(report.nodes.map((n) => `${n.status} ${n.before}`)).toEqual(Array(6).fill('repaired gK'));
    expect(report.canaries.map((c) => c.verified)).toEqual([true, true, true]);
  });

  it('detects a node turned off again and repairs it on the next run (NodesDrifted 1)', async () => {
    await run();
    const { replicas } = await allPorts();
    const victim = replicas[0] as number;
    await setNotify(victim, '');

    const { report, emfLines } = await run();

    expect(emf(emfLines)).toMatchObject({ NodesDrifted: 1, NodesConfigured: 6 });
    expect(report.nodes.filter((n) => n.drifted).map((n) => n.address)).toEqual([`127.0.0.1:${victim}`]);
    expect(await notifyOf(victim)).toBe('gxE');
    const again = await run();
    expect(emf(again.emfLines).NodesDrifted).toBe(0);
  });

  it('PRECISE_EXPIRY=false enforces Ex only and does not check expire events; with it on, Ex is drifted and gets g', async () => {
    await cluster.configSetAll('notify-keyspace-events', '');
    const { report } = await run({}, { PRECISE_EXPIRY: 'false' });
    for (const node of cluster.nodes) expect(await notifyOf(node.port)).toBe('xE');
    expect(report.canaries.map((c) => [c.verified, c.expireEventsFlow])).toEqual(Array(3).fill([true, null]));
    const precise = await run();
    expect(precise.report.nodes.map((n) => `${n.before} -> ${n.after}`)).toEqual(Array(6).fill('xE -> gxE'));
    expect(precise.report.canaries.map((c) => c.expireEventsFlow)).toEqual([true, true, true]);
  });

  it('a primary that publishes expired but no expire events is verified, reported without them, and a problem', async () => {
    const { primaries } = await allPorts();
    const withoutG = primaries[2] as number;
    const { report } = await run({
      hooks: {
        afterEnforcement: async () => {
          await setNotify(withoutG, 'Ex');
        },
      },
    });
    const canary = report.canaries.find((c) => c.node === `127.0.0.1:${withoutG}`);
    expect(canary).toMatchObject({ verified: true, expireEventsFlow: false });
    expect(report.canaries.filter((c) => c !== canary).map((c) => c.expireEventsFlow)).toEqual([true, true]);
    expect(report.problems.filter((p) => p.includes('no expire events'))).toHaveLength(1);
  });

  it('reports a primary that cannot publish as unverified without failing the run', async () => {
    const { primaries } = await allPorts();
    const silenced = primaries[1] as number;
    const { report, emfLines } = await run(
      {
        hooks: {
          afterEnforcement: async () => {
            await setNotify(silenced, '');
          },
        },
      },
      { CANARY_TIMEOUT_MS: '1000' },
    );
    const unverified = report.canaries.filter((c) => !c.verified);
    expect(unverified.map((c) => c.node)).toEqual([`127.0.0.1:${silenced}`]);
    expect(unverified[0]?.error).toMatch(/no expired event/);
    expect(emf(emfLines)).toMatchObject({ PrimariesTotal: 3, PrimariesVerified: 2 });
    expect(report.ok).toBe(false);
    // The next run repairs it and verifies it again.
    const next = await run();
    expect(next.report.canaries.map((c) => c.verified)).toEqual([true, true, true]);
  });

  it('a paused (unresponsive) node is reported unreachable within the bounds, the rest is checked', async () => {
    const { replicas } = await allPorts();
    const paused = replicas[1] as number;
    cluster.pauseNode(paused);
    try {
      const startedAt = performance.now();
      const { report, emfLines } = await run();
      expect(performance.now() - startedAt).toBeLessThan(15_000);
      expect(report.nodes.find((n) => n.address === `127.0.0.1:${paused}`)).toMatchObject({
        status: 'unreachable',
        configured: false,
      });
      expect(emf(emfLines)).toMatchObject({ NodesConfigured: 5, PrimariesVerified: 3 });
    } finally {
      cluster.resumeNode(paused);
    }
  });

  it('after a failover the promoted replica already has the flags and is verified', async () => {
    await run();
    const { primaries } = await allPorts();
    const promoted = await cluster.failover(primaries[0] as number);
    const { report, emfLines } = await run();
    expect(report.canaries.map((c) => c.node)).toContain(`127.0.0.1:${promoted}`);
    expect(report.canaries.every((c) => c.verified)).toBe(true);
    expect(emf(emfLines)).toMatchObject({ NodesDrifted: 0, PrimariesVerified: 3 });
  });

  it('reports the record of a running worker, and a lapsed one as "no leader since"', async () => {
    const slot = keySlot(keys.leader);
    const owner = (await cluster.primaries()).find((p) => p.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!owner) throw new Error('no primary owns the leader key');
    const write = async (record: LeaderRecord) => {
      const client = cluster.nodeClient(owner.port);
      try {
        await client.set(keys.leader, encodeLeaderRecord(record), 'PX', 60_000);
      } finally {
        client.disconnect();
      }
    };
    const now = Date.now();
    await write({
      workerId: 'worker-7',
      taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/kl/abc',
      fencingToken: 12,
      acquiredAt: new Date(now - 30_000).toISOString(),
      renewedAt: new Date(now).toISOString(),
      leaseTtlMs: 30_000,
      releasedAt: null,
    });
    const leading = await run();
    expect(leading.report.leader).toMatchObject({
      state: 'leading',
      workerId: 'worker-7',
      taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/kl/abc',
      fencingToken: 12,
    });
    expect(leading.report.ecs.checked).toBe(false);
    const leadingMetrics = emf(leading.emfLines);
    expect(leadingMetrics).toMatchObject({ LeaderPresent: 1, FencingToken: 12 });
    expect(leadingMetrics.LeaderAgeSeconds).toBeGreaterThanOrEqual(29);

    const renewedAt = new Date(now - 10_000).toISOString();
    await write({
      workerId: 'worker-7',
      taskArn: null,
      fencingToken: 12,
      acquiredAt: new Date(now - 60_000).toISOString(),
      renewedAt,
      leaseTtlMs: 3000,
      releasedAt: null,
    });
    const lapsed = await run();
    const since = new Date(Date.parse(renewedAt) + 3000).toISOString();
    expect(lapsed.report.leader).toMatchObject({ state: 'lapsed', noLeaderSince: since });
    expect(lapsed.report.leader.summary).toContain(`no leader since ${since}, last was worker-7`);
    expect(emf(lapsed.emfLines)).toMatchObject({ LeaderPresent: 0 });
  });

  it('`npm run report -- --json` prints exactly one JSON report on stdout', async () => {
    const result = await npmReport(['--json'], { REDIS_NODES: redisNodes, LEADER_NAME: leaderName });
    expect(result.code).toBe(0);
    // npm itself prints its "> package script" banner first (not with `npm run -s`); nothing else.
    const body = result.stdout.replace(/^(\s*\n|> .*\n)*/, '');
    const report = JSON.parse(body) as NotifyCheckReport;
    expect(report.reportVersion).toBe(1);
    expect(report.leaderName).toBe(leaderName);
    expect(report.nodes).toHaveLength(6);
    expect(report.metrics.PrimariesVerified).toBe(3);
    // Logs and the EMF document went to stderr as JSON lines.
    const stderrJson = result.stderr.split('\n').filter((l) => l.startsWith('{'));
    expect(stderrJson.some((l) => JSON.parse(l).event === 'report.completed')).toBe(true);
    expect(stderrJson.some((l) => parseEmfLine(l) !== undefined)).toBe(true);
  });

  it('`npm run report` with invalid configuration exits 78 before connecting', async () => {
    const result = await npmReport([], { REDIS_NODES: redisNodes, NOTIFY_MODE: 'sometimes' });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('NOTIFY_MODE must be one of auto, config, parameter-group');
  });
});

describe('notify-check without a cluster', () => {
  it('throws ClusterUnreachableError when no seed answers', async () => {
    const port = await closedPort();
    const error = await runNotifyCheck({
      config: parseReportConfig({ REDIS_NODES: `127.0.0.1:${port}` }),
      logger: createLogger({ write: () => {} }),
      metrics: new EmfMetrics({ namespace: 'KeyspaceLeader', leaderName: 'default', write: () => {} }),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClusterUnreachableError);
  });
});

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function npmReport(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'report', '--', ...args], {
      cwd: new URL('../../../../', import.meta.url).pathname,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
