// Reads the server_name (SNI) of a TLS ClientHello from the first bytes a
// client sends, so that the block serving a TLS listener can be chosen
// before the handshake starts, the same way on every runtime.

import { HELLO_SNIFF_MAX } from "./client_hello.ts";

const be16 = (b: Uint8Array, p: number) => (b[p] << 8) | b[p + 1];

/**
 * The host name of the ClientHello at the start of `b`. undefined: the
 * first record is not complete yet (read more); null: not a ClientHello, or
 * it names no host (the default block serves it).
 */
export function helloServerName(b: Uint8Array): string | null | undefined {
  if (b.length < 5) return undefined;
  if (b[0] !== 0x16) return null;
  const end = 5 + be16(b, 3);
  if (b.length < end) return b.length >= HELLO_SNIFF_MAX ? null : undefined;
  let p = 5;
  if (b[p] !== 1) return null;
  const helloEnd = Math.min(end, p + 4 + ((b[p + 1] << 16) | be16(b, p + 2)));
  p += 4 + 2 + 32;
  if (p >= helloEnd) return null;
  p += 1 + b[p];
  if (p + 2 > helloEnd) return null;
  p += 2 + be16(b, p);
  if (p + 1 > helloEnd) return null;
  p += 1 + b[p];
  if (p + 2 > helloEnd) return null;
  const extEnd = Math.min(helloEnd, p + 2 + be16(b, p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = be16(b, p);
    const len = be16(b, p + 2);
    p += 4;
    if (type === 0) {
      // server_name_list: (type u8, length u16, name)*; host_name is type 0.
      const listEnd = Math.min(extEnd, p + 2 + be16(b, p));
      for (let q = p + 2; q + 3 <= listEnd;) {
        const nameLen = be16(b, q + 1);
        if (b[q] === 0 && q + 3 + nameLen <= listEnd) {
          let s = "";
          for (let i = q + 3; i < q + 3 + nameLen; i++) s += String.fromCharCode(b[i]);
          return s === "" ? null : s;
        }
        q += 3 + nameLen;
      }
      return null;
    }
    p += len;
  }
  return null;
}
