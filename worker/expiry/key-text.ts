/**
 * How a key's bytes appear as text (handler `event.key`, log fields). Keys are binary-safe in Redis;
 * most are UTF-8. When the bytes are valid UTF-8 the text is exact. Otherwise the text is a lossy
 * decoding (invalid sequences become U+FFFD) and log lines add `keyBase64` with the exact bytes, so
 * `key` is always present and always a string, and no key is ever misreported.
 */
// ignoreBOM: a leading U+FEFF is part of the key, not a byte order mark to strip (BOM + "abc" must not log as "abc").
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface KeyText {
  readonly text: string;
  /** False when `text` is a lossy decoding. */
  readonly exact: boolean;
}

export function keyText(bytes: Uint8Array): KeyText {
  try {
    return { text: strictUtf8.decode(bytes), exact: true };
  } catch {
    return {
      text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
      exact: false,
    };
  }
}

/** `{ key }`, plus `keyBase64` when the key is not valid UTF-8. */
export function keyLogFields(bytes: Uint8Array): { key: string; keyBase64?: string } {
  const { text, exact } = keyText(bytes);
  if (exact) return { key: text };
  return {
    key: text,
    keyBase64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
  };
}
