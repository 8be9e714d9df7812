import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { keySlot } from '../../../../core/key-slot.ts';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import type { Topology } from '../../../../core/topology.ts';
import { ExpireEventProbe } from '../../../../worker/expiry/expire-event-probe.ts';
import { captureLogger, fakeClock } from '../support/fakes.ts';

const T0 = 1_700_000_000_000;
const SILENCE_MS = 15_000;
const TIMEOUT_MS = 5000;

const topology: Topology = {
  shards: [
    {
      slots: [[0, 8191]],
      primary: { id: 'a', host: '10.0.0.1', port: 6379, role: 'primary', health: 'online' },
      replicas: [],
    },
    {
      slots: [[8192, 16383]],
      primary: { id: 'b', host: '10.0.0.2', port: 6379, role: 'primary', health: 'online' },
      replicas: [],
    },
  ],
};

function setup(write: (key: string, ttlMs: number) => Promise<unknown> = async () => 'OK') {
  const log = captureLogger();
  const writes: { key: string; ttlMs: number }[] = [];
  const changes: [string, boolean][] = [];
  const probe = new ExpireEventProbe({
    keys: new KeyspaceKeys('default'),
    instanceId: 'inst-1',
    write: (key, ttlMs) => {
      writes.push({ key, ttlMs });
      return write(key, ttlMs);
    },
    clock: fakeClock,
    logger: log.logger,
    onChange: (nodeId, flowing) => changes.push([nodeId, flowing]),
    silenceMs: SILENCE_MS,
    probeTimeoutMs: TIMEOUT_MS,
  });
  probe.sync(topology);
  probe.start();
  return { probe, writes, changes, ...log };
}

describe('ExpireEventProbe', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('probes nothing while expire events arrive from every primary', async () => {
    const { probe, writes } = setup();
    for (let s = 0; s < 60; s++) {
      probe.noteEvent('a');
      probe.noteEvent('b');
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect(writes).toEqual([]);
  });

  it('probes a silent primary with a key on its own slots; its event keeps it flowing', async () => {
    const { probe, writes, changes } = setup();
    for (let s = 0; s < 16; s++) {
      probe.noteEvent('a');
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect(writes.map((w) => w.key)).toHaveLength(1);
    const key = writes[0]?.key ?? '';
    expect(new KeyspaceKeys('default').classify(key)).toMatchObject({
      kind: 'expire-probe',
      instanceId: 'inst-1',
    });
    expect(keySlot(key)).toBeGreaterThanOrEqual(8192); // on b's slots
    probe.noteEvent('b'); // the probe's own event
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS + 1000);
    expect(changes).toEqual([]);
    expect(probe.silentPrimaries()).toEqual([]);
  });

  it('no event for the probe: silent, warned once; the next event switches it back', async () => {
    const { probe, changes, events } = setup();
    await vi.advanceTimersByTimeAsync(SILENCE_MS + TIMEOUT_MS + 2000);
    expect(probe.silentPrimaries().sort()).toEqual(['a', 'b']);
    await vi.advanceTimersByTimeAsync(3 * (SILENCE_MS + TIMEOUT_MS));
    expect(events('expiry.expire_events_missing')).toHaveLength(2); // once per primary
    probe.noteEvent('a');
    expect(probe.silentPrimaries()).toEqual(['b']);
    expect(events('expiry.expire_events_flowing').map((l) => l.nodeId)).toEqual(['a']);
    expect(changes).toEqual([
      ['a', false],
      ['b', false],
      ['a', true],
    ]);
  });

  it('a probe write that fails proves nothing: the primary stays flowing and is probed again later', async () => {
    const { probe, writes } = setup(async () => Promise.reject(new Error('NOPERM')));
    await vi.advanceTimersByTimeAsync(SILENCE_MS + TIMEOUT_MS + 2000);
    expect(probe.silentPrimaries()).toEqual([]);
    const first = writes.length;
    expect(first).toBe(2);
    await vi.advanceTimersByTimeAsync(SILENCE_MS + 1000);
    expect(writes.length).toBeGreaterThan(first);
  });
});
