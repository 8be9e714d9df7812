import { keySlot, SLOT_COUNT } from './key-slot.ts';
import type { ClusterNode, Topology } from './topology.ts';

/**
 * Which primary owns each slot in one topology: the one slot map of the worker (primary clocks),
 * the local runner (reference subscribers, volatile keys) and anything else that routes a key to its
 * primary by hand. A shard without a live primary (none, or `failed`) owns nothing: its slots answer
 * undefined / -1.
 */
export class SlotOwners {
  /** The live primaries owning slots, in shard order; `indexOf` answers positions in this list. */
  readonly primaries: readonly ClusterNode[];
  private readonly ownerOfSlot = new Int16Array(SLOT_COUNT).fill(-1);

  constructor(topology: Topology) {
    const primaries: ClusterNode[] = [];
    for (const shard of topology.shards) {
      const primary = shard.primary;
      if (primary === undefined || primary.health === 'failed') continue;
      const index = primaries.push(primary) - 1;
      for (const [first, last] of shard.slots) this.ownerOfSlot.fill(index, first, last + 1);
    }
    this.primaries = primaries;
  }

  /** Position in `primaries` of the owner of `key`'s slot, or -1. */
  indexOf(key: Uint8Array | string): number {
    return this.indexOfSlot(keySlot(key));
  }

  /** Position in `primaries` of the owner of `slot`, or -1. */
  indexOfSlot(slot: number): number {
    return this.ownerOfSlot[slot] ?? -1;
  }

  /** The primary owning `key`'s slot, or undefined. */
  ownerOf(key: Uint8Array | string): ClusterNode | undefined {
    return this.primaries[this.indexOf(key)];
  }
}
