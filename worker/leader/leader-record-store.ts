import type { Cluster } from 'ioredis';
import { withTimeout } from '../../core/errors.ts';
import {
  decodeLeaderRecord,
  encodeLeaderRecord,
  LEADER_RECORD_RETENTION_MS,
  type LeaderRecord,
} from '../../core/leader-record.ts';
import { scriptsOn } from '../scripts/registry.ts';
import { setIfNotOlder } from '../scripts/set-if-not-older.ts';

/** Where the leader record (core/leader-record.ts) lives. */
export interface LeaderRecordStore {
  /** The stored record, or undefined when there is none. Rejects on a malformed record or Redis error. */
  read(): Promise<LeaderRecord | undefined>;
  /**
   * Stores `record` (kept for a day) unless the stored record carries a HIGHER fencing token:
   * resolves false then. Fencing tokens grow with every leader, so a write from a deposed leader that
   * raced its lost lease can never overwrite its successor's record; at worst it lands before the
   * successor's first write, which replaces it a few milliseconds later.
   */
  write(record: LeaderRecord): Promise<boolean>;
}

/** The store on `keys.leader`, through the shared Cluster client; every call bounded by `timeoutMs`. */
export class RedisLeaderRecordStore implements LeaderRecordStore {
  constructor(
    private readonly cluster: Cluster,
    private readonly key: string,
    private readonly timeoutMs = 1000,
  ) {}

  async read(): Promise<LeaderRecord | undefined> {
    const text = await withTimeout(this.cluster.get(this.key), this.timeoutMs, `read of ${this.key}`);
    return text === null ? undefined : decodeLeaderRecord(text);
  }

  async write(record: LeaderRecord): Promise<boolean> {
    return await withTimeout(
      scriptsOn(this.cluster).run(
        setIfNotOlder,
        [this.key],
        [encodeLeaderRecord(record), String(record.fencingToken), String(LEADER_RECORD_RETENTION_MS)],
      ),
      this.timeoutMs,
      `write of ${this.key}`,
    );
  }
}
