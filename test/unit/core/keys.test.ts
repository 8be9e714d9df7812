import { describe, expect, it } from 'vitest';
import { keySlot } from '../../../core/key-slot.ts';
import { FAMILY_KEY_KINDS, isOwnKey, KeyspaceKeys, type OwnKeyClass } from '../../../core/keys.ts';

describe('keySlot', () => {
  it('matches Redis CLUSTER KEYSLOT for known keys', () => {
    // Values from redis-cli CLUSTER KEYSLOT on Redis 7.0.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    // An empty tag `{}` is no tag: the whole key is hashed (not `bar`, the second braces' content).
    expect(keySlot('foo{}{bar}')).toBe(8363);
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    // Bytes that are not UTF-8 are hashed as they are (CLUSTER KEYSLOT of the two bytes 0xff 0x00).
    expect(keySlot(Buffer.from([0xff, 0x00]))).toBe(1023);
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

  describe('classify', () => {
    const NODE_ID = '07c37dfeb235213a872192d90877d0cd55635b91';
    /** Every name KeyspaceKeys builds, by the member that builds it, with what classify must say. */
    const built: Record<string, [string, OwnKeyClass]> = {
      lease: [keys.lease, { kind: 'lease' }],
      epoch: [keys.epoch, { kind: 'epoch' }],
      leader: [keys.leader, { kind: 'leader-record' }],
      releasedChannel: [keys.releasedChannel, { kind: 'released-channel' }],
      coverage: [keys.coverage, { kind: 'coverage' }],
      quorumLease: [keys.quorumLease(7), { kind: 'quorum-lease', partitionIndex: 7 }],
      quorumEpoch: [keys.quorumEpoch(0), { kind: 'quorum-epoch', partitionIndex: 0 }],
      processedMark: [
        keys.processedMark(12, NODE_ID),
        { kind: 'processed-mark', partitionIndex: 12, nodeId: NODE_ID },
      ],
      outbox: [keys.outbox(15), { kind: 'outbox', partitionIndex: 15 }],
      outboxFence: [keys.outboxFence(3), { kind: 'outbox-fence', partitionIndex: 3 }],
      canary: [keys.canary(41, 'run-1'), { kind: 'canary', tagIndex: 41, nonce: 'run-1' }],
      expireProbe: [
        keys.expireProbe(5, 'inst-1'),
        { kind: 'expire-probe', partitionIndex: 5, instanceId: 'inst-1' },
      ],
    };
    /** Members of KeyspaceKeys that build no key of their own. */
    const NOT_KEY_BUILDERS = new Set(['constructor', 'partitionTag', 'scanPattern', 'classify']);

    it('sequence 12: classifies every key kind KeyspaceKeys builds, with its index, node id or nonce', () => {
      for (const [member, [key, expected]] of Object.entries(built)) {
        expect({ member, class: keys.classify(key) }).toEqual({ member, class: expected });
      }
    });

    it('sequence 12: the table above covers every key builder (a new key kind needs a classification)', () => {
      const members = Object.getOwnPropertyNames(KeyspaceKeys.prototype).filter(
        (name) => !NOT_KEY_BUILDERS.has(name),
      );
      expect(members.sort()).toEqual(Object.keys(built).sort());
    });

    it('sequence 12: every built key matches the SCAN pattern and the lease family shares its tag', () => {
      const glob = new RegExp(`^${keys.scanPattern.replace(/[{}.]/g, '\\$&').replace('*', '.*')}$`);
      for (const [key, expected] of Object.values(built)) {
        expect(glob.test(key)).toBe(true);
        expect(key.startsWith(`${keys.familyTag}:`)).toBe(FAMILY_KEY_KINDS.has(expected.kind));
      }
    });

    it('sequence 12: foreign, other-leader and malformed keys are not classified', () => {
      const other = new KeyspaceKeys('blue2');
      for (const key of [
        'orders:1',
        '{kl:blue',
        '{kl:blue}',
        '{kl:blue}:lease:x',
        '{kl:blue}:something',
        other.lease,
        other.processedMark(1, NODE_ID),
        new KeyspaceKeys('blu').quorumLease(1),
        '{kl:blue:p01}:lease',
        '{kl:blue:p1}:processed:',
        '{kl:blue:c1}:canary:',
        '{kl:blue:o1}:lease',
        '{kl:blue:x1}:lease',
        `user:${keys.lease}`,
      ]) {
        expect({ key, class: keys.classify(key) }).toEqual({ key, class: undefined });
      }
    });
  });
});
