// Byte <-> string helpers. Mail protocol values (user names, passwords,
// literals) are arbitrary bytes; mailgate carries them as "binary strings"
// (one char per byte, code 0-255) so that every byte survives unchanged.
// TextDecoder("latin1") is NOT used: the WHATWG "latin1" label is
// windows-1252 and maps 0x80-0x9F to other code points.

const CHUNK = 0x2000;

/** Bytes -> binary string (char code = byte value). */
export function bytesToBinary(bytes: Uint8Array): string {
  if (bytes.length <= CHUNK) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let out = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return out;
}

/** Binary string -> bytes. Chars above 0xFF are truncated to their low byte. */
export function binaryToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/** ASCII/UTF-8 text -> bytes (for fixed protocol strings and config values). */
export function textBytes(s: string): Uint8Array {
  return utf8.encode(s);
}

/** UTF-8 text from bytes (config files, HTTP header values from the auth server). */
export function bytesText(b: Uint8Array): string {
  return utf8d.decode(b);
}

/** Concatenate chunks into one new array. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
