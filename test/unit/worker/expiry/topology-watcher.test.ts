import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ClusterNode, Topology } from '../../../../core/topology.ts';
import { TopologyWatcher } from '../../../../worker/expiry/topology-watcher.ts';
import { captureLogger, fakeClock } from '../support/fakes.ts';

const primary = (id: string, port: number, health = 'online'): ClusterNode => ({
  id,
  host: '127.0.0.1',
  port,
  role: 'primary',
  health,
});
const topologyOf = (...primaries: ClusterNode[]): Topology => ({
  shards: primaries.map((p, i) => ({ slots: [[i * 100, i * 100 + 99]], primary: p, replicas: [] })),
});

function setup(options: { intervalMs?: number; removalGraceSyncs?: number } = {}) {
  let answer: () => Promise<Topology> = () =>
    Promise.resolve(topologyOf(primary('a', 7000), primary('b', 7001)));
  const discover = vi.fn(() => answer());
  const published: string[][] = [];
  const log = captureLogger();
  const watcher = new TopologyWatcher({
    discover,
    onPrimaries: (primaries) => published.push(primaries.map((p) => `${p.id}:${p.port}`)),
    clock: fakeClock,
    logger: log.logger,
    intervalMs: options.intervalMs ?? 1000,
    discoverTimeoutMs: 500,
    minSpacingMs: 100,
    removalGraceSyncs: options.removalGraceSyncs ?? 1,
  });
  return { watcher, discover, published, setAnswer: (f: () => Promise<Topology>) => (answer = f), ...log };
}

describe('TopologyWatcher', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('discovers at once on start, then once per interval, and logs topology.changed only on change', async () => {
    const { watcher, discover, published, events } = setup();
    watcher.start();
    watcher.start(); // idempotent
    await vi.advanceTimersByTimeAsync(0);
    expect(discover).toHaveBeenCalledTimes(1);
    expect(published).toEqual([['a:7000', 'b:7001']]);
    await vi.advanceTimersByTimeAsync(3000);
    expect(discover).toHaveBeenCalledTimes(4);
    expect(events('topology.changed')).toHaveLength(1);
    expect(events('topology.changed')[0]).toMatchObject({ primaries: ['127.0.0.1:7000', '127.0.0.1:7001'] });
    await watcher.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(discover).toHaveBeenCalledTimes(4);
  });

  it('adds a new primary at the next discovery and drops a departed one after the grace discovery', async () => {
    const { watcher, published, setAnswer, events } = setup();
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    setAnswer(() => Promise.resolve(topologyOf(primary('b', 7001), primary('r', 7003))));
    await vi.advanceTimersByTimeAsync(1000);
    // r added at once; a kept for one more discovery (a stale view must not drop a live primary).
    expect(published.at(-1)).toEqual(['b:7001', 'r:7003', 'a:7000']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(published.at(-1)).toEqual(['b:7001', 'r:7003']);
    expect(events('topology.changed').map((r) => [r.added, r.removed])).toEqual([
      [['127.0.0.1:7000', '127.0.0.1:7001'], []],
      [['127.0.0.1:7003'], []],
      [[], ['127.0.0.1:7000']],
    ]);
    await watcher.stop();
  });

  it('a primary that reappears within its grace is kept without a change', async () => {
    const { watcher, published, setAnswer, events } = setup();
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    setAnswer(() => Promise.resolve(topologyOf(primary('b', 7001))));
    await vi.advanceTimersByTimeAsync(1000);
    setAnswer(() => Promise.resolve(topologyOf(primary('a', 7000), primary('b', 7001))));
    await vi.advanceTimersByTimeAsync(1000);
    setAnswer(() => Promise.resolve(topologyOf(primary('b', 7001))));
    await vi.advanceTimersByTimeAsync(1000);
    expect(published.at(-1)?.sort()).toEqual(['a:7000', 'b:7001']);
    expect(events('topology.changed')).toHaveLength(1);
    await watcher.stop();
  });

  it('ignores failed primaries (health failed)', async () => {
    const { watcher, published, setAnswer } = setup({ removalGraceSyncs: 0 });
    setAnswer(() => Promise.resolve(topologyOf(primary('a', 7000, 'failed'), primary('b', 7001))));
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(published).toEqual([['b:7001']]);
    await watcher.stop();
  });

  it('keeps the last known primaries when discovery fails, times out or lists none, logging each distinct failure once', async () => {
    const { watcher, published, setAnswer, events, discover } = setup();
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    setAnswer(() => Promise.reject(new Error('CLUSTERDOWN')));
    await vi.advanceTimersByTimeAsync(3000);
    setAnswer(() => new Promise<Topology>(() => {}));
    await vi.advanceTimersByTimeAsync(1500);
    setAnswer(() => Promise.resolve({ shards: [] }));
    await vi.advanceTimersByTimeAsync(1500);
    expect(published).toEqual([['a:7000', 'b:7001']]);
    expect(watcher.primaries.map((p) => p.id)).toEqual(['a', 'b']);
    expect(
      events('topology.failed').map((r) => (r.error as { message?: string }).message ?? r.error),
    ).toEqual([
      'CLUSTERDOWN',
      'topology discovery did not complete within 500 ms',
      'the topology lists no live primary owning slots',
    ]);
    expect(discover.mock.calls.length).toBeGreaterThan(4);
    await watcher.stop();
  });

  it('requestSync runs a discovery soon, coalesces bursts and respects the minimum spacing', async () => {
    const { watcher, discover } = setup({ intervalMs: 10_000 });
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(discover).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(500);
    for (let i = 0; i < 20; i++) watcher.requestSync();
    await vi.advanceTimersByTimeAsync(0);
    expect(discover).toHaveBeenCalledTimes(2);
    // Within the spacing: waits the remainder, once.
    watcher.requestSync();
    watcher.requestSync();
    await vi.advanceTimersByTimeAsync(99);
    expect(discover).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(discover).toHaveBeenCalledTimes(3);
    await watcher.stop();
  });

  it('a request during a discovery runs one more right after it', async () => {
    const { watcher, discover, setAnswer } = setup({ intervalMs: 10_000 });
    let release: () => void = () => {};
    setAnswer(
      () =>
        new Promise<Topology>((resolve) => {
          release = () => resolve(topologyOf(primary('a', 7000)));
        }),
    );
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    watcher.requestSync();
    watcher.requestSync();
    release();
    await vi.advanceTimersByTimeAsync(100);
    expect(discover).toHaveBeenCalledTimes(2);
    release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(discover).toHaveBeenCalledTimes(2);
    await watcher.stop();
  });

  it('sequence 1: passes the replicas of the shards on, and a node that changed role is not retained in its old one', async () => {
    const log = captureLogger();
    const a = primary('a', 7000);
    const ra: ClusterNode = { ...primary('ra', 7100), role: 'replica' };
    let answer: Topology = { shards: [{ slots: [[0, 16383]], primary: a, replicas: [ra] }] };
    const seen: [string[], string[]][] = [];
    const watcher = new TopologyWatcher({
      discover: () => Promise.resolve(answer),
      onPrimaries: (primaries, replicas) =>
        seen.push([primaries.map((p) => p.id), replicas.map((r) => r.id)]),
      clock: fakeClock,
      logger: log.logger,
      intervalMs: 1000,
    });
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([[['a'], ['ra']]]);
    answer = {
      shards: [
        {
          slots: [[0, 16383]],
          primary: { ...ra, role: 'primary' },
          replicas: [{ ...a, role: 'replica' }],
        },
      ],
    };
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen.at(-1)).toEqual([['ra'], ['a']]);
    expect(log.events('topology.changed').at(-1)).toMatchObject({
      primaries: ['127.0.0.1:7100'],
      replicas: ['127.0.0.1:7000'],
    });
    // A failed replica is not subscribed; a vanished one is kept for the grace discovery.
    answer = { shards: [{ slots: [[0, 16383]], primary: { ...ra, role: 'primary' }, replicas: [] }] };
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen.at(-1)).toEqual([['ra'], ['a']]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen.at(-1)).toEqual([['ra'], []]);
    await watcher.stop();
  });
});
