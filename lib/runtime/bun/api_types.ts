// The part of Bun's socket API that bun.ts uses, declared locally so that
// `deno check` (which follows the adapter import) type-checks it without
// Bun's typings (platform-notes Q9). Not a global declaration: bun.ts reads
// `globalThis.Bun` through these types, so nothing clashes with other code.

export interface BunTlsOptions {
  cert?: string | string[];
  key?: string | string[];
  passphrase?: string;
  ca?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  serverName?: string;
  /** Wire format (length-prefixed names); a string[] is rejected by Bun. */
  ALPNProtocols?: ArrayBuffer;
  minVersion?: number;
  maxVersion?: number;
  ciphers?: string;
  ecdhCurve?: string;
  sessionTimeout?: number;
  /** A node:tls SecureContext's `.context` (holds one SSL_CTX for many connections). */
  secureContext?: unknown;
}

export interface BunPeerCertificate {
  raw?: Uint8Array;
}

export interface BunSocket {
  /** Per-socket user data (set from the `data` option or assigned). */
  data: unknown;
  readonly remoteAddress: string | null | undefined;
  readonly remotePort: number | null | undefined;
  readonly localAddress: string | null | undefined;
  readonly localPort: number | null | undefined;
  /** Bytes written now (the rest is ours to queue); negative when closed. */
  write(data: Uint8Array): number;
  end(): void;
  /** close(2) now, without flushing Bun's buffer: FIN, or RST if unread data is pending. */
  close(): void;
  /** SO_LINGER 0, then close(2): always an RST. */
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
  /** SO_KEEPALIVE; a delay also sets TCP_KEEPIDLE (and pins KEEPINTVL=1, KEEPCNT=10). */
  setKeepAlive(enable: boolean, initialDelayMs?: number): boolean;
  upgradeTLS(
    options: { tls: BunTlsOptions; socket: BunSocketHandlers; data?: unknown },
  ): [BunSocket, BunSocket];
  // TLS sockets only:
  getTLSVersion(): string | null;
  getCipher(): { name?: string | null } | null | undefined;
  getPeerCertificate(): BunPeerCertificate | null | undefined;
  getServername(): string | null | undefined;
  readonly authorized: boolean;
  readonly alpnProtocol: string | false | null;
}

export interface BunSocketHandlers {
  open?(s: BunSocket): void;
  data(s: BunSocket, chunk: Uint8Array): void;
  drain(s: BunSocket): void;
  end?(s: BunSocket): void;
  close?(s: BunSocket, err?: Error): void;
  error?(s: BunSocket, err: Error): void;
  handshake?(s: BunSocket, success: boolean, authorizationError: Error | null): void;
  connectError?(s: BunSocket, err: Error): void;
}

export interface BunListener {
  readonly port: number;
  readonly hostname: string;
  stop(closeActiveConnections?: boolean): void;
}

export interface BunApi {
  readonly version: string;
  listen(options: {
    hostname?: string;
    port?: number;
    unix?: string;
    reusePort?: boolean;
    ipv6Only?: boolean;
    allowHalfOpen?: boolean;
    socket: BunSocketHandlers;
  }): BunListener;
  connect(options: {
    hostname?: string;
    port?: number;
    unix?: string;
    allowHalfOpen?: boolean;
    tls?: BunTlsOptions;
    data?: unknown;
    socket: BunSocketHandlers;
  }): Promise<BunSocket>;
}

/** Bun's global, typed; throws if not running under Bun. */
export function bunApi(): BunApi {
  const b = (globalThis as { Bun?: BunApi }).Bun;
  if (b === undefined) throw new Error("not running under Bun");
  return b;
}
