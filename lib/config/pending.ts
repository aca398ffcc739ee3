// Directives that are parsed and validated but whose behaviour is not built
// yet. Start-up names each one it meets with FILE:LINE, so nothing in a
// configuration is ever silently ignored. Entries leave this table as the
// issues that build them land.

import type { Config, ConfigWarning } from "./types.ts";

/** directive name -> what is missing. */
const PENDING: Record<string, string> = {
  resolver: "client host lookup (issue #4); Client-Host is [UNAVAILABLE]",
  set_real_ip_from: "PROXY protocol input (issue #4)",
  proxy_protocol: "PROXY protocol to backends (issue #4)",
  ssl_verify_client: "client certificates (issue #4)",
  ssl_client_certificate: "client certificates (issue #4)",
  ssl_trusted_certificate: "client certificates (issue #4)",
  ssl_crl: "client certificates (issue #4)",
  ssl_verify_depth: "client certificates (issue #4)",
  auth_http_pass_client_cert: "client certificates (issue #4)",
  ssl_session_cache: "TLS session cache settings (issue #4)",
  ssl_session_tickets: "TLS session ticket settings (issue #4)",
  ssl_session_ticket_key: "TLS session ticket keys (issue #4)",
  ssl_conf_command: "OpenSSL configuration commands (issue #4)",
  ssl_certificate_compression: "TLS certificate compression (issue #4)",
  proxy_ssl: "TLS to backends (issue #4)",
  proxy_starttls: "STARTTLS to backends (issue #4)",
  proxy_ssl_verify: "TLS to backends (issue #4)",
  proxy_ssl_trusted_certificate: "TLS to backends (issue #4)",
  proxy_ssl_name: "TLS to backends (issue #4)",
  proxy_ssl_server_name: "TLS to backends (issue #4)",
  proxy_ssl_certificate: "TLS to backends (issue #4)",
  proxy_ssl_certificate_key: "TLS to backends (issue #4)",
  worker_shutdown_timeout: "graceful shutdown bound (issue #5)",
};


/** [warn] lines for everything in `config` that is accepted but not built yet. */
export function pendingWarnings(config: Config): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  for (const d of config.seen) {
    const what = PENDING[d.name];
    if (what) out.push({ message: `"${d.name}" is accepted but not implemented yet: ${what}`, loc: d.loc });
  }
  for (const s of config.mail?.servers ?? []) {
    for (const l of s.listens) {
      if (l.proxyProtocol) out.push({ message: `"listen ... proxy_protocol" is not implemented yet (issue #4)`, loc: l.loc });
      if (l.rcvbuf !== null || l.sndbuf !== null || l.ipv6only !== null || l.soKeepalive !== null || l.multipath) {
        out.push({ message: `listen socket options other than backlog are not applied yet (issue #4)`, loc: l.loc });
      }
    }
  }
  return out;
}
