// The auth_http response: a push parser for the header block (auth_http.md
// §3) and the decision taken from it (§4). Pure: no socket, no timer.
//
// The parser follows nginx's ngx_mail_auth_http_module state machine byte
// for byte, so the same responses are accepted and refused. It keeps the
// response in one buffer that starts at AUTH_RESPONSE_BUF_INITIAL bytes and
// doubles up to MAX_AUTH_RESPONSE_HEADER, and refers to names and values by
// offset, so feeding it costs no per-byte allocation.

import { bytesToBinary } from "../core/bytes.ts";
import { parseNginxAddr } from "../core/ip.ts";
import { isStrictBase64 } from "../core/sasl.ts";
import type { AuthRequest, AuthResult } from "./types.ts";

/**
 * Largest response header block (status line included) mailgate accepts.
 * nginx reads at most 1024 bytes; §3 lets the product accept more.
 */
export const MAX_AUTH_RESPONSE_HEADER = 8192;

/**
 * The parser's first buffer. A typical answer is 80-300 bytes; allocating
 * (and zeroing) the whole cap for each login showed up in login profiles.
 */
export const AUTH_RESPONSE_BUF_INITIAL = 512;

/**
 * Auth-Wait values above this are clamped: it is the largest delay in whole
 * seconds that a setTimeout can express (2^31-1 ms). Only values ngx_atoi
 * accepts get here; an overflowing one is ignored (parseDecimal), as nginx
 * ignores it.
 */
export const MAX_AUTH_WAIT_SEC = 2_147_483;

/** Log lines of the auth_http client (error level unless noted). `a` = authServerName(). */
export const AUTH_LOG = {
  timedOut: (a: string) => `auth http server ${a} timed out`,
  /** A CR not followed by LF in the status line (nginx's text). */
  invalidResponse: (a: string) => `auth http server ${a} sent invalid response`,
  invalidHeader: (a: string) => `auth http server ${a} sent invalid header in response`,
  /** nginx logs nothing when the block exceeds its buffer; this text is mailgate's. */
  tooBig: (a: string) => `auth http server ${a} sent too big response header`,
  /**
   * nginx logs nothing when the auth server closes before the empty line;
   * mailgate reports it with nginx's closest text.
   */
  closedEarly: (a: string) => `auth http server ${a} sent invalid response`,
  noServer: (a: string) => `auth http server ${a} did not send server or port`,
  noPassword: (a: string) => `auth http server ${a} did not send password`,
  badAddress: (a: string, v: string) => `auth http server ${a} sent invalid server address:"${v}"`,
  badPort: (a: string, v: string) => `auth http server ${a} sent invalid server port:"${v}"`,
  /** mailgate's: the value is not quoted (it may echo what the client sent). */
  badErrorSasl: (a: string) =>
    `auth http server ${a} sent invalid "Auth-Error-SASL" header (not base64), ignored`,
  /** mailgate's bound on Auth-Status: WAIT rounds (nginx has none). */
  tooManyWaits: (a: string, n: number) => `auth http server ${a} sent WAIT ${n} times, giving up`,
  /** Kept on one line, with nginx's action suffix, as nginx's connect() error reads. */
  connectFailed: (a: string, err: string) =>
    `connect() to ${a} failed (${err}) while in http auth state`,
  /** auth_http by name (mailgate extension): the resolver could not give an address. */
  notResolved: (a: string, code: number, text: string) =>
    `auth http server ${a} could not be resolved (${code}: ${text}) while in http auth state`,
  /** A read/write error on an established auth connection (nginx: recv()/send() failed). */
  ioFailed: (err: string) => `recv() failed (${err}) while in http auth state`,
} as const;

/** What the header block said, after nginx's "which occurrence counts" rules. */
export interface AuthResponseHeaders {
  /**
   * The last Auth-Status that was neither `OK` nor `WAIT` (the refusal
   * message), or null. A later `Auth-Status: OK` does not cancel it.
   */
  refusal: string | null;
  /** Some `Auth-Status: WAIT` was seen (an `OK` after it does not cancel it, as in nginx). */
  wait: boolean;
  /** Last occurrence of each; null when absent. Values are binary strings, used as-is. */
  server: string | null;
  port: string | null;
  user: string | null;
  pass: string | null;
  errorCode: string | null;
  /** Last Auth-Error-SASL (freenginx 1.27.1: RFC 7628 error challenge, base64 of JSON), null when absent. */
  errorSasl: string | null;
  /**
   * Last numeric Auth-Wait, clamped; null when none. Non-numeric and
   * overflowing values are ignored (nginx: ngx_atoi's NGX_ERROR), so an
   * earlier valid value stands.
   */
  waitSec: number | null;
}

export type ParseError = "invalid-response" | "invalid-header" | "too-big";

export type ParseResult =
  | { kind: "more" }
  | { kind: "done"; headers: AuthResponseHeaders }
  | { kind: "error"; reason: ParseError };

const CR = 13;
const LF = 10;
const SP = 32;
const COLON = 58;
const DASH = 45;

// Parser states (nginx's sw_* names in comments).
const S = {
  /** Before anything: is there an "HTTP/" status line? */
  Begin: 0,
  StatusSkip: 1, // sw_skip
  StatusAlmostDone: 2, // sw_almost_done of the status line
  LineStart: 3, // sw_start
  Name: 4, // sw_name
  SpaceBeforeValue: 5, // sw_space_before_value
  Value: 6, // sw_value
  SpaceAfterValue: 7, // sw_space_after_value
  LineAlmostDone: 8, // sw_almost_done
  EndAlmostDone: 9, // sw_header_almost_done
  Done: 10,
  Failed: 11,
} as const;
type State = typeof S[keyof typeof S];

const HTTP_PREFIX = [0x48, 0x54, 0x54, 0x50, 0x2f]; // "HTTP/"
const HTTP11 = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x20]; // "HTTP/1.1 "

function isAlnum(c: number): boolean {
  const l = c | 0x20;
  return (l >= 0x61 && l <= 0x7a) || (c >= 0x30 && c <= 0x39);
}

/** Push parser for one response. Feed chunks until the result is not "more". */
export class AuthResponseParser {
  private buf: Uint8Array;
  private len = 0;
  private pos = 0;
  private state: State = S.Begin;
  private result: ParseResult = { kind: "more" };
  private nameStart = 0;
  private nameEnd = 0;
  private valueStart = 0;
  private valueEnd = 0;
  /** Framing headers, for reusing the connection (auth_http_keepalive). */
  private connClose = false;
  private chunked = false;
  private contentLength: number | null = null;
  /** Offset just past the empty line, once done. */
  private end = 0;
  /** Bytes that came after the header block (kept in buf, or dropped past the cap). */
  private extra = 0;
  /** Every other header, name as received (limit_conn's $auth_http_<header> keys); null when none. */
  other: [string, string][] | null = null;

  private readonly h: AuthResponseHeaders = {
    refusal: null,
    wait: false,
    server: null,
    port: null,
    user: null,
    pass: null,
    errorCode: null,
    errorSasl: null,
    waitSec: null,
  };

  constructor(readonly cap: number = MAX_AUTH_RESPONSE_HEADER) {
    this.buf = new Uint8Array(Math.min(cap, AUTH_RESPONSE_BUF_INITIAL));
  }

  /**
   * Bytes from the auth server. The chunk is copied (up to the cap), so it
   * may be a reused buffer. Bytes after the empty line are ignored.
   */
  feed(chunk: Uint8Array): ParseResult {
    if (this.result.kind !== "more") {
      if (this.result.kind === "done") this.extra += chunk.length;
      return this.result;
    }
    const take = Math.min(this.cap - this.len, chunk.length);
    if (this.len + take > this.buf.length) this.grow(this.len + take);
    this.buf.set(chunk.subarray(0, take), this.len);
    this.len += take;
    this.run();
    // run() may have changed the result (TypeScript still narrows it to "more").
    const kind = (this.result as ParseResult).kind;
    if (kind === "done") this.extra = this.len - this.end + (chunk.length - take);
    else if (kind === "more" && take < chunk.length) this.fail("too-big");
    return this.result;
  }

  /**
   * After "done": whether the connection may carry another request
   * (auth_http_keepalive). Only an HTTP/1.1 answer without
   * `Connection: close` or Transfer-Encoding whose body is known to be
   * complete: `Content-Length` equal to the bytes already received after the
   * header block, or no body at all (204/304 without Content-Length).
   * Anything else, or a byte too many, and the connection is closed.
   */
  reusable(): boolean {
    if (this.result.kind !== "done" || this.connClose || this.chunked) return false;
    const b = this.buf;
    // "HTTP/1.1 NNN"
    if (this.len < 12) return false;
    for (let i = 0; i < 9; i++) if (b[i] !== HTTP11[i]) return false;
    const status = (b[9] - 0x30) * 100 + (b[10] - 0x30) * 10 + (b[11] - 0x30);
    const body = this.contentLength ?? (status === 204 || status === 304 ? 0 : -1);
    return body === this.extra;
  }

  /** Room for `need` bytes (need <= cap): double, at most to the cap. */
  private grow(need: number): void {
    let size = Math.max(1, this.buf.length) * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(Math.min(size, this.cap));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private fail(reason: ParseError): void {
    this.state = S.Failed;
    this.result = { kind: "error", reason };
  }

  private run(): void {
    const b = this.buf;
    if (this.state === S.Begin) {
      // nginx skips the first line only if the response starts "HTTP/";
      // otherwise it parses header lines from the first byte.
      const n = Math.min(this.len, HTTP_PREFIX.length);
      let i = 0;
      while (i < n && b[i] === HTTP_PREFIX[i]) i++;
      if (i < n) {
        this.state = S.LineStart;
      } else if (n === HTTP_PREFIX.length) {
        this.state = S.StatusSkip;
        this.pos = HTTP_PREFIX.length;
      } else {
        return; // a prefix of "HTTP/" so far
      }
    }

    let p = this.pos;
    let state = this.state;
    for (; p < this.len; p++) {
      const c = b[p];
      switch (state) {
        case S.StatusSkip:
          if (c === CR) state = S.StatusAlmostDone;
          else if (c === LF) state = S.LineStart;
          break;

        case S.StatusAlmostDone:
          if (c !== LF) return this.fail("invalid-response");
          state = S.LineStart;
          break;

        case S.LineStart:
          if (c === CR) {
            state = S.EndAlmostDone;
          } else if (c === LF) {
            this.pos = p + 1;
            return this.finish();
          } else {
            if (!isAlnum(c)) return this.fail("invalid-header");
            this.nameStart = p;
            state = S.Name;
          }
          break;

        case S.Name:
          if (isAlnum(c) || c === DASH) break;
          if (c === COLON) {
            this.nameEnd = p;
            state = S.SpaceBeforeValue;
          } else if (c === CR || c === LF) {
            // A name without a colon: the header with an empty value.
            this.nameEnd = this.valueStart = this.valueEnd = p;
            if (c === LF) this.header();
            state = c === CR ? S.LineAlmostDone : S.LineStart;
          } else {
            return this.fail("invalid-header");
          }
          break;

        case S.SpaceBeforeValue:
          if (c === SP) break;
          if (c === CR || c === LF) {
            this.valueStart = this.valueEnd = p;
            if (c === LF) this.header();
            state = c === CR ? S.LineAlmostDone : S.LineStart;
          } else {
            this.valueStart = p;
            state = S.Value;
          }
          break;

        case S.Value:
          if (c === SP) {
            this.valueEnd = p;
            state = S.SpaceAfterValue;
          } else if (c === CR) {
            this.valueEnd = p;
            state = S.LineAlmostDone;
          } else if (c === LF) {
            this.valueEnd = p;
            this.header();
            state = S.LineStart;
          }
          break;

        case S.SpaceAfterValue:
          if (c === SP) break;
          if (c === CR) {
            state = S.LineAlmostDone;
          } else if (c === LF) {
            this.header();
            state = S.LineStart;
          } else {
            state = S.Value;
          }
          break;

        case S.LineAlmostDone:
          if (c !== LF) return this.fail("invalid-header");
          this.header();
          state = S.LineStart;
          break;

        case S.EndAlmostDone:
          if (c !== LF) return this.fail("invalid-header");
          this.pos = p + 1;
          return this.finish();
      }
    }
    this.pos = p;
    this.state = state;
  }

  private finish(): void {
    this.end = this.pos;
    this.state = S.Done;
    this.result = { kind: "done", headers: this.h };
  }

  private nameIs(lower: string): boolean {
    if (this.nameEnd - this.nameStart !== lower.length) return false;
    for (let i = 0; i < lower.length; i++) {
      if ((this.buf[this.nameStart + i] | 0x20) !== lower.charCodeAt(i)) return false;
    }
    return true;
  }

  private value(): string {
    return bytesToBinary(this.buf.subarray(this.valueStart, this.valueEnd));
  }

  /** One complete header line: keep it if it is one of §4's. */
  private header(): void {
    const h = this.h;
    if (this.nameIs("auth-status")) {
      const v = this.value();
      if (v === "OK") return; // never cancels an earlier refusal or WAIT
      if (v === "WAIT") h.wait = true;
      else h.refusal = v;
    } else if (this.nameIs("auth-server")) {
      h.server = this.value();
    } else if (this.nameIs("auth-port")) {
      h.port = this.value();
    } else if (this.nameIs("auth-user")) {
      h.user = this.value();
    } else if (this.nameIs("auth-pass")) {
      h.pass = this.value();
    } else if (this.nameIs("auth-wait")) {
      const n = parseDecimal(this.value());
      if (n !== null) h.waitSec = Math.min(n, MAX_AUTH_WAIT_SEC);
    } else if (this.nameIs("auth-error-code")) {
      h.errorCode = this.value();
    } else if (this.nameIs("auth-error-sasl")) {
      h.errorSasl = this.value();
    } else if (this.nameIs("content-length")) {
      this.contentLength = parseDecimal(this.value());
      // Non-numeric or overflowing: unknown framing, never reuse.
      if (this.contentLength === null) this.connClose = true;
    } else if (this.nameIs("connection")) {
      if (/(^|[ ,])close($|[ ,])/i.test(this.value())) this.connClose = true;
    } else if (this.nameIs("transfer-encoding")) {
      this.chunked = true;
    } else {
      (this.other ??= []).push([bytesToBinary(this.buf.subarray(this.nameStart, this.nameEnd)), this.value()]);
    }
  }
}

/**
 * NGX_MAX_INT_T_VALUE of a 64-bit nginx, in digits: ngx_atoi refuses any
 * larger value (NGX_ERROR), it does not saturate.
 */
export const NGX_MAX_INT_T_TEXT = "9223372036854775807";

/**
 * nginx's ngx_atoi: one or more decimal digits, nothing else, and a value of
 * at most NGX_MAX_INT_T_TEXT (leading zeros do not count, as in ngx_atoi).
 * Anything else is null, so a caller treats an overflowing number exactly as
 * a non-numeric one. Values above 2^53 come back rounded; every caller only
 * range-checks or clamps them.
 */
export function parseDecimal(s: string): number | null {
  if (s.length === 0) return null;
  let first = -1; // the first non-zero digit
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
    if (first < 0 && c !== 0x30) first = i;
  }
  if (first >= 0) {
    const digits = s.length - first;
    const max = NGX_MAX_INT_T_TEXT.length;
    // Equal-length digit strings compare as numbers.
    if (digits > max || (digits === max && s.slice(first) > NGX_MAX_INT_T_TEXT)) return null;
  }
  return Number(s);
}

/** decideAuth's result: an AuthResult, or "ask again" (Auth-Status: WAIT). */
export type AuthDecision =
  | AuthResult
  | {
    kind: "wait";
    waitSec: number;
    /** Auth-User / Auth-Pass of the WAIT response: they replace the values of the repeated request. */
    user: string | null;
    pass: string | null;
  };

/**
 * The client's password when it can be used towards the backend: only for
 * `plain`. APOP/CRAM-MD5 sent a digest (the proxy forgets it once Auth-Salt
 * is sent), EXTERNAL and `none` have no password. A bearer token is never
 * a backend password, but with proxy_oauth_passthrough on it is what the
 * backend login sends (as a token), so an answer without Auth-Pass is
 * enough there.
 */
export function usableClientPassword(req: AuthRequest): string | null {
  const m = req.creds.method;
  if (m === "plain") return req.creds.pass;
  if ((m === "xoauth2" || m === "oauthbearer") && req.oauthPassthrough === true) return req.creds.pass;
  return null;
}

/**
 * Auth-Error-SASL: sent to the client as it is, so it must be strict base64;
 * anything else is ignored (the refusal is plain) with a log line, as it
 * could only give the client a challenge it cannot decode. Empty: absent.
 */
function errorSasl(v: string | null, server: string): { saslError?: string; log?: string } {
  if (v === null || v === "") return {};
  if (isStrictBase64(v)) return { saslError: v };
  return { log: AUTH_LOG.badErrorSasl(server) };
}

/**
 * An Auth-Server value that is a host name (mailgate extension): letters,
 * digits, `-` and `.` with at least one letter, at most 253 characters, so
 * that nothing nginx reads as an address (`010.1..2`) is taken for a name.
 */
export function isAuthServerName(v: string): boolean {
  return v.length <= 253 && /^[A-Za-z0-9.-]+$/.test(v) && /[A-Za-z]/.test(v) && !v.startsWith(".") &&
    !v.startsWith("-") && !v.includes("..");
}

/** §4: what to do with a complete header block. `server` = authServerName(url). */
export function decideAuth(
  h: AuthResponseHeaders,
  req: AuthRequest,
  server: string,
  other: [string, string][] | null = null,
): AuthDecision {
  if (h.refusal !== null) {
    return {
      kind: "refused",
      message: h.refusal,
      waitSec: h.waitSec ?? 0,
      // An empty Auth-Error-Code counts as absent (nginx: errcode.len == 0 -> the default).
      errorCode: req.protocol === "smtp" && h.errorCode !== "" ? h.errorCode : null,
      ...errorSasl(h.errorSasl, server),
    };
  }
  if (h.wait) return { kind: "wait", waitSec: h.waitSec ?? 0, user: h.user, pass: h.pass };

  if (h.server === null || h.server === "" || h.port === null || h.port === "") {
    return { kind: "error", log: AUTH_LOG.noServer(server) };
  }
  const pass = h.pass ?? req.waitPass ?? usableClientPassword(req);
  if (pass === null && req.protocol !== "smtp") {
    return { kind: "error", log: AUTH_LOG.noPassword(server) };
  }
  // mailgate extension: a host name, looked up with the server's resolver when dialing (backend_dial.ts).
  const addr = parseNginxAddr(h.server) ?? (isAuthServerName(h.server) ? h.server : null);
  if (addr === null) return { kind: "error", log: AUTH_LOG.badAddress(server, h.server) };
  const port = parseDecimal(h.port);
  if (port === null || port < 1 || port > 65535) {
    return { kind: "error", log: AUTH_LOG.badPort(server, h.port) };
  }
  const user = h.user ?? req.waitUser ?? (req.creds.method === "none" ? "" : req.creds.user);
  return { kind: "ok", addr, port, user, pass, backendName: `${h.server}:${h.port}`, ...(other ? { headers: other } : {}) };
}
