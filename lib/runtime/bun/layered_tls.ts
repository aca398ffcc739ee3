// Server TLS for a Bun connection whose first TLS bytes were already read by
// the caller (a ClientHello that arrived in the same packet as a PROXY
// protocol header: Conn.startTls's `prefix`). Bun's upgradeTLS reads only
// from the socket and cannot be handed bytes, so for such a connection the
// TLS layer is node:tls (Bun's, checked to work over any Duplex), fed with
// the prefix and then with every raw byte, exactly like the Deno adapter
// does for all its connections. Rare path; the usual one is upgradeTLS.

import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type * as tls from "node:tls";
import { nodeStream, nodeTls } from "../builtins.ts";
import type { ConnEvents, TlsInfo, TlsServerOptions } from "../types.ts";
import { clientVerifyPolicy, tlsInfoFromSocket, type VerifySource } from "../node_tls/node_tls.ts";
import { toError, WRITE_HIGH_WATER } from "../shared/conn_shared.ts";

/** The raw socket side, provided by the connection. */
export interface RawSocket {
  /** Queue ciphertext for the socket; false once the queue is above its high-water mark. */
  write(chunk: Uint8Array): boolean;
  /** Flush, then end the socket. */
  end(): void;
  /** Close at once (the connection then reports close). */
  destroy(err?: Error): void;
  pause(): void;
  resume(): void;
}


export class LayeredTls {
  #raw: RawSocket;
  #app: () => ConnEvents;
  #duplex: Duplex;
  #sock: tls.TLSSocket | null = null;
  /** Write callbacks waiting for the raw queue to drain. */
  #waiting: (() => void)[] = [];
  #flowing = false;
  #paused = false;
  #needDrain = false;
  #done = false;
  /** end() was called (by the app, or after the peer's end). */
  #ending = false;
  /** The TLS socket finished writing before end() was called. */
  #finalWaiting = false;

  /** `app` returns the connection's current handlers (they change on attach). */
  constructor(raw: RawSocket, app: () => ConnEvents) {
    this.#raw = raw;
    this.#app = app;
    this.#duplex = new (nodeStream().Duplex)({
      allowHalfOpen: true,
      read: () => raw.resume(),
      write: (chunk: Uint8Array, _enc: string, cb: (err?: Error | null) => void) => {
        if (raw.write(chunk)) cb();
        else this.#waiting.push(() => cb());
      },
      final: (cb: (err?: Error | null) => void) => {
        cb();
        // Bun's TLSSocket also finishes by itself on the peer's close_notify,
        // before its 'end' event: the raw end then waits for that event, so
        // the app sees data, end, close in that order.
        if (this.#ending) raw.end();
        else this.#finalWaiting = true;
      },
      destroy: (err: Error | null, cb: (err?: Error | null) => void) => {
        raw.destroy(err ?? undefined);
        cb(err);
      },
    });
    this.#duplex.on("error", () => {}); // reported through the TLS socket / close
  }

  /** Server handshake over the prefix, then the raw bytes fed in. */
  start(context: tls.SecureContext, o: TlsServerOptions, prefix: Uint8Array): Promise<TlsInfo> {
    const opts: tls.TLSSocketOptions = {
      isServer: true,
      secureContext: context,
      requestCert: o.requestCert === true,
      rejectUnauthorized: false,
    };
    if (o.alpn !== undefined) opts.ALPNProtocols = [o.alpn];
    const sock = new (nodeTls().TLSSocket)(this.#duplex as unknown as import("node:net").Socket, opts);
    this.#sock = sock;
    this.feed(prefix);
    // Our own chain check: a TLSSocket over a Duplex is not relied on for it.
    const verify: VerifySource = o.requestCert
      ? { kind: "own", policy: clientVerifyPolicy(o) }
      : { kind: "none" };
    return new Promise<TlsInfo>((resolve, reject) => {
      let settled = false;
      const fail = (e?: Error) => {
        if (!settled) {
          settled = true;
          reject(e ?? new Error("connection closed during the TLS handshake"));
        }
        this.#finish(e);
      };
      sock.on("error", (e: Error) => fail(e));
      sock.on("close", () => fail());
      sock.on("end", () => {
        // The peer is done: tell the app, then end our side too (as for plain EOF).
        this.#call((ev) => ev.end());
        this.end();
      });
      sock.on("drain", () => {
        if (!this.#needDrain) return;
        this.#needDrain = false;
        this.#call((ev) => ev.drain());
      });
      sock.once("secure", () => {
        if (settled) return;
        settled = true;
        let info: TlsInfo;
        try {
          info = tlsInfoFromSocket(sock, verify);
        } catch (e) {
          reject(toError(e));
          this.#finish(toError(e));
          return;
        }
        resolve(info);
        // App data starts one task later, after the caller's continuation.
        setTimeout(() => this.#startFlow(), 0);
      });
    });
  }

  #startFlow(): void {
    const sock = this.#sock;
    if (sock === null || this.#done) return;
    sock.pause();
    this.#flowing = true;
    sock.on("data", (d: Uint8Array) => this.#call((ev) => ev.data(d)));
    if (!this.#paused) sock.resume();
  }

  /** Calls an app handler; a throwing handler closes the connection. */
  #call(f: (ev: ConnEvents) => void): void {
    if (this.#done) return;
    try {
      f(this.#app());
    } catch (e) {
      this.#raw.destroy(toError(e));
    }
  }

  /** Raw bytes from the socket (copied: Bun reuses its buffer). */
  feed(chunk: Uint8Array): void {
    if (this.#done) return;
    if (!this.#duplex.push(Buffer.from(chunk))) this.#raw.pause();
  }

  /** EOF from the socket. */
  feedEnd(): void {
    if (!this.#done) this.#duplex.push(null);
  }

  /** The raw queue went below its high-water mark. */
  rawDrained(): void {
    const w = this.#waiting;
    this.#waiting = [];
    for (const cb of w) cb();
  }

  write(chunk: Uint8Array): boolean {
    const sock = this.#sock;
    if (sock === null || this.#done) return true;
    if (chunk.length > 0) sock.write(Buffer.from(chunk));
    if (sock.writableLength > WRITE_HIGH_WATER) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  pause(): void {
    this.#paused = true;
    if (this.#flowing) this.#sock?.pause();
  }

  resume(): void {
    this.#paused = false;
    if (this.#flowing) this.#sock?.resume();
  }

  /** close_notify after the pending records, then the socket ends. */
  end(): void {
    this.#ending = true;
    if (this.#finalWaiting) {
      this.#finalWaiting = false;
      this.#raw.end();
      return;
    }
    this.#sock?.end();
  }

  /** The connection is gone: drop everything, report nothing more. */
  destroy(): void {
    this.#finish();
  }

  #finish(err?: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#waiting = [];
    if (this.#sock !== null && !this.#sock.destroyed) this.#sock.destroy();
    this.#raw.destroy(err);
  }
}
