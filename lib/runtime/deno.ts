// The Deno adapter: native Deno.listen/Deno.connect sockets with one read
// loop per connection, and node:tls (on a Duplex over the same connection)
// as the TLS layer for STARTTLS, implicit TLS and TLS to backends.
//
// Why native sockets and not node:net: about twice the relay throughput of
// Deno's node:net pipe at a fraction of its peak memory (platform-notes Q3).
// Why node:tls and not Deno.startTls/Deno.connectTls: Deno's own TLS has no
// server-side upgrade, no client certificates, no SNI and no peer-certificate
// or cipher information (Q2); and Deno.startTls requires that no read is
// pending on the connection, while this adapter always has one in flight
// (it cannot be cancelled). node:tls over a Duplex fed by our read loop
// handles both directions and gets the in-flight read's bytes right.
// Never conn.readable/pipeTo: at EOF they close the whole conn (Q3).

import type * as tls from "node:tls";
import type * as net from "node:net";
import { readFileSync } from "node:fs";
import type {
  Conn,
  ConnectSpec,
  ConnEvents,
  Listener,
  ListenSpec,
  Runtime,
  SignalName,
  SockAddr,
  TlsClientOptions,
  TlsInfo,
  TlsServerOptions,
} from "./types.ts";
import { type RawDuplex, rawDuplex } from "./deno_duplex.ts";
import { nodeTls } from "../core/builtins.ts";
import { chooseCertIndex, HELLO_SNIFF_MAX, helloSignatureSchemes } from "./client_hello.ts";
import {
  certKeyTypes,
  clientConnectOptions,
  clientVerifyPolicy,
  serverSocketOptions,
  verifyNameOf,
  tlsInfoFromSocket,
  type VerifySource,
} from "./node_tls.ts";
import { bareHost, ipAddr, unixAddr } from "./sock_addr.ts";
import { keepaliveCall } from "./keepalive.ts";

// Every pending read pins its buffer, so idle connections cost one buffer
// each (64 KiB buffers made 102 KB per proxied session, 4 KiB 22 KB: Q4).
// Start small, double when a read fills the buffer, halve after a run of
// small reads. 1 KiB holds any command or reply of a login dialogue; a
// bulk transfer reaches 64 KiB after six full reads.
const READ_BUF_MIN = 1024;
const READ_BUF_MAX = 64 * 1024;
/** Consecutive reads under a quarter of the buffer before it is halved. */
const SHRINK_AFTER_SMALL_READS = 8;
/** write() returns false once more than this many bytes are queued. */
const WRITE_HIGH_WATER = 64 * 1024;
/** The smallest TCP segment size a path may have (RFC 9293's default MSS). */
const MIN_SEGMENT = 536;
/** Pause before accepting again after an accept error (e.g. EMFILE). */
const ACCEPT_RETRY_MS = 100;

const NO_EVENTS: ConnEvents = { data() {}, drain() {}, end() {}, close() {} };

/** A ClientHello being collected; done() builds the TLS socket. */
interface Sniff {
  hello: Uint8Array;
  done(hello: Uint8Array, schemes: number[] | null): void;
  fail(err: Error): void;
}

interface QueuedWrite {
  buf: Uint8Array;
  cb?: (err?: Error | null) => void;
  /** `buf` is a view of this conn's read buffer, lent until written or dropped. */
  lender?: DenoConn;
}

/**
 * The connection whose data handler is running, and the buffer its chunk
 * is a view of. A plain write() of a view of that buffer (the relay passing
 * a chunk straight on) is queued without a copy: the reader lends its
 * buffer and reads again only once the write has taken the bytes (read and
 * write alternate, as in the manual loop of platform-notes Q3). Any other
 * chunk is copied, so "valid only during the call" still holds for every
 * other caller.
 */
let deliveringConn: DenoConn | null = null;
let deliveringBuffer: ArrayBufferLike | null = null;

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Gives a lent read buffer back (once) when its write is done or dropped. */
function release(item: QueuedWrite): void {
  const lender = item.lender;
  if (lender !== undefined) {
    item.lender = undefined;
    lender._unlend();
  }
}

class DenoConn implements Conn {
  readonly remote: SockAddr;
  readonly local: SockAddr;
  #tls: TlsInfo | null = null;
  get tls(): TlsInfo | null {
    return this.#tls;
  }

  #conn: Deno.Conn;
  /** Host name used to connect (client side), the default TLS verify name. */
  #connectHost: string | null;
  #ev: ConnEvents = NO_EVENTS;
  #attached = false;
  #paused = false;

  // Raw read side. Exactly one conn.read() is in flight at a time.
  #buf = new Uint8Array(READ_BUF_MIN);
  #smallReads = 0;
  #reading = false;
  /** Writes (of other conns, or this one) still holding a view of the read buffer. */
  #lent = 0;
  /** Bytes of a completed read not yet delivered (plain mode, paused). */
  #held = 0;
  #heldBuf: Uint8Array | null = null;
  #heldEof = false;
  #eof = false;

  // Raw write side.
  #queue: QueuedWrite[] = [];
  #queued = 0;
  #writing = false;
  #needDrain = false;
  /**
   * TCP_NODELAY not set yet. Small request/response exchanges must not wait
   * for delayed ACKs (Q3), but Nagle only holds data back while earlier data
   * is unacknowledged, so a first write that fits in one segment always goes
   * at once: NODELAY is set before the second write (or a first one that may
   * span segments). The auth_http connection (one request, then only reads)
   * never needs the syscall.
   */
  #noDelayPending = false;
  #socketWrites = 0;

  // Lifecycle.
  /** The app called end(): no more app writes; close once flushed. */
  #appEnding = false;
  /** Close the socket once the raw queue is flushed. */
  #rawEnding = false;
  #closed = false;
  #closeEmitted = false;
  #closeError: Error | undefined;

  // TLS (node:tls over a RawDuplex). Once #duplex is set, raw bytes go to it.
  #duplex: RawDuplex | null = null;
  #duplexWants = false;
  #tlsSock: tls.TLSSocket | null = null;
  /** App data flows from the TLS socket (handshake done, one task later). */
  #tlsFlow = false;
  /** Collecting the ClientHello to choose among several cert/key pairs. */
  #sniff: Sniff | null = null;

  /** so_keepalive of the listener this connection came from. */
  setKeepAlive(enable: boolean): void {
    try {
      (this.#conn as Deno.TcpConn).setKeepAlive(enable);
    } catch { /* closed already, or not TCP */ }
  }

  constructor(conn: Deno.Conn, connectHost: string | null) {
    this.#conn = conn;
    this.#connectHost = connectHost;
    const ra = conn.remoteAddr, la = conn.localAddr;
    if (ra.transport === "tcp") {
      this.remote = ipAddr(ra.hostname, ra.port);
      this.local = la.transport === "tcp" ? ipAddr(la.hostname, la.port) : unixAddr("");
      this.#noDelayPending = true;
    } else {
      this.remote = unixAddr((ra as Deno.UnixAddr).path);
      this.local = unixAddr((la as Deno.UnixAddr).path);
    }
  }

  attach(events: ConnEvents): void {
    this.#ev = events;
    if (this.#closeEmitted) {
      // Already closed and reported to the previous handlers: tell these too,
      // so a relay started on a dead connection ends at once.
      queueMicrotask(() => events.close(this.#closeError));
      return;
    }
    if (this.#attached) return;
    this.#attached = true;
    if (this.#tlsFlow) this.#applyTlsFlow();
    else this.#pump();
  }

  // ---- reading

  #pump(): void {
    if (this.#reading || this.#closed || this.#eof || this.#lent > 0) return;
    if (this.#duplex !== null) {
      if (!this.#duplexWants && this.#sniff === null) return;
    } else if (!this.#attached || this.#paused || this.#held > 0 || this.#heldEof) return;
    this.#reading = true;
    // #buf is replaced only once a read completes (#adaptBuffer): the handler reads it back.
    this.#conn.read(this.#buf).then(this.#onReadDone, this.#onIoFailed);
  }

  // Made once per connection rather than per read.
  readonly #onReadDone = (n: number | null): void => {
    try {
      this.#onRead(this.#buf, n);
    } catch (e) {
      this.#closeNow(toError(e)); // an app handler threw
    }
  };
  /** A failed read or write op: a peer reset becomes a close event, not a rejection. */
  readonly #onIoFailed = (e: unknown): void => {
    this.#reading = false;
    this.#writing = false;
    this.#closeNow(toError(e));
  };

  #onRead(buf: Uint8Array, n: number | null): void {
    this.#reading = false;
    if (this.#closed) return;
    if (n === null) {
      this.#eof = true;
      if (this.#duplex !== null) this.#tlsEof();
      else if (this.#paused) this.#heldEof = true;
      else this.#deliverEof();
      return;
    }
    this.#adaptBuffer(buf, n);
    if (this.#duplex !== null) {
      // Ciphertext (or the ClientHello of a read that was in flight when
      // startTls was called): the TLS layer keeps it, so copy.
      this.#feedTls(buf.slice(0, n));
      this.#pump();
      return;
    }
    if (this.#paused) {
      this.#held = n;
      this.#heldBuf = buf;
      return;
    }
    this.#deliver(buf, n);
    this.#pump();
  }

  /** The data event for `n` bytes of `buf`; writes may borrow `buf` meanwhile (deliveringConn). */
  #deliver(buf: Uint8Array, n: number): void {
    const prevConn = deliveringConn, prevBuffer = deliveringBuffer;
    deliveringConn = this;
    deliveringBuffer = buf.buffer;
    try {
      this.#ev.data(buf.subarray(0, n));
    } finally {
      deliveringConn = prevConn;
      deliveringBuffer = prevBuffer;
    }
  }

  /** For release(): a write borrowing the read buffer is done with it. */
  _unlend(): void {
    if (--this.#lent === 0) this.#pump();
  }

  #adaptBuffer(buf: Uint8Array, n: number): void {
    if (buf !== this.#buf) return;
    if (n === buf.length && buf.length < READ_BUF_MAX) {
      this.#buf = new Uint8Array(buf.length * 2);
      this.#smallReads = 0;
    } else if (buf.length > READ_BUF_MIN && n * 4 <= buf.length) {
      if (++this.#smallReads >= SHRINK_AFTER_SMALL_READS) {
        this.#buf = new Uint8Array(buf.length / 2);
        this.#smallReads = 0;
      }
    } else this.#smallReads = 0;
  }

  #deliverEof(): void {
    this.#ev.end();
    if (!this.#appEnding && !this.#closed) this.end();
  }

  #deliverHeld(): void {
    if (this.#paused || this.#closed || this.#duplex !== null) return;
    if (this.#held > 0) {
      const n = this.#held;
      const buf = this.#heldBuf!;
      this.#held = 0;
      this.#heldBuf = null;
      this.#deliver(buf, n);
      if (this.#paused || this.#closed || this.#duplex !== null) return;
    }
    if (this.#heldEof) {
      this.#heldEof = false;
      this.#deliverEof();
      return;
    }
    this.#pump();
  }

  pause(): void {
    this.#paused = true;
    if (this.#tlsFlow) this.#tlsSock!.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#duplex !== null) {
      if (this.#tlsFlow) this.#applyTlsFlow();
      return;
    }
    // Held bytes are delivered from a microtask, never from inside resume().
    if (this.#held > 0 || this.#heldEof) {
      queueMicrotask(() => {
        try {
          this.#deliverHeld();
        } catch (e) {
          this.#closeNow(toError(e));
        }
      });
    } else this.#pump();
  }

  // ---- writing

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#appEnding) return true;
    if (this.#tlsSock !== null) {
      if (chunk.length > 0) this.#tlsSock.write(chunk.slice());
      if (this.#tlsSock.writableLength > WRITE_HIGH_WATER) {
        this.#needDrain = true;
        return false;
      }
      return true;
    }
    // Deno writes are asynchronous: the caller may reuse its chunk, so copy,
    // unless it is lent by the conn that is delivering it.
    if (chunk.length > 0) {
      const lender = deliveringConn;
      if (lender === null || chunk.buffer !== deliveringBuffer) this.#push({ buf: chunk.slice() });
      else if (lender.#buf.buffer !== deliveringBuffer) {
        // The reader has already moved to a new buffer (#adaptBuffer): this
        // one is never read into again, so nothing needs to wait.
        this.#push({ buf: chunk });
      } else {
        lender.#lent++;
        this.#push({ buf: chunk, lender });
      }
    }
    if (this.#queued > WRITE_HIGH_WATER) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  #enqueue(buf: Uint8Array, cb?: (err?: Error | null) => void): void {
    this.#push({ buf, cb });
  }

  #push(item: QueuedWrite): void {
    this.#queue.push(item);
    this.#queued += item.buf.length;
    if (!this.#writing) {
      this.#writing = true;
      this.#writeHead();
    }
  }

  // One write op in flight at a time, driven by its settlement (no async
  // function per flush: a login dialogue makes a dozen small writes).
  #writeOff = 0;
  #inFlight: QueuedWrite | null = null;
  readonly #onWritten = (n: number): void => {
    try {
      this.#written(n);
    } catch (e) {
      this.#writing = false;
      this.#closeNow(toError(e)); // a write callback or the drain handler threw
    }
  };

  /** Starts the write op for the head of the queue, or ends the run when it is empty. */
  #writeHead(): void {
    if (this.#queue.length === 0 || this.#closed) {
      this.#writesDone();
      return;
    }
    const item = this.#queue[0];
    this.#inFlight = item;
    const off = this.#writeOff;
    if (
      off === 0 && this.#noDelayPending &&
      (++this.#socketWrites > 1 || item.buf.length > MIN_SEGMENT)
    ) this.#setNoDelay();
    const rest = off === 0 ? item.buf : item.buf.subarray(off);
    this.#conn.write(rest).then(this.#onWritten, this.#onIoFailed);
  }

  #written(n: number): void {
    const item = this.#inFlight!;
    this.#writeOff += n;
    if (this.#writeOff >= item.buf.length) {
      // Done with this item (even if the conn closed meanwhile: its callback still runs).
      this.#writeOff = 0;
      this.#inFlight = null;
      if (this.#queue[0] === item) {
        this.#queue.shift();
        this.#queued -= item.buf.length;
      }
      release(item);
      item.cb?.();
    }
    this.#writeHead(); // the rest of this item, the next one, or the end of the run
  }

  /** The queue is empty (or the conn closed): drain, or the close that end() asked for. */
  #writesDone(): void {
    this.#writing = false;
    if (this.#closed) return;
    if (this.#rawEnding) {
      this.#closeNow();
      return;
    }
    if (this.#needDrain && this.#tlsSock === null) {
      this.#needDrain = false;
      this.#ev.drain();
    }
  }

  #setNoDelay(): void {
    this.#noDelayPending = false;
    try {
      (this.#conn as Deno.TcpConn).setNoDelay(true);
    } catch { /* closed already */ }
  }

  end(): void {
    if (this.#closed || this.#appEnding) return;
    this.#appEnding = true;
    if (this.#tlsSock !== null) {
      // close_notify after the pending records; the Duplex's final() then
      // flushes the raw queue and closes the socket.
      this.#tlsSock.end();
      return;
    }
    this.#rawFinish();
  }

  #rawFinish(): void {
    if (this.#closed) return;
    this.#rawEnding = true;
    if (!this.#writing && this.#queue.length === 0) this.#closeNow();
  }

  destroy(): void {
    this.#closeNow();
  }

  #closeNow(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    for (const item of this.#queue) release(item);
    this.#queue = [];
    this.#queued = 0;
    this.#held = 0;
    this.#heldBuf = null;
    if (this.#tlsSock !== null && !this.#tlsSock.destroyed) this.#tlsSock.destroy();
    const sniff = this.#sniff;
    this.#sniff = null;
    sniff?.fail(err ?? new Error("connection closed during the TLS handshake"));
    // Emitted from a microtask so destroy() never re-enters the caller; the
    // handlers current at that time get it (the relay may just have taken over).
    this.#closeError = err;
    queueMicrotask(() => {
      this.#closeEmitted = true;
      try {
        this.#ev.close(err);
      } catch (e) {
        console.error("mailgate: close handler failed:", e);
      }
    });
  }

  // ---- TLS

  startTls(options: TlsServerOptions, prefix?: Uint8Array): Promise<TlsInfo> {
    // Deno's TLS layer does not verify client certificates on a TLSSocket
    // built over a Duplex: the whole chain check is ours.
    const verify: VerifySource = options.requestCert
      ? { kind: "own", policy: clientVerifyPolicy(options) }
      : { kind: "none" };
    if (options.certs.length > 1) return this.#startTlsChoosingCert(options, verify, prefix);
    let sock: tls.TLSSocket;
    try {
      this.#checkCanStartTls();
      const duplex = this.#makeDuplex(prefix);
      sock = new (nodeTls().TLSSocket)(
        duplex as unknown as net.Socket,
        serverSocketOptions(options),
      );
    } catch (e) {
      this.#closeNow(toError(e));
      return Promise.reject(toError(e));
    }
    return this.#handshake(sock, "secure", verify);
  }

  /**
   * Several cert/key pairs: Deno's TLS would only ever serve the first, so
   * read the ClientHello first (at most one record), pick the pair the
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
          if (hello.length > 0 && !this.#duplex!.push(hello)) this.#duplexWants = false;
          this.#handshake(sock, "secure", verify).then(resolve, reject);
        },
      };
      this.#makeDuplex(prefix);
      this.#pump();
    });
  }

  /** Raw bytes for the TLS layer (or for the ClientHello being collected). */
  #feedTls(chunk: Uint8Array): void {
    const sniff = this.#sniff;
    if (sniff === null) {
      if (!this.#duplex!.push(chunk)) this.#duplexWants = false;
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
      this.#closeNow(toError(e));
      return Promise.reject(toError(e));
    }
    return this.#handshake(sock, "secureConnect", "client");
  }

  #checkCanStartTls(): void {
    if (this.#closed) throw new Error("connection closed");
    if (this.#duplex !== null) throw new Error("TLS already started");
  }

  /**
   * From now on every raw byte (held, in flight or future) goes to TLS,
   * after `prefix` (TLS bytes the caller had already read).
   */
  #makeDuplex(prefix?: Uint8Array): RawDuplex {
    const duplex = rawDuplex({
      wantRead: () => {
        this.#duplexWants = true;
        this.#pump();
      },
      write: (chunk, cb) => {
        if (this.#closed) return;
        this.#enqueue(chunk, cb);
      },
      finish: () => this.#rawFinish(),
      destroy: (err) => this.#closeNow(err ?? undefined),
    });
    duplex.on("error", () => {}); // reported through the TLS socket / close
    this.#duplex = duplex;
    if (prefix !== undefined && prefix.length > 0) this.#feedTls(prefix.slice());
    if (this.#held > 0) {
      const held = this.#heldBuf!.slice(0, this.#held);
      this.#held = 0;
      this.#heldBuf = null;
      this.#feedTls(held);
    }
    if (this.#heldEof || this.#eof) this.#tlsEof();
    this.#heldEof = false;
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
      sock.on("end", () => {
        if (this.#closed) return;
        try {
          this.#ev.end();
        } catch (e) {
          this.#closeNow(toError(e));
        }
        if (!this.#appEnding) this.end();
      });
      sock.on("drain", () => {
        if (this.#needDrain && !this.#closed) {
          this.#needDrain = false;
          try {
            this.#ev.drain();
          } catch (e) {
            this.#closeNow(toError(e));
          }
        }
      });
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

// ---- listeners and runtime

/** Where accepted connections go, with the listen's per-connection options. */
interface AcceptTarget {
  onAccept: (c: Conn) => void;
  spec: ListenSpec;
}

function deliver(target: AcceptTarget, conn: DenoConn): void {
  if (target.spec.kind === "tcp") {
    // Deno's setKeepAlive has no idle time (capabilities.ts).
    const ka = keepaliveCall(target.spec.keepalive, false);
    if (ka !== null) conn.setKeepAlive(ka.enable);
  }
  try {
    target.onAccept(conn);
  } catch (e) {
    conn.destroy();
    console.error("mailgate: accept handler failed:", e);
  }
}

async function acceptLoop(
  l: Deno.Listener,
  isClosed: () => boolean,
  route: (c: DenoConn) => AcceptTarget | null,
): Promise<void> {
  while (!isClosed()) {
    let c: Deno.Conn;
    try {
      c = await l.accept();
    } catch (e) {
      if (isClosed() || e instanceof Deno.errors.BadResource) return;
      // A connection reset while it waited in the backlog fails only itself:
      // take the next one at once (backing off here let a burst of resets
      // stop accepting for a minute).
      if (
        e instanceof Deno.errors.NotConnected || e instanceof Deno.errors.ConnectionReset ||
        e instanceof Deno.errors.ConnectionAborted
      ) continue;
      // EMFILE and friends: back off instead of spinning.
      await new Promise((r) => setTimeout(r, ACCEPT_RETRY_MS));
      continue;
    }
    const conn = new DenoConn(c, null);
    const target = route(conn);
    if (target === null) conn.destroy();
    else deliver(target, conn);
  }
}

function addrOf(l: Deno.Listener): SockAddr {
  const a = l.addr;
  return a.transport === "tcp" ? ipAddr(a.hostname, a.port) : unixAddr((a as Deno.UnixAddr).path);
}

/**
 * Deno.listen has no IPV6_V6ONLY option, and a "::" socket is dual-stack
 * (unless the bindv6only sysctl says otherwise). On Linux a dual-stack
 * socket holds the IPv4 port as well, so nginx's usual pair
 * `listen *:143; listen [::]:143;` (ipv6only=on by default) would fail with
 * "address in use". Instead, one dual-stack socket serves both: IPv6
 * connections go to the [::] listen, IPv4 ones to the IPv4 listen of the
 * same port whose address matches (else the IPv4 wildcard), and an IPv4
 * connection nobody listens for is closed at once, which is as close to
 * "ipv6only" as Deno gets (accepted then closed, not refused).
 */
interface PortShare {
  listener: Deno.Listener;
  closed: boolean;
  /** The accept loop; done once the socket is really closed. */
  loop: Promise<void>;
  v6: AcceptTarget | null;
  /** IPv4 listens riding on the shared socket, by address ("0.0.0.0" = wildcard). */
  v4: Map<string, AcceptTarget>;
}

/** Shared dual-stack sockets by port. */
const shares = new Map<number, PortShare>();

let v6onlyDefault: boolean | null = null;
/** net.ipv6.bindv6only: 1 makes every "::" socket IPv6-only already. */
function systemV6only(): boolean {
  if (v6onlyDefault === null) {
    try {
      v6onlyDefault = readFileSync("/proc/sys/net/ipv6/bindv6only", "utf8").trim() === "1";
    } catch {
      v6onlyDefault = false;
    }
  }
  return v6onlyDefault;
}

function inUse(what: string): Error {
  return new Deno.errors.AddrInUse(`${what} is already open`);
}

function routeShared(share: PortShare) {
  return (c: DenoConn): AcceptTarget | null => {
    const local = c.local;
    if (local.family !== "ipv4") return share.v6;
    return share.v4.get(local.address) ?? share.v4.get("0.0.0.0") ?? null;
  };
}

function sharedListener(
  share: PortShare,
  port: number,
  remove: () => void,
  addr: SockAddr = addrOf(share.listener),
): Listener {
  let closed = false;
  return {
    addr,
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      remove();
      if (share.v6 !== null || share.v4.size > 0) return Promise.resolve();
      if (shares.get(port) === share) shares.delete(port);
      share.closed = true;
      try {
        share.listener.close();
      } catch { /* already closed */ }
      return share.loop;
    },
  };
}

function listenTcpOptions(spec: ListenSpec & { kind: "tcp" }) {
  // reusePort is an unstable option (needs --unstable-net; without the
  // flag Deno exits): pass it only when asked.
  const opts: Deno.TcpListenOptions & { transport: "tcp"; reusePort?: boolean } = {
    transport: "tcp",
    hostname: bareHost(spec.host),
    port: spec.port,
  };
  if (spec.reusePort) opts.reusePort = true;
  if (spec.backlog !== undefined) opts.tcpBacklog = spec.backlog;
  return opts;
}

/** A "::" listen with ipv6only=on: the port's shared dual-stack socket, opened if needed. */
function listenV6only(spec: ListenSpec & { kind: "tcp" }, target: AcceptTarget): Listener {
  let share = spec.port !== 0 ? shares.get(spec.port) : undefined;
  if (share === undefined) {
    let l: Deno.Listener;
    try {
      l = Deno.listen(listenTcpOptions(spec));
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse)) throw e;
      // An IPv4 socket of ours on this port was opened first (only possible
      // on reload: planSockets opens "::" first): it cannot be shared now.
      throw new Deno.errors.AddrInUse(
        `${(e as Error).message}; the deno runtime has no ipv6only option, so [::]:${spec.port} ` +
          `must be opened before any IPv4 address of port ${spec.port} (restart instead of reloading)`,
      );
    }
    const created: PortShare = { listener: l, closed: false, loop: Promise.resolve(), v6: null, v4: new Map() };
    shares.set((l.addr as Deno.NetAddr).port, created);
    created.loop = acceptLoop(l, () => created.closed, routeShared(created)).catch(() => {});
    share = created;
  } else if (share.v6 !== null) {
    throw inUse(`[::]:${spec.port}`);
  }
  const s = share;
  s.v6 = target;
  return sharedListener(s, (s.listener.addr as Deno.NetAddr).port, () => (s.v6 = null));
}

// async: a bind error (AddrInUse, permission) becomes a rejection.
// deno-lint-ignore require-await
async function listen(spec: ListenSpec, onAccept: (c: Conn) => void): Promise<Listener> {
  const target: AcceptTarget = { onAccept, spec };
  if (spec.kind === "tcp") {
    const host = bareHost(spec.host);
    if (host === "::" && spec.ipv6only === true && !systemV6only()) return listenV6only(spec, target);
    // An IPv4 address of a port whose [::] socket is shared rides on it.
    const share = spec.port !== 0 && net4(host) ? shares.get(spec.port) : undefined;
    if (share !== undefined) {
      if (share.v4.has(host)) throw inUse(`${host}:${spec.port}`);
      share.v4.set(host, target);
      return sharedListener(share, spec.port, () => share.v4.delete(host), ipAddr(host, spec.port));
    }
  }
  const l = spec.kind === "tcp"
    ? Deno.listen(listenTcpOptions(spec))
    : Deno.listen({ transport: "unix", path: spec.path });
  let closed = false;
  // The loop ends when the pending accept fails on the closed listener:
  // only then has Deno really closed the socket.
  const loop = acceptLoop(l, () => closed, () => target).catch(() => {});
  return {
    addr: addrOf(l),
    close() {
      if (!closed) {
        closed = true;
        try {
          l.close();
        } catch { /* already closed */ }
      }
      return loop;
    },
  };
}

/** An IPv4 literal (the addresses a shared dual-stack socket can serve). */
function net4(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

function describe(spec: ConnectSpec): string {
  return spec.kind === "tcp" ? `${spec.host}:${spec.port}` : `unix:${spec.path}`;
}

async function connect(spec: ConnectSpec): Promise<Conn> {
  const ac = new AbortController();
  let timedOut = false;
  let conn: DenoConn | null = null;
  const timer = spec.timeoutMs !== undefined
    ? setTimeout(() => {
      timedOut = true;
      ac.abort();
      conn?.destroy();
    }, spec.timeoutMs)
    : undefined;
  try {
    let raw: Deno.Conn;
    try {
      raw = spec.kind === "tcp"
        ? await Deno.connect({
          transport: "tcp",
          hostname: bareHost(spec.host),
          port: spec.port,
          signal: ac.signal,
        })
        : await Deno.connect({ transport: "unix", path: spec.path });
    } catch (e) {
      if (timedOut) throw new Error(`connect to ${describe(spec)} timed out`);
      throw e;
    }
    if (timedOut) {
      raw.close();
      throw new Error(`connect to ${describe(spec)} timed out`);
    }
    conn = new DenoConn(raw, spec.kind === "tcp" ? spec.host : null);
    if (spec.tls) {
      try {
        await conn.startTlsClient(spec.tls);
      } catch (e) {
        conn.destroy();
        if (timedOut) throw new Error(`connect to ${describe(spec)} timed out (TLS handshake)`);
        throw e;
      }
    }
    return conn;
  } finally {
    clearTimeout(timer);
  }
}

export const runtime: Runtime = {
  name: "deno",
  version: Deno.version.deno,
  listen,
  connect,
  onSignal(signal: SignalName, handler: () => void): void {
    // Note: on Deno, SIGUSR1 also starts the V8 inspector (platform-notes Q5).
    Deno.addSignalListener(signal, handler);
  },
  args: () => [...Deno.args],
  exit: (code: number): never => Deno.exit(code),
  pid: Deno.pid,
};
