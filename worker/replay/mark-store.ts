import type { Cluster } from 'ioredis';
import { withTimeout } from '../../core/errors.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import { scriptsOn } from '../scripts/registry.ts';
import { setIfNotOlder } from '../scripts/set-if-not-older.ts';
import {
  decodeProcessedMark,
  encodeProcessedMark,
  isNewerMark,
  type ProcessedMark,
} from './processed-mark.ts';

/** What a read of the marks found, and how many copies it rests on. */
export interface MarkReadResult {
  /** Per primary, the newest mark over the copies that answered. */
  readonly marks: Map<string, ProcessedMark>;
  readonly copiesAnswered: number;
  readonly copies: number;
}

/**
 * Reads and writes the leader's processed marks. Each mark is kept in `copyPartitions.length` copies,
 * one beside each quorum lease member (`{kl:<name>:p<i>}:processed:<nodeId>`, on three different
 * primaries), so a primary that fails over, or loses its last writes doing so, does not take the marks
 * with it.
 *
 * - A read bounds each copy on its own (`copyTimeoutMs`): a copy on a hung primary costs that copy,
 *   never the others. It takes, per primary, the newest mark over the copies that answered (one
 *   answering copy is enough to return marks) and says how many answered: the numbering rules need a
 *   majority to trust a reservation (worker/replay/processed-mark.ts).
 * - A write goes to every copy and reports how many copies took it (a copy holding a newer leader's
 *   mark refuses it: the Lua guard compares fencing tokens).
 * - Marks never expire: a quiet primary's mark is the only record of which seqs were used on it, and
 *   a primary with no mark is numbered from 1. One mark per primary node id ever numbered (~200 bytes
 *   x copies).
 */
export class MarkStore {
  constructor(
    private readonly cluster: Cluster,
    private readonly keys: KeyspaceKeys,
    private readonly copyPartitions: readonly number[],
    private readonly copyTimeoutMs: number,
  ) {
    if (copyPartitions.length === 0) throw new RangeError('MarkStore needs at least one copy');
    if (!(copyTimeoutMs > 0)) throw new RangeError('copyTimeoutMs must be > 0');
  }

  get copies(): number {
    return this.copyPartitions.length;
  }

  /** Rejects (AggregateError) only when no copy answered. */
  async read(nodeIds: readonly string[]): Promise<MarkReadResult> {
    const marks = new Map<string, ProcessedMark>();
    const copies = this.copyPartitions.length;
    if (nodeIds.length === 0) return { marks, copiesAnswered: copies, copies };
    const results = await Promise.allSettled(
      this.copyPartitions.map((p) =>
        withTimeout(
          this.cluster.mget(...nodeIds.map((id) => this.keys.processedMark(p, id))),
          this.copyTimeoutMs,
          `read processed marks (copy ${p})`,
        ),
      ),
    );
    const answered = results.filter((c) => c.status === 'fulfilled');
    if (answered.length === 0) {
      throw new AggregateError(
        results.map((c) => (c.status === 'rejected' ? c.reason : undefined)),
        'no copy of the processed marks could be read',
      );
    }
    for (const copy of answered) {
      nodeIds.forEach((id, i) => {
        const mark = decodeProcessedMark(copy.value[i]);
        const best = marks.get(id);
        if (mark && (!best || isNewerMark(mark, best))) marks.set(id, mark);
      });
    }
    return { marks, copiesAnswered: answered.length, copies };
  }

  /**
   * Writes every mark to every copy unless a newer leader's mark is already there. Returns how many
   * copies took every mark; rejects when none did.
   */
  async write(marks: readonly ProcessedMark[]): Promise<number> {
    if (marks.length === 0) return this.copyPartitions.length;
    // One pipeline per copy: an ioredis Cluster pipeline must stay on one node, and each copy's tag
    // is on its own primary.
    const copies = await Promise.allSettled(
      this.copyPartitions.map((p) =>
        withTimeout(this.writeCopy(p, marks), this.copyTimeoutMs, `write processed marks (copy ${p})`),
      ),
    );
    const written = copies.filter((c) => c.status === 'fulfilled' && c.value).length;
    if (written === 0) {
      throw new AggregateError(
        copies.map((c) => (c.status === 'rejected' ? c.reason : undefined)),
        'no copy of the processed marks could be written',
      );
    }
    return written;
  }

  /** True when the copy took every mark (false: a newer leader's mark refused one). */
  private async writeCopy(partition: number, marks: readonly ProcessedMark[]): Promise<boolean> {
    const scripts = scriptsOn(this.cluster);
    const pipeline = this.cluster.pipeline();
    for (const mark of marks) {
      scripts.queue(
        pipeline,
        setIfNotOlder,
        [this.keys.processedMark(partition, mark.nodeId)],
        [encodeProcessedMark(mark), String(mark.fencingToken), '0'], // '0': no expiry (see the class comment)
      );
    }
    const results = (await pipeline.exec()) ?? [];
    // Throws the first failed entry's error; the copy took every mark only when each answered 1.
    const taken = results.map((entry) => scripts.settle(setIfNotOlder, entry));
    return taken.length === marks.length && taken.every(Boolean);
  }
}
