// CRC-32C (Castagnoli), the checksum of the PROXY protocol v2 CRC32C TLV
// (PP2_TYPE_CRC32C). Reflected polynomial 0x82F63B78, initial value and
// final XOR 0xFFFFFFFF, one byte per step through a 256-entry table.

const POLY_REFLECTED = 0x82f63b78;

/** Built on first use: only proxy_protocol v2 with a CRC needs it, not every start. */
let table: Uint32Array | null = null;

function buildTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/** CRC-32C of `data` as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array): number {
  const t = table ??= buildTable();
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
