// RESP2, the Redis wire protocol: an encoder for commands (an array of bulk
// strings) and a push parser for replies. Bytes in, replies out, no runtime
// API: the client (redis.ts) feeds it whatever chunks the socket delivers.
//
// Bounded on purpose: a reply from a broken or hostile "Redis" that
// announces a huge bulk string or array, a line with no end, or nesting
// without end is a protocol error, not a buffer that grows (the client then
// drops the connection). mailgate's replies are small (counters, cache
// entries of a few hundred bytes), so the caps are generous but finite.

/** Largest bulk string accepted (bytes). */
export const MAX_BULK = 1 << 20;
/** Most elements in one array reply. */
export const MAX_ARRAY = 1024;
/** Longest simple string, error or length line (bytes, without CRLF). */
export const MAX_LINE = 16 * 1024;
/** Deepest nesting of arrays. */
export const MAX_DEPTH = 8;

/** An error reply (`-ERR ...`): a value, not a thrown error. */
export class RespError {
  constructor(readonly message: string) {}
}

/** Bytes that are not RESP2, or break a cap. The parser is unusable afterwards. */
export class RespProtocolError extends Error {}

/** One reply: simple string, error, integer, bulk (null = nil) or array (null = nil). */
export type Reply = string | RespError | number | null | Reply[];

const enc = new TextEncoder();
const dec = new TextDecoder();
const CR = 13;
const LF = 10;

/** One command as RESP bytes: `*N\r\n` then `$len\r\nbytes\r\n` per argument. */
export function encodeCommand(args: readonly (string | number | Uint8Array)[]): Uint8Array {
  const parts = args.map((a) => a instanceof Uint8Array ? a : enc.encode(String(a)));
  let size = 0;
  const heads = parts.map((p) => {
    const h = enc.encode(`$${p.length}\r\n`);
    size += h.length + p.length + 2;
    return h;
  });
  const top = enc.encode(`*${parts.length}\r\n`);
  const out = new Uint8Array(top.length + size);
  out.set(top, 0);
  let at = top.length;
  for (let i = 0; i < parts.length; i++) {
    out.set(heads[i], at);
    at += heads[i].length;
    out.set(parts[i], at);
    at += parts[i].length;
    out[at++] = CR;
    out[at++] = LF;
  }
  return out;
}

/** Parse result inside the buffer: the reply and where it ended, or "more bytes needed". */
type Step = { reply: Reply; end: number } | null;

/**
 * Push parser: `push(chunk)` returns the replies completed by the chunk, in
 * order. Bytes of an incomplete reply are kept (copied: the chunk may be
 * the adapter's reused buffer). Throws RespProtocolError on bad input.
 */
export class RespParser {
  #buf = new Uint8Array(4096);
  #len = 0;
  /** Buffered length below which another parse attempt cannot succeed (skips re-scans). */
  #need = 0;
  #dead = false;

  /** Bytes held for an incomplete reply. */
  get buffered(): number {
    return this.#len;
  }

  push(chunk: Uint8Array): Reply[] {
    if (this.#dead) throw new RespProtocolError("parser used after a protocol error");
    this.#append(chunk);
    const out: Reply[] = [];
    if (this.#len < this.#need) return out;
    let start = 0;
    try {
      while (start < this.#len) {
        const step = this.#parse(start, 0);
        if (step === null) break;
        out.push(step.reply);
        start = step.end;
        this.#need = 0;
      }
    } catch (e) {
      this.#dead = true;
      throw e;
    }
    if (start > 0) {
      this.#buf.copyWithin(0, start, this.#len);
      this.#len -= start;
      if (this.#need > 0) this.#need -= start;
    }
    // Give a big buffer back once it is drained, so one large reply does not pin memory.
    if (this.#len === 0 && this.#buf.length > 65536) this.#buf = new Uint8Array(4096);
    return out;
  }

  #append(chunk: Uint8Array): void {
    const want = this.#len + chunk.length;
    if (want > this.#buf.length) {
      let cap = this.#buf.length;
      while (cap < want) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#len);
    this.#len = want;
  }

  /** The line starting at `at` (without CRLF) and the index after its LF, or null if incomplete. */
  #line(at: number): { text: string; end: number } | null {
    const limit = Math.min(this.#len, at + MAX_LINE + 2);
    for (let i = at; i < limit; i++) {
      if (this.#buf[i] === LF) {
        if (i === at || this.#buf[i - 1] !== CR) {
          throw new RespProtocolError("line ends without CR");
        }
        return { text: dec.decode(this.#buf.subarray(at, i - 1)), end: i + 1 };
      }
    }
    if (this.#len - at >= MAX_LINE + 2) {
      throw new RespProtocolError(`line longer than ${MAX_LINE} bytes`);
    }
    this.#need = this.#len + 1;
    return null;
  }

  #parse(at: number, depth: number): Step {
    if (at >= this.#len) {
      this.#need = at + 1;
      return null;
    }
    const type = this.#buf[at];
    const line = this.#line(at + 1);
    if (line === null) return null;
    const text = line.text;
    switch (type) {
      case 0x2b: // '+'
        return { reply: text, end: line.end };
      case 0x2d: // '-'
        return { reply: new RespError(text), end: line.end };
      case 0x3a: // ':'
        return { reply: integer(text, "integer"), end: line.end };
      case 0x24: { // '$'
        const n = integer(text, "bulk length");
        if (n === -1) return { reply: null, end: line.end };
        if (n < 0 || n > MAX_BULK) {
          throw new RespProtocolError(`bulk length ${n} out of range (max ${MAX_BULK})`);
        }
        const end = line.end + n + 2;
        if (this.#len < end) {
          this.#need = end;
          return null;
        }
        if (this.#buf[end - 2] !== CR || this.#buf[end - 1] !== LF) {
          throw new RespProtocolError("bulk string not followed by CRLF");
        }
        return { reply: dec.decode(this.#buf.subarray(line.end, end - 2)), end };
      }
      case 0x2a: { // '*'
        const n = integer(text, "array length");
        if (n === -1) return { reply: null, end: line.end };
        if (n < 0 || n > MAX_ARRAY) {
          throw new RespProtocolError(`array length ${n} out of range (max ${MAX_ARRAY})`);
        }
        if (depth >= MAX_DEPTH) {
          throw new RespProtocolError(`arrays nested deeper than ${MAX_DEPTH}`);
        }
        const items: Reply[] = [];
        let end = line.end;
        for (let i = 0; i < n; i++) {
          const step = this.#parse(end, depth + 1);
          if (step === null) return null;
          items.push(step.reply);
          end = step.end;
        }
        return { reply: items, end };
      }
      default:
        throw new RespProtocolError(
          `unexpected reply type byte 0x${type.toString(16).padStart(2, "0")}`,
        );
    }
  }
}

function integer(text: string, what: string): number {
  if (!/^-?\d{1,15}$/.test(text)) throw new RespProtocolError(`bad ${what} "${text.slice(0, 40)}"`);
  return Number(text);
}
