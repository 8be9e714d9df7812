import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { keySlot } from '../../../../core/key-slot.ts';
import { EXPIRED_CHANNEL } from '../../../../core/keys.ts';
import type { ClusterNode, Topology } from '../../../../core/topology.ts';
import { ReferenceSubscribers } from '../../../../local/runner/reference-subscribers.ts';

class FakeSubscriber extends EventEmitter {
  subscribed: string[] = [];
  disconnected = false;
  constructor(readonly port: number) {
    super();
  }
  async subscribe(channel: string): Promise<number> {
    this.subscribed.push(channel);
    return 1;
  }
  disconnect(): void {
    this.disconnected = true;
  }
  publish(key: string): void {
    this.emit('message', EXPIRED_CHANNEL, key);
  }
}

const node = (port: number, role: 'primary' | 'replica'): ClusterNode => ({
  id: `id${port}`,
  host: '127.0.0.1',
  port,
  role,
  health: 'online',
});

/** Two shards: slots 0-8191 on :1 (replica :3), 8192-16383 on :2 (replica :4). */
const before: Topology = {
  shards: [
    { slots: [[0, 8191]], primary: node(1, 'primary'), replicas: [node(3, 'replica')] },
    { slots: [[8192, 16383]], primary: node(2, 'primary'), replicas: [node(4, 'replica')] },
  ],
};
/** After a failover of :1 to :3. */
const after: Topology = {
  shards: [
    { slots: [[0, 8191]], primary: node(3, 'primary'), replicas: [node(1, 'replica')] },
    { slots: [[8192, 16383]], primary: node(2, 'primary'), replicas: [node(4, 'replica')] },
  ],
};

function setup() {
  let topology = before;
  const clients = new Map<number, FakeSubscriber>();
  const events: [string, string][] = [];
  const primaryLists: string[][] = [];
  const reference = new ReferenceSubscribers({
    discover: async () => topology,
    connect: ({ port }) => {
      const client = new FakeSubscriber(port);
      clients.set(port, client);
      return client as unknown as Redis;
    },
    onEvent: (key, nodeAddress) => events.push([key, nodeAddress]),
    onPrimariesChanged: (nodes) => primaryLists.push([...nodes]),
    pollIntervalMs: 1000,
    now: () => 0,
  });
  return { reference, clients, events, primaryLists, setTopology: (t: Topology) => (topology = t) };
}

describe('ReferenceSubscribers', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('subscribes to the expired channel of every node, replicas included, and reports events by node', async () => {
    const { reference, clients, events, primaryLists } = setup();
    await reference.start();
    expect([...clients.keys()].sort()).toEqual([1, 2, 3, 4]);
    for (const client of clients.values()) expect(client.subscribed).toEqual([EXPIRED_CHANNEL]);
    expect(primaryLists).toEqual([['127.0.0.1:1', '127.0.0.1:2']]);
    expect(reference.subscribedPrimaryCount()).toBe(2);
    clients.get(2)?.publish('demo:1');
    expect(events).toEqual([['demo:1', '127.0.0.1:2']]);
    await reference.stop();
    for (const client of clients.values()) expect(client.disconnected).toBe(true);
  });

  it('answers which primary owns a key by its slot, and follows a failover', async () => {
    const { reference, clients, primaryLists, setTopology } = setup();
    await reference.start();
    const low = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].find((k) => keySlot(k) <= 8191) as string;
    const high = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].find((k) => keySlot(k) > 8191) as string;
    expect(reference.ownerOf(low)).toBe('127.0.0.1:1');
    expect(reference.ownerOf(high)).toBe('127.0.0.1:2');
    setTopology(after);
    await vi.advanceTimersByTimeAsync(1000);
    expect(reference.ownerOf(low)).toBe('127.0.0.1:3');
    expect(reference.primaries()).toEqual(['127.0.0.1:3', '127.0.0.1:2']);
    expect(primaryLists.at(-1)).toEqual(['127.0.0.1:3', '127.0.0.1:2']);
    // Same nodes, roles swapped: the existing subscriptions are kept, none is re-created.
    expect(clients.get(1)?.disconnected).toBe(false);
    expect(clients.size).toBe(4);
    await reference.stop();
  });
});
