import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyGenerator, type KeySetter } from '../../../../local/runner/key-generator.ts';

function fakeClient(outcome: () => 'ok' | Error = () => 'ok') {
  const keys: string[] = [];
  const client: KeySetter = {
    set: vi.fn(async (key: string, _value: string, _mode: 'PX' | 'PXAT', _ms: number) => {
      keys.push(key);
      const result = outcome();
      if (result instanceof Error) throw result;
      return 'OK';
    }),
  };
  return { client, keys };
}

describe('KeyGenerator', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sets demo:<n> keys with the TTL at the requested rate', async () => {
    const { client, keys } = fakeClient();
    const generator = new KeyGenerator({
      client,
      prefix: 'demo:',
      ttlMs: 1000,
      keysPerSecond: 50,
      now: () => Date.now(),
    });
    generator.start();
    await vi.advanceTimersByTimeAsync(2000);
    await generator.stop();
    expect(keys.length).toBeGreaterThanOrEqual(99);
    expect(keys.length).toBeLessThanOrEqual(100);
    expect(keys.slice(0, 3)).toEqual(['demo:1', 'demo:2', 'demo:3']);
    expect(client.set).toHaveBeenCalledWith('demo:1', '{"session":1,"cart":["item-1"]}', 'PX', 1000);
    expect(generator.counts()).toMatchObject({ sent: keys.length, failed: 0, inFlight: 0 });
  });

  it('with wallNow, sets each key with PXAT now + TTL and reports that deadline', async () => {
    const { client } = fakeClient();
    const deadlines: [string, number | undefined][] = [];
    const generator = new KeyGenerator({
      client,
      prefix: 'demo:',
      ttlMs: 1000,
      keysPerSecond: 10,
      now: () => Date.now(),
      wallNow: () => Date.now() + 0.4,
      onSet: (key, deadlineMs) => deadlines.push([key, deadlineMs]),
    });
    const startMs = Date.now();
    generator.start();
    await vi.advanceTimersByTimeAsync(100);
    await generator.stop();
    expect(deadlines).toEqual([['demo:1', startMs + 100 + 1000]]);
    expect(client.set).toHaveBeenCalledWith(
      'demo:1',
      '{"session":1,"cart":["item-1"]}',
      'PXAT',
      startMs + 100 + 1000,
    );
  });

  it('without wallNow, reports no deadline', async () => {
    const { client } = fakeClient();
    const deadlines: (number | undefined)[] = [];
    const generator = new KeyGenerator({
      client,
      prefix: 'demo:',
      ttlMs: 1000,
      keysPerSecond: 10,
      now: () => Date.now(),
      onSet: (_key, deadlineMs) => deadlines.push(deadlineMs),
    });
    generator.start();
    await vi.advanceTimersByTimeAsync(100);
    await generator.stop();
    expect(deadlines).toEqual([undefined]);
  });

  it('applies a new rate from the moment it is set, without a catch-up burst', async () => {
    const { client, keys } = fakeClient();
    const generator = new KeyGenerator({
      client,
      prefix: 'k',
      ttlMs: 10,
      keysPerSecond: 10,
      now: () => Date.now(),
    });
    generator.start();
    await vi.advanceTimersByTimeAsync(1000);
    const before = keys.length;
    generator.setRate(1000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(before).toBe(10);
    expect(keys.length - before).toBeGreaterThanOrEqual(990);
    expect(keys.length - before).toBeLessThanOrEqual(1000);
    generator.setRate(0);
    const atZero = keys.length;
    await vi.advanceTimersByTimeAsync(1000);
    expect(keys.length).toBe(atZero);
    await generator.stop();
    expect(() => generator.setRate(-1)).toThrow(RangeError);
  });

  it('skips, and counts, keys it is more than a burst behind on instead of piling them up', async () => {
    const { client, keys } = fakeClient();
    let now = 0;
    const generator = new KeyGenerator({
      client,
      prefix: 'k',
      ttlMs: 10,
      keysPerSecond: 100,
      now: () => now,
      maxBurstMs: 1000,
    });
    generator.start();
    now = 5000; // a 5 s stall: 500 keys due, at most one second's worth (100) sent at once
    generator.tick();
    await generator.stop();
    expect(keys).toHaveLength(100);
    expect(generator.counts().skipped).toBe(400);
  });

  it('counts failed SETs and reports a repeated error once', async () => {
    const { client } = fakeClient(() => new Error('CLUSTERDOWN'));
    const errors: string[] = [];
    const generator = new KeyGenerator({
      client,
      prefix: 'k',
      ttlMs: 10,
      keysPerSecond: 100,
      now: () => Date.now(),
      onError: (e) => errors.push(e.message),
    });
    generator.start();
    await vi.advanceTimersByTimeAsync(500);
    await generator.stop();
    expect(generator.counts().failed).toBeGreaterThanOrEqual(49);
    expect(generator.counts().sent).toBe(0);
    expect(errors).toEqual(['CLUSTERDOWN']);
  });
});
