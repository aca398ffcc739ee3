// An in-memory Conn pair for tests. It implements the Conn contract of
// lib/runtime/types.ts the way a real adapter over a TCP socket behaves:
//
// * Events are delivered on the event loop (never inside the caller's
//   write()/end()/attach()), one data chunk per macrotask, so code that only
//   works when everything happens synchronously fails here as it would live.
// * Reading starts at the first attach(); bytes written earlier wait.
// * Backpressure: write() copies the chunk and returns false once the
//   peer's undelivered bytes exceed highWaterMark; drain() follows once they
//   have all been delivered. pause() stops delivery; resume() restarts it.
// * Delivered chunks are views that the fake overwrites after the data()
//   handler returns (poisonChunks, default on): a consumer that keeps a view
//   instead of copying it sees garbage, as with a reused read buffer.
// * end(): the peer gets the remaining data, then end(), then close(); this
//   side's close() follows once its data is "in the kernel" (the peer's
//   queue at or below highWaterMark). destroy(): this side closes now and
//   drops what it had not received; the peer still gets what was written,
//   then end() and close(). reset(): the peer gets close(ECONNRESET) at once.
// * startTls()/startTlsClient(): a fake handshake that completes once both
//   sides have called theirs. Plaintext the peer wrote before starting its
//   side and that was not yet delivered makes the handshake fail (a real TLS
//   layer would read it as a broken ClientHello) - which is exactly the
//   STARTTLS injection case.

import { bytesToBinary, concatBytes } from "../../lib/core/bytes.ts";
import type {
  Conn,
  ConnectSpec,
  ConnEvents,
  SockAddr,
  TlsClientOptions,
  TlsInfo,
  TlsServerOptions,
} from "../../lib/runtime/types.ts";

export interface FakeConnOptions {
  /** Peer queue size above which write() returns false. Default 16 KiB. */
  highWaterMark?: number;
  /** Overwrite delivered chunks after data() returns. Default true. */
  poisonChunks?: boolean;
  /** Split deliveries into chunks of at most this many bytes. Default: as written. */
  maxChunk?: number;
  /** What both sides report as `tls` after a fake handshake. */
  tlsInfo?: TlsInfo;
  /** Addresses of the first side (the second side sees them swapped). */
  local?: SockAddr;
  remote?: SockAddr;
}

export const DEFAULT_FAKE_TLS: TlsInfo = {
  protocol: "TLSv1.3",
  cipher: "TLS_AES_256_GCM_SHA384",
  servername: null,
  alpn: null,
  peerCert: null,
  verifyError: null,
};

interface Chunk {
  data: Uint8Array;
  /** Written after the writer had started TLS. */
  tls: boolean;
}

interface Handshake {
  role: "server" | "client";
  resolve(info: TlsInfo): void;
  reject(err: Error): void;
}

function later(fn: () => void): void {
  setTimeout(fn, 0);
}

export class FakeConn implements Conn {
  peer!: FakeConn;
  tls: TlsInfo | null = null;
  /** Writes attempted after this side ended or closed (a caller bug); they are dropped. */
  writesAfterClose = 0;
  /** Options passed to startTls / startTlsClient, for assertions. */
  tlsOptions: TlsServerOptions | TlsClientOptions | null = null;

  private events: ConnEvents | null = null;
  private inbox: Chunk[] = [];
  private inboxBytes = 0;
  private paused = false;
  private eofPending = false;
  private ending = false;
  private closed = false;
  private closeDelivered = false;
  private closeError: Error | undefined;
  private wantDrain = false;
  private pumpScheduled = false;
  private tlsStarted = false;
  private handshake: Handshake | null = null;

  constructor(
    readonly local: SockAddr,
    readonly remote: SockAddr,
    private readonly opts: Required<Omit<FakeConnOptions, "local" | "remote" | "maxChunk">> & {
      maxChunk: number;
    },
  ) {}

  /** True once this side's close() event has been delivered. */
  get isClosed(): boolean {
    return this.closeDelivered;
  }

  /** Bytes written to this side and not yet delivered to its handler. */
  get pendingBytes(): number {
    return this.inboxBytes;
  }

  attach(events: ConnEvents): void {
    this.events = events;
    this.schedule();
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.ending) {
      this.writesAfterClose++;
      return false;
    }
    const peer = this.peer;
    if (peer.closed) return true; // lost in the network, as with a real socket before the RST
    const max = this.opts.maxChunk;
    for (let i = 0; i < chunk.length; i += max) {
      const data = chunk.slice(i, Math.min(chunk.length, i + max));
      peer.inbox.push({ data, tls: this.tlsStarted });
      peer.inboxBytes += data.length;
    }
    peer.schedule();
    if (peer.inboxBytes > this.opts.highWaterMark) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.peer.eofPending = true;
    this.peer.schedule();
    this.checkFlushed();
  }

  destroy(): void {
    if (this.closed) return;
    this.closeNow();
    if (!this.peer.closed) {
      this.peer.eofPending = true;
      this.peer.schedule();
    }
  }

  /** Test helper: abort with a TCP reset; the peer gets close(ECONNRESET) without end(). */
  reset(): void {
    if (this.closed) return;
    this.closeNow();
    const err = Object.assign(new Error("Connection reset by peer (os error 104)"), {
      code: "ECONNRESET",
    });
    this.peer.closeNow(err);
  }

  startTls(options: TlsServerOptions): Promise<TlsInfo> {
    this.tlsOptions = options;
    return this.beginHandshake("server");
  }

  startTlsClient(options: TlsClientOptions): Promise<TlsInfo> {
    this.tlsOptions = options;
    return this.beginHandshake("client");
  }

  private beginHandshake(role: "server" | "client"): Promise<TlsInfo> {
    if (this.closed || this.tlsStarted) {
      return Promise.reject(new Error("fake conn: cannot start TLS now"));
    }
    this.tlsStarted = true;
    return new Promise<TlsInfo>((resolve, reject) => {
      this.handshake = { role, resolve, reject };
      later(() => this.tryHandshake());
    });
  }

  private tryHandshake(): void {
    const a = this.handshake;
    const b = this.peer.handshake;
    if (a === null || b === null) return; // the other side has not started yet
    if (a.role === b.role) return this.failHandshake("both sides took the same TLS role");
    // Plaintext still queued on either side would be read by the TLS layer
    // as handshake records and break it.
    if (this.inbox.some((c) => !c.tls) || this.peer.inbox.some((c) => !c.tls)) {
      return this.failHandshake("plaintext received during the TLS handshake");
    }
    this.handshake = this.peer.handshake = null;
    this.tls = this.peer.tls = this.opts.tlsInfo;
    a.resolve(this.opts.tlsInfo);
    b.resolve(this.opts.tlsInfo);
    this.schedule();
    this.peer.schedule();
  }

  private failHandshake(reason: string): void {
    const err = new Error(`fake TLS handshake failed: ${reason}`);
    for (const c of [this as FakeConn, this.peer]) {
      const h = c.handshake;
      c.handshake = null;
      h?.reject(err);
      c.closeNow(err);
    }
  }

  private schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    later(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Deliver one thing (a chunk, or end+close, or a pending close) per macrotask. */
  private pump(): void {
    const ev = this.events;
    if (ev === null) return;
    if (this.closed) {
      if (!this.closeDelivered) {
        this.closeDelivered = true;
        ev.close(this.closeError);
      }
      return;
    }
    // While a handshake is in progress nothing is read as data.
    if (this.paused || this.handshake !== null) return;
    const chunk = this.inbox.shift();
    if (chunk !== undefined) {
      this.inboxBytes -= chunk.data.length;
      if (this.tlsStarted !== chunk.tls) {
        // Peer sent TLS records to a plaintext reader or vice versa.
        this.closeNow(new Error("fake conn: TLS state mismatch between the two sides"));
        this.schedule();
        return;
      }
      ev.data(chunk.data);
      if (this.opts.poisonChunks) chunk.data.fill(0xee);
      this.peer.checkFlushed();
      if (this.inbox.length > 0 || this.eofPending) this.schedule();
      return;
    }
    if (this.eofPending) {
      this.eofPending = false;
      ev.end();
      this.closeNow();
      this.schedule();
    }
  }

  /** Called on the writer when its peer consumed data: drain, and end()'s close. */
  private checkFlushed(): void {
    if (this.closed) return;
    const queued = this.peer.inboxBytes;
    if (this.wantDrain && queued === 0) {
      this.wantDrain = false;
      later(() => {
        if (!this.closed) this.events?.drain();
      });
    }
    if (this.ending && queued <= this.opts.highWaterMark) {
      this.closeNow();
    }
  }

  /** Mark closed, drop what was not delivered, and deliver close() soon. */
  closeNow(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    this.inbox = [];
    this.inboxBytes = 0;
    const h = this.handshake;
    this.handshake = null;
    h?.reject(err ?? new Error("fake conn: closed during the TLS handshake"));
    this.schedule();
  }
}

/** Two connected in-memory Conns: [a, b]; b's local/remote are a's swapped. */
export function fakeConnPair(options: FakeConnOptions = {}): [FakeConn, FakeConn] {
  const opts = {
    highWaterMark: options.highWaterMark ?? 16384,
    poisonChunks: options.poisonChunks ?? true,
    maxChunk: options.maxChunk ?? Number.MAX_SAFE_INTEGER,
    tlsInfo: options.tlsInfo ?? DEFAULT_FAKE_TLS,
  };
  const local: SockAddr = options.local ?? { family: "ipv4", address: "127.0.0.1", port: 40000 };
  const remote: SockAddr = options.remote ?? { family: "ipv4", address: "127.0.0.1", port: 143 };
  const a = new FakeConn(local, remote, opts);
  const b = new FakeConn(remote, local, opts);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** Everything one side received, for assertions. */
export interface ConnRecord {
  /** Event names in order: "data", "drain", "end", "close". */
  events: string[];
  /** Copies of the received chunks. */
  chunks: Uint8Array[];
  /** All received bytes so far, as a binary string. */
  text(): string;
  /** Resolves with the close() error (undefined for a clean close). */
  closed: Promise<Error | undefined>;
}

/** Attach a recording handler to a Conn (starts reading). */
export function recordConn(conn: Conn): ConnRecord {
  let done!: (e: Error | undefined) => void;
  const rec: ConnRecord = {
    events: [],
    chunks: [],
    text: () => bytesToBinary(concatBytes(rec.chunks)),
    closed: new Promise((r) => (done = r)),
  };
  conn.attach({
    data(chunk) {
      rec.events.push("data");
      rec.chunks.push(chunk.slice());
    },
    drain() {
      rec.events.push("drain");
    },
    end() {
      rec.events.push("end");
    },
    close(err) {
      rec.events.push("close");
      done(err);
    },
  });
  return rec;
}

/**
 * A `connect` function over fake conns: every call makes a pair, hands the
 * far side to `onConnect` (the test's "server") and resolves with the near
 * side. `onConnect` may throw an Error to make the connect fail.
 */
export function fakeConnector(
  onConnect: (server: FakeConn, spec: ConnectSpec) => void,
  options: FakeConnOptions = {},
): { connect(spec: ConnectSpec): Promise<Conn>; conns: FakeConn[] } {
  const conns: FakeConn[] = [];
  return {
    conns,
    connect(spec: ConnectSpec): Promise<Conn> {
      return new Promise((resolve, reject) => {
        later(() => {
          const [client, server] = fakeConnPair(options);
          try {
            onConnect(server, spec);
          } catch (e) {
            reject(e);
            return;
          }
          conns.push(client);
          resolve(client);
        });
      });
    },
  };
}
