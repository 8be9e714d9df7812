import { SLOT_COUNT } from '../core/key-slot.ts';

/** Inclusive `[first, last]` range of hash slots, as CLUSTER NODES / SHARDS print them. */
export type SlotRange = [number, number];

/**
 * Splits `[first, last]` into `parts` contiguous ranges whose sizes differ by at most one (the
 * first ranges get the extra slots), the way `redis-cli --cluster create` assigns slots.
 * Parts that would be empty are left out.
 */
export function splitSlotRange(first: number, last: number, parts: number): SlotRange[] {
  const total = last - first + 1;
  if (parts < 1 || total < 1) return [];
  const base = Math.floor(total / parts);
  const extra = total % parts;
  const ranges: SlotRange[] = [];
  let next = first;
  for (let i = 0; i < parts; i++) {
    const size = base + (i < extra ? 1 : 0);
    if (size === 0) continue;
    ranges.push([next, next + size - 1]);
    next += size;
  }
  return ranges;
}

/** The whole slot space split evenly over `parts` primaries. */
export function splitAllSlots(parts: number): SlotRange[] {
  return splitSlotRange(0, SLOT_COUNT - 1, parts);
}

export function slotsOf(ranges: readonly (readonly [number, number])[]): number[] {
  const slots: number[] = [];
  for (const [first, last] of ranges) for (let slot = first; slot <= last; slot++) slots.push(slot);
  return slots;
}

/** Sorted, merged ranges from any list of slots (duplicates ignored). */
export function rangesOf(slots: Iterable<number>): SlotRange[] {
  const sorted = [...new Set(slots)].sort((a, b) => a - b);
  const ranges: SlotRange[] = [];
  for (const slot of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === slot - 1) last[1] = slot;
    else ranges.push([slot, slot]);
  }
  return ranges;
}

export function slotCountOf(ranges: readonly (readonly [number, number])[]): number {
  return ranges.reduce((sum, [first, last]) => sum + (last - first + 1), 0);
}

/**
 * Slots claimed by no owner, and slots claimed by more than one, given each owner's ranges.
 * A healthy cluster has neither.
 */
export function slotCoverage(rangesByOwner: ReadonlyMap<string, readonly (readonly [number, number])[]>): {
  uncovered: number;
  overlapping: number;
} {
  const owners = new Uint8Array(SLOT_COUNT);
  for (const ranges of rangesByOwner.values()) {
    for (const [first, last] of ranges) {
      for (let slot = Math.max(0, first); slot <= Math.min(SLOT_COUNT - 1, last); slot++) {
        owners[slot] = Math.min(2, (owners[slot] ?? 0) + 1);
      }
    }
  }
  let uncovered = 0;
  let overlapping = 0;
  for (const count of owners) {
    if (count === 0) uncovered++;
    else if (count > 1) overlapping++;
  }
  return { uncovered, overlapping };
}
