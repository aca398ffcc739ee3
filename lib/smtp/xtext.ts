// xtext (RFC 3461 §4), used for the XCLIENT LOGIN= value (smtp.md §8.1,
// nginx 1.29.2): every byte below 0x21 or above 0x7E, and "+" and "=",
// becomes "+" followed by two upper-case hex digits. Without it a user name
// with a space or "=" would smuggle extra XCLIENT attributes to the backend.

const HEX = "0123456789ABCDEF";
const PLUS = 0x2b, EQUALS = 0x3d;

function needsEncoding(c: number): boolean {
  return c < 0x21 || c > 0x7e || c === PLUS || c === EQUALS;
}

/** xtext of a binary string (one char per byte); the result is ASCII. */
export function xtextEncode(s: string): string {
  let out = "";
  let run = 0; // start of the pending run of bytes that stay as they are
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!needsEncoding(c)) continue;
    const b = c & 0xff; // binary strings hold bytes; anything wider is cut like binaryToBytes does
    out += s.slice(run, i) + "+" + HEX[b >> 4] + HEX[b & 15];
    run = i + 1;
  }
  return run === 0 ? s : out + s.slice(run);
}
