import { KeyspaceLeaderError } from '../../core/errors.ts';
import type { ExpiredValue, ExpiredValueType } from './expiry-handler.ts';

/**
 * How the stream outbox (stream-handler.ts) carries a captured value in one binary-safe stream field,
 * `value`, next to `valueType` (docs/worker.md, "The stream outbox", "Entry format"):
 * - `string`: the value's bytes as they are;
 * - `list`, `set`: every item or member in Redis' order, each as a netstring;
 * - `hash`: field, value, field, value, ... each a netstring;
 * - `zset`: member, score, member, score, ... each a netstring, by score; a score is the text of its
 *   double (`1.5`, `-0`, `1e+21`, the shortest that reads back as the same double), `inf` or `-inf`.
 * A netstring is `<length>:<bytes>,` with the byte length in decimal ASCII digits (no sign, no
 * leading zero but `0`): `3:abc,` and, for an empty element, `0:,`. Any language reads it with a loop
 * (find `:`, take the length, check the `,`), and no byte of an element needs escaping.
 *
 * Why one flat field rather than one field per element: the entry's field count stays fixed (the
 * append script passes its fields to XADD through Lua's `unpack`, which fails past a few thousand
 * values) and a consumer reads a value whole or not at all.
 *
 * Contents never reach an error message: a malformed field is reported by its byte offset only.
 */

/** A `value` field that is not this format (or a `valueType` that is not one of the five). */
export class OutboxValueFormatError extends KeyspaceLeaderError {
  readonly offset: number;
  constructor(problem: string, offset: number) {
    super('OUTBOX_VALUE_FORMAT', `malformed outbox value: ${problem} at byte ${offset}`);
    this.offset = offset;
  }
}

const COLON = 0x3a;
const COMMA = 0x2c;
const ZERO = 0x30;
const NINE = 0x39;

/** The text a sorted-set score is carried as (see above): reads back as the same double. */
export function outboxScoreText(score: number): string {
  if (score === Number.POSITIVE_INFINITY) return 'inf';
  if (score === Number.NEGATIVE_INFINITY) return '-inf';
  if (Object.is(score, -0)) return '-0';
  return String(score);
}

/** A decimal double as outboxScoreText writes it (and as Redis prints one). */
const DECIMAL = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function parseScore(text: string, offset: number): number {
  if (text === 'inf' || text === '+inf') return Number.POSITIVE_INFINITY;
  if (text === '-inf') return Number.NEGATIVE_INFINITY;
  if (!DECIMAL.test(text)) throw new OutboxValueFormatError('a score that is not a number', offset);
  return Number(text);
}

function digits(n: number): number {
  let count = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    count++;
  }
  return count;
}

/** Bytes of one element as a netstring. */
const netstringBytes = (length: number) => digits(length) + length + 2;

/**
 * The `value` field of `value` (see the format above), or undefined when it would be over `maxBytes`
 * (measured first: a value over the bound is never copied). A string's bytes are returned as they are.
 */
export function encodeOutboxValue(
  value: ExpiredValue,
  maxBytes = Number.POSITIVE_INFINITY,
): Buffer | undefined {
  if (value.type === 'string') return value.bytes.length <= maxBytes ? value.bytes : undefined;
  // Buffers, and a sorted set's scores as their (ASCII) text.
  let elements: readonly (Buffer | string)[];
  switch (value.type) {
    case 'list':
      elements = value.items;
      break;
    case 'set':
      elements = value.members;
      break;
    case 'hash': {
      const flat: Buffer[] = new Array(value.fields.length * 2);
      for (let i = 0; i < value.fields.length; i++) {
        const [field, fieldValue] = value.fields[i] as readonly [Buffer, Buffer];
        flat[2 * i] = field;
        flat[2 * i + 1] = fieldValue;
      }
      elements = flat;
      break;
    }
    case 'zset': {
      const flat: (Buffer | string)[] = new Array(value.members.length * 2);
      for (let i = 0; i < value.members.length; i++) {
        const [member, score] = value.members[i] as readonly [Buffer, number];
        flat[2 * i] = member;
        flat[2 * i + 1] = outboxScoreText(score);
      }
      elements = flat;
      break;
    }
  }
  let bytes = 0;
  for (const element of elements) bytes += netstringBytes(element.length);
  if (bytes > maxBytes) return undefined;
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const element of elements) {
    const length = element.length;
    // The length's digits, most significant first.
    const end = at + digits(length);
    for (let n = length, i = end - 1; i >= at; i--, n = Math.floor(n / 10)) out[i] = ZERO + (n % 10);
    at = end;
    out[at++] = COLON;
    if (typeof element === 'string') for (let i = 0; i < length; i++) out[at + i] = element.charCodeAt(i);
    // Small elements are copied byte by byte: Buffer.copy's native call costs more below ~16 bytes.
    else if (length < 16) for (let i = 0; i < length; i++) out[at + i] = element[i] as number;
    else element.copy(out, at);
    at += length;
    out[at++] = COMMA;
  }
  return out;
}

const TYPES: readonly ExpiredValueType[] = ['string', 'hash', 'list', 'set', 'zset'];

/**
 * Reads an entry's `valueType` and `value` back (a consumer's side; the tests' proof that the
 * encoding is lossless). Elements are copies, not views of `field`. Throws OutboxValueFormatError.
 */
export function decodeOutboxValue(valueType: string, field: Buffer): ExpiredValue {
  if (!(TYPES as readonly string[]).includes(valueType))
    throw new OutboxValueFormatError('an unknown valueType', 0);
  const type = valueType as ExpiredValueType;
  if (type === 'string') return { type, bytes: Buffer.from(field) };
  const elements: Buffer[] = [];
  let at = 0;
  while (at < field.length) {
    const start = at;
    let length = 0;
    while (at < field.length && (field[at] as number) >= ZERO && (field[at] as number) <= NINE) {
      length = length * 10 + ((field[at] as number) - ZERO);
      at++;
    }
    const digitCount = at - start;
    if (digitCount === 0 || (digitCount > 1 && field[start] === ZERO) || digitCount > 15)
      throw new OutboxValueFormatError('a netstring without a valid length', start);
    if (field[at] !== COLON) throw new OutboxValueFormatError("a length not followed by ':'", at);
    at++;
    if (at + length >= field.length || field[at + length] !== COMMA)
      throw new OutboxValueFormatError("a netstring not ended by ','", Math.min(at + length, field.length));
    elements.push(Buffer.from(field.subarray(at, at + length)));
    at += length + 1;
  }
  switch (type) {
    case 'list':
      return { type, items: elements };
    case 'set':
      return { type, members: elements };
    case 'hash': {
      if (elements.length % 2 !== 0) throw new OutboxValueFormatError('a hash field without a value', at);
      const fields: [Buffer, Buffer][] = [];
      for (let i = 0; i < elements.length; i += 2)
        fields.push([elements[i] as Buffer, elements[i + 1] as Buffer]);
      return { type, fields };
    }
    case 'zset': {
      if (elements.length % 2 !== 0) throw new OutboxValueFormatError('a member without a score', at);
      const members: [Buffer, number][] = [];
      for (let i = 0; i < elements.length; i += 2)
        members.push([elements[i] as Buffer, parseScore((elements[i + 1] as Buffer).toString('latin1'), at)]);
      return { type, members };
    }
  }
}
