// IMAP ID (RFC 2971) before login, and the ID mailgate sends to a backend
// (README "IMAP ID and the client's address"). Pure: the parser hands in the
// tokens of the argument, this file checks their shape and limits and builds
// the lists that go on the wire.
//
//   id-params-list = "(" *(string SP nstring) ")" / nil
//
// Limits are RFC 2971's, as Dovecot applies them: at most 30 pairs, keys at
// most 30 bytes, values at most 1024 bytes. An empty list "()" is accepted
// (RFC 2971's grammar allows it, Dovecot answers it).

import { type ForwardInfo, PROXY_TTL } from "../core/machine.ts";

/** RFC 2971 §3.3: at most 30 field-value pairs. */
export const MAX_ID_PAIRS = 30;
/** RFC 2971 §3.3: field strings at most 30 octets. */
export const MAX_ID_KEY = 30;
/** RFC 2971 §3.3: value strings at most 1024 octets. */
export const MAX_ID_VALUE = 1024;
/** Tokens one ID argument may have: the pairs and the two parentheses. */
export const MAX_ID_TOKENS = 2 * MAX_ID_PAIRS + 2;

/** What kind of token the parser saw (ImapLine.kinds). */
export const TOKEN_ATOM = 0;
/** A quoted string or a literal. */
export const TOKEN_STRING = 1;
export const TOKEN_OPEN = 2;
export const TOKEN_CLOSE = 3;

/** A field and its value (null: NIL), binary strings. */
export type IdField = readonly [key: string, value: string | null];

/**
 * The fields of a client's ID: [] for NIL, null when the argument is not
 * an id-params-list or breaks a limit (tagged BAD, counted as an error).
 */
export function idFields(args: readonly string[], kinds: readonly number[]): IdField[] | null {
  const n = args.length;
  if (n === 1 && kinds[0] === TOKEN_ATOM && isNil(args[0])) return [];
  if (n < 2 || kinds[0] !== TOKEN_OPEN || kinds[n - 1] !== TOKEN_CLOSE || n % 2 !== 0) return null;
  if ((n - 2) / 2 > MAX_ID_PAIRS) return null;
  const fields: IdField[] = [];
  for (let i = 1; i < n - 1; i += 2) {
    const key = args[i], value = args[i + 1];
    if (kinds[i] !== TOKEN_STRING || key.length > MAX_ID_KEY) return null;
    if (kinds[i + 1] === TOKEN_STRING) {
      if (value.length > MAX_ID_VALUE) return null;
      fields.push([key, value]);
    } else if (kinds[i + 1] === TOKEN_ATOM && isNil(value)) {
      fields.push([key, null]);
    } else {
      return null;
    }
  }
  return fields;
}

function isNil(s: string): boolean {
  return s.length === 3 && s.toUpperCase() === "NIL";
}

/**
 * Keys only a trusted proxy may set (Dovecot's reserved ID keys): a client
 * sending them is not trusted by mailgate, so they are never forwarded —
 * the backend must not take a client's word for its own address or TTL.
 */
const RESERVED = new Set([
  "x-originating-ip",
  "x-originating-port",
  "x-connected-ip",
  "x-connected-port",
  "x-proxy-ttl",
  "x-session-id",
  "x-session-ext-id",
  "x-client-transport",
]);

function isReserved(key: string): boolean {
  const k = key.toLowerCase();
  return RESERVED.has(k) || k.startsWith("x-forward-");
}

/** A quoted string cannot carry CR, LF, NUL or 8-bit bytes (RFC 3501 TEXT-CHAR). */
function quotable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d || c > 0x7f) return false;
  }
  return true;
}

/**
 * The client's fields mailgate forwards after its own (Dovecot's
 * imap_id_retain): reserved keys and fields a quoted string cannot carry
 * are dropped, and at most `room` pairs are kept so the whole ID stays
 * within 30 pairs.
 */
export function retainedFields(fields: readonly IdField[], room: number): IdField[] {
  const kept: IdField[] = [];
  for (const f of fields) {
    if (kept.length >= room) break;
    if (isReserved(f[0]) || !quotable(f[0]) || (f[1] !== null && !quotable(f[1]))) continue;
    kept.push(f);
  }
  return kept;
}

/** `"text"` with `"` and `\` escaped (the text must be quotable). */
export function quoted(s: string): string {
  return '"' + s.replace(/["\\]/g, "\\$&") + '"';
}

/** `("k" "v" "k2" NIL ...)`, or `NIL` for no fields. */
export function idList(fields: readonly IdField[]): string {
  if (fields.length === 0) return "NIL";
  return "(" + fields.map(([k, v]) => quoted(k) + " " + (v === null ? "NIL" : quoted(v))).join(" ") + ")";
}

/** The fields mailgate's own ID carries, in Dovecot's names; unknown addresses are left out. */
export function forwardFields(f: ForwardInfo): IdField[] {
  const out: IdField[] = [];
  if (f.clientIp !== null) out.push(["x-originating-ip", f.clientIp]);
  if (f.clientPort !== null) out.push(["x-originating-port", String(f.clientPort)]);
  if (f.localIp !== null) out.push(["x-connected-ip", f.localIp]);
  if (f.localPort !== null) out.push(["x-connected-port", String(f.localPort)]);
  out.push(["x-session-id", f.sessionId]);
  out.push(["x-proxy-ttl", String(PROXY_TTL - 1)]);
  return out;
}
