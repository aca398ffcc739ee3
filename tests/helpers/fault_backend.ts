// A scriptable backend for the hardening tests: it speaks just enough of
// IMAP, POP3 or SMTP for mailgate's backend login (IMAP LOGIN with
// literals, POP3 USER/PASS, SMTP EHLO) and can misbehave on purpose: close
// right after its greeting, reject the login, answer slowly. After login
// it understands two line commands, whatever the protocol:
//
//   STREAM <n>   n bytes of the stream pattern (see below), then "\r\nDONE\r\n";
//                written with backpressure, and `written` counts what the
//                kernel accepted so far, so tests can see the proxy push back
//   DIE <n>      n bytes of the pattern, then the connection is closed (FIN)
//   RESET <n>    n bytes of the pattern, then the connection is reset (RST)
//
// The stream pattern is 64 KiB blocks of fixed pseudo-random bytes whose
// first 8 bytes are the block number, so lost, repeated or reordered
// blocks are all caught by StreamVerifier.

import { createServer, type Server, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { ByteLog } from "./byte_log.ts";

export type Proto = "imap" | "pop3" | "smtp";

export interface FaultOptions {
  /** Send the greeting, then close. */
  closeAfterGreeting?: boolean;
  /** Refuse every login. */
  rejectLogin?: boolean;
  /** Delay every reply of the login dialogue (greeting included) by this many ms. */
  slowMs?: number;
}

const BLOCK = 64 * 1024;
const BASE = (() => {
  const b = Buffer.alloc(BLOCK);
  let x = 0x9e3779b9;
  for (let i = 0; i < BLOCK; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
})();

/** Block `i` of the stream pattern (a new buffer). */
export function streamBlock(i: number): Buffer {
  const b = Buffer.from(BASE);
  b.writeUInt32BE(Math.floor(i / 2 ** 32), 0);
  b.writeUInt32BE(i >>> 0, 4);
  return b;
}

/** Checks bytes against the stream pattern as they arrive. */
export class StreamVerifier {
  received = 0;
  ok = true;
  #block = -1;
  #cur: Buffer = Buffer.alloc(0);

  push(data: Uint8Array): boolean {
    let off = 0;
    while (off < data.length && this.ok) {
      const i = Math.floor(this.received / BLOCK);
      if (i !== this.#block) {
        this.#block = i;
        this.#cur = streamBlock(i);
      }
      const at = this.received % BLOCK;
      const n = Math.min(BLOCK - at, data.length - off);
      if (Buffer.compare(this.#cur.subarray(at, at + n), data.subarray(off, off + n)) !== 0) this.ok = false;
      off += n;
      this.received += n;
    }
    return this.ok;
  }
}

export class FaultBackend {
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  port = 0;
  /** Connections accepted. */
  accepted = 0;
  /** Logins that succeeded. */
  logins = 0;
  /** Stream bytes handed to the kernel, over all connections. */
  written = 0;
  /** A STREAM finished writing (all bytes accepted by the kernel). */
  streamsDone = 0;

  constructor(readonly proto: Proto, public opts: FaultOptions = {}) {
    this.server = createServer((s) => this.#onConn(s));
  }

  static async start(proto: Proto, opts: FaultOptions = {}): Promise<FaultBackend> {
    const b = new FaultBackend(proto, opts);
    await new Promise<void>((r) => b.server.listen(0, "127.0.0.1", () => r()));
    b.port = (b.server.address() as { port: number }).port;
    return b;
  }

  #onConn(sock: Socket): void {
    this.accepted++;
    this.sockets.add(sock);
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => {});
    const o = this.opts;
    const say = (s: string) => {
      if (o.slowMs) setTimeout(() => !sock.destroyed && sock.write(s), o.slowMs);
      else sock.write(s);
    };
    say(this.proto === "imap" ? "* OK fault IMAP ready\r\n" : this.proto === "pop3" ? "+OK fault POP3 ready\r\n" : "220 fault ESMTP\r\n");
    if (o.closeAfterGreeting) {
      setTimeout(() => sock.end(), (o.slowMs ?? 0) + 10);
      return;
    }
    const buf = new ByteLog(false);
    let loggedIn = false;
    /** IMAP literal login: how many raw bytes to skip next, and the stage. */
    let literal = 0;
    let stage = 0;
    let tag = "";
    const login = (ok: boolean) => {
      if (ok && !o.rejectLogin) {
        loggedIn = true;
        this.logins++;
      }
      const good = ok && !o.rejectLogin;
      if (this.proto === "imap") say(good ? `${tag} OK fault login ok\r\n` : `${tag} NO [AUTHENTICATIONFAILED] fault says no\r\n`);
      else if (this.proto === "pop3") say(good ? "+OK fault logged in\r\n" : "-ERR [AUTH] fault says no\r\n");
      else say(good ? "250-fault\r\n250 8BITMIME\r\n" : "554 5.7.1 fault says no\r\n");
    };
    const onLine = (line: string) => {
      if (loggedIn) return this.#command(sock, line);
      if (this.proto === "imap") {
        if (stage === 0) {
          const m = /^(\S+) LOGIN \{(\d+)\}$/.exec(line);
          if (!m) return say("* BAD fault wants a literal LOGIN\r\n");
          tag = m[1];
          literal = Number(m[2]);
          stage = 1;
          return say("+ go\r\n");
        }
        if (stage === 1) {
          const m = /^ \{(\d+)\}$/.exec(line);
          if (!m) return say(`${tag} BAD fault\r\n`);
          literal = Number(m[1]);
          stage = 2;
          return say("+ go\r\n");
        }
        stage = 0;
        return login(line === "");
      }
      if (this.proto === "pop3") {
        if (/^USER /.test(line)) return say("+OK\r\n");
        if (/^PASS /.test(line)) return login(true);
        return say("-ERR fault\r\n");
      }
      if (/^EHLO /i.test(line)) return login(true);
      say("502 5.5.2 fault\r\n");
    };
    sock.on("data", (d: Buffer) => {
      buf.push(d);
      for (let guard = 0; guard < 10_000 && buf.unread > 0; guard++) {
        if (literal > 0) {
          const n = Math.min(literal, buf.unread);
          literal -= n;
          buf.take(n);
          continue;
        }
        const lb = buf.line();
        if (!lb) return;
        const line = lb.subarray(0, lb.length - 1).toString("latin1").replace(/\r$/, "");
        onLine(line);
      }
    });
  }

  #command(sock: Socket, line: string): void {
    const m = /^(STREAM|DIE|RESET) (\d+)$/.exec(line);
    if (!m) return void sock.write("BAD fault: unknown\r\n");
    const total = Number(m[2]);
    const die = m[1] === "DIE";
    const reset = m[1] === "RESET";
    let off = 0;
    let block = 0;
    const pump = () => {
      while (off < total && !sock.destroyed) {
        const b = streamBlock(block++);
        const n = Math.min(b.length, total - off);
        off += n;
        const more = sock.write(n === b.length ? b : b.subarray(0, n), () => (this.written += n));
        if (!more) return void sock.once("drain", pump);
      }
      if (sock.destroyed) return;
      if (reset) {
        sock.write(new Uint8Array(0), () => sock.resetAndDestroy());
        return;
      }
      if (die) {
        // Everything written so far must reach the client; then the backend "dies".
        sock.end(() => sock.destroy());
        return;
      }
      sock.write("\r\nDONE\r\n", () => this.streamsDone++);
    };
    pump();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
