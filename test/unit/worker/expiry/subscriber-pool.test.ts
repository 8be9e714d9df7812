import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../../../core/topology.ts';
import type { NodeRef } from '../../../../worker/expiry/fan-in.ts';
import { type SubscriberEvents, SubscriberPool } from '../../../../worker/expiry/subscriber-pool.ts';
import { captureLogger, captureMetrics } from '../support/fakes.ts';

const primary = (id: string, port: number): ClusterNode => ({
  id,
  host: '127.0.0.1',
  port,
  role: 'primary',
  health: 'online',
});

function setup() {
  const connections = new Map<string, { events: SubscriberEvents; closed: boolean }>();
  const received: [NodeRef, string][] = [];
  let troubles = 0;
  const log = captureLogger();
  const { metrics, totals } = captureMetrics();
  const pool = new SubscriberPool({
    connect: (node, events) => {
      const connection = { events, closed: false };
      connections.set(node.id, connection);
      return {
        close: async () => {
          connection.closed = true;
        },
      };
    },
    onEvent: (node, key) => received.push([node, key.toString()]),
    onTrouble: () => troubles++,
    logger: log.logger,
    metrics,
  });
  return { pool, connections, received, troubles: () => troubles, totals, ...log };
}

describe('SubscriberPool', () => {
  it('opens one subscriber per primary and reports coverage as subscriptions are confirmed', () => {
    const { pool, connections, totals, events } = setup();
    pool.sync([primary('a', 7000), primary('b', 7001), primary('c', 7002)]);
    expect([...connections.keys()]).toEqual(['a', 'b', 'c']);
    expect(pool.coverage()).toMatchObject({ subscribed: 0, known: 3, complete: false });
    connections.get('a')?.events.onUp();
    connections.get('b')?.events.onUp();
    expect(pool.coverage()).toMatchObject({ subscribed: 2, known: 3, complete: false });
    expect(totals().SubscribedPrimaries).toBe(2);
    connections.get('c')?.events.onUp();
    expect(pool.coverage()).toMatchObject({ subscribed: 3, known: 3, complete: true });
    expect(events('subscription.up').map((r) => r.node)).toEqual([
      '127.0.0.1:7000',
      '127.0.0.1:7001',
      '127.0.0.1:7002',
    ]);
    expect(totals().SubscribedPrimaries).toBe(3);
  });

  it('passes messages on with their node, and ignores a removed connection', () => {
    const { pool, connections, received } = setup();
    pool.sync([primary('a', 7000)]);
    const a = connections.get('a');
    a?.events.onMessage(Buffer.from('k1'));
    pool.sync([primary('b', 7001)]);
    a?.events.onMessage(Buffer.from('late'));
    a?.events.onUp();
    expect(received).toEqual([[{ id: 'a', address: '127.0.0.1:7000' }, 'k1']]);
    expect(pool.coverage().primaries.map((p) => p.node)).toEqual(['127.0.0.1:7001']);
  });

  it('closes subscribers of departed primaries and logs subscription.down', async () => {
    const { pool, connections, events } = setup();
    pool.sync([primary('a', 7000), primary('b', 7001)]);
    connections.get('a')?.events.onUp();
    pool.sync([primary('b', 7001), primary('r', 7003)]);
    await Promise.resolve();
    expect(connections.get('a')?.closed).toBe(true);
    expect(connections.get('b')?.closed).toBe(false);
    expect(events('subscription.down')).toEqual([
      expect.objectContaining({ node: '127.0.0.1:7000', reason: 'removed' }),
    ]);
    expect(pool.coverage()).toMatchObject({ known: 2, subscribed: 0 });
  });

  it('a lost connection lowers coverage, logs subscription.down and asks for a topology sync', () => {
    const { pool, connections, events, troubles } = setup();
    pool.sync([primary('a', 7000)]);
    const a = connections.get('a');
    a?.events.onUp();
    a?.events.onDown('connection-closed');
    a?.events.onTrouble();
    expect(pool.coverage()).toMatchObject({ subscribed: 0, known: 1, complete: false });
    expect(events('subscription.down')[0]).toMatchObject({
      node: '127.0.0.1:7000',
      reason: 'connection-closed',
    });
    expect(troubles()).toBe(1);
    a?.events.onUp();
    expect(pool.coverage().complete).toBe(true);
  });

  it('no primary known means no coverage', () => {
    const { pool } = setup();
    expect(pool.coverage()).toMatchObject({ subscribed: 0, known: 0, complete: false });
  });

  it('close closes every subscriber once and ignores later syncs', async () => {
    const { pool, connections } = setup();
    pool.sync([primary('a', 7000), primary('b', 7001)]);
    await pool.close();
    await pool.close();
    expect([...connections.values()].every((c) => c.closed)).toBe(true);
    pool.sync([primary('c', 7002)]);
    expect(connections.has('c')).toBe(false);
    expect(pool.coverage().known).toBe(0);
  });
});
