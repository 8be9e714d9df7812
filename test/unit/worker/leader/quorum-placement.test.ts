import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keySlot } from '../../../../core/key-slot.ts';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import type { Shard, Topology } from '../../../../core/topology.ts';
import {
  fixedPlacement,
  onDistinctShards,
  placeQuorumMembers,
  slotOwningShards,
} from '../../../../worker/leader/quorum-placement.ts';

/** The slot map `redis-cli --cluster create` / ElastiCache give N shards (first ones get the extra slot). */
function evenTopology(shardCount: number, failed: number[] = []): Topology {
  const base = Math.floor(16384 / shardCount);
  const extra = 16384 % shardCount;
  let next = 0;
  const shards: Shard[] = [];
  for (let i = 0; i < shardCount; i++) {
    const size = base + (i < extra ? 1 : 0);
    shards.push({
      slots: [[next, next + size - 1]],
      primary: {
        id: `p${i}`,
        host: 'h',
        port: i,
        role: 'primary',
        health: failed.includes(i) ? 'failed' : 'online',
      },
      replicas: [],
    });
    next += size;
  }
  // CLUSTER SHARDS does not promise an order.
  return { shards: shards.reverse() };
}

describe('quorum placement', () => {
  it('fixed placement: 3 distinct tags, one per third of the slot space, from the leader name only', () => {
    const keys = new KeyspaceKeys('orders');
    const placement = fixedPlacement(keys);
    expect(placement.members).toHaveLength(3);
    expect(new Set(placement.members.map((m) => m.partitionIndex)).size).toBe(3);
    placement.members.forEach((m, k) => {
      expect(m.slot).toBe(keySlot(m.leaseKey));
      expect(keySlot(m.epochKey)).toBe(m.slot);
      expect(Math.floor((m.slot * 3) / 16384)).toBe(k);
    });
    expect(fixedPlacement(new KeyspaceKeys('orders'))).toEqual(placement);
  });

  it('puts the fixed members on 3 different shards for every even split of 3 to 64 shards', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/),
        fc.integer({ min: 3, max: 64 }),
        (name, shards) => {
          const keys = new KeyspaceKeys(name);
          const placement = placeQuorumMembers(keys, evenTopology(shards));
          expect(placement.strategy).toBe('fixed');
          expect(onDistinctShards(placement.members, evenTopology(shards))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('does not change during a failover: a shard whose primary failed still counts', () => {
    const keys = new KeyspaceKeys('x');
    const healthy = placeQuorumMembers(keys, evenTopology(3));
    const failing = placeQuorumMembers(keys, evenTopology(3, [1]));
    expect(failing).toEqual(healthy);
    expect(slotOwningShards(evenTopology(3, [1]))).toHaveLength(3);
    expect(slotOwningShards(evenTopology(5)).map((s) => s.primary?.id)).toEqual([
      'p0',
      'p1',
      'p2',
      'p3',
      'p4',
    ]);
  });

  it('falls back to one member per spread-out shard on an uneven slot map', () => {
    const keys = new KeyspaceKeys('x');
    const uneven: Topology = {
      shards: [
        { slots: [[0, 15000]], primary: undefined, replicas: [] },
        { slots: [[15001, 15500]], primary: undefined, replicas: [] },
        { slots: [[15501, 16383]], primary: undefined, replicas: [] },
      ],
    };
    expect(onDistinctShards(fixedPlacement(keys).members, uneven)).toBe(false);
    const placement = placeQuorumMembers(keys, uneven);
    expect(placement.strategy).toBe('topology');
    expect(onDistinctShards(placement.members, uneven)).toBe(true);
  });

  it('refuses fewer than 3 shards', () => {
    expect(() => placeQuorumMembers(new KeyspaceKeys('x'), evenTopology(2))).toThrow(RangeError);
  });
});
