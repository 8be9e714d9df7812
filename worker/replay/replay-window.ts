import type { ExpiryEvent } from '../expiry/expiry-event.ts';
import { keyFingerprint } from './key-fingerprint.ts';
import type { ProcessedMark } from './processed-mark.ts';

/**
 * Every worker, followers included, keeps the recent `expired` events of each primary, so that a new
 * leader can process what nobody processed while there was no leader. The window is bounded in time
 * (`windowMs`, measured on the monotonic clock at receipt: an entry is kept while it is younger than
 * `windowMs`) and in memory (`maxEventsPerPrimary`): an event pushed out by the count bound before
 * its time is up is reported through `onShed`, because a replay could then miss it.
 *
 * `windowMs` 0 (REPLAY_WINDOW_MS=0, replay off) is the same window with no time bound to keep by: a
 * follower keeps nothing (every entry is gone as it is appended), so a new leader has nothing received
 * before its acquisition to replay; the leader's holds (below) work as with any `windowMs`.
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
  /**
   * How many discontinuities (`noteGap`: this worker's subscription to the primary dropped) came
   * before this entry: entries of different epochs are not consecutive in the primary's stream.
   */
  readonly epoch: number;
  /**
   * Position in its primary's stream as this window received it (0, 1, ...): never reused while the
   * primary's buffer exists, and a held buffer is kept even when empty.
   */
  readonly position: number;
}

export type Alignment =
  /** The previous leader's tail was found at exactly one position: exactly the events after it. */
  | 'tail'
  /**
   * The tail was found at several positions (repeating keys): the events after the OLDEST match,
   * so nothing is skipped (more replay, never less).
   */
  | 'ambiguous'
  /** The tail was not found (this worker missed events, or they left its window): events received after the mark's time, less a tolerance. */
  | 'time'
  /** No previous leader recorded progress on this primary: the whole window. */
  | 'no-mark';

export interface ReplayPlan {
  readonly nodeId: string;
  readonly alignment: Alignment;
  /** Events to process before live ones, oldest first: a suffix of the primary's window. */
  readonly entries: readonly WindowEntry[];
  /**
   * The window entry just before `entries` (the newest entry when `entries` is empty; undefined when
   * `entries` starts at the window's oldest entry): what arrives after the plan follows it.
   */
  readonly previous: WindowEntry | undefined;
  /**
   * True when the plan may continue the mark's numbering (`mark.seq + 1` for its first entry): the
   * tail aligned at exactly one position and no discontinuity of this window follows it. Otherwise
   * the events get a fresh line of seqs (worker/replay/processed-mark.ts).
   */
  readonly continues: boolean;
  /** Positions at which the tail matched (0 for `time` and `no-mark`). */
  readonly tailMatches: number;
  /** A discontinuity of this window (noteGap) lies after the aligned position. */
  readonly discontinuity: boolean;
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
  /** Gaps noted so far; the epoch of the next entry. */
  epoch = 0;
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
      epoch: this.epoch,
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
   * Drops entries received at or before `cutoffMono` (up to the hold) and beyond `max`; returns how
   * many unheld entries fell to the count bound (held ones go to `droppedHeld`).
   */
  evict(cutoffMono: number, max: number): number {
    const holdFrom = this.holdFrom ?? Number.POSITIVE_INFINITY;
    while (this.head < this.entries.length) {
      const oldest = this.entries[this.head] as WindowEntry;
      if (oldest.position >= holdFrom || oldest.event.receivedAtMono > cutoffMono) break;
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
    if (!(options.windowMs >= 0)) throw new RangeError('windowMs must be >= 0');
    if (!(options.maxEventsPerPrimary >= 1)) throw new RangeError('maxEventsPerPrimary must be >= 1');
  }

  append(event: ExpiryEvent): WindowEntry {
    const buffer = this.buffer(event.nodeId);
    const entry = buffer.push(event);
    const shed = buffer.evict(event.receivedAtMono - this.options.windowMs, this.options.maxEventsPerPrimary);
    if (shed > 0) this.options.onShed(shed, event.nodeId);
    return entry;
  }

  /**
   * This worker's subscription to `nodeId` dropped (it may miss events until it is back): the entries
   * appended from now on are not consecutive with the earlier ones. Without earlier entries there is
   * nothing to be discontinuous with.
   */
  noteGap(nodeId: string): void {
    const buffer = this.buffers.get(nodeId);
    if (buffer) buffer.epoch++;
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

  /** Position of the oldest entry of `nodeId` the window holds (`endPosition` when it holds none). */
  firstPosition(nodeId: string): number {
    return this.buffers.get(nodeId)?.firstPosition ?? 0;
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
   * mark (undefined when there is none). Never skips: with several tail matches it replays from the
   * oldest.
   */
  plan(nodeId: string, mark: ProcessedMark | undefined): ReplayPlan {
    const entries = this.buffers.get(nodeId)?.snapshot() ?? [];
    const suffix = (from: number, alignment: Alignment, tailMatches: number): ReplayPlan => {
      const start = Math.max(0, Math.min(from, entries.length));
      const anchor = start > 0 ? entries[start - 1] : undefined;
      // Entries of a later epoch than the anchor (or than the first entry, when the plan starts at
      // the window's oldest entry) are not consecutive with what the mark describes.
      const base = anchor ?? entries[0];
      const discontinuity = base !== undefined && entries.slice(start).some((e) => e.epoch !== base.epoch);
      return {
        nodeId,
        alignment,
        entries: entries.slice(start),
        previous: anchor,
        continues: alignment === 'tail' && !discontinuity,
        tailMatches,
        discontinuity,
      };
    };
    if (!mark) return suffix(0, 'no-mark', 0);
    const matches = findTailMatches(entries, mark.tail);
    const oldest = matches[0];
    if (oldest !== undefined)
      return suffix(oldest + 1, matches.length === 1 ? 'tail' : 'ambiguous', matches.length);
    const since = mark.receivedAt - this.options.timeToleranceMs;
    const first = entries.findIndex((e) => e.event.receivedAt > since);
    return suffix(first === -1 ? entries.length : first, 'time', 0);
  }
}

/**
 * Indexes (ascending) of every entry that ends a run of fingerprints equal to `tail`. When the window
 * holds fewer entries before a candidate than the tail has, the available ones must all match and
 * there must be at least two (one fingerprint alone cannot tell a repeated key apart).
 */
export function findTailMatches(entries: readonly WindowEntry[], tail: readonly string[]): number[] {
  const found: number[] = [];
  if (tail.length === 0) return found;
  const last = tail[tail.length - 1];
  for (let i = 0; i < entries.length; i++) {
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
    if (matches) found.push(i);
  }
  return found;
}
