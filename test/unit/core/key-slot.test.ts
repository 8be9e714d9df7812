import { describe, expect, it } from 'vitest';
import { crc16, keySlot } from '../../../core/key-slot.ts';

describe('keySlot', () => {
  it('matches the CRC16 test vector of the Redis Cluster specification', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
  });

  it('gives the slots CLUSTER KEYSLOT gives (redis-server 7.0.15)', () => {
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('')).toBe(0);
  });

  it('hashes only the first non-empty hash tag', () => {
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('{user1000}.followers')).toBe(keySlot('user1000'));
    // An empty tag: the whole key is hashed.
    expect(keySlot('foo{}{bar}')).toBe(crc16(Buffer.from('foo{}{bar}')) % 16384);
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    expect(keySlot('foo{bar}{zap}')).toBe(keySlot('bar'));
    // No closing brace: the whole key.
    expect(keySlot('foo{bar')).toBe(crc16(Buffer.from('foo{bar')) % 16384);
  });

  it('gives a string the slot of its UTF-8 bytes, whatever its characters', () => {
    const keys = [
      'session:42',
      'café:{naïve}:1',
      '{日本}:キー',
      'emoji:😀:{😀}',
      'lone-surrogate:\ud800:x',
      '{ü}',
      `${'a'.repeat(300)}{tag}`,
    ];
    for (const key of keys) expect(keySlot(key), key).toBe(keySlot(Buffer.from(key)));
  });

  it('gives random strings the slot of their bytes', () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const alphabet = ['a', 'Z', '0', ':', '{', '}', 'é', '中', '😀', '\u007f', '\u0080'];
    for (let i = 0; i < 2000; i++) {
      let key = '';
      const length = next() % 12;
      for (let j = 0; j < length; j++) key += alphabet[next() % alphabet.length];
      expect(keySlot(key), JSON.stringify(key)).toBe(keySlot(Buffer.from(key)));
    }
  });
});
