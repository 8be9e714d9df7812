import { z } from 'zod';
import { LeaderRecordError } from './errors.ts';

/**
 * The leader record: written by the leader on acquire and on every renewal under
 * `{kl:<name>}:leader`, kept for a day after the lease lapses so a reader can say "no leader since T,
 * last was X". Times are ISO 8601 (UTC) so the record is readable with redis-cli.
 */
export interface LeaderRecord {
  readonly workerId: string;
  /** ECS task ARN, or null outside ECS. */
  readonly taskArn: string | null;
  readonly fencingToken: number;
  readonly acquiredAt: string;
  readonly renewedAt: string;
  /** The lease TTL the leader runs with: the record is stale once renewedAt + leaseTtlMs has passed. */
  readonly leaseTtlMs: number;
  /** Set when the leader released the lease gracefully. */
  readonly releasedAt: string | null;
}

/** How long the record outlives its lease. */
export const LEADER_RECORD_RETENTION_MS = 24 * 60 * 60 * 1000;

const schema = z.object({
  workerId: z.string().min(1),
  taskArn: z.string().nullable(),
  fencingToken: z.number().int().nonnegative(),
  acquiredAt: z.iso.datetime(),
  renewedAt: z.iso.datetime(),
  leaseTtlMs: z.number().int().positive(),
  releasedAt: z.iso.datetime().nullable().default(null),
});

export function encodeLeaderRecord(record: LeaderRecord): string {
  return JSON.stringify(record);
}

export function decodeLeaderRecord(text: string): LeaderRecord {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new LeaderRecordError('leader record is not JSON', { cause });
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success)
    throw new LeaderRecordError(`leader record is malformed: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export type LeaderStatus =
  | { readonly state: 'none' }
  | { readonly state: 'leading'; readonly record: LeaderRecord; readonly ageSeconds: number }
  | { readonly state: 'lapsed'; readonly record: LeaderRecord; readonly noLeaderSince: string };

/**
 * Reads a record at time `nowMs`: `leading` while renewedAt + leaseTtlMs is ahead and it was not
 * released; otherwise `lapsed` with the instant the lease ended ("no leader since T, last was X").
 */
export function leaderStatus(record: LeaderRecord | undefined, nowMs: number): LeaderStatus {
  if (!record) return { state: 'none' };
  const expiresAtMs = Date.parse(record.renewedAt) + record.leaseTtlMs;
  if (record.releasedAt !== null) return { state: 'lapsed', record, noLeaderSince: record.releasedAt };
  if (expiresAtMs <= nowMs)
    return { state: 'lapsed', record, noLeaderSince: new Date(expiresAtMs).toISOString() };
  return {
    state: 'leading',
    record,
    ageSeconds: Math.max(0, (nowMs - Date.parse(record.acquiredAt)) / 1000),
  };
}
