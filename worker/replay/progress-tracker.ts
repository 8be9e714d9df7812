import type { ProcessedMark } from './processed-mark.ts';

/**
 * The leader's side of replay: it numbers each primary's events as they are handed to the processor
 * and, as handler calls settle (in any order, concurrency > 1), advances the contiguous prefix of
 * settled events. The mark it exposes (seq, tail, receipt time) is what the next leader aligns with.
 * A settled event is one whose handler call completed or failed: failures are reported, not retried.
 */
interface Outstanding {
  readonly fingerprint: string;
  readonly receivedAt: number;
  settled: boolean;
}

class PrimaryProgress {
  /** Sequence number the next event of this primary receives. */
  nextSeq: number;
  /** Last seq of the contiguous settled prefix. */
  doneSeq: number;
  doneReceivedAt = 0;
  readonly outstanding = new Map<number, Outstanding>();
  readonly tail: string[];
  dirty = false;

  constructor(firstSeq: number, initialTail: readonly string[]) {
    this.nextSeq = firstSeq;
    this.doneSeq = firstSeq - 1;
    this.tail = [...initialTail];
  }
}

export class ProgressTracker {
  private readonly primaries = new Map<string, PrimaryProgress>();

  constructor(
    private readonly tailLength: number,
    private readonly fencingToken: number,
  ) {
    if (!(tailLength >= 2)) throw new RangeError('tailLength must be >= 2');
  }

  /**
   * Starts (or restarts) the numbering of a primary at `firstSeq`, continuing the previous leader's
   * tail when the replay plan aligned with it.
   */
  begin(nodeId: string, firstSeq: number, previousTail: readonly string[] = []): void {
    this.primaries.set(nodeId, new PrimaryProgress(firstSeq, previousTail.slice(-this.tailLength)));
  }

  /** Numbers the next event of `nodeId`; returns its sequence number. */
  assign(nodeId: string, fingerprint: string, receivedAt: number): number {
    let progress = this.primaries.get(nodeId);
    if (!progress) {
      progress = new PrimaryProgress(1, []);
      this.primaries.set(nodeId, progress);
    }
    const seq = progress.nextSeq++;
    progress.outstanding.set(seq, { fingerprint, receivedAt, settled: false });
    return seq;
  }

  /** Records that the call for (`nodeId`, `seq`) settled (done or failed). */
  settle(nodeId: string, seq: number): void {
    const progress = this.primaries.get(nodeId);
    const entry = progress?.outstanding.get(seq);
    if (!progress || !entry) return;
    entry.settled = true;
    for (;;) {
      const next = progress.outstanding.get(progress.doneSeq + 1);
      if (!next?.settled) break;
      progress.outstanding.delete(progress.doneSeq + 1);
      progress.doneSeq++;
      progress.doneReceivedAt = next.receivedAt;
      progress.tail.push(next.fingerprint);
      if (progress.tail.length > this.tailLength) progress.tail.shift();
      progress.dirty = true;
    }
  }

  /**
   * Events that will never settle here (shed from the queue, aborted at hand-over) must not hold the
   * prefix back forever; they are skipped as if settled. Shedding is already counted elsewhere.
   */
  abandon(nodeId: string, seq: number): void {
    this.settle(nodeId, seq);
  }

  /** Marks changed since the last call. */
  takeDirtyMarks(): ProcessedMark[] {
    const marks: ProcessedMark[] = [];
    for (const [nodeId, progress] of this.primaries) {
      if (!progress.dirty) continue;
      progress.dirty = false;
      marks.push({
        nodeId,
        seq: progress.doneSeq,
        tail: [...progress.tail],
        receivedAt: progress.doneReceivedAt,
        fencingToken: this.fencingToken,
      });
    }
    return marks;
  }

  /** Marks `nodeIds` dirty again (their last write failed), so the next write carries them. */
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
}
