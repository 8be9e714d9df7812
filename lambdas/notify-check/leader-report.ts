import type { Clock } from '../../core/clock.ts';
import { keySlot } from '../../core/key-slot.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import { decodeLeaderRecord, type LeaderRecord, leaderStatus } from '../../core/leader-record.ts';
import type { Logger } from '../../core/logger.ts';
import type { Topology } from '../../core/topology.ts';
import { describeError } from './errors.ts';
import type { NodePool } from './redis-nodes.ts';
import type { LeaderReport } from './report.ts';

/**
 * Reads the leader record (`{kl:<name>}:leader`, core/leader-record.ts) from the primary that owns
 * its slot and states who leads, or "no leader since T, last was X" once the lease has lapsed.
 */

export interface LeaderReportOptions {
  readonly topology: Topology;
  readonly keys: KeyspaceKeys;
  readonly pool: NodePool;
  readonly stepTimeoutMs: () => number;
  readonly clock: Clock;
  readonly logger: Logger;
}

function emptyReport(key: string): Omit<LeaderReport, 'state' | 'summary' | 'error'> {
  return {
    key,
    workerId: null,
    taskArn: null,
    fencingToken: null,
    acquiredAt: null,
    renewedAt: null,
    releasedAt: null,
    leaseTtlMs: null,
    ageSeconds: null,
    noLeaderSince: null,
  };
}

function recordFields(record: LeaderRecord): Partial<LeaderReport> {
  return {
    workerId: record.workerId,
    taskArn: record.taskArn,
    fencingToken: record.fencingToken,
    acquiredAt: record.acquiredAt,
    renewedAt: record.renewedAt,
    releasedAt: record.releasedAt,
    leaseTtlMs: record.leaseTtlMs,
  };
}

/** Describes a record read at `nowMs` (undefined: no record). Pure; used by the run and by tests. */
export function describeLeader(key: string, record: LeaderRecord | undefined, nowMs: number): LeaderReport {
  const status = leaderStatus(record, nowMs);
  if (status.state === 'none') {
    return {
      ...emptyReport(key),
      state: 'none',
      summary: 'no leader record: no worker has held the lease in the last 24 h',
      error: null,
    };
  }
  const r = status.record;
  if (status.state === 'leading') {
    return {
      ...emptyReport(key),
      ...recordFields(r),
      state: 'leading',
      ageSeconds: Math.round(status.ageSeconds * 10) / 10,
      summary: `${r.workerId} leads since ${r.acquiredAt} (fencing token ${r.fencingToken}, renewed ${r.renewedAt})`,
      error: null,
    };
  }
  const how = r.releasedAt !== null ? 'released the lease' : 'lease expired';
  return {
    ...emptyReport(key),
    ...recordFields(r),
    state: 'lapsed',
    noLeaderSince: status.noLeaderSince,
    summary: `no leader since ${status.noLeaderSince}, last was ${r.workerId} (fencing token ${r.fencingToken}, ${how})`,
    error: null,
  };
}

/** Never throws: an unreadable record is `state: unreadable` with the reason. */
export async function readLeaderReport(options: LeaderReportOptions): Promise<LeaderReport> {
  const key = options.keys.leader;
  const slot = keySlot(key);
  const shard = options.topology.shards.find((s) =>
    s.slots.some(([first, last]) => slot >= first && slot <= last),
  );
  const unreadable = (error: string): LeaderReport => ({
    ...emptyReport(key),
    state: 'unreadable',
    summary: `leader record unreadable: ${error}`,
    error,
  });
  if (!shard?.primary || shard.primary.health === 'failed') {
    return unreadable(`slot ${slot} of ${key} has no live primary`);
  }
  try {
    const connection = await options.pool.get(shard.primary, options.stepTimeoutMs());
    const raw = await connection.call('GET', [key], options.stepTimeoutMs());
    const text =
      raw === null || raw === undefined
        ? undefined
        : Buffer.isBuffer(raw)
          ? raw.toString('utf8')
          : String(raw);
    const report = describeLeader(
      key,
      text === undefined ? undefined : decodeLeaderRecord(text),
      options.clock.wallMs(),
    );
    options.logger.info('leader.reported', {
      state: report.state,
      leaderWorkerId: report.workerId,
      fencingToken: report.fencingToken,
      noLeaderSince: report.noLeaderSince,
    });
    return report;
  } catch (error) {
    options.logger.warn('leader.unreadable', { error });
    return unreadable(describeError(error));
  }
}
