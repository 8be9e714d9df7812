import { describe, expect, it } from 'vitest';
import { KeyspaceKeys } from '../../../../core/keys.ts';
import {
  describeHolding,
  hardestLeaseMember,
  isLeaseKey,
  isProcessedMark,
  type PrimaryHolding,
  publishingOnlyPrimary,
} from '../../../../local/chaos/lease-holders.ts';

const LEADER_NAME = 'chaos';
const NODE_ID = '07c37dfeb235213a872192d90877d0cd55635b91';

describe('lease-holders', () => {
  const keys = new KeyspaceKeys(LEADER_NAME);

  it('sequence 12: a processed mark built by core/keys.ts is recognised as a mark', () => {
    const mark = keys.processedMark(3, NODE_ID);
    expect(isProcessedMark(mark, LEADER_NAME)).toBe(true);
    const holding: PrimaryHolding = {
      port: 30001,
      address: '127.0.0.1:30001',
      answered: true,
      keys: [keys.quorumLease(3), keys.quorumEpoch(3), mark],
      leaseKeys: [keys.quorumLease(3)],
    };
    expect(describeHolding(holding, LEADER_NAME)).toContain('1 processed mark(s)');
  });

  function holding(port: number, keysHeld: readonly string[]): PrimaryHolding {
    return {
      port,
      address: `127.0.0.1:${port}`,
      answered: true,
      keys: keysHeld,
      leaseKeys: keysHeld.filter((k) => isLeaseKey(k, LEADER_NAME)),
    };
  }
  const member = (p: number) => [keys.quorumLease(p), keys.quorumEpoch(p), keys.processedMark(p, NODE_ID)];
  const family = [keys.epoch, keys.leader, keys.coverage];

  it('sequence 12: kill-lease-primary targets the member holding marks and the family keys', () => {
    const holders = [
      holding(30001, member(0)),
      holding(30002, [...member(4), ...family]),
      holding(30003, member(9)),
      holding(30004, []),
    ];
    expect(hardestLeaseMember(holders, LEADER_NAME)?.port).toBe(30002);
    expect(describeHolding(holders[1] as PrimaryHolding, LEADER_NAME)).toBe(
      'lease member(s) p4; family keys epoch, leader-record, coverage; 1 processed mark(s)',
    );
  });

  it('sequence 12: kill-publishing-primary avoids a primary holding (stale) processed marks', () => {
    const holders = [
      holding(30001, member(0)),
      holding(30002, member(4)),
      holding(30003, member(9)),
      holding(30004, [keys.processedMark(21, NODE_ID)]),
      holding(30005, family),
    ];
    expect(publishingOnlyPrimary(holders, LEADER_NAME)?.port).toBe(30005);
  });
});
