/**
 * Redis Cluster hash slot of a key: CRC16-CCITT (XModem) of the hash tag (the part between the first
 * `{` and the next `}`, when non-empty) or of the whole key, modulo 16384.
 */
const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

export const SLOT_COUNT = 16384;

export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0)) & 0xffff;
  return crc;
}

export function keySlot(key: string | Uint8Array): number {
  if (typeof key === 'string') {
    const slot = asciiKeySlot(key);
    if (slot !== -1) return slot;
  }
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOT_COUNT;
  }
  return crc16(bytes) % SLOT_COUNT;
}

/**
 * keySlot of a string whose characters are all ASCII, hashed from its character codes (they are its
 * UTF-8 bytes) without encoding it into a Buffer first: the hot paths take a key's slot several times
 * per event. -1 when the string holds any other character (the caller encodes it then).
 */
function asciiKeySlot(key: string): number {
  let open = -1;
  let close = -1;
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code >= 0x80) return -1;
    if (code === 0x7b && open === -1) open = i;
    else if (code === 0x7d && open !== -1 && close === -1) close = i;
  }
  const tagged = close > open + 1;
  const from = tagged ? open + 1 : 0;
  const to = tagged ? close : key.length;
  let crc = 0;
  for (let i = from; i < to; i++) {
    crc = ((crc << 8) ^ (TABLE[((crc >> 8) ^ key.charCodeAt(i)) & 0xff] ?? 0)) & 0xffff;
  }
  return crc % SLOT_COUNT;
}
