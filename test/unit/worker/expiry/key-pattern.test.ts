import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileKeyPattern } from '../../../../worker/expiry/key-pattern.ts';

/**
 * A literal port of Redis 7's `stringmatchlen_impl` (src/util.c), recursion and all, used as the
 * oracle. Bytes are unsigned here, as in compileKeyPattern (see its doc comment).
 */
function redisStringMatch(pattern: Uint8Array, string: Uint8Array): boolean {
  const skipLonger = { value: false };
  const impl = (p: number, s: number): boolean => {
    let pLen = pattern.length - p;
    let sLen = string.length - s;
    const at = (i: number) => (i < pattern.length ? (pattern[i] as number) : 0); // C strings end in NUL
    while (pLen > 0 && sLen > 0) {
      switch (at(p)) {
        case 0x2a: {
          while (pLen > 1 && at(p + 1) === 0x2a) {
            p++;
            pLen--;
          }
          if (pLen === 1) return true;
          while (sLen > 0) {
            if (impl(p + 1, s)) return true;
            if (skipLonger.value) return false;
            s++;
            sLen--;
          }
          skipLonger.value = true;
          return false;
        }
        case 0x3f:
          s++;
          sLen--;
          break;
        case 0x5b: {
          p++;
          pLen--;
          const not = at(p) === 0x5e;
          if (not) {
            p++;
            pLen--;
          }
          let match = false;
          for (;;) {
            if (at(p) === 0x5c && pLen >= 2) {
              p++;
              pLen--;
              if (at(p) === string[s]) match = true;
            } else if (at(p) === 0x5d) {
              break;
            } else if (pLen === 0) {
              p--;
              pLen++;
              break;
            } else if (pLen >= 3 && at(p + 1) === 0x2d) {
              let start = at(p);
              let end = at(p + 2);
              const c = string[s] as number;
              if (start > end) [start, end] = [end, start];
              p += 2;
              pLen -= 2;
              if (c >= start && c <= end) match = true;
            } else if (at(p) === string[s]) {
              match = true;
            }
            p++;
            pLen--;
          }
          if (not) match = !match;
          if (!match) return false;
          s++;
          sLen--;
          break;
        }
        case 0x5c:
          if (pLen >= 2) {
            p++;
            pLen--;
          }
          if (at(p) !== string[s]) return false;
          s++;
          sLen--;
          break;
        default:
          if (at(p) !== string[s]) return false;
          s++;
          sLen--;
          break;
      }
      p++;
      pLen--;
      if (sLen === 0) {
        while (at(p) === 0x2a && pLen > 0) {
          p++;
          pLen--;
        }
        break;
      }
    }
    return pLen === 0 && sLen === 0;
  };
  return impl(0, 0);
}

const match = (pattern: string, key: string | Uint8Array) =>
  compileKeyPattern(pattern)(typeof key === 'string' ? Buffer.from(key) : key);

describe('compileKeyPattern (Redis glob on key bytes)', () => {
  it.each([
    ['*', 'anything', true],
    ['*', '', true],
    ['session:*', 'session:42', true],
    ['session:*', 'sessions:42', false],
    ['h?llo', 'hello', true],
    ['h?llo', 'hllo', false],
    ['h[ae]llo', 'hallo', true],
    ['h[ae]llo', 'hillo', false],
    ['h[^e]llo', 'hallo', true],
    ['h[^e]llo', 'hello', false],
    ['h[a-b]llo', 'hbllo', true],
    ['h[b-a]llo', 'hallo', true], // reversed range bounds are swapped
    ['h[a-b]llo', 'hcllo', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['[\\]]', ']', true],
    ['[]', 'a', false],
    ['[^]', 'a', true],
    ['[ab', 'b', true], // an open class ends at the end of the pattern
    ['a\\', 'a\\', true], // a trailing backslash is a literal backslash
    ['a**b', 'ab', true],
    ['*:*:*', 'a:b:c', true],
    ['*:*:*', 'a:b', false],
    ['a*', 'a', true],
    ['', '', true],
    ['', 'a', false],
  ])('%j vs %j -> %s', (pattern, key, expected) => {
    expect(match(pattern, key)).toBe(expected);
  });

  it('matches raw bytes that are not UTF-8', () => {
    expect(match('\u00ff*', Buffer.from([0xc3, 0xbf, 0x01]))).toBe(true); // ÿ is C3 BF in UTF-8
    expect(match('?a', Buffer.from([0xff, 0x61]))).toBe(true);
    expect(match('[^a]a', Buffer.from([0xff, 0x61]))).toBe(true);
    expect(compileKeyPattern(Buffer.from([0x5b, 0x80, 0x2d, 0xff, 0x5d]))(Buffer.from([0x90]))).toBe(true);
  });

  it('agrees with a literal port of Redis stringmatchlen on random patterns and keys', () => {
    const alphabet = fc.constantFrom(0x61, 0x62, 0x63, 0x2a, 0x3f, 0x5b, 0x5d, 0x5e, 0x2d, 0x5c, 0x00, 0xff);
    const bytes = (max: number) => fc.array(alphabet, { maxLength: max }).map((a) => Uint8Array.from(a));
    fc.assert(
      fc.property(bytes(10), bytes(10), (pattern, key) => {
        // stringmatchlen says no for an empty string; compileKeyPattern follows KEYS there (documented).
        fc.pre(key.length > 0);
        expect(compileKeyPattern(pattern)(key)).toBe(redisStringMatch(pattern, key));
      }),
      { numRuns: 20_000 },
    );
  });

  it('stays fast on a pattern that makes naive recursion exponential', () => {
    const pattern = `${'a*'.repeat(30)}b`;
    const key = 'a'.repeat(5000);
    const started = performance.now();
    expect(match(pattern, key)).toBe(false);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
