// The one boundary between mailgate and its runtime. Everything above this file
// (protocol machines, auth, sessions, relay, the DNS resolver, syslog, the
// master process) sees only these interfaces; the adapters in this folder
// implement them: bun/ over Bun's own socket API (node:tls only for what it
// lacks), deno/ over Deno's node:net and node:tls (Deno's own sockets starve
// under load and lack server TLS), shared/ for what both do the same way
// (UDP and child processes through node:dgram and node:child_process).
// tools/check_boundary.ts fails any file outside this folder that imports a
// socket or process builtin or calls Deno.* / Bun.*.

import type { RuntimeName, RuntimeSupport } from "./capabilities.ts";

/** A socket address as mailgate reports it (logs, Client-IP, PROXY headers). */
export type SockAddr =
  | { family: "ipv4" | "ipv6"; address: string; port: number }
  | { family: "unix"; path: string };

/** What the TLS layer negotiated; `null` on a plain connection. */
export interface TlsInfo {
  /** OpenSSL-style version name, e.g. "TLSv1.3". */
  protocol: string;
  /** OpenSSL cipher name, e.g. "TLS_AES_256_GCM_SHA384". */
  cipher: string;
  /** SNI host name the client asked for, if any. */
  servername: string | null;
  /** ALPN protocol selected, if any. */
  alpn: string | null;
  /** The client's certificate (server side) or the server's (client side). */
  peerCert: PeerCert | null;
  /** Chain verification result for peerCert: null = verified, else the reason. */
  verifyError: string | null;
}

export interface PeerCert {
  subject: string; // RFC 2253, e.g. "CN=client.example.com,O=Example"
  issuer: string;
  serial: string; // upper-case hex, even number of digits
  fingerprint: string; // SHA-1 of the DER, 40 lower-case hex digits
  pem: string;
}

/** Events an adapter delivers for one connection, always on the event loop. */
export interface ConnEvents {
  /**
   * Bytes read from the peer. The chunk may be a view into a buffer the
   * adapter reuses: it is valid only during the call. Copy what you keep.
   */
  data(chunk: Uint8Array): void;
  /** All queued writes were flushed after write() returned false. */
  drain(): void;
  /** The peer finished sending (EOF). Called at most once; close() follows. */
  end(): void;
  /** The connection is gone (either side, or an error). Called exactly once. */
  close(error?: Error): void;
}

/**
 * One byte-stream connection: accepted from a client, or opened to an
 * auth server or backend.
 *
 * Backpressure contract: write() always takes the whole chunk (copying it if
 * it cannot be written at once) and returns false when its queue is above its
 * high-water mark. A caller that got false must not write again until drain().
 * Every caller in mailgate obeys this, so no queue grows beyond one read chunk
 * plus the high-water mark.
 */
export interface Conn {
  readonly remote: SockAddr;
  readonly local: SockAddr;
  /** Negotiated TLS parameters once TLS is active, else null. */
  readonly tls: TlsInfo | null;
  /**
   * Set the event handlers. Reading starts at the first call; a later call
   * replaces the handlers (the session hands a connection over to the relay).
   */
  attach(events: ConnEvents): void;
  write(chunk: Uint8Array): boolean;
  /** Stop reading (a read already in flight is held, not lost). */
  pause(): void;
  resume(): void;
  /**
   * Server-side TLS on this already-accepted connection (STARTTLS, or implicit
   * TLS at byte 0). The adapter stops reading plaintext at once: bytes that
   * arrived before the call and were already delivered belong to the caller,
   * who discards them; no raw byte is delivered as data after this call.
   * Bytes held by pause() go to the TLS layer, so a caller that sends a
   * go-ahead first (STARTTLS's OK) pauses before sending it: a fast peer's
   * ClientHello may otherwise be delivered as data before this call.
   * Resolves once the handshake is complete; `tls` is then set. Rejects on a
   * failed handshake (the connection is then closed).
   * `prefix`: bytes the caller already read that belong to the TLS stream
   * (the start of a ClientHello that arrived with a PROXY protocol header);
   * the TLS layer reads them before anything else.
   */
  startTls(options: TlsServerOptions, prefix?: Uint8Array): Promise<TlsInfo>;
  /**
   * Client-side TLS on an outgoing connection (STARTTLS towards a backend).
   * Same rule: no plaintext byte is delivered after the call.
   */
  startTlsClient(options: TlsClientOptions): Promise<TlsInfo>;
  /** Flush queued writes, then close. close() event follows. */
  end(): void;
  /** Close now, dropping queued writes. close() event follows. */
  destroy(): void;
}

export interface TlsServerOptions {
  /** Certificate chains and keys, PEM text; several pairs (e.g. RSA + ECDSA). */
  certs: { cert: string; key: string; passphrase?: string }[];
  /**
   * PEM CA certificates for verifying client certificates; their names are
   * sent to the client in the CertificateRequest (ssl_client_certificate).
   */
  ca?: string;
  /** More PEM CAs trusted for client certificates but not advertised (ssl_trusted_certificate). */
  trustedCa?: string;
  /** PEM CRLs checked for every certificate of a client chain (ssl_crl). */
  crl?: string;
  /**
   * Most intermediate CA certificates a client chain may hold (ssl_verify_depth,
   * OpenSSL's meaning: leaf and trust anchor not counted). Undefined = no limit.
   */
  verifyDepth?: number;
  /** Ask the client for a certificate (ssl_verify_client != off). */
  requestCert?: boolean;
  minVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
  maxVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
  ciphers?: string;
  honorCipherOrder?: boolean;
  ecdhCurve?: string;
  dhparam?: string;
  sessionTimeout?: number; // seconds
  /** ssl_session_tickets; undefined = on. */
  sessionTickets?: boolean;
  /**
   * ssl_session_cache kind. Neither runtime has a server-side session cache:
   * with "builtin"/"shared" they keep tickets on so that sessions resume.
   */
  sessionCache?: "off" | "none" | "builtin" | "shared";
  /** First ssl_session_ticket_key, when it is in node:tls's 48-byte format. */
  ticketKeys?: Uint8Array;
  /** ALPN protocol id of this listener ("imap", "pop3", "smtp"). */
  alpn?: string;
  /** Stable key for caching the secure context built from these options. */
  cacheKey?: string;
}

export interface TlsClientOptions {
  /** SNI and verification name; null = send no SNI. */
  servername: string | null;
  /** PEM CAs; undefined = system store. */
  ca?: string;
  /** false = do not verify the server certificate. */
  verify: boolean;
  cert?: string;
  key?: string;
}

export type ListenSpec =
  | {
    kind: "tcp";
    /** IP literal without brackets; "0.0.0.0" or "::" for the wildcard. */
    host: string;
    port: number;
    reusePort?: boolean;
    backlog?: number;
    /**
     * IPV6_V6ONLY for a "::" socket; undefined = the system default
     * (dual-stack on Linux). planSockets sets it for [::] listens (nginx's
     * default is on). Deno has no such option: its adapter emulates it.
     */
    ipv6only?: boolean;
    /** TCP keep-alive for accepted connections (listen so_keepalive). */
    keepalive?: KeepaliveSpec;
  }
  | { kind: "unix"; path: string };

/**
 * so_keepalive: false = off, true = on with the system's timers, or on with
 * the given timers (seconds / probe count; null = system default).
 */
export type KeepaliveSpec =
  | boolean
  | { idleSec: number | null; intvlSec: number | null; cnt: number | null };

export type ConnectSpec =
  & (
    | { kind: "tcp"; host: string; port: number }
    | { kind: "unix"; path: string }
  )
  & {
    /** Implicit TLS from byte 0. */
    tls?: TlsClientOptions;
    /** Give up connecting after this many milliseconds. */
    timeoutMs?: number;
  };

export interface Listener {
  readonly addr: SockAddr;
  /**
   * Stop accepting. Connections already accepted are not touched. Resolves
   * once the socket no longer takes connections.
   */
  close(): Promise<void>;
}

export type SignalName = "SIGHUP" | "SIGTERM" | "SIGINT" | "SIGQUIT" | "SIGUSR1" | "SIGUSR2" | "SIGWINCH";

/** Where a datagram came from: an IP literal as the socket reports it, and a port. */
export interface DatagramSource {
  address: string;
  port: number;
}

/**
 * One UDP socket (DNS queries, syslog lines). It is bound to an ephemeral
 * port by its first send and keeps the process alive until unref() or
 * close().
 */
export interface DatagramSocket {
  /**
   * Queues one datagram. Delivery is best effort: a send that fails later
   * (no route, ICMP error) is dropped silently. Throws only when the socket
   * itself is unusable (closed), so the caller can make a new one.
   */
  send(data: Uint8Array | string, port: number, host: string): void;
  /** Let this socket keep the process alive (a reply is awaited) or not. */
  ref(): void;
  unref(): void;
  close(): void;
}

export interface DatagramOptions {
  family: 4 | 6;
  /** Datagrams received; the buffer is the caller's to keep. */
  onMessage?: (msg: Uint8Array, from: DatagramSource) => void;
}

/** Events of a child process started by spawnSelf. */
export interface ChildEvents {
  /** Bytes the child wrote on its stdout. */
  stdout(chunk: Uint8Array): void;
  /** The child is gone: its exit code, or the signal that ended it. Called once. */
  exit(code: number | null, signal: string | null): void;
}

export interface ChildHandle {
  /** 0 when the process could not be started (exit() follows). */
  readonly pid: number;
  /** Sends a signal; a child already gone is ignored. */
  kill(signal: SignalName): void;
}

/** Process-level services that differ per runtime. */
export interface Runtime {
  readonly name: RuntimeName;
  /** Runtime version string, e.g. "2.9.6". */
  readonly version: string;
  /** What this runtime's socket and TLS stack can apply (start-up warnings read it). */
  readonly support: RuntimeSupport;
  listen(spec: ListenSpec, onAccept: (conn: Conn) => void): Promise<Listener>;
  /** Resolves once connected (and the TLS handshake done, if asked). */
  connect(spec: ConnectSpec): Promise<Conn>;
  /** A UDP socket of the given address family. */
  datagram(options: DatagramOptions): DatagramSocket;
  /**
   * Starts this same program again (a worker process) with `args` and the
   * current environment plus `env`. Its stdin is closed, its stderr is this
   * process's stderr, its stdout comes through `events.stdout`.
   */
  spawnSelf(args: string[], env: Record<string, string>, events: ChildEvents): ChildHandle;
  onSignal(signal: SignalName, handler: () => void): void;
  /** argv after the program (and script) name. */
  args(): string[];
  exit(code: number): never;
  readonly pid: number;
}
