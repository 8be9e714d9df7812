import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LEASE_TIMINGS } from '../../../../core/config.ts';
import { LocalRedisCluster } from '../../../../local/cluster.ts';
import { QuorumLease } from '../../../../worker/leader/quorum-lease.ts';
import { samePlacement } from '../../../../worker/leader/quorum-placement.ts';
import { randomLeaderName, sleep, startWorker, type TestWorker, waitFor } from './helpers.ts';

// Sequence 6 of issue 11: never two leaders after a quorum placement change. One cluster of
// 3 primaries without replicas for the file (no failover is involved). Measured figures are printed.

const { leaseTtlMs, leaseRetryMs } = DEFAULT_LEASE_TIMINGS;
/** Placement check interval of the test workers (production: 10 s), to keep the test short. */
const CHECK_INTERVAL_MS = 1000;
/** QuorumLease's default settle period for these timings. */
const SETTLE_MS = CHECK_INTERVAL_MS + 2 * leaseTtlMs;
/** Watched after the reshard: one check, the settle period, the hand-over, and a margin of one TTL. */
const WATCH_AFTER_RESHARD_MS = CHECK_INTERVAL_MS + SETTLE_MS + 2 * leaseTtlMs;
/** Step between two samples of who holds a grant. */
const SAMPLE_MS = 20;
/** Leaderless time allowed at the hand-over: a retry period with jitter plus scheduling noise. */
const HANDOVER_GAP_BOUND_MS = 4 * leaseRetryMs;

interface Window {
  readonly worker: string;
  readonly fromMs: number;
  readonly toMs: number;
}

/** Leadership windows from the callbacks (a stop is reported at or after the grant's real end). */
function windowsOf(worker: TestWorker, endMs: number): Window[] {
  return worker.started.map((s, i) => ({
    worker: worker.workerId,
    fromMs: s.atMs,
    toMs: worker.stopped[i]?.atMs ?? endMs,
  }));
}

describe('quorum placement change on a real cluster (sequence 6)', () => {
  let cluster: LocalRedisCluster;
  const workers: TestWorker[] = [];

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({ primaries: 3, replicasPerPrimary: 0, nodeTimeoutMs: 1000 });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()));
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('sequence 6: a reshard that moves a member onto another member shard never leaves two leaders', async () => {
    const name = randomLeaderName();
    const options = { placementCheckIntervalMs: CHECK_INTERVAL_MS };
    const a = await startWorker(cluster, name, 'a', options);
    workers.push(a);
    expect(await waitFor(() => a.elector.isLeader, 2000)).toBeDefined();
    const b = await startWorker(cluster, name, 'b', options);
    workers.push(b);
    const leaseOf = (w: TestWorker) => w.election.lease as QuorumLease;
    expect(a.election.lease).toBeInstanceOf(QuorumLease);
    const before = leaseOf(a).placement;
    const [m0, m1] = before.members;
    if (!m0 || !m1) throw new Error('no members');

    // Move the slots from member 0's slot to the end of its shard onto member 1's shard.
    const primaries = await cluster.primaries();
    const ownerOf = (slot: number) =>
      primaries.find((p) => p.slots.some(([first, last]) => slot >= first && slot <= last));
    const source = ownerOf(m0.slot);
    const target = ownerOf(m1.slot);
    if (!source || !target) throw new Error('member slots not owned');
    const sourceLast = Math.max(...source.slots.map(([, last]) => last));
    const reshardStartMs = performance.now();
    let reshardMs: number | undefined;
    const resharded = cluster
      .moveSlots(source.port, target.port, sourceLast - m0.slot + 1, { timeoutMs: 20_000 })
      .finally(() => {
        reshardMs = performance.now() - reshardStartMs;
      });
    void resharded.catch(() => {}); // awaited below, after the sampling loop ends
    // Sampled from the start of the reshard until WATCH_AFTER_RESHARD_MS after its end.
    let overlaps = 0;
    while (
      reshardMs === undefined ||
      performance.now() < reshardStartMs + reshardMs + WATCH_AFTER_RESHARD_MS
    ) {
      const nowMs = performance.now();
      if (workers.filter((w) => w.elector.current(nowMs) !== undefined).length > 1) overlaps++;
      await sleep(SAMPLE_MS);
    }
    await resharded;
    const endMs = performance.now();

    // Never two grants at once, sampled ...
    expect(overlaps).toBe(0);
    // ... and from the callbacks: no two leadership windows intersect.
    const windows = [...windowsOf(a, endMs), ...windowsOf(b, endMs)].sort((x, y) => x.fromMs - y.fromMs);
    for (let i = 1; i < windows.length; i++)
      expect(windows[i]?.fromMs).toBeGreaterThanOrEqual(windows[i - 1]?.toMs ?? 0);
    // The stale leader handed over, and somebody leads on a new placement with distinct shards.
    expect([...a.stopped, ...b.stopped].map((s) => s.reason)).toContain('placement-changed');
    const leader = workers.find((w) => w.elector.isLeader);
    if (!leader) throw new Error('nobody leads after the placement change');
    const now = leaseOf(leader).placement;
    expect(samePlacement(now, before)).toBe(false);
    const fresh = await cluster.primaries();
    const owners = now.members.map(
      (m) => fresh.find((p) => p.slots.some(([first, last]) => m.slot >= first && m.slot <= last))?.port,
    );
    expect(new Set(owners).size).toBe(3);
    const stepDown = [...a.stopped, ...b.stopped].find((s) => s.reason === 'placement-changed');
    const next = [...a.started, ...b.started].find((s) => s.atMs > (stepDown?.atMs ?? 0));
    const gapMs = (next?.atMs ?? Number.POSITIVE_INFINITY) - (stepDown?.atMs ?? 0);
    console.log(
      `sequence 6: reshard ${Math.round(reshardMs ?? 0)} ms; hand-over gap ${Math.round(gapMs)} ms; windows ${JSON.stringify(windows.map((w) => [w.worker, Math.round(w.fromMs), Math.round(w.toMs)]))}`,
    );
    expect(gapMs).toBeLessThanOrEqual(HANDOVER_GAP_BOUND_MS);
  }, 60_000);
});
