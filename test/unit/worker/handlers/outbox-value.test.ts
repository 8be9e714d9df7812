import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExpiredValue } from '../../../../worker/handlers/expiry-handler.ts';
import {
  decodeOutboxValue,
  encodeOutboxValue,
  OutboxValueFormatError,
  outboxScoreText,
} from '../../../../worker/handlers/outbox-value.ts';

const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
/** Scores Redis can hold: any double but NaN (-0 and both infinities included). */
const score = fc.double({ noNaN: true });

const anyValue: fc.Arbitrary<ExpiredValue> = fc.oneof(
  bytes.map((b): ExpiredValue => ({ type: 'string', bytes: b })),
  fc.array(fc.tuple(bytes, bytes)).map((fields): ExpiredValue => ({ type: 'hash', fields })),
  fc.array(bytes).map((items): ExpiredValue => ({ type: 'list', items })),
  fc.array(bytes).map((members): ExpiredValue => ({ type: 'set', members })),
  fc.array(fc.tuple(bytes, score)).map((members): ExpiredValue => ({ type: 'zset', members })),
);

describe('outbox value encoding', () => {
  it('every value of every type decodes back identical (binary, empty elements, any score), within its bound', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        const field = encodeOutboxValue(value) as Buffer;
        // The bound is on the encoded bytes: at its length it is encoded, one below it is not.
        expect(encodeOutboxValue(value, field.length)?.equals(field)).toBe(true);
        expect(encodeOutboxValue(value, field.length - 1)).toBeUndefined();
        // toEqual compares numbers with Object.is: -0 is not 0 (checked below).
        expect(decodeOutboxValue(value.type, field)).toEqual(value);
      }),
      { numRuns: 500 },
    );
  });

  it('is netstrings: <length>:<bytes>, per element, hash fields and zset scores interleaved', () => {
    const text = (value: ExpiredValue) => (encodeOutboxValue(value) as Buffer).toString('latin1');
    expect(
      text({ type: 'list', items: [Buffer.from('abc'), Buffer.alloc(0), Buffer.from('0123456789')] }),
    ).toBe('3:abc,0:,10:0123456789,');
    expect(text({ type: 'hash', fields: [[Buffer.from('f'), Buffer.from('v,:')]] })).toBe('1:f,3:v,:,');
    expect(
      text({
        type: 'zset',
        members: [
          [Buffer.from('a'), -0],
          [Buffer.from('b'), 1 / 3],
          [Buffer.from('c'), 1e21],
        ],
      }),
    ).toBe(`1:a,2:-0,1:b,${String(1 / 3).length}:${String(1 / 3)},1:c,5:1e+21,`);
    expect(text({ type: 'set', members: [] })).toBe('');
    // A string is its bytes, as they are (no copy).
    const raw = Buffer.from([0xff, 0x00]);
    expect(encodeOutboxValue({ type: 'string', bytes: raw })).toBe(raw);
  });

  it('scores as text: inf and -inf as Redis writes them, every double reads back the same', () => {
    expect(outboxScoreText(Number.POSITIVE_INFINITY)).toBe('inf');
    expect(outboxScoreText(Number.NEGATIVE_INFINITY)).toBe('-inf');
    expect(outboxScoreText(-0)).toBe('-0');
    expect([-0]).not.toEqual([0]); // so the round trip above tells -0 from 0
    expect(outboxScoreText(5e-324)).toBe('5e-324');
    // Redis' own formats are read too (7.0 writes 17 significant digits).
    const decoded = decodeOutboxValue('zset', Buffer.from('1:m,19:0.33333333333333331,1:n,4:+inf,'));
    expect(decoded).toEqual({
      type: 'zset',
      members: [
        [Buffer.from('m'), 1 / 3],
        [Buffer.from('n'), Number.POSITIVE_INFINITY],
      ],
    });
  });

  it('refuses a malformed field with a typed error that names the offset, never the contents', () => {
    const cases: [string, string][] = [
      ['list', '3:abc'], // no comma
      ['list', '3:ab,'], // short
      ['list', 'x:a,'], // no length
      ['list', '01:a,'], // leading zero
      ['list', '1;a,'], // no colon
      ['hash', '1:f,'], // a field without its value
      ['zset', '1:m,'], // a member without its score
      ['zset', '1:m,3:abc,'], // a score that is not a number
      ['zset', '1:m,8:Infinity,'], // JavaScript's spelling is not the format's
      ['stream', ''], // not one of the five types
    ];
    for (const [type, text] of cases) {
      const error = (() => {
        try {
          decodeOutboxValue(type, Buffer.from(text));
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error, `${type} ${text}`).toBeInstanceOf(OutboxValueFormatError);
      expect((error as Error).message).toMatch(/^malformed outbox value: .* at byte \d+$/);
      expect((error as Error).message).not.toContain('abc');
    }
  });
});
