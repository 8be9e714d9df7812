import { isOwnKey } from '../../core/keys.ts';

/**
 * KEY_PATTERN: a Redis glob (the syntax of KEYS, SCAN MATCH and PSUBSCRIBE) matched on a key's raw
 * bytes. The pattern text is taken as UTF-8 bytes.
 *
 * Semantics follow Redis' `stringmatchlen` (util.c), byte by byte:
 * - `*` any run of bytes (also none), `?` exactly one byte;
 * - `[abc]` one of the bytes, `[^abc]` none of them, `[a-z]` a range (reversed bounds are swapped),
 *   `\` inside a class escapes the next byte, `[]` matches nothing and `[^]` any one byte, and a
 *   class left open at the end of the pattern ends there (`[ab` is `[ab]`);
 * - `\x` outside a class is a literal `x`; a lone trailing `\` is a literal backslash.
 * Two deliberate differences, both at the edges: bytes are compared unsigned (Redis compares C
 * `char`, signed on x86, so a range with a bound >= 0x80 differs there), and a pattern of only `*`
 * matches the empty key (as `KEYS *` does; `stringmatchlen` alone says no).
 *
 * The pattern is parsed once into tokens; matching is iterative (no recursion, O(pattern x key) in
 * the worst case), so a hostile pattern cannot blow the stack or run exponentially.
 */

type Token =
  | { readonly kind: 'star' }
  | { readonly kind: 'any' }
  | { readonly kind: 'byte'; readonly value: number }
  | { readonly kind: 'class'; readonly negated: boolean; readonly bytes: Uint8Array };

const STAR = 0x2a; // *
const QUESTION = 0x3f; // ?
const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const CARET = 0x5e; // ^
const BACKSLASH = 0x5c; // \
const DASH = 0x2d; // -

function parseClass(p: Uint8Array, start: number): { token: Token; next: number } {
  let i = start;
  const negated = p[i] === CARET;
  if (negated) i++;
  const members = new Uint8Array(256);
  for (;;) {
    const remaining = p.length - i;
    if (remaining >= 2 && p[i] === BACKSLASH) {
      members[p[i + 1] as number] = 1;
      i += 2;
    } else if (remaining >= 1 && p[i] === CLOSE) {
      i++;
      break;
    } else if (remaining === 0) {
      break;
    } else if (remaining >= 3 && p[i + 1] === DASH) {
      let low = p[i] as number;
      let high = p[i + 2] as number;
      if (low > high) [low, high] = [high, low];
      for (let b = low; b <= high; b++) members[b] = 1;
      i += 3;
    } else {
      members[p[i] as number] = 1;
      i++;
    }
  }
  return { token: { kind: 'class', negated, bytes: members }, next: i };
}

function tokenize(pattern: Uint8Array): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as number;
    if (c === STAR) {
      // Consecutive stars are one star.
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
      i++;
    } else if (c === QUESTION) {
      tokens.push({ kind: 'any' });
      i++;
    } else if (c === OPEN) {
      const { token, next } = parseClass(pattern, i + 1);
      tokens.push(token);
      i = next;
    } else if (c === BACKSLASH && i + 1 < pattern.length) {
      tokens.push({ kind: 'byte', value: pattern[i + 1] as number });
      i += 2;
    } else {
      tokens.push({ kind: 'byte', value: c });
      i++;
    }
  }
  return tokens;
}

function tokenMatches(token: Token, byte: number): boolean {
  switch (token.kind) {
    case 'any':
      return true;
    case 'byte':
      return token.value === byte;
    case 'class':
      return (token.bytes[byte] === 1) !== token.negated;
    case 'star':
      return false;
  }
}

/** Matches keys (raw bytes) against one glob; build it once, call it per event. */
export type KeyMatcher = (key: Uint8Array) => boolean;

export function compileKeyPattern(pattern: string | Uint8Array): KeyMatcher {
  const bytes = typeof pattern === 'string' ? Buffer.from(pattern, 'utf8') : pattern;
  const tokens = tokenize(bytes);
  if (tokens.length === 1 && tokens[0]?.kind === 'star') return () => true;
  return (key) => {
    // Classic wildcard matching with one backtrack point: every token but `*` consumes exactly one
    // byte, so on a mismatch only the most recent star needs to absorb one more byte.
    let t = 0;
    let k = 0;
    let starToken = -1;
    let starKey = 0;
    while (k < key.length) {
      const token = tokens[t];
      if (token?.kind === 'star') {
        starToken = t++;
        starKey = k;
      } else if (token !== undefined && tokenMatches(token, key[k] as number)) {
        t++;
        k++;
      } else if (starToken >= 0) {
        t = starToken + 1;
        k = ++starKey;
      } else {
        return false;
      }
    }
    while (tokens[t]?.kind === 'star') t++;
    return t === tokens.length;
  };
}

/**
 * The pipeline's one key filter (applied by the fan-in, before anything keeps an event): keys that
 * match KEY_PATTERN and are not keyspace-leader's own (`{kl:` prefix, core/keys.ts). A key it refuses
 * is counted as received and goes nowhere: no window, no queue, no handler.
 */
export function compileKeyFilter(pattern: string | Uint8Array): KeyMatcher {
  const matches = compileKeyPattern(pattern);
  return (key) => !isOwnKey(key) && matches(key);
}
