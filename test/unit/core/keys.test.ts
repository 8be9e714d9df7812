import { describe, expect, it } from 'vitest';
import { keySlot } from '../../../core/key-slot.ts';
import { isOwnKey, KeyspaceKeys } from '../../../core/keys.ts';

describe('keySlot', () => {
  it('matches Redis CLUSTER KEYSLOT for known keys', () => {
    // Values from redis-cli CLUSTER KEYSLOT on Redis 7.0.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{}{bar}')).toBe(keySlot('foo{}{bar}'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    expect(keySlot(Buffer.from([0xff, 0x00]))).toBeGreaterThanOrEqual(0);
  });
});

describe('KeyspaceKeys', () => {
  const keys = new KeyspaceKeys('blue');

  it('builds the lease family under one hash tag', () => {
    expect([keys.lease, keys.epoch, keys.leader, keys.releasedChannel]).toEqual([
      '{kl:blue}:lease',
      '{kl:blue}:epoch',
      '{kl:blue}:leader',
      '{kl:blue}:released',
    ]);
    const slot = keySlot(keys.lease);
    expect(new Set([keys.epoch, keys.leader].map(keySlot))).toEqual(new Set([slot]));
  });

  it('places partition tags on requested slot ranges', () => {
    const index = KeyspaceKeys.findIndexOnSlots([[10923, 16383]], (i) => keys.quorumLease(i));
    const slot = keySlot(keys.quorumLease(index));
    expect(slot).toBeGreaterThanOrEqual(10923);
    expect(keySlot(keys.quorumEpoch(index))).toBe(slot);
  });

  it('recognises its own keys, as strings and bytes', () => {
    expect(isOwnKey(keys.canary(3, 'n'))).toBe(true);
    expect(isOwnKey(Buffer.from(keys.outbox(1)))).toBe(true);
    expect(isOwnKey('user:{kl:1}')).toBe(false);
  });

  it('rejects leader names that would break the hash tag', () => {
    expect(() => new KeyspaceKeys('a}b')).toThrow(RangeError);
    expect(() => new KeyspaceKeys('')).toThrow(RangeError);
  });
});
