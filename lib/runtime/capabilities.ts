// What each runtime's socket and TLS stack can do with nginx's listen
// parameters and ssl_* settings, as measured (platform-notes Q1/Q2 and the
// probes behind tests/unit/runtime_test.ts). The adapters implement exactly
// this; each adapter's Runtime object carries its row (Runtime.support), which
// start-up warnings (config/runtime_warnings.ts) read; so does the README table.
// Pure data: no runtime API is called here.

export type RuntimeName = "deno" | "bun";

export interface ListenSupport {
  /** listen(fd, backlog) on TCP sockets: Deno's node:net applies it; Bun always uses 512. */
  backlog: boolean;
  /** The same on unix sockets: Deno's node:net takes it but listens with its own (ss -xl). */
  backlogUnix: boolean;
  /** so_keepalive idle time (TCP_KEEPIDLE): node:net's setKeepAlive delay on Deno, Bun's own. */
  keepaliveIdle: boolean;
  /** so_keepalive probe interval and count: settable nowhere (Bun pins them to 1 s and 10). */
  keepaliveIntvlCnt: false | "pinned";
  /** SO_RCVBUF / SO_SNDBUF: no API on either runtime (FFI only). */
  bufferSizes: boolean;
}

export interface TlsSupport {
  /** An OpenSSL cipher list (Deno's TLS layer is rustls with its fixed suites). */
  ciphers: boolean;
  /** Server cipher preference (rustls always follows the client's order). */
  preferServerCiphers: boolean;
  ecdhCurve: boolean;
  /** DHE: neither BoringSSL (Bun) nor rustls (Deno) has DHE suites. */
  dhparam: boolean;
  sessionTimeout: boolean;
  /** Turning session tickets off (Deno's TLS layer always issues them). */
  ticketsOff: boolean;
  /** Resumption stops when tickets are off and no cache is configured. */
  resumptionOff: boolean;
  /** Fixed ticket keys shared between processes (ssl_session_ticket_key). */
  ticketKeys: boolean;
  /** A server-side session cache (resumption by session id). */
  sessionCache: boolean;
  /** TLSv1 and TLSv1.1. */
  oldProtocols: boolean;
  confCommand: boolean;
  certificateCompression: boolean;
}

export interface RuntimeSupport {
  listen: ListenSupport;
  tls: TlsSupport;
}

export const RUNTIME_SUPPORT: Record<RuntimeName, RuntimeSupport> = {
  deno: {
    listen: { backlog: true, backlogUnix: false, keepaliveIdle: true, keepaliveIntvlCnt: false, bufferSizes: false },
    tls: {
      ciphers: false,
      preferServerCiphers: false,
      ecdhCurve: false,
      dhparam: false,
      sessionTimeout: false,
      ticketsOff: false,
      resumptionOff: false,
      ticketKeys: false,
      sessionCache: false,
      oldProtocols: false,
      confCommand: false,
      certificateCompression: false,
    },
  },
  bun: {
    listen: {
      backlog: false,
      backlogUnix: false,
      keepaliveIdle: true,
      keepaliveIntvlCnt: "pinned",
      bufferSizes: false,
    },
    tls: {
      ciphers: true,
      preferServerCiphers: true,
      ecdhCurve: true,
      dhparam: false,
      sessionTimeout: true,
      ticketsOff: true,
      resumptionOff: true,
      ticketKeys: false,
      sessionCache: false,
      oldProtocols: true,
      confCommand: false,
      certificateCompression: false,
    },
  },
};
