// Inheritance (directives.md §1.4): a server takes each setting from its own
// level, else from the mail level, else the default. Lists are inherited as
// a whole. Runs after the whole mail block has been read.

import { splitServerNames } from "./server_names.ts";
import { confPath, type LoadState } from "./directive.ts";
import type { Level, Lists, ServerLevel, Singles, Slot } from "./level.ts";
import type { ProxySslConfig, ServerConfig, SslConfig } from "./types.ts";
import { buildProtect, PROTECT_DEFAULTS } from "./protect_directives.ts";
import { buildLimitConn } from "./limit_conn_directives.ts";

/** One memory page: nginx's default for every mail buffer. */
export const DEFAULT_BUFFER = 4096;
/**
 * The pre-auth command cap when a protocol offers XOAUTH2 or OAUTHBEARER and
 * its *_client_buffer is not set: real bearer tokens run to 4 KB and more
 * (Microsoft 365 JWTs with group claims), and base64 plus the SASL framing
 * add a third, so one page would refuse them. The buffer grows on demand
 * (core/line_buffer.ts), so the larger cap costs a session nothing unless
 * its client sends that much. An explicit *_client_buffer always wins.
 */
export const OAUTH_BUFFER = 16384;

function clientBuffer(
  e: Effective,
  name: "imap_client_buffer" | "pop3_client_buffer" | "smtp_client_buffer",
  auth: readonly string[],
): number {
  const oauth = auth.includes("xoauth2") || auth.includes("oauthbearer");
  return e.get(name, oauth ? OAUTH_BUFFER : DEFAULT_BUFFER);
}

export const DEFAULTS = {
  timeoutMs: 60000,
  resolverTimeoutMs: 30000,
  maxErrors: 5,
  authHttpTimeoutMs: 60000,
  proxyTimeoutMs: 24 * 3600 * 1000,
  imapAuth: ["plain"],
  imapCapabilities: ["IMAP4", "IMAP4rev1", "UIDPLUS"],
  pop3Auth: ["plain"],
  pop3Capabilities: ["TOP", "USER", "UIDL"],
  smtpAuth: ["plain", "login"],
  sslProtocols: ["TLSv1.2", "TLSv1.3"],
  sslCiphers: "HIGH:!aNULL:!MD5",
  sslEcdhCurve: "auto",
  sslSessionTimeoutSec: 300,
  sslVerifyDepth: 1,
} as const;

/** Effective values for one server: own level first, then the mail level. */
export class Effective {
  constructor(readonly mail: Level, readonly srv: ServerLevel) {}

  slot<K extends keyof Singles>(k: K): Slot<Singles[K]> | undefined {
    return (this.srv.singles[k] ?? this.mail.singles[k]) as Slot<Singles[K]> | undefined;
  }

  get<K extends keyof Singles, D>(k: K, def: D): Singles[K] | D {
    const s = this.slot(k);
    return s ? s.value : def;
  }

  list<K extends keyof Lists>(k: K): Slot<Lists[K]> | undefined {
    return (this.srv.lists[k] ?? this.mail.lists[k]) as Slot<Lists[K]> | undefined;
  }

  listOr<K extends keyof Lists>(k: K, def: Lists[K]): Lists[K] {
    return this.list(k)?.value ?? def;
  }

  /** Pass phrases of the effective ssl_password_file. */
  passwords(): string[] | null {
    return this.srv.singles.ssl_password_file ? this.srv.passwords : this.mail.passwords;
  }

  /** nginx's ssl "file:line" for the no-certificate messages. */
  sslModeLoc() {
    return this.srv.sslModeLoc ?? this.mail.sslModeLoc;
  }
}

export function buildServer(e: Effective, st: LoadState, hostname: string): ServerConfig {
  const ssl: SslConfig = {
    certificates: e.listOr("ssl_certificate", []).map((p) => confPath(st, p)),
    certificateKeys: e.listOr("ssl_certificate_key", []).map((p) => confPath(st, p)),
    certificateLoc: e.list("ssl_certificate")?.loc ?? null,
    passwordFile: e.get("ssl_password_file", null),
    protocols: [...e.listOr("ssl_protocols", [...DEFAULTS.sslProtocols])],
    ciphers: e.get("ssl_ciphers", DEFAULTS.sslCiphers),
    preferServerCiphers: e.get("ssl_prefer_server_ciphers", false),
    ecdhCurve: e.get("ssl_ecdh_curve", DEFAULTS.sslEcdhCurve),
    dhparam: e.get("ssl_dhparam", null),
    confCommands: [...e.listOr("ssl_conf_command", [])],
    certificateCompression: e.get("ssl_certificate_compression", false),
    sessionCache: e.get("ssl_session_cache", { kind: "none" }),
    sessionTickets: e.get("ssl_session_tickets", true),
    sessionTicketKeys: [...e.listOr("ssl_session_ticket_key", [])],
    sessionTimeoutSec: e.get("ssl_session_timeout", DEFAULTS.sslSessionTimeoutSec),
    verifyClient: e.get("ssl_verify_client", "off"),
    verifyDepth: e.get("ssl_verify_depth", DEFAULTS.sslVerifyDepth),
    clientCertificate: e.get("ssl_client_certificate", null),
    trustedCertificate: e.get("ssl_trusted_certificate", null),
    crl: e.get("ssl_crl", null),
  };
  const proxySsl: ProxySslConfig = {
    ssl: e.get("proxy_ssl", false),
    starttls: e.get("proxy_starttls", false),
    verify: e.get("proxy_ssl_verify", false),
    trustedCertificate: e.get("proxy_ssl_trusted_certificate", null),
    name: e.get("proxy_ssl_name", null),
    serverName: e.get("proxy_ssl_server_name", false),
    certificate: e.get("proxy_ssl_certificate", null),
    certificateKey: e.get("proxy_ssl_certificate_key", null),
  };
  const srv = e.srv;
  return {
    loc: srv.loc,
    // Checked non-null by the end-of-mail checks before anyone reads it.
    protocol: (srv.protocol ?? srv.detectedProtocol)!,
    // nginx ≤ 1.24's `ssl on` (mail or server level): TLS from the first
    // byte on every listen of the server, as `listen ... ssl` does.
    listens: e.get("ssl", false) ? srv.listens.map((l) => ({ ...l, ssl: true })) : srv.listens,
    // server_name may list several names (SNI, config/server_names.ts); the first is "the" name.
    serverName: e.get("server_name", hostname).split(" ")[0],
    serverNames: splitServerNames(e.get("server_name", "")),
    timeoutMs: e.get("timeout", DEFAULTS.timeoutMs),
    resolver: e.get("resolver", null),
    resolverTimeoutMs: e.get("resolver_timeout", DEFAULTS.resolverTimeoutMs),
    maxErrors: e.get("max_errors", DEFAULTS.maxErrors),
    maxCommands: e.get("max_commands", PROTECT_DEFAULTS.maxCommands),
    protect: buildProtect(e),
    limitConn: buildLimitConn(e),
    errorLogs: e.list("error_log")?.value ?? null,

    authHttp: e.get("auth_http", null),
    authHttpHeaders: [...e.listOr("auth_http_header", [])],
    authHttpPassClientCert: e.get("auth_http_pass_client_cert", false),
    authHttpTimeoutMs: e.get("auth_http_timeout", DEFAULTS.authHttpTimeoutMs),
    authHttpKeepalive: e.get("auth_http_keepalive", 0),
    authHttpSsl: {
      verify: e.get("auth_http_ssl_verify", true),
      trustedCertificate: e.get("auth_http_ssl_trusted_certificate", null),
      certificate: e.get("auth_http_ssl_certificate", null),
      certificateKey: e.get("auth_http_ssl_certificate_key", null),
    },
    authTable: e.get("auth_table", null),

    proxyBuffer: e.get("proxy_buffer", DEFAULT_BUFFER),
    proxyPassErrorMessage: e.get("proxy_pass_error_message", false),
    proxyProtocol: e.get("proxy_protocol", "off"),
    proxySmtpAuth: e.get("proxy_smtp_auth", false),
    proxyTimeoutMs: e.get("proxy_timeout", DEFAULTS.proxyTimeoutMs),
    xclient: e.get("xclient", true),
    proxyImapId: e.get("proxy_imap_id", false),
    proxyPop3Xclient: e.get("proxy_pop3_xclient", false),
    proxyOauthPassthrough: e.get("proxy_oauth_passthrough", false),
    proxySsl,

    imapAuth: [...e.listOr("imap_auth", [...DEFAULTS.imapAuth])] as ServerConfig["imapAuth"],
    imapCapabilities: [...e.listOr("imap_capabilities", [...DEFAULTS.imapCapabilities])],
    imapId: [...e.listOr("imap_id", [])],
    imapClientBuffer: clientBuffer(e, "imap_client_buffer", e.listOr("imap_auth", [...DEFAULTS.imapAuth])),
    pop3Auth: [...e.listOr("pop3_auth", [...DEFAULTS.pop3Auth])] as ServerConfig["pop3Auth"],
    pop3Capabilities: [...e.listOr("pop3_capabilities", [...DEFAULTS.pop3Capabilities])],
    smtpAuth: [...e.listOr("smtp_auth", [...DEFAULTS.smtpAuth])] as ServerConfig["smtpAuth"],
    smtpCapabilities: [...e.listOr("smtp_capabilities", [])],
    smtpClientBuffer: clientBuffer(e, "smtp_client_buffer", e.listOr("smtp_auth", [...DEFAULTS.smtpAuth])),
    pop3ClientBuffer: clientBuffer(e, "pop3_client_buffer", e.listOr("pop3_auth", [...DEFAULTS.pop3Auth])),
    smtpGreetingDelayMs: e.get("smtp_greeting_delay", 0),

    starttls: e.get("starttls", "off"),
    starttlsLoc: e.slot("starttls")?.loc ?? null,
    ssl,
    setRealIpFrom: [...e.listOr("set_real_ip_from", [])],
    accessLog: e.get("access_log", null),
  };
}
