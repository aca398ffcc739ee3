// mailgate's built-in auth table (`auth_table <file>;`): an AuthService that
// routes users to backends from a text file, without any HTTP request, so a
// default configuration runs without an auth_http server.
//
// File format, one entry per line, fields separated by spaces or tabs:
//
//     # user-or-pattern        backend            [password]
//     alice@example.org        127.0.0.1:1143     scrypt:<N>:<r>:<p>:<salt b64>:<hash b64>
//     bob@example.org          [::1]:1143         plain:secret
//     @example.org             127.0.0.1:1143     # any user of the domain
//     *                        127.0.0.1:1143     # everybody else
//
// * `#` starts a comment at the beginning of a line or of a field (so a
//   password such as `plain:a#b` keeps its `#`). Blank lines are ignored.
//   A password cannot contain spaces or tabs (use the scrypt form for those).
// * Matching: an exact user entry wins over `@domain`, which wins over `*`.
//   The local part (everything before the last `@`) is compared exactly,
//   byte for byte; the domain part is compared case-insensitively (ASCII),
//   because domain names are case-insensitive and local parts need not be.
//   A user name without `@` is compared exactly. Each user or pattern may
//   appear once.
// * Backend: `IPv4:port` or `[IPv6]:port`; host names are not accepted (as
//   with Auth-Server, nothing is resolved at login time).
// * Password: `scrypt:...` (make one with hashPassword / the CLI) or
//   `plain:<text>` (explicitly plaintext). Without a password field the
//   client's password is not checked here and is passed to the backend,
//   which checks it.
//
// Behaviour per method (Auth-Method of auth_http.md §2.1):
// * plain: verify the password if the entry has one; pass the client's
//   password to the backend.
// * apop / cram-md5: need a `plain:` password to check the digest, which is
//   then the password given to the backend. A scrypt or missing password
//   cannot check a digest: refused.
// * external: accepted only when the client presented a certificate that
//   verified (Auth-SSL-Verify would be SUCCESS), the certificate subject's
//   CN is the user name (compared like table entries), and the entry has a
//   `plain:` password to give to the backend. Otherwise refused. (The table
//   has no other way to know that the identity claimed is the client's.)
// * xoauth2 / oauthbearer: the table cannot validate a bearer token. An
//   entry without a password passes the user and token on (the backend
//   validates it); an entry with a password refuses, with a log line
//   saying why.
// * none (SMTP without authentication): routed by the recipient of the
//   RCPT command, looked up like a user; no match: `550 5.7.1 Relay access
//   denied`, and the session ends (waitSec 0).
// Refused logins get `Invalid login or password` with waitSec 2 - the delay
// auth servers typically send as Auth-Wait, so the client may try again
// while guessing stays slow.

import { readFile } from "node:fs/promises";
import { bytesToBinary, textBytes } from "../core/bytes.ts";
import { isStrictIpv4, isStrictIpv6 } from "../core/ip.ts";
import { parseDecimal } from "./http_response.ts";
import { RefusedBackendHint, tableRoute } from "./route_notice.ts";
import {
  apopDigest,
  cramMd5Digest,
  digestMatches,
  equalSecrets,
  parseScryptHash,
  type ScryptHash,
  verifyScrypt,
} from "./password_hash.ts";
import type { AuthRequest, AuthResult, AuthService } from "./types.ts";

/** Refusal texts and delays of the table service. */
export const TABLE_REFUSAL = {
  login: { message: "Invalid login or password", waitSec: 2, errorCode: null },
  relay: { message: "Relay access denied", waitSec: 0, errorCode: "550 5.7.1" },
} as const;

function refused(r: typeof TABLE_REFUSAL[keyof typeof TABLE_REFUSAL]): AuthResult {
  return { kind: "refused", message: r.message, waitSec: r.waitSec, errorCode: r.errorCode };
}

/**
 * Why a token login was refused (the entry's line, never the token): the
 * session logs it next to its "client login failed" line.
 */
export function logTokenNeedsBackend(e: AuthTableEntry, file: string): string {
  return `auth table entry "${e.pattern}" (${file}:${e.line}) has a password, ` +
    "which cannot validate an OAuth token; remove the password to let the backend validate it";
}

/** Largest auth table file read (a misconfigured path to a huge file fails cleanly). */
export const MAX_AUTH_TABLE_BYTES = 16 * 1024 * 1024;

export type TablePassword =
  | { kind: "plain"; value: string } // binary string (UTF-8 bytes of the text)
  | { kind: "scrypt"; hash: ScryptHash };

export interface AuthTableEntry {
  /** The user or pattern as written. */
  pattern: string;
  host: string;
  port: number;
  /** `host:port` as written (IPv6 in brackets), for logs. */
  backendName: string;
  password: TablePassword | null;
  line: number;
}

export interface AuthTable {
  file: string;
  /** Keys are normalised (binary strings, domain part lower-cased). */
  users: Map<string, AuthTableEntry>;
  domains: Map<string, AuthTableEntry>;
  any: AuthTableEntry | null;
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** The key a user name or address is looked up under (binary string). */
function userKey(user: string): string {
  const at = user.lastIndexOf("@");
  return at < 0 ? user : user.slice(0, at + 1) + asciiLower(user.slice(at + 1));
}

/** The entry for a user name or mail address (binary string): exact, then @domain, then *. */
export function lookupUser(table: AuthTable, user: string): AuthTableEntry | null {
  const exact = table.users.get(userKey(user));
  if (exact !== undefined) return exact;
  const at = user.lastIndexOf("@");
  if (at >= 0) {
    const dom = table.domains.get(asciiLower(user.slice(at + 1)));
    if (dom !== undefined) return dom;
  }
  return table.any;
}

function parseBackend(v: string): { host: string; port: number } | null {
  let host: string;
  let portText: string;
  if (v.startsWith("[")) {
    const close = v.indexOf("]");
    if (close < 0 || v[close + 1] !== ":") return null;
    host = v.slice(1, close);
    portText = v.slice(close + 2);
    if (!isStrictIpv6(host)) return null;
  } else {
    const colon = v.lastIndexOf(":");
    if (colon < 0) return null;
    host = v.slice(0, colon);
    portText = v.slice(colon + 1);
    if (!isStrictIpv4(host)) return null;
  }
  const port = parseDecimal(portText);
  if (port === null || port < 1 || port > 65535) return null;
  return { host, port };
}

function parsePassword(v: string): TablePassword | null {
  if (v.startsWith("plain:")) return { kind: "plain", value: bytesToBinary(textBytes(v.slice(6))) };
  if (v.startsWith("scrypt:")) {
    const hash = parseScryptHash(v);
    return hash === null ? null : { kind: "scrypt", hash };
  }
  return null;
}

/**
 * Parse the text of an auth table file. Throws `Error("<message> in
 * <file>:<line>")` on the first error, like configuration errors.
 */
export function parseAuthTable(text: string, file: string): AuthTable {
  const table: AuthTable = { file, users: new Map(), domains: new Map(), any: null };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const fail = (msg: string): never => {
      throw new Error(`${msg} in ${file}:${line}`);
    };
    const fields: string[] = [];
    for (const f of lines[i].split(/[ \t\r]+/)) {
      if (f === "") continue;
      if (f.startsWith("#")) break;
      fields.push(f);
    }
    if (fields.length === 0) continue;
    if (fields.length > 3) fail(`too many fields in auth table entry "${fields[0]}"`);
    if (fields.length < 2) fail(`no backend in auth table entry "${fields[0]}"`);

    const [pattern, backendText, passwordText] = fields;
    const backend = parseBackend(backendText);
    if (backend === null) {
      fail(`invalid backend "${backendText}" (expected IPv4:port or [IPv6]:port)`);
    }
    let password: TablePassword | null = null;
    if (passwordText !== undefined) {
      password = parsePassword(passwordText);
      // The field is a secret: never echo it.
      if (password === null) {
        fail(`invalid password field (expected "scrypt:N:r:p:salt:hash" or "plain:text")`);
      }
    }
    const entry: AuthTableEntry = {
      pattern,
      host: backend!.host,
      port: backend!.port,
      backendName: backendText,
      password,
      line,
    };

    const raw = bytesToBinary(textBytes(pattern));
    let map: Map<string, AuthTableEntry> | null;
    let key: string;
    if (pattern === "*") {
      if (table.any !== null) fail(`duplicate entry "*" (first in line ${table.any.line})`);
      table.any = entry;
      continue;
    } else if (pattern.startsWith("@")) {
      key = asciiLower(raw.slice(1));
      if (key === "" || key.includes("@")) fail(`invalid domain pattern "${pattern}"`);
      map = table.domains;
    } else {
      const at = raw.lastIndexOf("@");
      if (at === raw.length - 1) fail(`invalid user "${pattern}"`);
      key = userKey(raw);
      map = table.users;
    }
    const prev = map.get(key);
    if (prev !== undefined) fail(`duplicate entry "${pattern}" (first in line ${prev.line})`);
    map.set(key, entry);
  }
  return table;
}

/** Read and parse an auth table file (at start-up and on reload). Throws like parseAuthTable. */
export async function loadAuthTable(path: string): Promise<AuthTable> {
  let data: Uint8Array;
  try {
    data = await readFile(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const reason = code === "ENOENT"
      ? "2: No such file or directory"
      : code === "EACCES"
      ? "13: Permission denied"
      : code === "EISDIR"
      ? "21: Is a directory"
      : (e as Error).message;
    throw new Error(`open() "${path}" failed (${reason})`);
  }
  if (data.length > MAX_AUTH_TABLE_BYTES) {
    throw new Error(`auth table "${path}" is larger than ${MAX_AUTH_TABLE_BYTES} bytes`);
  }
  return parseAuthTable(new TextDecoder().decode(data), path);
}

/** The recipient address of an SMTP `RCPT TO:<addr>` command line (binary string), or null. */
export function rcptAddress(command: string): string | null {
  const m = /^RCPT\s+TO:\s*(?:<([^>]*)>|(\S+))/i.exec(command);
  if (m === null) return null;
  let addr = m[1] ?? m[2];
  // RFC 5321 source route `<@relay,@relay:user@domain>`: the mailbox is after the colon.
  if (addr.startsWith("@")) addr = addr.slice(addr.indexOf(":") + 1);
  return addr === "" ? null : addr;
}

/**
 * The CN of an RFC 2253 distinguished name (`CN=alice,O=Example`), with
 * `\`-escapes undone; the legacy `/O=Example/CN=alice` form is read too.
 * Returns the last CN (the most specific one), or null.
 */
export function subjectCommonName(dn: string): string | null {
  let cn: string | null = null;
  if (dn.startsWith("/")) {
    for (const part of dn.slice(1).split("/")) {
      if (/^CN=/i.test(part)) cn = part.slice(3);
    }
    return cn;
  }
  let cur = "";
  const parts: string[] = [];
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i];
    if (c === "\\" && i + 1 < dn.length) {
      const hex = /^[0-9A-Fa-f]{2}/.exec(dn.slice(i + 1, i + 3));
      if (hex !== null) {
        cur += String.fromCharCode(parseInt(hex[0], 16));
        i += 2;
      } else {
        cur += dn[++i];
      }
    } else if (c === "," || c === "+") {
      parts.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  for (const p of parts) {
    const t = p.trimStart();
    if (/^CN=/i.test(t)) cn = t.slice(3);
  }
  return cn;
}

function ok(e: AuthTableEntry, user: string, pass: string | null): AuthResult {
  return { kind: "ok", addr: e.host, port: e.port, user, pass, backendName: e.backendName };
}

/** Is the client certificate verified and issued to `user`? */
function certIdentifies(req: AuthRequest, user: string): boolean {
  const tls = req.tls;
  if (
    req.verifyClient === "off" || tls === null || tls.peerCert === null || tls.verifyError !== null
  ) {
    return false;
  }
  const cn = subjectCommonName(tls.peerCert.subject);
  return cn !== null && userKey(bytesToBinary(textBytes(cn))) === userKey(user);
}

/** The auth table as an AuthService (build a new one after each reload). */
export function createTableAuthService(table: AuthTable): AuthService {
  const hint = new RefusedBackendHint(tableRoute(table));
  return {
    route: hint.route.text,
    explainRefused: (upstream) => hint.next(upstream),
    async authenticate(req: AuthRequest): Promise<AuthResult> {
      const c = req.creds;
      if (c.method === "none") {
        const rcpt = rcptAddress(c.smtp?.to ?? "");
        const e = rcpt === null ? null : lookupUser(table, rcpt);
        return e === null ? refused(TABLE_REFUSAL.relay) : ok(e, "", null);
      }

      const e = lookupUser(table, c.user);
      if (e === null) return refused(TABLE_REFUSAL.login);
      const pw = e.password;
      switch (c.method) {
        case "plain": {
          if (pw === null) return ok(e, c.user, c.pass);
          const good = pw.kind === "plain"
            ? equalSecrets(c.pass, pw.value)
            : await verifyScrypt(pw.hash, c.pass);
          return good ? ok(e, c.user, c.pass) : refused(TABLE_REFUSAL.login);
        }
        case "apop":
        case "cram-md5": {
          if (pw === null || pw.kind !== "plain" || c.salt === null) {
            return refused(TABLE_REFUSAL.login);
          }
          const expected = c.method === "apop"
            ? apopDigest(c.salt, pw.value)
            : cramMd5Digest(c.salt, pw.value);
          return digestMatches(c.pass, expected)
            ? ok(e, c.user, pw.value)
            : refused(TABLE_REFUSAL.login);
        }
        case "external": {
          if (pw === null || pw.kind !== "plain" || !certIdentifies(req, c.user)) {
            return refused(TABLE_REFUSAL.login);
          }
          return ok(e, c.user, pw.value);
        }
        case "xoauth2":
        case "oauthbearer": {
          // The table has no way to validate a bearer token: without a
          // password the token goes to the backend, which validates it
          // (proxy_oauth_passthrough on, or a backend that takes the token
          // as a password); an entry with a password would have mailgate
          // vouch for a token it cannot check, so it refuses, and says why.
          if (pw === null) return ok(e, c.user, c.pass);
          const r = TABLE_REFUSAL.login;
          return {
            kind: "refused",
            message: r.message,
            waitSec: r.waitSec,
            errorCode: r.errorCode,
            log: logTokenNeedsBackend(e, table.file),
          };
        }
      }
    },
  };
}
