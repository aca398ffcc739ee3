// The one configuration both proxies run: nginx's syntax, read unchanged by
// mailgate (which ignores load_module with a warning). Only the worker count
// varies between the two settings the benchmark runs, except that
// --auth-keepalive=N gives mailgate one extra line (auth_http_keepalive,
// which nginx does not know), and the login-cache load gives mailgate's
// imapCache block `auth_cache_ttl 60s` (nginx has no auth cache).

import { NGINX_MAIL_MODULE } from "./install_nginx.ts";

export interface BenchPorts {
  imap: number;
  pop3: number;
  smtp: number;
  imaps: number;
  /** Implicit TLS with the ECDSA certificate. */
  imapsEc: number;
  /** IMAP again: mailgate's file gives this block auth_cache_ttl (login-cache load). */
  imapCache: number;
}

export interface ConfigInput {
  workers: "1" | "auto";
  ports: BenchPorts;
  authPort: number;
  /** RSA-2048 pair for the imaps listener. */
  cert: string;
  key: string;
  /** ECDSA P-256 pair for the imapsEc listener. */
  ecCert: string;
  ecKey: string;
  /** worker_connections: enough for the memory load's sessions (2 connections each). */
  workerConnections: number;
  /** mailgate only: auth_http_keepalive N (0 or absent: the line is left out). */
  authKeepalive?: number;
  /**
   * mailgate only: `auth_cache_ttl 60s` in the imapCache block. nginx has
   * no auth cache, so its block there is the plain IMAP one: the row
   * compares a cache hit with nginx's auth round trip on every login.
   */
  authCache?: boolean;
}

export function benchConfig(c: ConfigInput): string {
  return `# Written by tools/bench.ts: the same file is given to nginx and to mailgate.
load_module ${NGINX_MAIL_MODULE};
worker_processes ${c.workers};
daemon off;
pid bench.pid;
error_log stderr error;

events {
    worker_connections ${c.workerConnections};
}

mail {
    server_name bench.test;
    auth_http 127.0.0.1:${c.authPort}/auth;${
    c.authKeepalive ? `\n    auth_http_keepalive ${c.authKeepalive};` : ""
  }
    # Both proxies then log in to the SMTP backend with EHLO only and answer
    # the client's AUTH with 235 (nginx would otherwise send XCLIENT blindly).
    xclient off;
    smtp_auth plain login;
    timeout 60s;
    proxy_timeout 1h;

    server { listen 127.0.0.1:${c.ports.imap}; protocol imap; }
    server { listen 127.0.0.1:${c.ports.pop3}; protocol pop3; }
    server { listen 127.0.0.1:${c.ports.smtp}; protocol smtp; }
    server { listen 127.0.0.1:${c.ports.imapCache}; protocol imap;${
    c.authCache ? " auth_cache_ttl 60s;" : ""
  } }
    server {
        listen 127.0.0.1:${c.ports.imaps} ssl;
        protocol imap;
        ssl_certificate ${c.cert};
        ssl_certificate_key ${c.key};
        # The same key exchange for both: the generator (Bun) offers
        # X25519MLKEM768 first, which mailgate on Bun (BoringSSL) would take
        # and nginx 1.22 (OpenSSL 3.0) cannot, ~7 % more handshake CPU.
        ssl_ecdh_curve X25519:P-256;
    }
    # The same with an ECDSA certificate: a handshake's cost is then the
    # key exchange and the proxy rather than an RSA signature, where
    # BoringSSL (Bun) takes 2.2x and Deno's crypto 6.5x OpenSSL 3's time.
    server {
        listen 127.0.0.1:${c.ports.imapsEc} ssl;
        protocol imap;
        ssl_certificate ${c.ecCert};
        ssl_certificate_key ${c.ecKey};
        ssl_ecdh_curve X25519:P-256;
    }
}
`;
}
