import type { ExpiredValue } from '../handlers/expiry-handler.ts';

/**
 * Sizes of a captured value (issue 14), the only things about a value that may be logged or shown:
 * its type, its payload bytes and its element count. Never its contents (docs/security.md, "Values").
 */
export interface ExpiredValueSize {
  readonly type: ExpiredValue['type'];
  /** Payload bytes: the string's, or the sum of every field, value, item or member (scores as 8). */
  readonly bytes: number;
  /** 1 for a string; fields, items or members otherwise. */
  readonly elements: number;
}

/** Bytes counted per score of a sorted-set member (a double). */
const SCORE_BYTES = 8;

export function expiredValueSize(value: ExpiredValue): ExpiredValueSize {
  switch (value.type) {
    case 'string':
      return { type: 'string', bytes: value.bytes.length, elements: 1 };
    case 'hash': {
      let bytes = 0;
      for (const [field, fieldValue] of value.fields) bytes += field.length + fieldValue.length;
      return { type: 'hash', bytes, elements: value.fields.length };
    }
    case 'list':
      return { type: 'list', bytes: sumLengths(value.items), elements: value.items.length };
    case 'set':
      return { type: 'set', bytes: sumLengths(value.members), elements: value.members.length };
    case 'zset': {
      let bytes = 0;
      for (const [member] of value.members) bytes += member.length + SCORE_BYTES;
      return { type: 'zset', bytes, elements: value.members.length };
    }
  }
}

function sumLengths(buffers: readonly Buffer[]): number {
  let bytes = 0;
  for (const buffer of buffers) bytes += buffer.length;
  return bytes;
}
