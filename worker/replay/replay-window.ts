import type { ExpiryEvent } from '../expiry/expiry-event.ts';
import { keyFingerprint } from './key-fingerprint.ts';
import type { ProcessedMark } from './processed-mark.ts';

/**
 * Every worker, followers included, keeps the recent `expired` events of each primary, so that a new
 * leader can process what nobody processed while there was no leader. The window is bounded in time
 * (`windowMs`, measured on the monotonic clock at receipt) and in memory (`maxEventsPerPrimary`):
 * an event pushed out by the count bound before its time is up is reported through `onShed`, because
 * a replay could then miss it.
 *
 * The leader also keeps its backlog here (worker/replay/replay-coordinator.ts hands entries to the
 * processor only while it has room): `hold(nodeId, position)` exempts the entries from `position` on
 * from the time bound, never from the count bound. An entry at or after the hold that the count bound
 * pushes out is not reported through `onShed` but kept for the holder, who collects it with
 * `takeDroppedHeld` (it decides whether that is a loss, and numbers and counts it).
 */
export interface WindowEntry {
  readonly event: ExpiryEvent;
  readonly fingerprint: string;
  /** Position in its primary's stream as this window received it (0, 1, ...; never reused). */
  readonly position: number;
}

export type Alignment =
  /** The previous leader's tail was found: exactly the events after it. */
  | 'tail'
  /** The tail was not found (this worker missed events, or they left its window): events received after the mark's time, less a tolerance. */
  | 'time'
  /** No previous leader recorded progress on this primary: the whole window. */
  | 'no-mark';

export interface ReplayPlan {
  readonly nodeId: string;
  readonly alignment: Alignment;
  /** Events to process before live ones, oldest first. */
  readonly entries: readonly WindowEntry[];
  /** Sequence number to give the first entry (identity `<nodeId>:<seq>`). */
  readonly firstSeq: number;
}

export interface ReplayWindowOptions {
  readonly windowMs: number;
  readonly maxEventsPerPrimary: number;
  /** Receipt-time tolerance of the `time` alignment: events this close before the mark are replayed too. */
  readonly timeToleranceMs: number;
  readonly onShed: (count: number, nodeId: string) => void;
}

class PrimaryBuffer {
  private entries: WindowEntry[] = [];
  private head = 0;
  /** Position the next pushed entry receives. */
  nextPosition = 0;
  /** Entries from this position on are exempt from the time bound (undefined: no hold). */
  holdFrom: number | undefined;
  /** Held entries the count bound pushed out, until the holder takes them. */
  droppedHeld: WindowEntry[] = [];

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Position of the oldest entry kept (`nextPosition` when empty). */
  get firstPosition(): number {
    return this.size === 0 ? this.nextPosition : (this.entries[this.head] as WindowEntry).position;
  }

  push(event: ExpiryEvent): WindowEntry {
    const entry: WindowEntry = {
      event,
      fingerprint: keyFingerprint(event.key),
      position: this.nextPosition++,
    };
    this.entries.push(entry);
    return entry;
  }

  at(position: number): WindowEntry | undefined {
    const offset = position - this.firstPosition;
    if (offset < 0 || offset >= this.size) return undefined;
    return this.entries[this.head + offset];
  }

  /**
   * Drops entries received before `cutoffMono` (up to the hold) and beyond `max`; returns how many
   * unheld entries fell to the count bound (held ones go to `droppedHeld`).
   */
  evict(cutoffMono: number, max: number): number {
    const holdFrom = this.holdFrom ?? Number.POSITIVE_INFINITY;
    while (this.head < this.entries.length) {
      const oldest = this.entries[this.head] as WindowEntry;
      if (oldest.position >= holdFrom || oldest.event.receivedAtMono >= cutoffMono) break;
      this.head++;
    }
    let shed = 0;
    while (this.size > max) {
      const oldest = this.entries[this.head] as WindowEntry;
      this.head++;
      if (oldest.position >= holdFrom) this.droppedHeld.push(oldest);
      else shed++;
    }
    // Compact once the dead prefix dominates, keeping push and evict amortised O(1).
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return shed;
  }

  snapshot(): WindowEntry[] {
    return this.entries.slice(this.head);
  }
}

export class ReplayWindow {
  private readonly buffers = new Map<string, PrimaryBuffer>();

  constructor(private readonly options: ReplayWindowOptions) {
    if (!(options.windowMs > 0)) throw new RangeError('windowMs must be > 0');
    if (!(options.maxEventsPerPrimary >= 1)) throw new RangeError('maxEventsPerPrimary must be >= 1');
  }

  append(event: ExpiryEvent): WindowEntry {
    const buffer = this.buffer(event.nodeId);
    const entry = buffer.push(event);
    const shed = buffer.evict(event.receivedAtMono - this.options.windowMs, this.options.maxEventsPerPrimary);
    if (shed > 0) this.options.onShed(shed, event.nodeId);
    return entry;
  }

  /** Drops what is older than the window everywhere (call on a timer: quiet primaries age out too). */
  expire(nowMono: number): void {
    for (const [nodeId, buffer] of this.buffers) {
      buffer.evict(nowMono - this.options.windowMs, this.options.maxEventsPerPrimary);
      // A held buffer stays, even empty: its positions must go on where they were.
      if (buffer.size === 0 && buffer.holdFrom === undefined) this.buffers.delete(nodeId);
    }
  }

  /**
   * Keeps the entries of `nodeId` from `position` on past the time bound (still within the count
   * bound); `undefined` releases the hold (and forgets what it dropped).
   */
  hold(nodeId: string, position: number | undefined): void {
    if (position === undefined) {
      const buffer = this.buffers.get(nodeId);
      if (!buffer) return;
      buffer.holdFrom = undefined;
      buffer.droppedHeld = [];
      return;
    }
    this.buffer(nodeId).holdFrom = position;
  }

  /** Held entries of `nodeId` the count bound pushed out since the last call, oldest first. */
  takeDroppedHeld(nodeId: string): WindowEntry[] {
    const buffer = this.buffers.get(nodeId);
    if (!buffer || buffer.droppedHeld.length === 0) return [];
    const dropped = buffer.droppedHeld;
    buffer.droppedHeld = [];
    return dropped;
  }

  /** The entry of `nodeId` at `position`, if the window still holds it. */
  entryAt(nodeId: string, position: number): WindowEntry | undefined {
    return this.buffers.get(nodeId)?.at(position);
  }

  /** Position the next entry of `nodeId` will receive. */
  endPosition(nodeId: string): number {
    return this.buffers.get(nodeId)?.nextPosition ?? 0;
  }

  private buffer(nodeId: string): PrimaryBuffer {
    let buffer = this.buffers.get(nodeId);
    if (!buffer) {
      buffer = new PrimaryBuffer();
      this.buffers.set(nodeId, buffer);
    }
    return buffer;
  }

  nodeIds(): string[] {
    return [...this.buffers.keys()];
  }

  size(nodeId?: string): number {
    if (nodeId !== undefined) return this.buffers.get(nodeId)?.size ?? 0;
    let total = 0;
    for (const buffer of this.buffers.values()) total += buffer.size;
    return total;
  }

  /**
   * What a new leader must process from this primary before live events, given the previous leader's
   * mark (undefined when there is none).
   */
  plan(nodeId: string, mark: ProcessedMark | undefined): ReplayPlan {
    const entries = this.buffers.get(nodeId)?.snapshot() ?? [];
    if (!mark) return { nodeId, alignment: 'no-mark', entries, firstSeq: 1 };
    const position = findTail(entries, mark.tail);
    if (position !== undefined) {
      return { nodeId, alignment: 'tail', entries: entries.slice(position + 1), firstSeq: mark.seq + 1 };
    }
    const since = mark.receivedAt - this.options.timeToleranceMs;
    return {
      nodeId,
      alignment: 'time',
      entries: entries.filter((e) => e.event.receivedAt > since),
      firstSeq: mark.seq + 1,
    };
  }
}

/**
 * Index of the newest entry that ends a run of fingerprints equal to `tail`. When the window holds
 * fewer entries before a candidate than the tail has, the available ones must all match and there
 * must be at least two (one fingerprint alone cannot tell a repeated key apart).
 */
export function findTail(entries: readonly WindowEntry[], tail: readonly string[]): number | undefined {
  if (tail.length === 0) return undefined;
  const last = tail[tail.length - 1];
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i]?.fingerprint !== last) continue;
    const comparable = Math.min(tail.length, i + 1);
    if (comparable < Math.min(2, tail.length)) continue;
    let matches = true;
    for (let k = 1; k < comparable; k++) {
      if (entries[i - k]?.fingerprint !== tail[tail.length - 1 - k]) {
        matches = false;
        break;
      }
    }
    if (matches) return i;
  }
  return undefined;
}
