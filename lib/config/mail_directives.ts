// The mail directive table (directives.md §3–§10 plus mailgate's
// extensions): context, argument count and handler for every directive
// allowed inside `mail { }`. Block openers (`server`) are run by load.ts.

import {
  appendMethods,
  argEnum,
  argFlag,
  confPathSlot,
  type Directive,
  type DirectiveSpec,
  fail,
  flagSlot,
  level,
  type LoadState,
  mailSpec,
  msecSlot,
  numSlot,
  prefixPath,
  sizeSlot,
  strSlot,
} from "./directive.ts";
import { parseErrorLog } from "./error_log.ts";
import { handleListen } from "./listen.ts";
import { handleServerName } from "./server_names.ts";
import { handleAuthHttp, handleResolver, handleSetRealIpFrom } from "./mail_net.ts";
import { SSL_DIRECTIVES } from "./ssl_directives.ts";
import { handleStatusListen } from "./status_listen.ts";
import { PROTECT_DIRECTIVES } from "./protect_directives.ts";
import { LIMIT_CONN_DIRECTIVES } from "./limit_conn_directives.ts";
import { SHARED_STORE_DIRECTIVES } from "./shared_store.ts";
import type { Protocol } from "./types.ts";
import { MAX_ID_KEY, MAX_ID_PAIRS, MAX_ID_VALUE } from "../imap/id.ts";

export const PROTOCOLS: readonly Protocol[] = ["imap", "pop3", "smtp"];
// xoauth2 / oauthbearer: freenginx 1.27.1 (README "OAuth sign-in").
export const IMAP_AUTH_METHODS = [
  "plain",
  "login",
  "cram-md5",
  "external",
  "xoauth2",
  "oauthbearer",
] as const;
export const POP3_AUTH_METHODS = [
  "plain",
  "apop",
  "cram-md5",
  "external",
  "xoauth2",
  "oauthbearer",
] as const;
export const SMTP_AUTH_METHODS = [
  "plain",
  "login",
  "cram-md5",
  "external",
  "xoauth2",
  "oauthbearer",
  "none",
] as const;

export const PROXY_SSL_CONFLICT = `"proxy_ssl" and "proxy_starttls" cannot both be "on"`;

function handleProtocol(d: Directive, st: LoadState): void {
  const v = d.args[0];
  const p = PROTOCOLS.find((x) => x === v);
  if (p === undefined) fail(d, `unknown protocol "${v}"`);
  // No duplicate check: nginx keeps the last `protocol`.
  st.server!.protocol = p;
}

/** proxy_ssl / proxy_starttls: flags that may not both be on at one level. */
function backendTlsFlag(name: "proxy_ssl" | "proxy_starttls"): DirectiveSpec {
  const other = name === "proxy_ssl" ? "proxy_starttls" : "proxy_ssl";
  return mailSpec("flag", (d, st) => {
    const lv = level(st);
    lv.setWith(name, d.loc, () => argFlag(d));
    if (lv.singles[name]?.value && lv.singles[other]?.value) fail(d, PROXY_SSL_CONFLICT);
  });
}

function capabilities(
  name: "imap_capabilities" | "pop3_capabilities" | "smtp_capabilities",
): DirectiveSpec {
  return mailSpec("1more", (d, st) => level(st).append(name, d.args, d.loc));
}

/**
 * imap_id "key" "value" ...: pairs for the `* ID` answer; repeating the
 * directive at one level adds pairs. RFC 2971's limits hold for what
 * mailgate sends as for what it accepts.
 */
function handleImapId(d: Directive, st: LoadState): void {
  if (d.args.length % 2 !== 0) fail(d, `invalid number of arguments in "imap_id" directive`);
  const pairs: [string, string][] = [];
  const bytes = new TextEncoder();
  for (let i = 0; i < d.args.length; i += 2) {
    const [key, value] = [d.args[i], d.args[i + 1]];
    for (const v of [key, value]) {
      if (/[\r\n\0]/.test(v)) fail(d, `invalid value "${v}" in "imap_id" directive`);
    }
    if (key === "" || bytes.encode(key).length > MAX_ID_KEY) {
      fail(d, `"imap_id" key "${key}" must be 1 to ${MAX_ID_KEY} bytes`);
    }
    if (bytes.encode(value).length > MAX_ID_VALUE) {
      fail(d, `"imap_id" value for "${key}" is longer than ${MAX_ID_VALUE} bytes`);
    }
    pairs.push([key, value]);
  }
  const lv = level(st);
  if ((lv.lists.imap_id?.value.length ?? 0) + pairs.length > MAX_ID_PAIRS) {
    fail(d, `"imap_id" has more than ${MAX_ID_PAIRS} pairs`);
  }
  lv.append("imap_id", pairs, d.loc);
}

export const MAIL_DIRECTIVES: Record<string, DirectiveSpec> = {
  server: { contexts: ["mail"], args: "noargs", block: true },
  listen: { contexts: ["server"], args: "1more", handle: handleListen },
  protocol: { contexts: ["server"], args: "take1", handle: handleProtocol },
  server_name: mailSpec("1more", handleServerName),
  timeout: msecSlot("timeout"),
  resolver: mailSpec("1more", handleResolver),
  resolver_timeout: msecSlot("resolver_timeout"),
  max_errors: numSlot("max_errors"),

  auth_http: mailSpec("take1", handleAuthHttp),
  auth_http_header: mailSpec(
    "take2",
    (d, st) => level(st).append("auth_http_header", [[d.args[0], d.args[1]]], d.loc),
  ),
  auth_http_pass_client_cert: flagSlot("auth_http_pass_client_cert"),
  auth_http_timeout: msecSlot("auth_http_timeout"),

  proxy: flagSlot("proxy"),
  proxy_buffer: sizeSlot("proxy_buffer"),
  proxy_pass_error_message: flagSlot("proxy_pass_error_message"),
  proxy_protocol: mailSpec("take1", (d, st) => {
    level(st).setWith("proxy_protocol", d.loc, () => {
      const v = argEnum(d, ["off", "on", "v2"] as const);
      return v === "on" ? "v1" : v;
    });
  }),
  proxy_smtp_auth: flagSlot("proxy_smtp_auth"),
  proxy_timeout: msecSlot("proxy_timeout"),
  xclient: flagSlot("xclient"),

  imap_auth: mailSpec("1more", (d, st) => appendMethods(d, st, "imap_auth", IMAP_AUTH_METHODS)),
  imap_capabilities: capabilities("imap_capabilities"),
  imap_client_buffer: sizeSlot("imap_client_buffer"),
  pop3_auth: mailSpec("1more", (d, st) => appendMethods(d, st, "pop3_auth", POP3_AUTH_METHODS)),
  pop3_capabilities: capabilities("pop3_capabilities"),
  smtp_auth: mailSpec("1more", (d, st) => appendMethods(d, st, "smtp_auth", SMTP_AUTH_METHODS)),
  smtp_capabilities: capabilities("smtp_capabilities"),
  smtp_client_buffer: sizeSlot("smtp_client_buffer"),
  smtp_greeting_delay: msecSlot("smtp_greeting_delay"),
  pop3_client_buffer: sizeSlot("pop3_client_buffer"),

  set_real_ip_from: mailSpec("take1", handleSetRealIpFrom),

  ...SSL_DIRECTIVES,
  ...PROTECT_DIRECTIVES,
  ...LIMIT_CONN_DIRECTIVES,
  ...SHARED_STORE_DIRECTIVES,

  // mailgate extensions.
  auth_table: confPathSlot("auth_table"),
  auth_http_keepalive: numSlot("auth_http_keepalive"),
  auth_http_ssl_verify: flagSlot("auth_http_ssl_verify"),
  auth_http_ssl_trusted_certificate: confPathSlot("auth_http_ssl_trusted_certificate"),
  auth_http_ssl_certificate: confPathSlot("auth_http_ssl_certificate"),
  auth_http_ssl_certificate_key: confPathSlot("auth_http_ssl_certificate_key"),
  access_log: mailSpec("take1", (d, st) => {
    const v = d.args[0];
    level(st).set("access_log", v.toLowerCase() === "off" ? null : prefixPath(st, v), d.loc);
  }),
  proxy_ssl: backendTlsFlag("proxy_ssl"),
  proxy_starttls: backendTlsFlag("proxy_starttls"),
  proxy_ssl_verify: flagSlot("proxy_ssl_verify"),
  proxy_ssl_trusted_certificate: confPathSlot("proxy_ssl_trusted_certificate"),
  proxy_ssl_name: strSlot("proxy_ssl_name"),
  proxy_ssl_server_name: flagSlot("proxy_ssl_server_name"),
  proxy_ssl_certificate: confPathSlot("proxy_ssl_certificate"),
  proxy_ssl_certificate_key: confPathSlot("proxy_ssl_certificate_key"),
  imap_id: mailSpec("1more", handleImapId),
  proxy_imap_id: flagSlot("proxy_imap_id"),
  proxy_pop3_xclient: flagSlot("proxy_pop3_xclient"),
  proxy_oauth_passthrough: flagSlot("proxy_oauth_passthrough"),
  status_listen: { contexts: ["mail"], args: "take1", handle: handleStatusListen },
};

/** error_log is shared with the main context; at mail/server level it fills the level's list. */
export function handleMailErrorLog(d: Directive, st: LoadState): void {
  level(st).append("error_log", [parseErrorLog(d, st)], d.loc);
}
