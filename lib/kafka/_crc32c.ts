/** @module CRC-32C (Castagnoli), the checksum of a Kafka record batch, eight bytes a step. */

/** CRC-32C of `data`, unsigned. */
export function crc32c(data: Uint8Array): number {
  let crc = -1;
  let i = 0;
  const n8 = data.length - (data.length & 7);
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  while (i < n8) {
    const a = crc ^
      (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) |
        (data[i + 3]! << 24));
    crc = t7![a & 0xff]! ^ t6![(a >>> 8) & 0xff]! ^ t5![(a >>> 16) & 0xff]! ^
      t4![a >>> 24]! ^ t3![data[i + 4]!]! ^ t2![data[i + 5]!]! ^
      t1![data[i + 6]!]! ^ t0![data[i + 7]!]!;
    i += 8;
  }
  for (; i < data.length; i++) {
    crc = t0![(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ -1) >>> 0;
}

/** Slicing-by-8 tables of the reflected polynomial 0x82f63b78. */
const TABLES: Int32Array[] = (() => {
  const t = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[0]![i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[k - 1]![i]!;
      t[k]![i] = (prev >>> 8) ^ t[0]![prev & 0xff]!;
    }
  }
  return t;
})();
