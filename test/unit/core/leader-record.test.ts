import { describe, expect, it } from 'vitest';
import { LeaderRecordError } from '../../../core/errors.ts';
import {
  decodeLeaderRecord,
  encodeLeaderRecord,
  type LeaderRecord,
  leaderStatus,
} from '../../../core/leader-record.ts';

const record: LeaderRecord = {
  workerId: 'w1',
  taskArn: null,
  fencingToken: 4,
  acquiredAt: '2026-01-01T00:00:00.000Z',
  renewedAt: '2026-01-01T00:00:10.000Z',
  leaseTtlMs: 3000,
  releasedAt: null,
};

describe('leader record', () => {
  it('round-trips', () => {
    expect(decodeLeaderRecord(encodeLeaderRecord(record))).toEqual(record);
  });

  it('rejects malformed records with a typed error', () => {
    expect(() => decodeLeaderRecord('{')).toThrow(LeaderRecordError);
    expect(() => decodeLeaderRecord('{"workerId":""}')).toThrow(LeaderRecordError);
  });

  it('is leading until renewedAt + TTL, then lapsed since that instant', () => {
    const renewed = Date.parse(record.renewedAt);
    expect(leaderStatus(record, renewed + 2999)).toMatchObject({ state: 'leading', ageSeconds: 12.999 });
    expect(leaderStatus(record, renewed + 3000)).toEqual({
      state: 'lapsed',
      record,
      noLeaderSince: '2026-01-01T00:00:13.000Z',
    });
    expect(leaderStatus({ ...record, releasedAt: '2026-01-01T00:00:11.000Z' }, renewed + 10)).toMatchObject({
      state: 'lapsed',
      noLeaderSince: '2026-01-01T00:00:11.000Z',
    });
    expect(leaderStatus(undefined, 0)).toEqual({ state: 'none' });
  });
});
