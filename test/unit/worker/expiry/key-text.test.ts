import { describe, expect, it } from 'vitest';
import { keyLogFields, keyText } from '../../../../worker/expiry/key-text.ts';

describe('key text for handlers and logs', () => {
  it('gives valid UTF-8 exactly and without keyBase64', () => {
    expect(keyText(Buffer.from('sessión:ü'))).toEqual({ text: 'sessión:ü', exact: true });
    expect(keyLogFields(Buffer.from('plain'))).toEqual({ key: 'plain' });
  });

  it('adds the exact bytes as keyBase64 when the key is not valid UTF-8, keeping key', () => {
    const bytes = Buffer.from([0x61, 0xff, 0x62]);
    const fields = keyLogFields(bytes);
    expect(fields.key).toBe('a\ufffdb');
    expect(Buffer.from(fields.keyBase64 ?? '', 'base64').equals(bytes)).toBe(true);
    expect(keyText(bytes).exact).toBe(false);
  });

  it('reads a subarray without its neighbours', () => {
    const whole = Buffer.from('xxkeyxx');
    expect(keyLogFields(whole.subarray(2, 5))).toEqual({ key: 'key' });
  });
});
