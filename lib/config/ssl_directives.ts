// ngx_mail_ssl_module directives (directives.md §9). Files are only named
// here (paths relative to the configuration directory); certificates and
// keys are loaded by tls_check.ts at the end of the mail block, and only for
// servers that use TLS. ssl_password_file is read at once, as nginx does.

import { readFileSync } from "node:fs";
import {
  appendMethods,
  argEnum,
  argFlag,
  confPath,
  confPathSlot,
  type DirectiveSpec,
  fail,
  flagSlot,
  level,
  mailSpec,
  numSlot,
  strSlot,
  warn,
} from "./directive.ts";
import { sysErrorText } from "./errors.ts";
import type { SessionCache } from "./types.ts";
import { parseNumber, parseSec, parseSize } from "./units.ts";

export const SSL_PROTOCOLS = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const;
export const STARTTLS_VALUES = ["off", "on", "only"] as const;
export const VERIFY_CLIENT_VALUES = ["off", "on", "optional", "optional_no_ca"] as const;

/** nginx's default builtin session cache size, in sessions. */
export const BUILTIN_SESSION_CACHE_DEFAULT = 20480;
/** A shared cache must hold at least 8 pages. */
export const SHARED_SESSION_CACHE_MIN = 8 * 4096;

/** Splits a password file into pass phrases (one per line, CR LF or LF). */
export function splitPasswords(text: string): string[] {
  const lines = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** nginx 1.15.0–1.25.0 said this for `ssl`; 1.25.1 removed the directive. */
export const SSL_DEPRECATED =
  `the "ssl" directive is deprecated, use the "listen ... ssl" directive instead`;
/** `ssl on` then `starttls on|only` at one level (ngx_mail_ssl_starttls). */
export const SSL_CONFLICTS_WITH_STARTTLS = `"ssl" directive conflicts with "starttls"`;
/** `starttls on|only` then `ssl on` at one level (ngx_mail_ssl_enable). */
export const STARTTLS_CONFLICTS_WITH_SSL = `"starttls" directive conflicts with "ssl on"`;

export const SSL_DIRECTIVES: Record<string, DirectiveSpec> = {
  starttls: mailSpec("take1", (d, st) => {
    const lv = level(st);
    lv.setWith("starttls", d.loc, () => argEnum(d, STARTTLS_VALUES));
    if (lv.singles.ssl?.value === true && lv.singles.starttls?.value !== "off") {
      fail(d, SSL_CONFLICTS_WITH_STARTTLS);
    }
    if (!lv.hasListenSsl) lv.sslModeLoc = d.loc;
  }),
  // nginx ≤ 1.24's `ssl on`: every listen of the server is `listen ... ssl`
  // (merge.ts). Accepted as those versions do, with their warning; the
  // conflict checks only see one level, as nginx's do.
  ssl: mailSpec("flag", (d, st) => {
    const lv = level(st);
    lv.setWith("ssl", d.loc, () => argFlag(d));
    warn(st, SSL_DEPRECATED, d.loc);
    const starttls = lv.singles.starttls?.value;
    if (lv.singles.ssl?.value === true && starttls !== undefined && starttls !== "off") {
      fail(d, STARTTLS_CONFLICTS_WITH_SSL);
    }
    if (!lv.hasListenSsl) lv.sslModeLoc = d.loc;
  }),
  // Raw values: the "no key for certificate" message quotes them as written.
  ssl_certificate: mailSpec(
    "take1",
    (d, st) => level(st).append("ssl_certificate", [d.args[0]], d.loc),
  ),
  ssl_certificate_key: mailSpec(
    "take1",
    (d, st) => level(st).append("ssl_certificate_key", [d.args[0]], d.loc),
  ),
  ssl_password_file: mailSpec("take1", (d, st) => {
    const lv = level(st);
    lv.checkDuplicate("ssl_password_file", d.loc);
    const path = confPath(st, d.args[0]);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      fail(d, `open() "${path}" failed ${sysErrorText(e)}`);
    }
    lv.passwords = splitPasswords(text);
    lv.set("ssl_password_file", path, d.loc);
  }),
  ssl_dhparam: confPathSlot("ssl_dhparam"),
  ssl_ecdh_curve: strSlot("ssl_ecdh_curve"),
  ssl_protocols: mailSpec("1more", (d, st) => appendMethods(d, st, "ssl_protocols", SSL_PROTOCOLS)),
  ssl_ciphers: strSlot("ssl_ciphers"),
  ssl_prefer_server_ciphers: flagSlot("ssl_prefer_server_ciphers"),
  ssl_session_cache: mailSpec("take12", (d, st) => {
    level(st).set(
      "ssl_session_cache",
      parseSessionCache(d.args, (m) => fail(d, m), st.shmZones),
      d.loc,
    );
  }),
  ssl_session_tickets: flagSlot("ssl_session_tickets"),
  ssl_session_ticket_key: mailSpec(
    "take1",
    (d, st) => level(st).append("ssl_session_ticket_key", [confPath(st, d.args[0])], d.loc),
  ),
  ssl_session_timeout: mailSpec("take1", (d, st) => {
    level(st).setWith("ssl_session_timeout", d.loc, () => {
      const v = parseSec(d.args[0]);
      if (v === null) fail(d, `"${d.name}" directive invalid value`);
      return v;
    });
  }),
  ssl_verify_client: mailSpec("take1", (d, st) => {
    level(st).setWith("ssl_verify_client", d.loc, () => argEnum(d, VERIFY_CLIENT_VALUES));
  }),
  ssl_verify_depth: numSlot("ssl_verify_depth"),
  ssl_client_certificate: confPathSlot("ssl_client_certificate"),
  ssl_trusted_certificate: confPathSlot("ssl_trusted_certificate"),
  ssl_crl: confPathSlot("ssl_crl"),
  ssl_conf_command: mailSpec(
    "take2",
    (d, st) => level(st).append("ssl_conf_command", [[d.args[0], d.args[1]]], d.loc),
  ),
  ssl_certificate_compression: flagSlot("ssl_certificate_compression"),
};

/**
 * `off | none | [builtin[:n]] [shared:name:size]` (ngx_mail_ssl_session_cache).
 * Keywords are case-sensitive, as in nginx.
 */
export function parseSessionCache(
  args: string[],
  fail: (message: string) => never,
  zones: Map<string, number>,
): SessionCache {
  let builtin: "off" | "none" | number | null = null;
  let shared: { name: string; size: number } | null = null;
  for (const a of args) {
    const invalid = (): never => fail(`invalid session cache "${a}"`);
    if (a === "off" || a === "none") {
      builtin = a;
    } else if (a === "builtin") {
      builtin = BUILTIN_SESSION_CACHE_DEFAULT;
    } else if (a.length > 8 && a.startsWith("builtin:")) {
      builtin = parseNumber(a.slice(8)) ?? invalid();
    } else if (a.length > 7 && a.startsWith("shared:")) {
      const colon = a.indexOf(":", 7);
      if (colon <= 7) invalid();
      const name = a.slice(7, colon);
      const size = parseSize(a.slice(colon + 1)) ?? invalid();
      if (size < SHARED_SESSION_CACHE_MIN) fail(`session cache "${a}" is too small`);
      const known = zones.get(name);
      if (known !== undefined && known !== size) {
        fail(
          `the size ${size} of shared memory zone "${name}" conflicts with already declared size ${known}`,
        );
      }
      zones.set(name, size);
      shared = { name, size };
    } else {
      invalid();
    }
  }
  if (builtin === "off") return { kind: "off" };
  if (typeof builtin === "number") return { kind: "builtin", size: builtin, shared };
  if (shared) return { kind: "shared", name: shared.name, size: shared.size };
  return { kind: "none" };
}
