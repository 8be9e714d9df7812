import type { Cluster } from 'ioredis';
import type { KeyspaceKeys } from '../../core/keys.ts';
import { WRITE_IF_NOT_OLDER } from '../fenced-write.ts';
import { decodeProcessedMark, encodeProcessedMark, type ProcessedMark } from './processed-mark.ts';

/**
 * Reads and writes the leader's processed marks. Each mark is kept in `copyPartitions.length` copies,
 * one beside each quorum lease member (`{kl:<name>:p<i>}:processed:<nodeId>`, on three different
 * primaries), so a primary that fails over, or loses its last writes doing so, does not take the marks
 * with it: a reader takes, per primary, the newest copy it can read (highest fencing token, then
 * sequence). A write succeeds when at least one copy was written; a read needs one answering copy.
 * A mark lives `retentionMs` (far beyond the replay window: an older one cannot align anyway).
 */
export class MarkStore {
  constructor(
    private readonly cluster: Cluster,
    private readonly keys: KeyspaceKeys,
    private readonly copyPartitions: readonly number[],
    private readonly retentionMs: number,
  ) {
    if (copyPartitions.length === 0) throw new RangeError('MarkStore needs at least one copy');
  }

  async read(nodeIds: readonly string[]): Promise<Map<string, ProcessedMark>> {
    const marks = new Map<string, ProcessedMark>();
    if (nodeIds.length === 0) return marks;
    const copies = await Promise.allSettled(
      this.copyPartitions.map((p) =>
        this.cluster.mget(...nodeIds.map((id) => this.keys.processedMark(p, id))),
      ),
    );
    const answered = copies.filter((c) => c.status === 'fulfilled');
    if (answered.length === 0) {
      throw new AggregateError(
        copies.map((c) => (c.status === 'rejected' ? c.reason : undefined)),
        'no copy of the processed marks could be read',
      );
    }
    for (const copy of answered) {
      nodeIds.forEach((id, i) => {
        const mark = decodeProcessedMark(copy.value[i]);
        const best = marks.get(id);
        if (mark && (!best || newer(mark, best))) marks.set(id, mark);
      });
    }
    return marks;
  }

  /**
   * Writes every mark to every copy unless a newer leader's mark is already there: the Lua guard
   * compares fencing tokens, so a deposed leader that resumes cannot move a mark under the new leader.
   */
  async write(marks: readonly ProcessedMark[]): Promise<void> {
    if (marks.length === 0) return;
    // One pipeline per copy: an ioredis Cluster pipeline must stay on one node, and each copy's tag
    // is on its own primary.
    const copies = await Promise.allSettled(
      this.copyPartitions.map(async (p) => {
        const pipeline = this.cluster.pipeline();
        for (const mark of marks) {
          pipeline.eval(
            WRITE_IF_NOT_OLDER,
            1,
            this.keys.processedMark(p, mark.nodeId),
            encodeProcessedMark(mark),
            String(mark.fencingToken),
            String(this.retentionMs),
          );
        }
        const results = (await pipeline.exec()) ?? [];
        const failed = results.find(([error]) => error !== null);
        if (failed?.[0]) throw failed[0];
      }),
    );
    if (copies.every((c) => c.status === 'rejected')) {
      throw new AggregateError(
        copies.map((c) => (c.status === 'rejected' ? c.reason : undefined)),
        'no copy of the processed marks could be written',
      );
    }
  }
}

function newer(a: ProcessedMark, b: ProcessedMark): boolean {
  return a.fencingToken !== b.fencingToken ? a.fencingToken > b.fencingToken : a.seq > b.seq;
}
