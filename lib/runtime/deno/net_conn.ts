// A Conn over a node:net socket, with node:tls on a Duplex over the same
// socket as the TLS layer (server STARTTLS, implicit TLS, SNI and client
// certificates, TLS to backends). The Deno adapter's connections.
//
// Why node:net on Deno and not Deno.Conn: at thousands of busy connections
// Deno's native socket ops starve: some reads, writes and accepts wait 30 s
// and more (tools/deno_stall_probe.ts at 7,900 connections: 0.15-1.2 % of
// sessions with a bare Deno.listen server, none with a node:net server in
// the same Deno; README "Deno under load"). Deno runs node:net on its own
// libuv-style loop, which drains every ready socket (denoland/deno#32943);
// an idle socket there pins no read buffer.
//
// Why TLS over a Duplex and not tls.TLSSocket wrapping the socket itself:
// the Duplex is fed by this connection's one data path, so the bytes that
// were already read when TLS starts (a pipelined ClientHello, or the
// `prefix` a PROXY header arrived with) reach the TLS layer in order, no
// plaintext byte reaches the app after startTls(), and the ClientHello can
// be read first to choose among several certificates.

import type * as net from "node:net";
import type * as tls from "node:tls";
import type {
  Conn,
  ConnEvents,
  SockAddr,
  TlsClientOptions,
  TlsInfo,
  TlsServerOptions,
} from "../types.ts";
import { type RawDuplex, rawDuplex } from "./raw_duplex.ts";
import { nodeTls } from "../builtins.ts";
import { chooseCertIndex, HELLO_SNIFF_MAX, helloSignatureSchemes } from "../../tls/client_hello.ts";
import {
  certKeyTypes,
  clientConnectOptions,
  clientVerifyPolicy,
  serverSocketOptions,
  tlsInfoFromSocket,
  type VerifySource,
  verifyNameOf,
} from "../node_tls/node_tls.ts";
import { ipAddr, unixAddr } from "../shared/sock_addr.ts";
import { closedWith, CloseReport, NO_EVENTS, toError, WRITE_HIGH_WATER } from "../shared/conn_shared.ts";

/** A ClientHello being collected; done() builds the TLS socket. */
interface Sniff {
  hello: Uint8Array;
  done(hello: Uint8Array, schemes: number[] | null): void;
  fail(err: Error): void;
}

/**
 * The buffer of the chunk a NetConn is delivering. node:net gives every
 * read its own buffer and never reuses it, so a write of a view of it (the
 * relay passing a chunk straight on) is queued without a copy. Any other
 * chunk is copied, so "valid only during the call" holds for every caller.
 */
let deliveringBuffer: ArrayBufferLike | null = null;

/**
 * What a connection knows of its addresses without asking the socket (each
 * of node:net's address getters is a getpeername/getsockname call: 3.3 % of
 * the samples in a Deno login-storm profile when read for every connection).
 */
export interface NetAddrHints {
  /** A unix socket: the listener's path (accepted) or the one connected to. */
  unixLocal?: string;
  unixRemote?: string;
  /** The listener's address when it is not a wildcard: every accepted connection's local one. */
  local?: SockAddr;
  /** What was connected to: `remote` when the socket no longer knows it. */
  remote?: SockAddr;
}

/** A closed or reset socket no longer knows its addresses. */
const NO_ADDR = "0.0.0.0";

export class NetConn implements Conn {
  #remote: SockAddr | null = null;
  #local: SockAddr | null = null;
  readonly #remoteHint: SockAddr | null;
  /**
   * Read on first use and kept. A socket that no longer knows it (closed,
   * or a peer that reset before the accept) reports what was connected to,
   * else 0.0.0.0:0.
   */
  get remote(): SockAddr {
    if (this.#remote === null) {
      const a = this.#sock.remoteAddress;
      this.#remote = a === undefined && this.#remoteHint !== null
        ? this.#remoteHint
        : ipAddr(a ?? NO_ADDR, this.#sock.remotePort ?? 0);
    }
    return this.#remote;
  }
  get local(): SockAddr {
    if (this.#local === null) {
      const a = this.#sock.localAddress;
      this.#local = ipAddr(a ?? NO_ADDR, this.#sock.localPort ?? 0);
    }
    return this.#local;
  }
  #tls: TlsInfo | null = null;
  get tls(): TlsInfo | null {
    return this.#tls;
  }

  #sock: net.Socket;
  /** Host name used to connect (client side), the default TLS verify name. */
  #connectHost: string | null;
  #ev: ConnEvents = NO_EVENTS;
  #attached = false;
  #paused = false;
  #needDrain = false;

  // Lifecycle.
  /** The app called end(): no more app writes; close once flushed. */
  #appEnding = false;
  #closed = false;
  readonly #closeReport = new CloseReport();
  #lastError: Error | undefined;

  // TLS (node:tls over a RawDuplex). Once #duplex is set, raw bytes go to it.
  #duplex: RawDuplex | null = null;
  #duplexWants = true;
  #tlsSock: tls.TLSSocket | null = null;
  /** App data flows from the TLS socket (handshake done, one task later). */
  #tlsFlow = false;
  /** Collecting the ClientHello to choose among several cert/key pairs. */
  #sniff: Sniff | null = null;

  /**
   * `sock` is connected (accepted, or after its connect event) and was
   * made with allowHalfOpen, so the peer's FIN does not close our side.
   * A unix socket names its path: `unixLocal` (the listener's, accepted)
   * or `unixRemote` (the one connected to).
   */
  constructor(sock: net.Socket, connectHost: string | null, hints: NetAddrHints = {}) {
    this.#sock = sock;
    this.#connectHost = connectHost;
    this.#remoteHint = hints.remote ?? null;
    if (hints.unixLocal === undefined && hints.unixRemote === undefined) {
      if (hints.local !== undefined) this.#local = hints.local;
      // Small request/response exchanges must not wait for delayed ACKs (Q3).
      sock.setNoDelay(true);
    } else {
      this.#remote = unixAddr(hints.unixRemote ?? "");
      this.#local = unixAddr(hints.unixLocal ?? "");
    }
    sock.on("error", (e: Error) => {
      this.#lastError = e;
      this.#closeNow(e);
    });
    sock.on("close", () => this.#closeNow(this.#lastError));
    sock.on("end", this.#onEnd);
    sock.on("drain", this.#onSockDrain);
  }

  /** so_keepalive of the listener this connection came from. */
  setKeepAlive(enable: boolean, delayMs?: number): void {
    try {
      this.#sock.setKeepAlive(enable, delayMs);
    } catch { /* closed already */ }
  }

  attach(events: ConnEvents): void {
    this.#ev = events;
    if (this.#closeReport.replay(events) || this.#attached) return;
    this.#attached = true;
    if (this.#tlsFlow) this.#applyTlsFlow();
    else if (this.#duplex === null) {
      // Until now the socket held what arrived; the flow starts here.
      this.#sock.on("data", this.#onData);
      if (this.#paused) this.#sock.pause();
      else this.#sock.resume();
    }
  }

  // ---- reading

  readonly #onData = (chunk: Uint8Array): void => {
    if (this.#closed) return;
    if (this.#duplex !== null) {
      this.#feedTls(chunk);
      return;
    }
    const prev = deliveringBuffer;
    deliveringBuffer = chunk.buffer;
    try {
      this.#ev.data(chunk);
    } catch (e) {
      this.#closeNow(toError(e)); // an app handler threw
    } finally {
      deliveringBuffer = prev;
    }
  };

  /** The peer's FIN (after every byte before it was delivered). */
  readonly #onEnd = (): void => {
    if (this.#closed) return;
    if (this.#duplex !== null) this.#tlsEof();
    else this.#deliverEnd();
  };

  /** The peer's end, plain or inside TLS: tell the app, then close our side too. */
  #deliverEnd(): void {
    if (this.#closed) return;
    try {
      this.#ev.end();
    } catch (e) {
      this.#closeNow(toError(e));
      return;
    }
    if (!this.#appEnding) this.end();
  }

  pause(): void {
    this.#paused = true;
    if (this.#tlsFlow) this.#tlsSock!.pause();
    else if (this.#duplex === null) this.#sock.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#tlsFlow) this.#applyTlsFlow();
    // node:net resumes from a later tick: held bytes never arrive inside resume().
    else if (this.#duplex === null && this.#attached) this.#sock.resume();
  }

  // ---- writing

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#appEnding) return true;
    // Plain or TLS, the stream may keep the chunk until it is written: copy
    // what the caller may reuse (a chunk a NetConn is delivering is never).
    const out: net.Socket = this.#tlsSock ?? this.#sock;
    if (chunk.length > 0) out.write(chunk.buffer === deliveringBuffer ? chunk : chunk.slice());
    if (out.writableLength > WRITE_HIGH_WATER) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /** The queue write() used emptied; the app hears of it only if write() said false. */
  #deliverDrain(): void {
    if (!this.#needDrain || this.#closed) return;
    this.#needDrain = false;
    try {
      this.#ev.drain();
    } catch (e) {
      this.#closeNow(toError(e));
    }
  }

  /** Under TLS the raw socket carries ciphertext: its drain is the TLS layer's business. */
  readonly #onSockDrain = (): void => {
    if (this.#tlsSock === null) this.#deliverDrain();
  };

  end(): void {
    if (this.#closed || this.#appEnding) return;
    this.#appEnding = true;
    if (this.#tlsSock !== null) {
      // close_notify after the pending records; the Duplex's final() then
      // flushes the socket and closes it.
      this.#tlsSock.end();
      return;
    }
    this.#rawFinish();
  }

  /** Flush what is queued (finish: every write has completed), then close. */
  #rawFinish(): void {
    if (this.#closed) return;
    this.#sock.once("finish", () => this.#closeNow());
    this.#sock.end();
  }

  destroy(): void {
    this.#closeNow();
  }

  #closeNow(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.destroy();
    if (this.#tlsSock !== null && !this.#tlsSock.destroyed) this.#tlsSock.destroy();
    const sniff = this.#sniff;
    this.#sniff = null;
    sniff?.fail(err ?? new Error("connection closed during the TLS handshake"));
    this.#closeReport.report(err, () => this.#ev);
  }

  // ---- TLS

  startTls(options: TlsServerOptions, prefix?: Uint8Array): Promise<TlsInfo> {
    // node:tls does not verify client certificates on a TLSSocket built
    // over a Duplex in Deno: the whole chain check is ours.
    const verify: VerifySource = options.requestCert
      ? { kind: "own", policy: clientVerifyPolicy(options) }
      : { kind: "none" };
    if (options.certs.length > 1) return this.#startTlsChoosingCert(options, verify, prefix);
    let sock: tls.TLSSocket;
    try {
      this.#checkCanStartTls();
      const duplex = this.#makeDuplex(prefix);
      sock = new (nodeTls().TLSSocket)(duplex as unknown as net.Socket, serverSocketOptions(options));
    } catch (e) {
      return closedWith(e, (err) => this.#closeNow(err));
    }
    return this.#handshake(sock, "secure", verify);
  }

  /**
   * Several cert/key pairs: the TLS layer would only ever serve the first,
   * so read the ClientHello first (at most one record), pick the pair the
   * client can verify, then start TLS with the hello as its first input.
   */
  #startTlsChoosingCert(
    options: TlsServerOptions,
    verify: VerifySource,
    prefix: Uint8Array | undefined,
  ): Promise<TlsInfo> {
    return new Promise<TlsInfo>((resolve, reject) => {
      try {
        this.#checkCanStartTls();
      } catch (e) {
        reject(toError(e));
        return;
      }
      this.#sniff = {
        hello: new Uint8Array(0),
        fail: reject,
        done: (hello, schemes) => {
          let sock: tls.TLSSocket;
          try {
            const pair = chooseCertIndex(certKeyTypes(options), schemes);
            sock = new (nodeTls().TLSSocket)(
              this.#duplex as unknown as net.Socket,
              serverSocketOptions(options, pair),
            );
          } catch (e) {
            reject(toError(e));
            this.#closeNow(toError(e));
            return;
          }
          if (hello.length > 0) this.#pushTls(hello);
          this.#handshake(sock, "secure", verify).then(resolve, reject);
        },
      };
      this.#makeDuplex(prefix);
    });
  }

  /** Raw bytes for the TLS layer (or for the ClientHello being collected). */
  #feedTls(chunk: Uint8Array): void {
    const sniff = this.#sniff;
    if (sniff === null) {
      this.#pushTls(chunk);
      return;
    }
    let hello = chunk;
    if (sniff.hello.length > 0) {
      hello = new Uint8Array(sniff.hello.length + chunk.length);
      hello.set(sniff.hello);
      hello.set(chunk, sniff.hello.length);
    }
    const schemes = helloSignatureSchemes(hello);
    if (schemes === undefined && hello.length < HELLO_SNIFF_MAX) {
      sniff.hello = hello;
      return;
    }
    this.#sniff = null;
    sniff.done(hello, schemes ?? null);
  }

  /** Ciphertext into the Duplex; the socket stops while the TLS layer is full. */
  #pushTls(chunk: Uint8Array): void {
    if (!this.#duplex!.push(chunk) && this.#duplexWants) {
      this.#duplexWants = false;
      this.#sock.pause();
    }
  }

  /** EOF from the socket while TLS is active (or being started). */
  #tlsEof(): void {
    const sniff = this.#sniff;
    if (sniff !== null) {
      this.#sniff = null;
      sniff.done(sniff.hello, null);
    }
    this.#duplex?.push(null);
  }

  startTlsClient(options: TlsClientOptions): Promise<TlsInfo> {
    let sock: tls.TLSSocket;
    try {
      this.#checkCanStartTls();
      const duplex = this.#makeDuplex();
      const name = verifyNameOf(options) ?? options.servername ?? this.#connectHost ??
        (this.remote.family === "unix" ? "localhost" : this.remote.address);
      sock = nodeTls().connect({
        socket: duplex as unknown as net.Socket,
        ...clientConnectOptions(options, name),
      });
    } catch (e) {
      return closedWith(e, (err) => this.#closeNow(err));
    }
    return this.#handshake(sock, "secureConnect", "client");
  }

  #checkCanStartTls(): void {
    if (this.#closed) throw new Error("connection closed");
    if (this.#duplex !== null) throw new Error("TLS already started");
  }

  /**
   * From now on every raw byte (buffered in the socket, or future) goes to
   * TLS, after `prefix` (TLS bytes the caller had already read).
   */
  #makeDuplex(prefix?: Uint8Array): RawDuplex {
    const sock = this.#sock;
    const duplex = rawDuplex({
      wantRead: () => {
        if (this.#duplexWants || this.#closed) return;
        this.#duplexWants = true;
        sock.resume();
      },
      write: (chunk, cb) => {
        if (this.#closed) return;
        sock.write(chunk, cb);
      },
      finish: () => this.#rawFinish(),
      destroy: (err) => this.#closeNow(err ?? undefined),
    });
    duplex.on("error", () => {}); // reported through the TLS socket / close
    this.#duplex = duplex;
    if (prefix !== undefined && prefix.length > 0) this.#feedTls(prefix.slice());
    // The raw side flows whatever the app's pause says: it feeds TLS.
    if (!this.#attached) sock.on("data", this.#onData);
    if (sock.readableEnded) this.#tlsEof();
    else sock.resume();
    return duplex;
  }

  #handshake(
    sock: tls.TLSSocket,
    event: "secure" | "secureConnect",
    verify: VerifySource | "client",
  ): Promise<TlsInfo> {
    this.#tlsSock = sock;
    return new Promise<TlsInfo>((resolve, reject) => {
      let settled = false;
      let lastError: Error | undefined;
      const fail = (e: Error | undefined) => {
        if (!settled) {
          settled = true;
          e ??= new Error("connection closed during the TLS handshake");
          reject(e);
        }
        this.#closeNow(e);
      };
      sock.on("error", (e: Error) => fail(lastError = e));
      sock.on("close", () => fail(lastError));
      sock.on("end", () => this.#deliverEnd());
      sock.on("drain", () => this.#deliverDrain());
      sock.once(event, () => {
        if (settled || this.#closed) return;
        settled = true;
        let info: TlsInfo;
        try {
          const v: VerifySource = verify !== "client" ? verify : {
            kind: "code",
            code: sock.authorized ? null : (sock.authorizationError ?? null),
          };
          info = tlsInfoFromSocket(sock, v);
        } catch (e) {
          reject(toError(e));
          this.#closeNow(toError(e));
          return;
        }
        this.#tls = info;
        resolve(info);
        // App data starts one task later, after the caller's continuation
        // (`await conn.startTls()`) has switched its state to "TLS".
        setTimeout(() => this.#startTlsFlow(), 0);
      });
    });
  }

  #startTlsFlow(): void {
    if (this.#closed || this.#tlsSock === null) return;
    const sock = this.#tlsSock;
    sock.pause();
    this.#tlsFlow = true;
    sock.on("data", (d: Uint8Array) => {
      try {
        this.#ev.data(d);
      } catch (e) {
        this.#closeNow(toError(e)); // an app handler threw
      }
    });
    this.#applyTlsFlow();
  }

  #applyTlsFlow(): void {
    if (!this.#tlsFlow || this.#closed) return;
    if (this.#paused || !this.#attached) this.#tlsSock!.pause();
    else this.#tlsSock!.resume();
  }
}
