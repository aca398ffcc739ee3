// SASL pieces shared by IMAP AUTHENTICATE, POP3 AUTH and SMTP AUTH
// (imap.md §5 "SASL details"): lenient base64, the PLAIN / LOGIN /
// CRAM-MD5 / EXTERNAL payload decoders, and the response-line rule.
// All values are binary strings (lib/core/bytes.ts): one char per byte.
//
// Decoders never throw; a failure carries the info-level log line nginx
// writes for it, and every protocol answers it with its plain "invalid
// command" reply (not counted toward max_errors).

import { bytesToBinary } from "./bytes.ts";

/** Base64 of "Username:" and "Password:", the LOGIN / EXTERNAL challenges. */
export const SASL_USERNAME_CHALLENGE = "VXNlcm5hbWU6";
export const SASL_PASSWORD_CHALLENGE = "UGFzc3dvcmQ6";

/** Length of a CRAM-MD5 digest in hex characters. */
const CRAM_MD5_DIGEST_LENGTH = 32;

const B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < B64_ALPHABET.length; i++) B64_VALUE[B64_ALPHABET.charCodeAt(i)] = i;
const EQ = 0x3d;

/**
 * Lenient base64 (nginx ngx_decode_base64): decoding stops at the first
 * "="; missing padding is fine; "" decodes to "". A character outside the
 * alphabet before the first "=", or a single dangling character, is an
 * error (null).
 */
export function decodeBase64(s: string): string | null {
  let len = 0;
  for (; len < s.length; len++) {
    const c = s.charCodeAt(len);
    if (c === EQ) break;
    if (c > 0xff || B64_VALUE[c] < 0) return null;
  }
  if (len % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let o = 0;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const n = (B64_VALUE[s.charCodeAt(i)] << 18) | (B64_VALUE[s.charCodeAt(i + 1)] << 12) |
      (B64_VALUE[s.charCodeAt(i + 2)] << 6) | B64_VALUE[s.charCodeAt(i + 3)];
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  const rest = len - i;
  if (rest >= 2) {
    const n = (B64_VALUE[s.charCodeAt(i)] << 18) | (B64_VALUE[s.charCodeAt(i + 1)] << 12) |
      (rest === 3 ? B64_VALUE[s.charCodeAt(i + 2)] << 6 : 0);
    out[o++] = n >> 16;
    if (rest === 3) out[o++] = (n >> 8) & 0xff;
  }
  return bytesToBinary(out.subarray(0, o));
}

/** Standard base64 with padding of a binary string. */
export function encodeBase64(s: string): string {
  let out = "";
  let i = 0;
  for (; i + 3 <= s.length; i += 3) {
    const n = ((s.charCodeAt(i) & 0xff) << 16) | ((s.charCodeAt(i + 1) & 0xff) << 8) |
      (s.charCodeAt(i + 2) & 0xff);
    out += B64_ALPHABET[n >> 18] + B64_ALPHABET[(n >> 12) & 63] + B64_ALPHABET[(n >> 6) & 63] +
      B64_ALPHABET[n & 63];
  }
  const rest = s.length - i;
  if (rest > 0) {
    const n = ((s.charCodeAt(i) & 0xff) << 16) |
      (rest === 2 ? (s.charCodeAt(i + 1) & 0xff) << 8 : 0);
    out += B64_ALPHABET[n >> 18] + B64_ALPHABET[(n >> 12) & 63] +
      (rest === 2 ? B64_ALPHABET[(n >> 6) & 63] : "=") + "=";
  }
  return out;
}

/** A decoded user/secret pair, or the reason it could not be decoded. */
export type SaslCredentials =
  | { ok: true; user: string; pass: string }
  | { ok: false; log: string };

/** A single decoded value (LOGIN user or password, EXTERNAL identity). */
export type SaslValue = { ok: true; value: string } | { ok: false; log: string };

function badBase64(mech: string): { ok: false; log: string } {
  return { ok: false, log: `client sent invalid base64 encoding in AUTH ${mech} command` };
}

/**
 * PLAIN: base64 of `authzid NUL authcid NUL password`. The authzid is
 * ignored; the password is everything after the second NUL (it may itself
 * contain NULs); fewer than two NULs is an error.
 */
export function decodePlain(b64: string): SaslCredentials {
  const data = decodeBase64(b64);
  if (data === null) return badBase64("PLAIN");
  const first = data.indexOf("\0");
  if (first < 0 || first + 1 === data.length) {
    return { ok: false, log: "client sent invalid login in AUTH PLAIN command" };
  }
  const second = data.indexOf("\0", first + 1);
  if (second < 0) return { ok: false, log: "client sent invalid password in AUTH PLAIN command" };
  return { ok: true, user: data.slice(first + 1, second), pass: data.slice(second + 1) };
}

/** LOGIN user name or password: plain base64, may decode to "". */
export function decodeLoginValue(b64: string): SaslValue {
  const value = decodeBase64(b64);
  return value === null ? badBase64("LOGIN") : { ok: true, value };
}

/** EXTERNAL identity: plain base64, may decode to "". */
export function decodeExternal(b64: string): SaslValue {
  const value = decodeBase64(b64);
  return value === null ? badBase64("EXTERNAL") : { ok: true, value };
}

/**
 * CRAM-MD5 response: base64 of `user SP digest`; the digest is everything
 * after the first space and must be exactly 32 characters (not otherwise
 * checked, as in nginx). `pass` is the digest.
 */
export function decodeCramMd5(b64: string): SaslCredentials {
  const data = decodeBase64(b64);
  if (data === null) return badBase64("CRAM-MD5");
  const sp = data.indexOf(" ");
  if (sp < 0 || data.length - sp - 1 !== CRAM_MD5_DIGEST_LENGTH) {
    return { ok: false, log: "client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command" };
  }
  return { ok: true, user: data.slice(0, sp), pass: data.slice(sp + 1) };
}

/** What a client's answer to a SASL challenge amounts to. */
export type SaslResponse =
  /** The line is exactly "*": abandon the exchange (product decision). */
  | { kind: "cancel" }
  /** More words than the protocol allows: an invalid line (counted). */
  | { kind: "invalid" }
  /** The first word ("" for an empty line), still base64. */
  | { kind: "value"; value: string };

/**
 * The response-line rule for line-oriented protocols (POP3, SMTP): the line
 * (without its line end) is split into space-separated words like command
 * arguments and the first word is used. IMAP's parser does its own word
 * splitting (quoted strings, literals) and uses saslResponseOfWords().
 */
export function saslResponseOfLine(line: string, maxWords: number): SaslResponse {
  if (line === "*") return { kind: "cancel" };
  let words = 0;
  let first = "";
  let i = 0;
  while (i < line.length) {
    if (line.charCodeAt(i) === 0x20) {
      i++;
      continue;
    }
    let j = line.indexOf(" ", i);
    if (j < 0) j = line.length;
    if (words === 0) first = line.slice(i, j);
    if (++words > maxWords) return { kind: "invalid" };
    i = j;
  }
  return { kind: "value", value: first };
}

/** The same rule for already-split words; `exactlyStar`: the raw line was "*". */
export function saslResponseOfWords(words: readonly string[], exactlyStar: boolean): SaslResponse {
  if (exactlyStar) return { kind: "cancel" };
  return { kind: "value", value: words.length > 0 ? words[0] : "" };
}

// ---- OAuth bearer tokens (XOAUTH2, OAUTHBEARER: RFC 7628) -----------------
//
// Both carry `auth=Bearer <token>` in ^A-separated key/value pairs. Parsing
// is strict: anything but the documented shape is an error (counted toward
// max_errors by the protocols). Log lines never quote the payload: it holds
// a secret.

/** A decoded bearer-token payload: the user it names, the bare token, the decoded payload. */
export type SaslBearer =
  | { ok: true; user: string; token: string; payload: string }
  | { ok: false; log: string };

const SOH = "\x01";

/** RFC 6750 credentials, scheme matched case-insensitively (RFC 7235 §2.1). */
const BEARER_PREFIX = "bearer ";

function badPayload(mech: string, what: string): { ok: false; log: string } {
  return { ok: false, log: `client sent invalid ${what} in AUTH ${mech} command` };
}

/**
 * The token of `auth=` value: `Bearer <token>`, the token 1*VCHAR (bytes
 * 0x21-0x7E; so never CR, LF, NUL, space or 8-bit bytes), null otherwise.
 */
function bearerToken(value: string): string | null {
  if (value.length <= BEARER_PREFIX.length) return null;
  if (value.slice(0, BEARER_PREFIX.length).toLowerCase() !== BEARER_PREFIX) return null;
  const token = value.slice(BEARER_PREFIX.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return null;
  }
  return token;
}

/** A user name may not hold control bytes (CR, LF, NUL, ^A ...). */
function plainUser(user: string): boolean {
  for (let i = 0; i < user.length; i++) {
    const c = user.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

/**
 * XOAUTH2 (Google's mechanism): base64 of
 * `user=<user> ^A auth=Bearer <token> ^A ^A`, exactly.
 */
export function decodeXoauth2(b64: string): SaslBearer {
  const data = decodeBase64(b64);
  if (data === null) return badBase64("XOAUTH2");
  if (!data.startsWith("user=")) return badPayload("XOAUTH2", "user");
  const userEnd = data.indexOf(SOH);
  if (userEnd < 0) return badPayload("XOAUTH2", "user");
  const user = data.slice(5, userEnd);
  if (user === "" || !plainUser(user)) return badPayload("XOAUTH2", "user");
  const rest = data.slice(userEnd + 1);
  if (!rest.startsWith("auth=") || !rest.endsWith(SOH + SOH)) {
    return badPayload("XOAUTH2", "token");
  }
  const token = bearerToken(rest.slice(5, rest.length - 2));
  if (token === null) return badPayload("XOAUTH2", "token");
  return { ok: true, user, token, payload: data };
}

/**
 * RFC 5801 saslname: `=2C` is ",", `=3D` is "="; any other "=" or a raw
 * "," is an error (null).
 */
export function unescapeSaslName(s: string): string | null {
  if (s.indexOf(",") >= 0) return null;
  if (s.indexOf("=") < 0) return s;
  let out = "";
  let i = 0;
  for (;;) {
    const eq = s.indexOf("=", i);
    if (eq < 0) return out + s.slice(i);
    const esc = s.slice(eq, eq + 3).toUpperCase();
    if (esc !== "=2C" && esc !== "=3D") return null;
    out += s.slice(i, eq) + (esc === "=2C" ? "," : "=");
    i = eq + 3;
  }
}

/** RFC 7628 key: 1*(ALPHA). */
function oauthKey(k: string): boolean {
  if (k === "") return false;
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i) | 0x20;
    if (c < 0x61 || c > 0x7a) return false;
  }
  return true;
}

/**
 * OAUTHBEARER (RFC 7628 §3.1): base64 of the GS2 header `n,a=<authzid>,`
 * (or `n,,`; `y` also accepted, channel binding `p=` is not), then
 * `^A key=value ^A ... ^A ^A` with exactly one `auth=Bearer <token>`;
 * `host`, `port` and other keys are allowed and ignored. The user is the
 * authzid with =2C / =3D unescaped ("" when absent).
 */
export function decodeOauthBearer(b64: string): SaslBearer {
  const data = decodeBase64(b64);
  if (data === null) return badBase64("OAUTHBEARER");
  const M = "OAUTHBEARER";
  // gs2-header: cbind-flag "," [authzid] ","
  if (!(data.startsWith("n,") || data.startsWith("y,"))) return badPayload(M, "GS2 header");
  const authzEnd = data.indexOf(",", 2);
  if (authzEnd < 0) return badPayload(M, "GS2 header");
  const authz = data.slice(2, authzEnd);
  let user = "";
  if (authz !== "") {
    if (!authz.startsWith("a=")) return badPayload(M, "GS2 header");
    const u = unescapeSaslName(authz.slice(2));
    if (u === null || u === "" || !plainUser(u)) return badPayload(M, "GS2 header");
    user = u;
  }
  const kv = data.slice(authzEnd + 1);
  if (!kv.startsWith(SOH) || !kv.endsWith(SOH + SOH) || kv.length < 3) {
    return badPayload(M, "key/value pairs");
  }
  let token: string | null = null;
  for (const pair of kv.slice(1, kv.length - 2).split(SOH)) {
    const eq = pair.indexOf("=");
    if (eq < 0 || !oauthKey(pair.slice(0, eq))) return badPayload(M, "key/value pairs");
    if (pair.slice(0, eq) !== "auth") continue;
    if (token !== null) return badPayload(M, "token");
    token = bearerToken(pair.slice(eq + 1));
    if (token === null) return badPayload(M, "token");
  }
  if (token === null) return badPayload(M, "token");
  return { ok: true, user, token, payload: data };
}

/**
 * Strict base64 (RFC 4648 §4, padded, non-empty), as the auth service's
 * Auth-Error-SASL must be: it goes to the client as a challenge verbatim.
 */
export function isStrictBase64(s: string): boolean {
  if (s.length === 0 || s.length % 4 !== 0) return false;
  let pad = 0;
  if (s.endsWith("==")) pad = 2;
  else if (s.endsWith("=")) pad = 1;
  for (let i = 0; i < s.length - pad; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || B64_VALUE[c] < 0) return false;
  }
  return true;
}
