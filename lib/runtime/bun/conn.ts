// A Bun socket as a Conn: reading with pause/resume and held chunks,
// writing with our own queue behind Bun's partial writes, STARTTLS through
// upgradeTLS (or node:tls over the socket when TLS bytes were already read:
// layered_tls.ts), and the shared handler objects that route every socket
// event to its connection (per-connection state lives in socket.data).
//
// TCP_NODELAY: Bun sets it on every accepted and connected TCP socket
// (checked with strace), so no call is made here; a reply written in two
// pieces would otherwise wait for the peer's delayed ACK (issue 13,
// tests/peers/latency_test.ts).

import type {
  Conn,
  ConnEvents,
  SockAddr,
  TlsClientOptions,
  TlsInfo,
  TlsServerOptions,
} from "../types.ts";
import type { BunSocket, BunSocketHandlers, BunTlsOptions } from "./api_types.ts";
import { clientVerifyPolicy, tlsInfoFromSocket, type VerifySource } from "../node_tls/node_tls.ts";
import { ipAddr, unixAddr } from "../shared/sock_addr.ts";
import { LayeredTls } from "./layered_tls.ts";
import { closedWith, CloseReport, NO_EVENTS, toError, WRITE_HIGH_WATER } from "../shared/conn_shared.ts";
import { clientTlsOptions, serverTls, serverTlsOptions } from "./tls_contexts.ts";

/**
 * What a connection knows about its addresses without asking the socket:
 * each of Bun's remoteAddress/remotePort/localAddress/localPort getters is
 * a getpeername/getsockname call (4 per socket, 12 per proxied session when
 * read eagerly), and only the client's are normally used. So they are read
 * on first use, and not at all where they are known already.
 */
export interface AddrHints {
  /** A unix-socket connection: both addresses are this path. */
  unixPath: string | null;
  /** The listener's address when it is not a wildcard: every accepted connection's local one. */
  local: SockAddr | null;
  /** What was connected to: `remote` when it is first asked for after the socket closed. */
  remote: SockAddr | null;
}

/** A closed socket no longer knows its addresses; this stands for "unknown". */
const UNKNOWN_ADDR: SockAddr = unixAddr("");

interface Handshake {
  resolve(info: TlsInfo): void;
  reject(err: Error): void;
}

export class BunConn implements Conn {
  #remote: SockAddr | null;
  #local: SockAddr | null;
  get remote(): SockAddr {
    if (this.#remote === null) {
      const s = this.#s;
      const address = s.remoteAddress;
      this.#remote = address
        ? ipAddr(address, s.remotePort ?? 0)
        : this.#remoteHint ?? UNKNOWN_ADDR;
    }
    return this.#remote;
  }
  get local(): SockAddr {
    if (this.#local === null) {
      const s = this.#s;
      const address = s.localAddress;
      // Not cached when unknown: only a closed socket lacks it.
      if (!address) return UNKNOWN_ADDR;
      this.#local = ipAddr(address, s.localPort ?? 0);
    }
    return this.#local;
  }
  #remoteHint: SockAddr | null;
  #tls: TlsInfo | null = null;
  get tls(): TlsInfo | null {
    return this.#tls;
  }

  /** The current socket (the TLS one after upgradeTLS). */
  #s: BunSocket;
  #connectHost: string | null;
  #ev: ConnEvents = NO_EVENTS;
  #attached = false;
  #paused = false;
  /** Copies of data that arrived before attach(), while paused, or right after a handshake. */
  #held: Uint8Array[] = [];
  #heldEof = false;
  /** False between upgradeTLS and one task after its handshake: app data is held. */
  #flowing = true;

  #queue: Uint8Array[] = [];
  #queued = 0;
  #needDrain = false;
  #appEnding = false;
  #closed = false;
  readonly #closeReport = new CloseReport();
  #handshake: Handshake | null = null;
  /** The server TLS options of a startTls in progress (for client-certificate checks). */
  #serverTls: TlsServerOptions | null = null;
  /** node:tls over this socket, when startTls got bytes already read (bun_layered_tls.ts). */
  #layer: LayeredTls | null = null;
  /** The layer finished writing: end the socket once the raw queue is flushed. */
  #rawEnding = false;

  constructor(s: BunSocket, hints: AddrHints, connectHost: string | null) {
    this.#s = s;
    this.#connectHost = connectHost;
    s.data = this;
    if (hints.unixPath !== null) {
      this.#remote = this.#local = unixAddr(hints.unixPath);
    } else {
      this.#remote = null;
      this.#local = hints.local;
    }
    this.#remoteHint = hints.remote;
  }

  attach(events: ConnEvents): void {
    this.#ev = events;
    if (this.#closeReport.replay(events) || this.#attached) return;
    this.#attached = true;
    this.#scheduleHeld();
  }

  // ---- socket events (called by the shared handler objects)

  _onData(s: BunSocket, chunk: Uint8Array): void {
    if (s !== this.#s || this.#closed) return;
    if (this.#layer !== null) {
      this.#layer.feed(chunk);
      return;
    }
    if (!this.#attached || this.#paused || !this.#flowing || this.#held.length > 0) {
      this.#held.push(chunk.slice());
      return;
    }
    this.#ev.data(chunk);
  }

  _onDrain(s: BunSocket): void {
    if (s !== this.#s || this.#closed) return;
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      const n = s.write(head);
      if (n < 0) return; // closing; the close event follows
      this.#queued -= n;
      if (n < head.length) {
        this.#queue[0] = head.subarray(n);
        return;
      }
      this.#queue.shift();
    }
    if (this.#layer !== null) {
      if (this.#rawEnding) s.end();
      else this.#layer.rawDrained();
      return;
    }
    if (this.#appEnding) {
      s.end();
      return;
    }
    if (this.#needDrain) {
      this.#needDrain = false;
      this.#ev.drain();
    }
  }

  _onEnd(s: BunSocket): void {
    if (s !== this.#s || this.#closed) return;
    if (this.#layer !== null) {
      this.#layer.feedEnd();
      return;
    }
    if (!this.#attached || this.#paused || !this.#flowing || this.#held.length > 0) {
      this.#heldEof = true;
      return;
    }
    this.#deliverEof();
  }

  _onClose(s: BunSocket, err?: Error): void {
    if (s !== this.#s) return;
    this.#closeNow(err ?? undefined);
  }

  _onError(s: BunSocket, err: Error): void {
    if (s !== this.#s) return;
    this.#closeNow(toError(err));
  }

  _onHandshake(s: BunSocket, ok: boolean, authError: Error | null): void {
    if (s !== this.#s) return;
    const h = this.#handshake;
    if (h === null) return;
    this.#handshake = null;
    // ok=false is a failed handshake (protocol/ALPN mismatch, or a server
    // certificate that a verifying client rejected). A client certificate
    // that fails verification does NOT fail the server handshake
    // (rejectUnauthorized is off): it is reported, the session decides.
    if (!ok) {
      const e = authError ?? new Error("TLS handshake failed");
      h.reject(e);
      this.#closeNow(e);
      return;
    }
    let info: TlsInfo;
    try {
      const code = s.authorized ? null : authError;
      const v = this.#serverTls;
      // Server side: BoringSSL verified against the advertised CAs only;
      // depth, CRLs and ssl_trusted_certificate are checked on top.
      const verify: VerifySource = v === null || !v.requestCert
        ? { kind: "code", code }
        : { kind: "code", code, policy: clientVerifyPolicy(v), hiddenCas: v.trustedCa !== undefined };
      info = tlsInfoFromSocket(s, verify);
    } catch (e) {
      h.reject(toError(e));
      this.#closeNow(toError(e));
      return;
    }
    this.#tls = info;
    if (this.#paused) s.pause();
    h.resolve(info);
    // App data starts one task later, after the caller's continuation
    // (`await conn.startTls()`) has switched its state to "TLS".
    setTimeout(() => {
      this.#flowing = true;
      this.#scheduleHeld();
    }, 0);
  }

  // ---- reading control

  #scheduleHeld(): void {
    if (this.#held.length === 0 && !this.#heldEof) return;
    queueMicrotask(() => {
      try {
        this.#deliverHeld();
      } catch (e) {
        this.#closeNow(toError(e));
      }
    });
  }

  #deliverHeld(): void {
    while (this.#held.length > 0) {
      if (this.#paused || this.#closed || !this.#attached || !this.#flowing) return;
      this.#ev.data(this.#held.shift()!);
    }
    if (this.#heldEof && !this.#paused && !this.#closed && this.#attached && this.#flowing) {
      this.#heldEof = false;
      this.#deliverEof();
    }
  }

  #deliverEof(): void {
    this.#ev.end();
    if (!this.#appEnding && !this.#closed) this.end();
  }

  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    if (this.#layer !== null) {
      this.#layer.pause();
      return;
    }
    // Not during a handshake: Bun's TLS layer reads through this socket.
    if (this.#handshake === null) this.#s.pause();
  }

  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    if (this.#layer !== null) {
      this.#layer.resume();
      return;
    }
    this.#s.resume();
    this.#scheduleHeld();
  }

  // ---- writing

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#appEnding) return true;
    if (this.#layer !== null) return this.#layer.write(chunk);
    if (!this.#rawWrite(chunk)) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /** Write or queue (copying what is queued); false once the queue is above its high-water mark. */
  #rawWrite(chunk: Uint8Array): boolean {
    if (chunk.length > 0) {
      if (this.#queue.length === 0) {
        const n = this.#s.write(chunk);
        if (n < 0) return true; // closing; the close event follows
        if (n < chunk.length) {
          this.#queue.push(chunk.slice(n));
          this.#queued += chunk.length - n;
        }
      } else {
        this.#queue.push(chunk.slice());
        this.#queued += chunk.length;
      }
    }
    return this.#queued <= WRITE_HIGH_WATER;
  }

  end(): void {
    if (this.#closed || this.#appEnding) return;
    this.#appEnding = true;
    if (this.#layer !== null) this.#layer.end();
    else if (this.#queue.length === 0) this.#s.end();
  }

  destroy(): void {
    this.#closeNow();
  }

  #closeNow(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#held = [];
    // A plain close(2), as nginx closes (FIN; bytes the kernel already took
    // are still delivered): our own queue is what destroy() drops.
    // terminate() sets SO_LINGER 0 first: one more syscall per socket, and
    // an RST that the peer sees as ECONNRESET after a normal session.
    try {
      this.#s.close();
    } catch { /* already closed */ }
    this.#layer?.destroy();
    const h = this.#handshake;
    this.#handshake = null;
    h?.reject(err ?? new Error("connection closed during the TLS handshake"));
    this.#closeReport.report(err, () => this.#ev);
  }

  // ---- TLS

  startTls(options: TlsServerOptions, prefix?: Uint8Array): Promise<TlsInfo> {
    if (prefix !== undefined && prefix.length > 0) return this.#startLayered(options, prefix);
    let t: BunTlsOptions;
    try {
      t = serverTlsOptions(options);
    } catch (e) {
      return closedWith(e, (err) => this.#closeNow(err));
    }
    this.#serverTls = options;
    return this.#upgrade(t);
  }

  /** TLS over bytes already read: node:tls on this socket (bun_layered_tls.ts). */
  #startLayered(options: TlsServerOptions, prefix: Uint8Array): Promise<TlsInfo> {
    if (this.#closed) return Promise.reject(new Error("connection closed"));
    if (this.#handshake !== null || this.#tls !== null || this.#layer !== null) {
      return Promise.reject(new Error("TLS already started"));
    }
    // Bytes read after the prefix (held while paused) continue the TLS stream.
    const held = this.#held;
    const heldEof = this.#heldEof;
    this.#held = [];
    this.#heldEof = false;
    const layer = new LayeredTls({
      write: (chunk) => this.#rawWrite(chunk),
      end: () => {
        this.#rawEnding = true;
        if (this.#queue.length === 0) this.#s.end();
      },
      destroy: (err) => this.#closeNow(err),
      pause: () => this.#s.pause(),
      resume: () => this.#s.resume(),
    }, () => this.#ev);
    this.#layer = layer;
    if (this.#paused) layer.pause(); // app data waits for resume(); the handshake does not
    let started: Promise<TlsInfo>;
    try {
      started = layer.start(serverTls(options).secure, options, prefix);
    } catch (e) {
      return closedWith(e, (err) => this.#closeNow(err));
    }
    for (const c of held) layer.feed(c);
    if (heldEof) layer.feedEnd();
    this.#s.resume();
    return started.then((info) => {
      this.#tls = info;
      return info;
    });
  }

  /** so_keepalive of the listener this connection came from. */
  _setKeepAlive(enable: boolean, delayMs?: number): void {
    try {
      this.#s.setKeepAlive(enable, delayMs);
    } catch { /* closed already */ }
  }

  startTlsClient(options: TlsClientOptions): Promise<TlsInfo> {
    return this.#upgrade(clientTlsOptions(options, this.#connectHost));
  }

  /** Waits for the handshake of a socket that Bun.connect opened with tls. */
  _awaitClientHandshake(): Promise<TlsInfo> {
    this.#flowing = false;
    return new Promise<TlsInfo>((resolve, reject) => {
      this.#handshake = { resolve, reject };
    });
  }

  #upgrade(tlsOptions: BunTlsOptions): Promise<TlsInfo> {
    if (this.#closed) return Promise.reject(new Error("connection closed"));
    if (this.#handshake !== null || this.#tls !== null) {
      return Promise.reject(new Error("TLS already started"));
    }
    // Bytes that reached us but were not delivered cannot be handed to
    // Bun's TLS layer. They are dropped: plaintext after the upgrade command
    // must never be interpreted (and a ClientHello only arrives here if the
    // caller delayed startTls without pausing first).
    this.#held = [];
    this.#heldEof = false;
    this.#flowing = false;
    const p = new Promise<TlsInfo>((resolve, reject) => {
      this.#handshake = { resolve, reject };
    });
    try {
      const wasPaused = this.#paused;
      const [, t] = this.#s.upgradeTLS({ tls: tlsOptions, socket: TLS_HANDLERS, data: this });
      this.#s = t;
      // The raw socket may have been paused by the caller; the TLS layer
      // must read the handshake regardless.
      if (wasPaused) t.resume();
    } catch (e) {
      this.#closeNow(toError(e));
    }
    return p;
  }
}

// ---- shared handler objects

function connOf(s: BunSocket): BunConn | null {
  return s.data instanceof BunConn ? s.data : null;
}

/** Wraps an app-handler call so that a throwing handler closes the conn, not the process. */
function guard(s: BunSocket, f: (c: BunConn) => void): void {
  const c = connOf(s);
  if (c === null) return;
  try {
    f(c);
  } catch (e) {
    c._onError(s, toError(e));
  }
}

export const CONN_HANDLERS: BunSocketHandlers = {
  data: (s, chunk) => guard(s, (c) => c._onData(s, chunk)),
  drain: (s) => guard(s, (c) => c._onDrain(s)),
  end: (s) => guard(s, (c) => c._onEnd(s)),
  close: (s, err) => connOf(s)?._onClose(s, err),
  error: (s, err) => connOf(s)?._onError(s, err),
  handshake: (s, ok, err) => guard(s, (c) => c._onHandshake(s, ok, err)),
};

const TLS_HANDLERS: BunSocketHandlers = CONN_HANDLERS;
