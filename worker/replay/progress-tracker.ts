import type { ProcessedMark } from './processed-mark.ts';

/**
 * The leader's side of replay: it numbers each primary's events as they are handed to the processor
 * and, as handler calls settle (in any order, concurrency > 1), advances the contiguous prefix of
 * settled events. The mark it exposes (seq, tail, receipt time, line end, reservation) is what the
 * next leader aligns with. A settled event is one whose handler call completed or failed.
 *
 * Numbering (the rules are in worker/replay/processed-mark.ts and docs/worker.md, "Event identity"):
 * seqs are assigned in lines of consecutive numbers, and only inside a reservation that was confirmed
 * (`confirm`, after a majority of the mark copies took it): `assign` returns undefined until then,
 * and the caller holds the primary's events. A line is extended ahead of use (`reservationBlock`
 * at a time, when less than half a block is left); a gap in the stream (`breakLine`) starts a new
 * line above everything reserved.
 */
interface Outstanding {
  readonly fingerprint: string;
  readonly receivedAt: number;
  settled: boolean;
}

interface Line {
  /** First seq this tracker assigns in the line. */
  readonly start: number;
  /** Last seq of the line (grows when the line is extended). */
  end: number;
  /**
   * Opened above every reservation (a fresh begin or a jump), not continuing a previous leader's
   * line: until its first seq is assigned, no seq of it names any event.
   */
  readonly fresh: boolean;
}

/** How a primary's numbering starts: continuing a mark's line, or a fresh line above `reservedThrough`. */
export type NumberingStart =
  | { readonly kind: 'continue'; readonly mark: ProcessedMark }
  | {
      readonly kind: 'fresh';
      readonly reservedThrough: number;
      /** The previous mark's receipt time, kept until this line settles something (time alignment). */
      readonly receivedAt?: number;
    };

class PrimaryProgress {
  /** Sequence number the next event of this primary receives. */
  nextSeq: number;
  /** Last seq of the contiguous settled prefix. */
  doneSeq: number;
  doneReceivedAt = 0;
  readonly outstanding = new Map<number, Outstanding>();
  readonly tail: string[];
  /** Ascending, disjoint; the last one is the current line. */
  readonly lines: Line[];
  /** Last seq of a line -> first seq of the next (where the settled prefix jumps). */
  readonly jumps = new Map<number, number>();
  /** Highest seq reserved (to be written with the next marks; at least what the marks read said). */
  reservedThrough: number;
  /** Highest seq of the current line a confirmed write covers: `assign` never goes beyond. */
  confirmedThrough: number;
  /** What the last `takeDirtyMarks` asked to reserve, confirmed by `confirm`. */
  pendingThrough: number | undefined;
  dirty = true;

  constructor(
    first: number,
    lineEnd: number,
    reservedThrough: number,
    tail: readonly string[],
    fresh: boolean,
  ) {
    this.nextSeq = first;
    this.doneSeq = first - 1;
    this.lines = [{ start: first, end: lineEnd, fresh }];
    this.reservedThrough = Math.max(reservedThrough, lineEnd);
    this.confirmedThrough = first - 1;
    this.tail = [...tail];
  }

  get line(): Line {
    return this.lines[this.lines.length - 1] as Line;
  }

  /** The end of the line holding `seq` (or of the first line after it). */
  lineEndOf(seq: number): number {
    for (const line of this.lines) if (line.end >= seq) return line.end;
    return this.line.end;
  }

  /**
   * Opens a new line above every reservation; assignments wait for its confirmation. A fresh line
   * nothing was assigned in yet needs no break (its first seq will name the next event either way).
   */
  jump(block: number): void {
    if (this.line.fresh && this.nextSeq === this.line.start) return;
    const start = this.reservedThrough + 1;
    this.jumps.set(this.nextSeq - 1, start);
    this.nextSeq = start;
    this.lines.push({ start, end: start + block - 1, fresh: true });
    this.reservedThrough = start + block - 1;
    this.dirty = true;
  }
}

export class ProgressTracker {
  private readonly primaries = new Map<string, PrimaryProgress>();

  /**
   * @param reservationBlock seqs reserved at a time, ahead of use. @default 1_000_000
   */
  constructor(
    private readonly tailLength: number,
    private readonly fencingToken: number,
    private readonly reservationBlock = 1_000_000,
  ) {
    if (!(tailLength >= 2)) throw new RangeError('tailLength must be >= 2');
    if (!(reservationBlock >= 2)) throw new RangeError('reservationBlock must be >= 2');
  }

  /**
   * Starts the numbering of a primary: continuing `start.mark`'s line at `mark.seq + 1` (the plan
   * aligned with it unambiguously), or a fresh line at `start.reservedThrough + 1`. Nothing can be
   * assigned before the first `confirm`.
   */
  begin(nodeId: string, start: NumberingStart): void {
    const block = this.reservationBlock;
    if (start.kind === 'continue') {
      const { mark } = start;
      const progress = new PrimaryProgress(
        mark.seq + 1,
        mark.lineEnd,
        mark.reservedThrough,
        mark.tail.slice(-this.tailLength),
        false,
      );
      progress.doneReceivedAt = mark.receivedAt;
      // A line that ends at the family's highest reservation may grow; else it ends where it ends.
      if (progress.line.end === progress.reservedThrough) this.extendIfLow(progress);
      this.primaries.set(nodeId, progress);
      return;
    }
    // No tail: nobody may continue this line before it settled an event of its own.
    const first = start.reservedThrough + 1;
    const progress = new PrimaryProgress(first, first + block - 1, first + block - 1, [], true);
    progress.doneReceivedAt = start.receivedAt ?? 0;
    this.primaries.set(nodeId, progress);
  }

  has(nodeId: string): boolean {
    return this.primaries.has(nodeId);
  }

  /**
   * The next event of `nodeId` is not consecutive with the last one numbered (a gap in this leader's
   * window, or events it passed over unnumbered): it is numbered in a new line, so no successor
   * continuing the old line can give one of its seqs to another event. Call it right before numbering
   * that event, not earlier: events still to be numbered before the discontinuity belong to the old line.
   */
  breakLine(nodeId: string): void {
    this.primaries.get(nodeId)?.jump(this.reservationBlock);
  }

  /** True when the next event of `nodeId` can be numbered now. */
  canAssign(nodeId: string): boolean {
    const progress = this.primaries.get(nodeId);
    if (!progress) return false;
    this.advanceLine(progress);
    return progress.nextSeq <= progress.confirmedThrough && progress.nextSeq <= progress.line.end;
  }

  /** Numbers the next event of `nodeId`; undefined when no confirmed reservation covers it (hold it). */
  assign(nodeId: string, fingerprint: string, receivedAt: number): number | undefined {
    const progress = this.primaries.get(nodeId);
    if (!progress || !this.canAssign(nodeId)) return undefined;
    const seq = progress.nextSeq++;
    progress.outstanding.set(seq, { fingerprint, receivedAt, settled: false });
    this.extendIfLow(progress);
    return seq;
  }

  /** Records that the call for (`nodeId`, `seq`) settled (done or failed). */
  settle(nodeId: string, seq: number): void {
    const progress = this.primaries.get(nodeId);
    const entry = progress?.outstanding.get(seq);
    if (!progress || !entry) return;
    entry.settled = true;
    for (;;) {
      const nextSeq = progress.jumps.get(progress.doneSeq) ?? progress.doneSeq + 1;
      const next = progress.outstanding.get(nextSeq);
      if (!next?.settled) break;
      progress.outstanding.delete(nextSeq);
      progress.jumps.delete(progress.doneSeq);
      progress.doneSeq = nextSeq;
      progress.doneReceivedAt = next.receivedAt;
      progress.tail.push(next.fingerprint);
      if (progress.tail.length > this.tailLength) progress.tail.shift();
      progress.dirty = true;
    }
  }

  /**
   * Events that will never settle here (shed from the queue, filtered) must not hold the prefix back
   * forever; they are skipped as if settled. Shedding is already counted elsewhere.
   */
  abandon(nodeId: string, seq: number): void {
    this.settle(nodeId, seq);
  }

  /** Marks changed since the last call (progress or a reservation to confirm). */
  takeDirtyMarks(): ProcessedMark[] {
    const marks: ProcessedMark[] = [];
    for (const [nodeId, progress] of this.primaries) {
      if (!progress.dirty) continue;
      progress.dirty = false;
      progress.pendingThrough = progress.line.end;
      marks.push({
        nodeId,
        seq: progress.doneSeq,
        tail: [...progress.tail],
        receivedAt: progress.doneReceivedAt,
        fencingToken: this.fencingToken,
        lineEnd: progress.lineEndOf(progress.doneSeq),
        reservedThrough: progress.reservedThrough,
      });
    }
    return marks;
  }

  /**
   * The marks last taken for `nodeIds` reached a majority of the copies: their reservations may be
   * used. Returns the primaries that can now number again.
   */
  confirm(nodeIds: readonly string[]): string[] {
    const ready: string[] = [];
    for (const nodeId of nodeIds) {
      const progress = this.primaries.get(nodeId);
      if (progress?.pendingThrough === undefined) continue;
      progress.confirmedThrough = Math.max(progress.confirmedThrough, progress.pendingThrough);
      progress.pendingThrough = undefined;
      if (this.canAssign(nodeId)) ready.push(nodeId);
    }
    return ready;
  }

  /** Marks `nodeIds` dirty again (their last write failed or fell short of a majority). */
  restoreDirty(nodeIds: readonly string[]): void {
    for (const nodeId of nodeIds) {
      const progress = this.primaries.get(nodeId);
      if (progress) progress.dirty = true;
    }
  }

  /** Calls handed out but not settled, over all primaries. */
  get inFlight(): number {
    let count = 0;
    for (const progress of this.primaries.values()) {
      for (const o of progress.outstanding.values()) if (!o.settled) count++;
    }
    return count;
  }

  /** Reserves the next block of the current line when less than half a block is left. */
  private extendIfLow(progress: PrimaryProgress): void {
    const { line } = progress;
    const extendable = line.end === progress.reservedThrough;
    if (!extendable || line.end - progress.nextSeq >= this.reservationBlock / 2) return;
    line.end = progress.nextSeq + this.reservationBlock - 1;
    progress.reservedThrough = line.end;
    progress.dirty = true;
  }

  /** A line that cannot grow (a later line of another leader lies above it) is left once used up. */
  private advanceLine(progress: PrimaryProgress): void {
    if (progress.nextSeq > progress.line.end && progress.line.end !== progress.reservedThrough) {
      progress.jump(this.reservationBlock);
    }
  }
}
