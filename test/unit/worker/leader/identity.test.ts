import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { REPLAY_DEFAULTS } from '../../../../core/defaults.ts';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { EmfMetrics } from '../../../../core/metrics.ts';
import { CoverageRegistry } from '../../../../worker/leader/coverage-registry.ts';
import {
  configFingerprint,
  decodeCoverageReport,
  encodeCoverageReport,
  fingerprintDifferences,
} from '../../../../worker/leader/coverage-report.ts';
import { LeaderElector } from '../../../../worker/leader/leader-elector.ts';
import { fakeCoverageCluster } from './fake-coverage-cluster.ts';
import { capturingLogger, electorConfig, FakeWorld, type LogLine, T0, testClock } from './fakes.ts';

/**
 * Sequence 11: identity mistakes. Two processes with one WORKER_ID share one field of the coverage
 * hash; two configurations under one LEADER_NAME share one lease. The registries run over an in-memory
 * hash on the fake clock.
 */

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** The registry's default publish interval. */
const PUBLISH_INTERVAL_MS = 500;
/** The stated detection bound: three publish intervals after the later of the two starts. */
const DUPLICATE_DETECTION_BOUND_MS = 3 * PUBLISH_INTERVAL_MS;
/** The default deploy-overlap allowance before a configuration mismatch is warned about. */
const DEPLOY_OVERLAP_MS = 150_000;

const fakeCluster = fakeCoverageCluster;

interface Probe {
  readonly registry: CoverageRegistry;
  readonly lines: LogLine[];
  readonly gauges: Map<string, number>;
  covered: boolean;
}

function probe(
  hash: Map<string, string>,
  workerId: string,
  options: { instanceId: string; configFingerprint?: string },
): Probe {
  const { logger, lines } = capturingLogger();
  const metrics = new EmfMetrics({ namespace: 'Test', leaderName: 'test', write: () => {} });
  const gauges = new Map<string, number>();
  const gauge = metrics.gauge.bind(metrics);
  vi.spyOn(metrics, 'gauge').mockImplementation((name, value, unit) => {
    gauges.set(name, value);
    gauge(name, value, unit);
  });
  const state = { covered: true } as Probe;
  const registry = new CoverageRegistry({
    cluster: fakeCluster(hash),
    keys: new KeyspaceKeys('t'),
    workerId,
    instanceId: options.instanceId,
    startedAtWallMs: testClock.wallMs(),
    configFingerprint: options.configFingerprint,
    clock: testClock,
    logger,
    metrics,
    isCovered: () => state.covered,
    replayWindowMs: REPLAY_DEFAULTS.replayWindowMs,
  });
  return Object.assign(state, { registry, lines, gauges });
}

const duplicateLines = (p: Probe) =>
  p.lines.filter((l) => l.event === 'worker.duplicate_id' && l.level === 'error');

describe('sequence 11: a duplicate WORKER_ID', () => {
  it('sequence 11: a newcomer with the WORKER_ID of a running worker refuses to compete and says so once', async () => {
    const hash = new Map<string, string>();
    const incumbent = probe(hash, 'w1', { instanceId: 'aaaa' });
    incumbent.registry.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(incumbent.registry.canLead()).toBe(true);

    const newcomer = probe(hash, 'w1', { instanceId: 'bbbb' });
    newcomer.registry.start();
    await vi.advanceTimersByTimeAsync(0);
    // From its first read on, before it ever competes: the field carries another live instance.
    expect(newcomer.registry.canLead()).toBe(false);
    await vi.advanceTimersByTimeAsync(DUPLICATE_DETECTION_BOUND_MS);
    expect(newcomer.registry.canLead()).toBe(false);
    expect(duplicateLines(newcomer)).toEqual([
      expect.objectContaining({
        level: 'error',
        role: 'newcomer',
        instanceId: 'bbbb',
        otherInstanceId: 'aaaa',
        action: expect.stringContaining('WORKER_ID'),
      }),
    ]);
    expect(newcomer.gauges.get('DuplicateWorkerId')).toBe(1);
    // The incumbent keeps leading, and its report is not overwritten by the newcomer's.
    expect(incumbent.registry.canLead()).toBe(true);
    expect(incumbent.gauges.get('DuplicateWorkerId')).toBe(0);
    expect(hash.get('w1')?.split(':')[2]).toBe('aaaa');

    // Still one line, however long it lasts.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(duplicateLines(newcomer)).toHaveLength(1);
    expect(duplicateLines(incumbent)).toHaveLength(0);

    // The incumbent stops: its field goes, and the newcomer competes again (it is alone now).
    await incumbent.registry.stop();
    await vi.advanceTimersByTimeAsync(2 * PUBLISH_INTERVAL_MS);
    expect(newcomer.registry.canLead()).toBe(true);
    expect(newcomer.gauges.get('DuplicateWorkerId')).toBe(0);
    expect(hash.get('w1')?.split(':')[2]).toBe('bbbb');
    await newcomer.registry.stop();
    expect(hash.has('w1')).toBe(false);
  });

  it('sequence 11: two started within one publish interval: the later stands down within the bound, whoever reads first', async () => {
    for (const delayMs of [0, 1, 250, 499]) {
      const hash = new Map<string, string>();
      const first = probe(hash, 'w1', { instanceId: 'cccc' });
      first.registry.start();
      await vi.advanceTimersByTimeAsync(delayMs);
      // Same start time (delay 0): the tie is broken by the instance id, 'bbbb' < 'cccc'.
      const second = probe(hash, 'w1', { instanceId: delayMs === 0 ? 'bbbb' : 'dddd' });
      second.registry.start();
      await vi.advanceTimersByTimeAsync(DUPLICATE_DETECTION_BOUND_MS);
      const [older, newer] = delayMs === 0 ? [second, first] : [first, second];
      expect(newer.registry.canLead(), `delay ${delayMs}`).toBe(false);
      expect(newer.registry.shouldStepDown(), `delay ${delayMs}`).toBe('duplicate-worker-id');
      expect(duplicateLines(newer), `delay ${delayMs}`).toHaveLength(1);
      expect(older.registry.canLead(), `delay ${delayMs}`).toBe(true);
      expect(duplicateLines(older), `delay ${delayMs}`).toHaveLength(0);
      await first.registry.stop();
      await second.registry.stop();
    }
  });

  it('sequence 11: a crashed predecessor under the same WORKER_ID is no twin: its report never advances', async () => {
    const hash = new Map<string, string>();
    // What a SIGKILLed process leaves: a report published just now, never updated again.
    hash.set('w1', `${T0 - 60_000}:${T0}:aaaa:${T0 - 60_000}:`);
    const restarted = probe(hash, 'w1', { instanceId: 'bbbb' });
    restarted.registry.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(restarted.registry.canLead()).toBe(true);
    expect(duplicateLines(restarted)).toHaveLength(0);
    await restarted.registry.stop();
  });

  it('sequence 11: a report without an instance id (a worker from before this change) still parses', async () => {
    const hash = new Map<string, string>();
    const peer = probe(hash, 'new', { instanceId: 'aaaa' });
    peer.registry.start();
    await vi.advanceTimersByTimeAsync(1000);
    // An old worker covered for 10 s, publishing `<coveredSince>:<publishedAt>` as before.
    const publishOld = () => hash.set('old', `${Date.now() - 10_000}:${Date.now()}`);
    publishOld();
    await vi.advanceTimersByTimeAsync(PUBLISH_INTERVAL_MS);
    publishOld();
    await vi.advanceTimersByTimeAsync(PUBLISH_INTERVAL_MS);
    // It is a peer covered for longer: the new worker (covered 2 s) defers to it.
    expect(peer.registry.canLead()).toBe(false);
    expect(peer.lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    await peer.registry.stop();
  });
});

describe('sequence 11: a released message of a twin', () => {
  it('sequence 11: a worker acts on the release of another instance with its own WORKER_ID', async () => {
    const world = new FakeWorld();
    const timings = {
      leaseTtlMs: 3000,
      leaseRenewIntervalMs: 1000,
      leaseRenewDeadlineMs: 2000,
      leaseRetryMs: 2500,
    };
    const twinA = electorConfig(world, 'w1', { timings, instanceId: 'aaaa' });
    const twinB = electorConfig(world, 'w1', { timings, instanceId: 'bbbb' });
    const leader = new LeaderElector(twinA);
    const follower = new LeaderElector(twinB);
    leader.start();
    await vi.advanceTimersByTimeAsync(0);
    follower.start();
    await vi.advanceTimersByTimeAsync(1700); // the follower's next retry is due at 2500
    await leader.stop({ release: true });
    await vi.advanceTimersByTimeAsync(0);
    // At once, not at its next retry (2500): the release names another instance.
    expect(follower.isLeader).toBe(true);
    expect(world.published.at(-1)).toMatchObject({ workerId: 'w1', instanceId: 'aaaa' });
    await follower.stop({ release: false });
  });

  it('sequence 11: its own release (same instance) is still ignored', async () => {
    const world = new FakeWorld();
    world.owner = 'other';
    world.expiresAtMs = 1_000_000;
    const config = electorConfig(world, 'w1', { instanceId: 'aaaa' });
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(100);
    await config.releasedChannel.publish({
      workerId: 'w1',
      instanceId: 'aaaa',
      fencingToken: 1,
      releasedAt: '',
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(config.lease.count('acquire')).toBe(1);
    await elector.stop({ release: false });
  });
});

describe('sequence 11: KEY_PATTERN or HANDLER differ under one LEADER_NAME', () => {
  const mismatchLines = (p: Probe) => p.lines.filter((l) => l.event === 'config.mismatch');

  it('sequence 11: warned (with the deploy expectation) only once the mismatch outlasted a deploy overlap', async () => {
    const hash = new Map<string, string>();
    const a = probe(hash, 'a', { instanceId: 'aaaa', configFingerprint: '11111111.22222222' });
    const b = probe(hash, 'b', { instanceId: 'bbbb', configFingerprint: '11111111.33333333' });
    a.registry.start();
    b.registry.start();
    await vi.advanceTimersByTimeAsync(DEPLOY_OVERLAP_MS - 5000);
    expect(mismatchLines(a)).toEqual([]);
    expect(a.gauges.get('ConfigMismatch')).toBe(0);
    await vi.advanceTimersByTimeAsync(5000 + 2 * PUBLISH_INTERVAL_MS);
    expect(mismatchLines(a)).toEqual([
      expect.objectContaining({
        level: 'warn',
        differs: ['HANDLER'],
        peers: ['b'],
        expectedOverlapMs: DEPLOY_OVERLAP_MS,
        meaning: expect.stringContaining('deploy'),
      }),
    ]);
    expect(mismatchLines(b)).toHaveLength(1);
    expect(a.gauges.get('ConfigMismatch')).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(mismatchLines(a)).toHaveLength(1);
    // The other configuration is gone (the deploy finished): the gauge returns to 0.
    await b.registry.stop();
    await vi.advanceTimersByTimeAsync(2 * PUBLISH_INTERVAL_MS);
    expect(a.gauges.get('ConfigMismatch')).toBe(0);
    await a.registry.stop();
  });

  it('sequence 11: a deploy overlap shorter than the allowance is not warned about, and the published fingerprint is a hash', async () => {
    const hash = new Map<string, string>();
    const old = probe(hash, 'old', { instanceId: 'aaaa', configFingerprint: 'aaaaaaaa.bbbbbbbb' });
    old.registry.start();
    await vi.advanceTimersByTimeAsync(1000);
    const next = probe(hash, 'next', { instanceId: 'bbbb', configFingerprint: 'cccccccc.bbbbbbbb' });
    next.registry.start();
    await vi.advanceTimersByTimeAsync(DEPLOY_OVERLAP_MS - 10_000);
    await old.registry.stop();
    await vi.advanceTimersByTimeAsync(DEPLOY_OVERLAP_MS);
    expect(mismatchLines(next)).toEqual([]);
    expect(mismatchLines(old)).toEqual([]);
    expect(next.lines.find((l) => l.event === 'config.mismatch_seen')).toMatchObject({
      level: 'info',
      differs: ['KEY_PATTERN'],
    });
    expect(hash.get('next')?.split(':')[4]).toBe('cccccccc.bbbbbbbb');
    await next.registry.stop();
  });
});

describe('sequence 11: the report format', () => {
  it('sequence 11: old and new reports parse both ways; the fingerprint carries hashes only', () => {
    const report = {
      coveredSinceWallMs: 10,
      publishedAtWallMs: 20,
      instanceId: 'a1b2c3',
      startedAtWallMs: 5,
      configFingerprint: configFingerprint('orders:*', { kind: 'module', path: '/secret/token-abc/h.mjs' }),
    };
    const text = encodeCoverageReport(report);
    expect(decodeCoverageReport(text)).toEqual(report);
    // What a worker from before this change reads of it: its first two parts, as before.
    const [since, at] = text.split(':');
    expect([Number(since), Number(at)]).toEqual([10, 20]);
    expect(decodeCoverageReport('10:20')).toEqual({
      coveredSinceWallMs: 10,
      publishedAtWallMs: 20,
      instanceId: undefined,
      startedAtWallMs: undefined,
      configFingerprint: undefined,
    });
    expect(decodeCoverageReport(':20')?.coveredSinceWallMs).toBeUndefined();
    expect(decodeCoverageReport('garbage')).toBeUndefined();
    expect(report.configFingerprint).toMatch(/^[0-9a-f]{8}\.[0-9a-f]{8}$/);
    expect(text).not.toContain('secret');
    expect(configFingerprint('*', { kind: 'log' })).not.toBe(configFingerprint('*', { kind: 'stream' }));
    expect(
      fingerprintDifferences(
        configFingerprint('a*', { kind: 'log' }),
        configFingerprint('b*', { kind: 'log' }),
      ),
    ).toEqual(['KEY_PATTERN']);
  });
});
