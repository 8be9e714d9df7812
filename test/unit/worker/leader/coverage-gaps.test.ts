import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import { silentLogger } from '../../../../core/logger.ts';
import { CoverageRegistry, type SuspensionChange } from '../../../../worker/leader/coverage-registry.ts';
import { fakeCoverageCluster } from './fake-coverage-cluster.ts';
import { T0, testClock } from './fakes.ts';

/**
 * The coverage registry as the one owner of this worker's gaps (issue 12): one record per primary,
 * remembered for REPLAY_WINDOW_MS, deciding suspensions, canLead and shouldStepDown.
 */

/** A REPLAY_WINDOW_MS shorter than the default, so the memory is told apart from any other bound. */
const WINDOW_MS = 7000;
/** Before the memory ends / after it: well inside and outside the publish period of 500 ms. */
const MARGIN_MS = 100;
/** Long enough for both registries to publish and read each other's reports (publish every 500 ms). */
const REPORTS_MS = 1000;

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

function registry(
  hash: Map<string, string>,
  workerId: string,
  covered: { value: boolean },
  windowMs = WINDOW_MS,
) {
  const changes: SuspensionChange[] = [];
  const r = new CoverageRegistry({
    cluster: fakeCoverageCluster(hash),
    keys: new KeyspaceKeys('t'),
    workerId,
    clock: testClock,
    logger: silentLogger,
    isCovered: () => covered.value,
    replayWindowMs: windowMs,
  });
  r.onSuspensionChange((change) => changes.push(change));
  return Object.assign(r, { changes });
}

/** Two covered workers, started together, that have read each other's reports. */
async function twoCovered(windowMs = WINDOW_MS) {
  const hash = new Map<string, string>();
  const me = registry(hash, 'me', { value: true }, windowMs);
  const peer = registry(hash, 'peer', { value: true }, windowMs);
  me.start();
  peer.start();
  await vi.advanceTimersByTimeAsync(REPORTS_MS);
  return { me, peer };
}

describe('CoverageRegistry gaps', () => {
  it('a gap a covered peer stayed covered through is remembered per primary for REPLAY_WINDOW_MS, then forgotten', async () => {
    const { me, peer } = await twoCovered();
    expect(me.canLead()).toBe(true);
    const gapAt = Date.now();
    me.noteGap('n1');
    expect(me.suspended()).toEqual(['n1']);
    await vi.advanceTimersByTimeAsync(REPORTS_MS); // the peer reported after the gap: it holds n1's events
    expect(me.canLead()).toBe(false);
    expect(me.isSuspended('n1')).toBe(true);

    await vi.advanceTimersByTimeAsync(gapAt + WINDOW_MS - MARGIN_MS - Date.now());
    expect(me.canLead()).toBe(false); // still replayable from the peer's window
    expect(me.isSuspended('n1')).toBe(true);
    await vi.advanceTimersByTimeAsync(2 * MARGIN_MS);
    expect(me.canLead()).toBe(true); // the gap's events left every window
    expect(me.suspended()).toEqual([]);
    expect(me.changes).toEqual([
      { nodeId: 'n1', suspended: true },
      { nodeId: 'n1', suspended: false },
    ]);
    await me.stop();
    await peer.stop();
  });

  it('the memory is the REPLAY_WINDOW_MS it is given, not a constant', async () => {
    // Longer than the default 15 s: a copied constant would forget the gap too early.
    const longWindowMs = 20_000;
    const { me, peer } = await twoCovered(longWindowMs);
    const gapAt = Date.now();
    me.noteGap('n1');
    await vi.advanceTimersByTimeAsync(gapAt + longWindowMs - MARGIN_MS - Date.now());
    expect(me.canLead()).toBe(false);
    await vi.advanceTimersByTimeAsync(2 * MARGIN_MS);
    expect(me.canLead()).toBe(true);
    await me.stop();
    await peer.stop();
  });

  it('two gaps on two primaries are two records, each with its own time', async () => {
    const { me, peer } = await twoCovered();
    const firstAt = Date.now();
    me.noteGap('n1');
    await vi.advanceTimersByTimeAsync(2000);
    const secondAt = Date.now();
    me.noteGap('n2');
    await vi.advanceTimersByTimeAsync(REPORTS_MS);
    expect(me.suspended()).toEqual(['n1', 'n2']);
    // One hand-over for both, decided once.
    expect(me.shouldStepDown()).toBe('coverage-lost');
    expect(me.shouldStepDown()).toBeUndefined();

    await vi.advanceTimersByTimeAsync(firstAt + WINDOW_MS + MARGIN_MS - Date.now());
    expect(me.suspended()).toEqual(['n2']); // n1's gap is forgotten, n2's is not (a single gap time would lose one)
    expect(me.canLead()).toBe(false);
    await vi.advanceTimersByTimeAsync(secondAt + WINDOW_MS + MARGIN_MS - Date.now());
    expect(me.suspended()).toEqual([]);
    expect(me.canLead()).toBe(true);
    expect(me.changes).toEqual([
      { nodeId: 'n1', suspended: true },
      { nodeId: 'n2', suspended: true },
      { nodeId: 'n1', suspended: false },
      { nodeId: 'n2', suspended: false },
    ]);
    await me.stop();
    await peer.stop();
  });

  it('without a covered peer a leader keeps its gap: no hand-over, the primary resumes', async () => {
    const hash = new Map<string, string>();
    const peerCovered = { value: true };
    const me = registry(hash, 'me', { value: true });
    const peer = registry(hash, 'peer', peerCovered);
    me.start();
    peer.start();
    await vi.advanceTimersByTimeAsync(REPORTS_MS);
    // A failover drops everybody: the peer has the gap too.
    me.noteGap('n1');
    peerCovered.value = false;
    peer.noteGap('n1');
    expect(me.isSuspended('n1')).toBe(true); // until the peer's report after the gap says so
    expect(me.shouldStepDown()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(300);
    peerCovered.value = true;
    await vi.advanceTimersByTimeAsync(REPORTS_MS);
    expect(me.shouldStepDown()).toBeUndefined();
    expect(me.isSuspended('n1')).toBe(false);
    expect(me.changes).toEqual([
      { nodeId: 'n1', suspended: true },
      { nodeId: 'n1', suspended: false },
    ]);
    expect(me.canLead()).toBe(true);
    await me.stop();
    await peer.stop();
  });

  it('a worker alone keeps a gap at once: nobody can hold what it missed', async () => {
    const me = registry(new Map(), 'me', { value: true });
    me.start();
    await vi.advanceTimersByTimeAsync(REPORTS_MS);
    me.noteGap('n1');
    expect(me.changes).toEqual([
      { nodeId: 'n1', suspended: true },
      { nodeId: 'n1', suspended: false },
    ]);
    expect(me.shouldStepDown()).toBeUndefined();
    expect(me.canLead()).toBe(true);
    await me.stop();
  });

  it('a follower defers to a peer covered through its gap only while that peer is there', async () => {
    const { me, peer } = await twoCovered();
    me.noteGap('n1');
    await vi.advanceTimersByTimeAsync(REPORTS_MS);
    expect(me.canLead()).toBe(false);
    await peer.stop(); // its field goes: nobody holds what this worker missed any more
    await vi.advanceTimersByTimeAsync(REPORTS_MS);
    expect(me.canLead()).toBe(true);
    expect(me.isSuspended('n1')).toBe(false); // kept: a leader goes on with its own window
    expect(me.shouldStepDown()).toBeUndefined();
    await me.stop();
  });

  it('every gap is heard, also while the primary is suspended already; the record keeps the first', async () => {
    const { me, peer } = await twoCovered();
    const firstAt = Date.now();
    me.noteGap('n1');
    await vi.advanceTimersByTimeAsync(2000);
    me.noteGap('n1'); // dropped again before the first was settled by a hand-over
    expect(me.changes).toEqual([
      { nodeId: 'n1', suspended: true },
      { nodeId: 'n1', suspended: true },
    ]);
    await vi.advanceTimersByTimeAsync(firstAt + WINDOW_MS + MARGIN_MS - Date.now());
    expect(me.isSuspended('n1')).toBe(false); // forgotten from the first gap on
    await me.stop();
    await peer.stop();
  });

  it('with REPLAY_WINDOW_MS=0 a gap is forgotten as soon as it is noted (no window can replay it)', async () => {
    const { me, peer } = await twoCovered(0);
    me.noteGap('n1');
    expect(me.changes).toEqual([
      { nodeId: 'n1', suspended: true },
      { nodeId: 'n1', suspended: false },
    ]);
    await vi.advanceTimersByTimeAsync(REPORTS_MS);
    expect(me.shouldStepDown()).toBeUndefined();
    expect(me.canLead()).toBe(true);
    await me.stop();
    await peer.stop();
  });
});
