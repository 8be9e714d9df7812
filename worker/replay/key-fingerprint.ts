/**
 * A 32-bit FNV-1a fingerprint of a key's bytes, as 8 hex digits. Used to align event sequences across
 * workers (a tail of several fingerprints must match, so a single collision cannot misalign), never
 * as an identity on its own. Cheap enough for every event.
 */
export function keyFingerprint(key: Uint8Array): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key[i] as number;
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}
