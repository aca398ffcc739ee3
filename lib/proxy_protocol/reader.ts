// PROXY protocol v1/v2 header reader for `listen ... proxy_protocol`
// (tls_and_proxy_protocol.md §6). A push parser: feed it the first bytes of
// a connection in chunks of any size; it consumes exactly the header and
// hands back whatever follows (TLS or the mail protocol).
//
// nginx judges the header from the first read alone, so a split header is a
// broken header there. mailgate keeps reading while the bytes so far are a
// valid beginning of a v1 or v2 header (the session's `timeout` bounds the
// wait), so every byte is checked as it arrives: garbage fails at its first
// wrong byte, not at the size limit.

import { formatIPv6 } from "../core/ip.ts";

/** Largest header accepted, v1 or v2 (nginx 1.23.3+ NGX_PROXY_PROTOCOL_MAX_HEADER). */
export const PROXY_HEADER_MAX = 4096;

/** At most this much of the offending data is shown in `broken header` (nginx's v1 maximum). */
export const BROKEN_HEADER_LOG_MAX = 107;

/** Addresses as text (IPv6 without brackets), ports as numbers. */
export interface ProxyHeader {
  srcAddr: string;
  srcPort: number;
  dstAddr: string;
  dstPort: number;
}

export type ProxyReadResult =
  | { kind: "more" }
  /** header null: v1 UNKNOWN, v2 LOCAL, unsupported family or transport. */
  | { kind: "done"; header: ProxyHeader | null; rest: Uint8Array }
  | { kind: "error"; log: string };

// Error log texts (nginx ngx_proxy_protocol.c).
const logBrokenHeader = (shown: string) => `broken header: "${shown}"`;
const logUnknownVersion = (v: number) => `unknown PROXY protocol version: ${v}`;
const LOG_TOO_LARGE = "header is too large";

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;

const V1_PREFIX = ascii("PROXY ");
const V1_UNKNOWN = ascii("UNKNOWN");
const V1_TCP = ascii("TCP");

// deno-fmt-ignore
const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
/** Signature, version/command, family/transport, 2-byte length. */
const V2_FIXED = 16;
const V2_VERSION = 2;
const V2_CMD_PROXY = 1;
const V2_TRANSPORT_STREAM = 1;
const V2_FAMILY_INET = 1;
const V2_FAMILY_INET6 = 2;
const V2_INET_ADDRS = 12; // 4 + 4 + 2 + 2
const V2_INET6_ADDRS = 36; // 16 + 16 + 2 + 2

// Parser states. Each v1 state consumes one byte; V2_BODY copies in bulk.
const S_START = 0;
const S_V1_PREFIX = 1; // matching "PROXY "
const S_V1_PROTO = 2; // first byte after "PROXY ": U(NKNOWN) or T(CP)
const S_V1_UNKNOWN = 3; // matching "UNKNOWN"
const S_V1_SKIP = 4; // after UNKNOWN: anything up to CR LF
const S_V1_TCP = 5; // matching "TCP", then '4' | '6', then ' '
const S_V1_ADDR = 6; // address `field` (0 src, 1 dst), ended by ' '
const S_V1_PORT = 7; // port `field` (0 src ended by ' ', 1 dst ended by CR)
const S_V1_LF = 8; // LF after the final CR
const S_V2_SIGNATURE = 9;
const S_V2_FIXED = 10; // version/command, family/transport, length
const S_V2_BODY = 11; // addresses and TLVs
const S_FINISHED = 12;

/** Outcome of one byte of the v1/v2 state machine. */
const STEP_MORE = 0;
const STEP_DONE = 1;
const STEP_BROKEN = 2;

export class ProxyHeaderReader {
  /** The header bytes consumed so far; never more than PROXY_HEADER_MAX. */
  #buf = new Uint8Array(PROXY_HEADER_MAX);
  #len = 0;
  #state = S_START;
  /** Index inside the literal being matched (V1_PREFIX, V1_UNKNOWN, V1_TCP, V2_SIGNATURE). */
  #pos = 0;
  #field = 0;
  #fieldStart = 0;
  /** [srcStart, srcEnd, dstStart, dstEnd] offsets of the v1 addresses in #buf. */
  #addr = [0, 0, 0, 0];
  #port = 0;
  #ports = [0, 0];
  /** Total v2 header size, known once the fixed part is in. */
  #v2Total = 0;
  /** A v2-only error text set by #step (otherwise STEP_BROKEN means broken header). */
  #v2Error: string | null = null;

  /**
   * Feed the next bytes of the connection. After "done" or "error" the
   * reader is spent; pushing again is a programming error and throws.
   * `rest` is a copy: the caller's chunk may be a reused buffer.
   */
  push(chunk: Uint8Array): ProxyReadResult {
    if (this.#state === S_FINISHED) {
      throw new Error("ProxyHeaderReader: push after the header was read");
    }
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === S_V2_BODY) {
        const take = Math.min(this.#v2Total - this.#len, chunk.length - i);
        this.#buf.set(chunk.subarray(i, i + take), this.#len);
        this.#len += take;
        i += take;
        if (this.#len === this.#v2Total) return this.#finishV2(chunk.slice(i));
        continue;
      }
      const b = chunk[i++];
      this.#buf[this.#len++] = b;
      const r = this.#step(b);
      if (r === STEP_DONE) return this.#finishV1(chunk.slice(i));
      if (r === STEP_BROKEN) return this.#fail(this.#v2Error ?? this.#broken(chunk.subarray(i)));
      // A v1 header needs at least one more byte; none may come past the limit.
      if (this.#len === PROXY_HEADER_MAX) return this.#fail(this.#broken(chunk.subarray(i)));
    }
    // A v2 header with an empty body may end exactly at the chunk's end.
    if (this.#state === S_V2_BODY && this.#len === this.#v2Total) {
      return this.#finishV2(new Uint8Array(0));
    }
    return { kind: "more" };
  }

  /** One header byte (already stored at #buf[#len - 1]). */
  #step(b: number): number {
    switch (this.#state) {
      case S_START:
        if (b === V1_PREFIX[0]) return this.#to(S_V1_PREFIX, 1);
        if (b === V2_SIGNATURE[0]) return this.#to(S_V2_SIGNATURE, 1);
        return STEP_BROKEN;

      case S_V1_PREFIX:
        if (b !== V1_PREFIX[this.#pos++]) return STEP_BROKEN;
        return this.#pos === V1_PREFIX.length ? this.#to(S_V1_PROTO, 0) : STEP_MORE;

      case S_V1_PROTO:
        if (b === V1_UNKNOWN[0]) return this.#to(S_V1_UNKNOWN, 1);
        if (b === V1_TCP[0]) return this.#to(S_V1_TCP, 1);
        return STEP_BROKEN;

      case S_V1_UNKNOWN:
        if (b !== V1_UNKNOWN[this.#pos++]) return STEP_BROKEN;
        return this.#pos === V1_UNKNOWN.length ? this.#to(S_V1_SKIP, 0) : STEP_MORE;

      case S_V1_SKIP:
        // The byte before the first skipped one is the N of UNKNOWN, never CR.
        return b === LF && this.#buf[this.#len - 2] === CR ? STEP_DONE : STEP_MORE;

      case S_V1_TCP:
        if (this.#pos < V1_TCP.length) {
          if (b !== V1_TCP[this.#pos++]) return STEP_BROKEN;
          return STEP_MORE;
        }
        if (this.#pos === V1_TCP.length) { // the family digit
          if (b !== 0x34 && b !== 0x36) return STEP_BROKEN;
          this.#pos++;
          return STEP_MORE;
        }
        if (b !== SP) return STEP_BROKEN;
        this.#field = 0;
        this.#fieldStart = this.#len;
        return this.#to(S_V1_ADDR, 0);

      case S_V1_ADDR:
        if (b === SP) {
          const end = this.#len - 1;
          if (end === this.#fieldStart) return STEP_BROKEN; // two spaces: an empty field
          this.#addr[this.#field * 2] = this.#fieldStart;
          this.#addr[this.#field * 2 + 1] = end;
          this.#fieldStart = this.#len;
          if (this.#field === 0) {
            this.#field = 1;
            return STEP_MORE;
          }
          this.#field = 0;
          this.#port = 0;
          return this.#to(S_V1_PORT, 0);
        }
        return isAddrChar(b) ? STEP_MORE : STEP_BROKEN;

      case S_V1_PORT:
        if (b >= 0x30 && b <= 0x39) {
          this.#port = this.#port * 10 + (b - 0x30);
          return this.#port > 0xffff ? STEP_BROKEN : STEP_MORE;
        }
        if (b !== (this.#field === 0 ? SP : CR) || this.#len - 1 === this.#fieldStart) {
          return STEP_BROKEN;
        }
        this.#ports[this.#field] = this.#port;
        this.#port = 0;
        this.#fieldStart = this.#len;
        if (this.#field === 0) {
          this.#field = 1;
          return STEP_MORE;
        }
        return this.#to(S_V1_LF, 0);

      case S_V1_LF:
        return b === LF ? STEP_DONE : STEP_BROKEN;

      case S_V2_SIGNATURE:
        // A v2 signature gone wrong is judged as v1, as nginx does: broken header.
        if (b !== V2_SIGNATURE[this.#pos++]) return STEP_BROKEN;
        return this.#pos === V2_SIGNATURE.length ? this.#to(S_V2_FIXED, 0) : STEP_MORE;

      case S_V2_FIXED: {
        if (this.#len === V2_SIGNATURE.length + 1 && b >> 4 !== V2_VERSION) {
          this.#v2Error = logUnknownVersion(b >> 4);
          return STEP_BROKEN;
        }
        if (this.#len < V2_FIXED) return STEP_MORE;
        this.#v2Total = V2_FIXED + ((this.#buf[14] << 8) | this.#buf[15]);
        if (this.#v2Total > PROXY_HEADER_MAX) {
          this.#v2Error = LOG_TOO_LARGE;
          return STEP_BROKEN;
        }
        this.#state = S_V2_BODY; // push() copies the rest in bulk
        return STEP_MORE;
      }

      default:
        throw new Error(`ProxyHeaderReader: no byte step in state ${this.#state}`);
    }
  }

  #to(state: number, pos: number): number {
    this.#state = state;
    this.#pos = pos;
    return STEP_MORE;
  }

  #finishV1(rest: Uint8Array): ProxyReadResult {
    this.#state = S_FINISHED;
    // The addresses were recorded only on the TCP4/TCP6 path.
    if (this.#buf[V1_PREFIX.length] === V1_UNKNOWN[0]) return { kind: "done", header: null, rest };
    const a = this.#addr;
    const header: ProxyHeader = {
      srcAddr: latin1(this.#buf.subarray(a[0], a[1])),
      srcPort: this.#ports[0],
      dstAddr: latin1(this.#buf.subarray(a[2], a[3])),
      dstPort: this.#ports[1],
    };
    return { kind: "done", header, rest };
  }

  /**
   * The whole v2 header is in #buf[0, #v2Total). Same order of checks as
   * nginx. TLVs after the addresses are consumed, not interpreted: the mail
   * proxy has no use for them (nginx does not check the CRC32C either).
   */
  #finishV2(rest: Uint8Array): ProxyReadResult {
    const buf = this.#buf;
    const body = this.#v2Total - V2_FIXED;
    const done = (header: ProxyHeader | null): ProxyReadResult => {
      this.#state = S_FINISHED;
      return { kind: "done", header, rest };
    };
    if ((buf[12] & 0x0f) !== V2_CMD_PROXY) return done(null); // LOCAL and others
    if ((buf[13] & 0x0f) !== V2_TRANSPORT_STREAM) return done(null);
    const family = buf[13] >> 4;
    const p = V2_FIXED;
    if (family === V2_FAMILY_INET) {
      // Too short for its addresses: nginx closes without a log line of its
      // own; "broken header" with the data before the first CR (none).
      if (body < V2_INET_ADDRS) return this.#fail(logBrokenHeader(""));
      return done({
        srcAddr: `${buf[p]}.${buf[p + 1]}.${buf[p + 2]}.${buf[p + 3]}`,
        dstAddr: `${buf[p + 4]}.${buf[p + 5]}.${buf[p + 6]}.${buf[p + 7]}`,
        srcPort: (buf[p + 8] << 8) | buf[p + 9],
        dstPort: (buf[p + 10] << 8) | buf[p + 11],
      });
    }
    if (family === V2_FAMILY_INET6) {
      if (body < V2_INET6_ADDRS) return this.#fail(logBrokenHeader(""));
      return done({
        srcAddr: formatIPv6(buf.subarray(p, p + 16)),
        dstAddr: formatIPv6(buf.subarray(p + 16, p + 32)),
        srcPort: (buf[p + 32] << 8) | buf[p + 33],
        dstPort: (buf[p + 34] << 8) | buf[p + 35],
      });
    }
    return done(null); // UNSPEC, UNIX: consumed, no addresses
  }

  #fail(log: string): ProxyReadResult {
    this.#state = S_FINISHED;
    return { kind: "error", log };
  }

  /** `broken header: "..."` over everything received: the header bytes so far, then `more`. */
  #broken(more: Uint8Array): string {
    let shown = "";
    let n = 0;
    const add = (bytes: Uint8Array): boolean => {
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i];
        if (b === CR || b === LF || n === BROKEN_HEADER_LOG_MAX) return false;
        shown += escapeByte(b);
        n++;
      }
      return true;
    };
    if (add(this.#buf.subarray(0, this.#len))) add(more);
    return logBrokenHeader(shown);
  }
}

function isAddrChar(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46) ||
    b === 0x3a || b === 0x2e;
}

/** Printable ASCII as is; control bytes, bytes >= 0x80, '"' and '\' as \xNN (one log line, unambiguous). */
function escapeByte(b: number): string {
  if (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c) return String.fromCharCode(b);
  return "\\x" + b.toString(16).padStart(2, "0");
}

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function latin1(b: Uint8Array): string {
  return String.fromCharCode.apply(null, b as unknown as number[]);
}
