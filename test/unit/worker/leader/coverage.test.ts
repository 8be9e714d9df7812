import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { REPLAY_DEFAULTS } from '../../../../core/defaults.ts';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { silentLogger } from '../../../../core/logger.ts';
import { CoverageRegistry, type SuspensionChange } from '../../../../worker/leader/coverage-registry.ts';
import { LeaderElector } from '../../../../worker/leader/leader-elector.ts';
import { fakeCoverageCluster } from './fake-coverage-cluster.ts';
import { electorConfig, FakeWorld, T0, testClock } from './fakes.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** An in-memory hash behind the calls the registry makes. */
const fakeCluster = fakeCoverageCluster;

function registry(
  hash: Map<string, string>,
  workerId: string,
  covered: { value: boolean },
  extra: { replayWindowMs?: number } = {},
) {
  return new CoverageRegistry({
    cluster: fakeCluster(hash),
    keys: new KeyspaceKeys('t'),
    workerId,
    clock: testClock,
    logger: silentLogger,
    isCovered: () => covered.value,
    replayWindowMs: extra.replayWindowMs ?? REPLAY_DEFAULTS.replayWindowMs,
  });
}

describe('CoverageRegistry', () => {
  it('an uncovered worker may lead only while no covered peer exists', async () => {
    const hash = new Map<string, string>();
    const a = { value: false };
    const b = { value: false };
    const ra = registry(hash, 'a', a);
    const rb = registry(hash, 'b', b);
    ra.start();
    rb.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(ra.canLead()).toBe(true); // nobody covered: an incomplete leader beats none
    b.value = true;
    await vi.advanceTimersByTimeAsync(1000); // b publishes, then a reads it on its next tick
    expect(ra.canLead()).toBe(false);
    expect(rb.canLead()).toBe(true);
    await rb.stop(); // b leaves: its field goes, a may lead again once it reads that
    await vi.advanceTimersByTimeAsync(1000);
    expect(ra.canLead()).toBe(true);
    await ra.stop();
  });

  it('a leader lacking coverage steps down only after the grace, and only for a covered peer', async () => {
    const hash = new Map<string, string>();
    const leader = { value: true };
    const peer = { value: false };
    const rl = registry(hash, 'leader', leader);
    const rp = registry(hash, 'peer', peer);
    rl.start();
    rp.start();
    await vi.advanceTimersByTimeAsync(0);
    leader.value = false;
    expect(rl.shouldStepDown()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2500);
    expect(rl.shouldStepDown()).toBeUndefined(); // no covered peer: keep leading
    peer.value = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(rl.shouldStepDown()).toBe('coverage-lost');
    rl.noteTopologyChange(); // a new primary appeared: the grace starts again
    expect(rl.shouldStepDown()).toBeUndefined();
    leader.value = true;
    expect(rl.shouldStepDown()).toBeUndefined();
    await rl.stop();
    await rp.stop();
  });

  it('a gap in the leader hands over to a peer that stayed covered through it, not to one that had it too', async () => {
    const hash = new Map<string, string>();
    const leader = { value: true };
    const peer = { value: true };
    const rl = registry(hash, 'leader', leader);
    const rp = registry(hash, 'peer', peer);
    rl.start();
    rp.start();
    await vi.advanceTimersByTimeAsync(1000);

    // The leader's subscription drops and comes back within 300 ms: covered again, but it has a gap.
    rl.noteGap('n1');
    await vi.advanceTimersByTimeAsync(300);
    expect(rl.shouldStepDown()).toBeUndefined(); // the peer has not reported since the gap yet
    await vi.advanceTimersByTimeAsync(800); // the peer reported after the gap, and the leader read it
    expect(rl.shouldStepDown()).toBe('coverage-lost');
    expect(rl.shouldStepDown()).toBeUndefined(); // decided once

    // A failover drops everybody: the peer's report after the gap shows it was not covered through it.
    rl.noteGap('n1');
    peer.value = false;
    rp.noteGap('n1');
    await vi.advanceTimersByTimeAsync(300);
    peer.value = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(rl.shouldStepDown()).toBeUndefined();
    await rl.stop();
    await rp.stop();
  });
});

describe('CoverageRegistry gap memory', () => {
  it('a gap forgotten after REPLAY_WINDOW_MS ends its suspension: with REPLAY_WINDOW_MS=0 nobody can replay it', async () => {
    const hash = new Map<string, string>();
    // REPLAY_WINDOW_MS=0: no window holds the gap's events, so a suspended primary must go on.
    const rl = registry(hash, 'leader', { value: true }, { replayWindowMs: 0 });
    const rp = registry(hash, 'peer', { value: true });
    const resumed = () => changes.filter((c) => !c.suspended).length;
    const changes: SuspensionChange[] = [];
    rl.onSuspensionChange((change) => changes.push(change));
    rl.start();
    rp.start();
    await vi.advanceTimersByTimeAsync(1000);
    rl.noteGap('n1');
    await vi.advanceTimersByTimeAsync(1100); // the peer reported after the gap: covered through it
    expect(rl.shouldStepDown()).toBeUndefined(); // its window holds nothing: no hand-over for it
    expect(resumed()).toBe(1);
    expect(rl.shouldStepDown()).toBeUndefined();
    expect(resumed()).toBe(1); // once per gap
    await rl.stop();
    await rp.stop();
  });
});

describe('CoverageRegistry warm-up', () => {
  it('a worker covered only recently defers to a peer covered for longer (its window is fuller)', async () => {
    const hash = new Map<string, string>();
    const old = registry(hash, 'old', { value: true });
    old.start();
    await vi.advanceTimersByTimeAsync(5000);
    const fresh = registry(hash, 'fresh', { value: true });
    fresh.start();
    await vi.advanceTimersByTimeAsync(500);
    expect(fresh.canLead()).toBe(false);
    expect(old.canLead()).toBe(true);
    await old.stop(); // the older peer is gone: the fresh one leads
    await vi.advanceTimersByTimeAsync(500);
    expect(fresh.canLead()).toBe(true);
    await fresh.stop();
  });
});

describe('LeaderElector.shouldStepDown', () => {
  it('hands over at the next renewal: lease released and released published', async () => {
    const world = new FakeWorld();
    let reason: 'coverage-lost' | undefined;
    const config = electorConfig(world, 'a', { shouldStepDown: () => reason });
    const elector = new LeaderElector(config);
    elector.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(elector.isLeader).toBe(true);
    reason = 'coverage-lost';
    await vi.advanceTimersByTimeAsync(1000);
    expect(elector.isLeader).toBe(false);
    expect(config.lines.find((l) => l.event === 'leader.lost')).toMatchObject({ reason: 'coverage-lost' });
    await vi.advanceTimersByTimeAsync(300);
    expect(world.published.at(-1)).toMatchObject({ workerId: 'a', fencingToken: 1 });
    await elector.stop({ release: false });
  });
});
