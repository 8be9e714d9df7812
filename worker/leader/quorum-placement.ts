import { keySlot, SLOT_COUNT } from '../../core/key-slot.ts';
import { KeyspaceKeys } from '../../core/keys.ts';
import type { Shard, Topology } from '../../core/topology.ts';

/**
 * Where the members of the quorum lease live: which partition tags `{kl:<name>:p<i>}` carry the
 * member keys. Two requirements, in this order:
 *
 * 1. Every worker must use the SAME member keys. Mutual exclusion comes from majorities of one key
 *    set intersecting; two workers on different key sets could both win. So the placement must not
 *    depend on when a worker looked at the cluster (during a failover, after a reshard, ...).
 * 2. The members should lie on different primaries, so that one primary's failover touches one
 *    member only (the leader keeps its majority; no contender gains one).
 *
 * `fixed` placement satisfies 1 unconditionally: member k takes the smallest tag index whose slot
 * lies within WINDOW slots of the centre of the k-th third of the slot space. It depends on the
 * leader name only. It also satisfies 2 for every evenly split slot map of 3 or more shards (what
 * ElastiCache and `redis-cli --cluster create` produce): the three windows are more than 5,200 slots
 * apart and, for 3 shards, each lies inside its own third; for 4 or more shards no shard is wider
 * than 4,096 slots, so no shard can reach two windows.
 *
 * Only when a slot map puts two fixed members on one shard (a hand-made, uneven layout) does
 * placement fall back to `topology`: three shards spread over the shard list, a tag index inside
 * each. That choice depends on the slot map; quorum-lease.ts moves a running fleet from one
 * placement to another without two leaders, and docs/leader-election.md ("Placement changes") says
 * where that ends (workers started while the others are still on the old placement).
 */

export const QUORUM_MEMBER_COUNT = 3;

/** Half-width, in slots, of the window around each third's centre. */
const WINDOW = 128;

export interface QuorumMember {
  readonly partitionIndex: number;
  readonly leaseKey: string;
  readonly epochKey: string;
  readonly slot: number;
}

export interface QuorumPlacement {
  readonly strategy: 'fixed' | 'topology';
  readonly members: readonly QuorumMember[];
}

function member(keys: KeyspaceKeys, partitionIndex: number): QuorumMember {
  return {
    partitionIndex,
    leaseKey: keys.quorumLease(partitionIndex),
    epochKey: keys.quorumEpoch(partitionIndex),
    slot: keySlot(keys.partitionTag(partitionIndex)),
  };
}

/**
 * Shards that own slots, by first slot. A shard whose primary is failed is kept: a failover does not
 * move slots, and a placement that changed with it would break requirement 1.
 */
export function slotOwningShards(topology: Topology): Shard[] {
  return topology.shards
    .filter((s) => s.slots.length > 0)
    .sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0));
}

function shardIndexOfSlot(shards: readonly Shard[], slot: number): number {
  return shards.findIndex((s) => s.slots.some(([first, last]) => slot >= first && slot <= last));
}

/** True when every member's slot is owned by a shard and no two members share one. */
export function onDistinctShards(members: readonly QuorumMember[], topology: Topology): boolean {
  const shards = slotOwningShards(topology);
  const owners = members.map((m) => shardIndexOfSlot(shards, m.slot));
  return owners.every((o) => o >= 0) && new Set(owners).size === owners.length;
}

/** The placement that depends on the leader name only. */
export function fixedPlacement(keys: KeyspaceKeys): QuorumPlacement {
  const members: QuorumMember[] = [];
  for (let k = 0; k < QUORUM_MEMBER_COUNT; k++) {
    const centre = Math.floor(((2 * k + 1) * SLOT_COUNT) / (2 * QUORUM_MEMBER_COUNT));
    const index = KeyspaceKeys.findIndexOnSlots([[centre - WINDOW, centre + WINDOW]], (i) =>
      keys.partitionTag(i),
    );
    members.push(member(keys, index));
  }
  return { strategy: 'fixed', members };
}

/**
 * The fixed placement when its members are on distinct shards of `topology`, else one member on each
 * of three shards spread over the shard list. Throws RangeError with fewer than 3 slot-owning shards.
 */
export function placeQuorumMembers(keys: KeyspaceKeys, topology: Topology): QuorumPlacement {
  const shards = slotOwningShards(topology);
  if (shards.length < QUORUM_MEMBER_COUNT) {
    throw new RangeError(
      `a quorum lease needs ${QUORUM_MEMBER_COUNT} shards, the cluster has ${shards.length}`,
    );
  }
  const fixed = fixedPlacement(keys);
  if (onDistinctShards(fixed.members, topology)) return fixed;
  const members: QuorumMember[] = [];
  for (let k = 0; k < QUORUM_MEMBER_COUNT; k++) {
    const shard = shards[Math.floor((k * shards.length) / QUORUM_MEMBER_COUNT)] as Shard;
    members.push(
      member(
        keys,
        KeyspaceKeys.findIndexOnSlots(shard.slots, (i) => keys.partitionTag(i)),
      ),
    );
  }
  return { strategy: 'topology', members };
}

export function samePlacement(a: QuorumPlacement, b: QuorumPlacement): boolean {
  return (
    a.members.length === b.members.length &&
    a.members.every((m, i) => m.partitionIndex === b.members[i]?.partitionIndex)
  );
}
