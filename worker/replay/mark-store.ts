import type { Cluster } from 'ioredis';
import type { KeyspaceKeys } from '../../core/keys.ts';
import { decodeProcessedMark, encodeProcessedMark, type ProcessedMark } from './processed-mark.ts';

/**
 * Reads and writes the leader's processed marks. All marks share the hash tag `{kl:<name>:m}`, so
 * one MGET reads every primary's mark and one pipeline writes them. A mark lives `retentionMs` (well
 * beyond the replay window): older than that, no window could align with it anyway.
 */
export class MarkStore {
  constructor(
    private readonly cluster: Cluster,
    private readonly keys: KeyspaceKeys,
    private readonly retentionMs: number,
  ) {}

  async read(nodeIds: readonly string[]): Promise<Map<string, ProcessedMark>> {
    const marks = new Map<string, ProcessedMark>();
    if (nodeIds.length === 0) return marks;
    const values = await this.cluster.mget(...nodeIds.map((id) => this.keys.processedMark(id)));
    nodeIds.forEach((id, i) => {
      const mark = decodeProcessedMark(values[i]);
      if (mark) marks.set(id, mark);
    });
    return marks;
  }

  /**
   * Writes marks unless a newer leader's mark is already there: the Lua guard compares fencing tokens,
   * so a deposed leader that resumes cannot move a mark backwards (or forwards) under the new leader.
   */
  async write(marks: readonly ProcessedMark[]): Promise<void> {
    if (marks.length === 0) return;
    const pipeline = this.cluster.pipeline();
    for (const mark of marks) {
      pipeline.eval(
        WRITE_IF_NOT_OLDER,
        1,
        this.keys.processedMark(mark.nodeId),
        encodeProcessedMark(mark),
        String(mark.fencingToken),
        String(this.retentionMs),
      );
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error !== null);
    if (failed?.[0]) throw failed[0];
  }
}

const WRITE_IF_NOT_OLDER = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.fencingToken) and tonumber(decoded.fencingToken) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`;
