/**
 * Where the leader's hand-out of one primary's window entries stands within one leadership session
 * (worker/replay/replay-coordinator.ts): the next window position to hand to the processor, the
 * handed-out entries whose outcome the processor has not reported yet, and what the numbering needs
 * to know to keep a line of seqs over consecutive events only. `holdFrom` is the oldest position the
 * window must still keep for this primary: the oldest hand-out not over.
 */
interface HandOut {
  readonly position: number;
  done: boolean;
}

/** Compact the hand-out list once its dead prefix is this long and more than half of it. */
const COMPACT_AFTER = 1024;

export class HandOutCursor {
  /** Window position of the next entry to hand out (or to number as shed). */
  next: number;
  /** Entries before this position are handed out with `replayed: true`. */
  replayedBefore: number;
  /**
   * Window epoch (worker/replay/replay-window.ts) of the last entry numbered in the current line;
   * undefined while the line has no predecessor (a fresh line nothing was numbered in yet).
   */
  epoch: number | undefined;
  /** An entry was passed over without a number since the last one numbered: the line must break. */
  skipped = false;
  /** Handed-out entries in position order; the ones before `head` are done. */
  private handOuts: HandOut[] = [];
  private head = 0;
  private readonly bySeq = new Map<number, HandOut>();

  constructor(next: number, replayedBefore: number, epoch: number | undefined) {
    this.next = next;
    this.replayedBefore = replayedBefore;
    this.epoch = epoch;
  }

  /** The entry at `position` is being offered to the processor as event `seq`. */
  handedOut(position: number, seq: number): void {
    const handOut: HandOut = { position, done: false };
    this.handOuts.push(handOut);
    this.bySeq.set(seq, handOut);
  }

  /** The processor reported the outcome of event `seq` (whatever it was), or refused it. */
  done(seq: number): void {
    const handOut = this.bySeq.get(seq);
    if (!handOut) return;
    this.bySeq.delete(seq);
    handOut.done = true;
    while (this.head < this.handOuts.length && this.handOuts[this.head]?.done) this.head++;
    if (this.head > COMPACT_AFTER && this.head * 2 > this.handOuts.length) {
      this.handOuts = this.handOuts.slice(this.head);
      this.head = 0;
    }
  }

  /** The oldest window position still needed: the oldest hand-out not done, else the next entry. */
  get holdFrom(): number {
    return this.handOuts[this.head]?.position ?? this.next;
  }
}
