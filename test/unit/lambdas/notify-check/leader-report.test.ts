import { describe, expect, it } from 'vitest';
import type { LeaderRecord } from '../../../../core/leader-record.ts';
import { describeLeader } from '../../../../lambdas/notify-check/leader-report.ts';

const KEY = '{kl:default}:leader';
const record: LeaderRecord = {
  workerId: 'worker-1',
  taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/t1',
  fencingToken: 42,
  acquiredAt: '2030-01-01T00:00:00.000Z',
  renewedAt: '2030-01-01T00:01:00.000Z',
  leaseTtlMs: 3000,
  releasedAt: null,
};

describe('describeLeader', () => {
  it('no record', () => {
    expect(describeLeader(KEY, undefined, Date.parse('2030-01-01T00:00:00Z'))).toMatchObject({
      state: 'none',
      workerId: null,
      fencingToken: null,
      summary: expect.stringMatching(/no leader record/),
    });
  });

  it('leading while renewedAt + TTL is ahead', () => {
    const report = describeLeader(KEY, record, Date.parse('2030-01-01T00:01:02.000Z'));
    expect(report).toMatchObject({
      state: 'leading',
      workerId: 'worker-1',
      taskArn: record.taskArn,
      fencingToken: 42,
      acquiredAt: record.acquiredAt,
      renewedAt: record.renewedAt,
      ageSeconds: 62,
      noLeaderSince: null,
    });
    expect(report.summary).toBe(
      'worker-1 leads since 2030-01-01T00:00:00.000Z (fencing token 42, renewed 2030-01-01T00:01:00.000Z)',
    );
  });

  it('lapsed once renewedAt + TTL has passed: "no leader since T, last was X"', () => {
    const report = describeLeader(KEY, record, Date.parse('2030-01-01T00:05:00.000Z'));
    expect(report).toMatchObject({
      state: 'lapsed',
      noLeaderSince: '2030-01-01T00:01:03.000Z',
      ageSeconds: null,
    });
    expect(report.summary).toBe(
      'no leader since 2030-01-01T00:01:03.000Z, last was worker-1 (fencing token 42, lease expired)',
    );
  });

  it('lapsed at the release time after a graceful release', () => {
    const released = { ...record, releasedAt: '2030-01-01T00:01:01.500Z' };
    const report = describeLeader(KEY, released, Date.parse('2030-01-01T00:01:02.000Z'));
    expect(report).toMatchObject({ state: 'lapsed', noLeaderSince: '2030-01-01T00:01:01.500Z' });
    expect(report.summary).toMatch(/released the lease/);
  });
});
