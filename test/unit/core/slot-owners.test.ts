import { describe, expect, it } from 'vitest';
import { keySlot } from '../../../core/key-slot.ts';
import { SlotOwners } from '../../../core/slot-owners.ts';
import type { ClusterNode } from '../../../core/topology.ts';

const primary = (id: string, health = 'online'): ClusterNode => ({
  id,
  host: '10.0.0.1',
  port: 6379,
  role: 'primary',
  health,
});

describe('SlotOwners', () => {
  it('maps each slot to the live primary owning it; a shard without one owns nothing', () => {
    const owners = new SlotOwners({
      shards: [
        { slots: [[0, 5000]], primary: primary('a'), replicas: [] },
        { slots: [[5001, 10000]], primary: primary('b', 'failed'), replicas: [] },
        { slots: [[10001, 16383]], primary: primary('c'), replicas: [] },
      ],
    });
    expect(owners.primaries.map((p) => p.id)).toEqual(['a', 'c']);
    expect(owners.indexOfSlot(0)).toBe(0);
    expect(owners.indexOfSlot(5000)).toBe(0);
    expect(owners.indexOfSlot(7000)).toBe(-1);
    expect(owners.indexOfSlot(16383)).toBe(1);
    const key = 'user:{x}';
    const expected = keySlot(key) <= 5000 ? 'a' : keySlot(key) <= 10000 ? undefined : 'c';
    expect(owners.ownerOf(key)?.id).toBe(expected);
  });

  it('an empty topology owns nothing', () => {
    const owners = new SlotOwners({ shards: [] });
    expect(owners.indexOf('k')).toBe(-1);
    expect(owners.ownerOf('k')).toBeUndefined();
  });
});
