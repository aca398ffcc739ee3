// A mock SMTP backend that records what it receives:
//   EHLO -> 250-mock / [250-XCLIENT ADDR LOGIN NAME HELO] / 250 AUTH PLAIN
//   HELO -> 250 mock; XCLIENT -> 220 xclient ok; AUTH PLAIN <b64> -> 235/535
//   MAIL/RCPT -> 250 if the line has '@', else 500; RSET/NOOP -> 250; QUIT -> 221, close
//   DATA -> 354; the raw message up to CRLF.CRLF is kept unchanged (no
//   un-stuffing) and answered `250 2.0.0 queued <len> <sha256 hex>`
//   XPROXY -> 211 <the PROXY line received first, if any>

import { createServer, type Server, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { ByteLog } from "./byte_log.ts";

export interface MockSmtpOptions {
  /** Advertise XCLIENT in the EHLO reply (default true). */
  xclient?: boolean;
  /** user -> password for AUTH PLAIN; empty: accept anyone. */
  users?: Record<string, string>;
  greeting?: string;
  /** Advertise AUTH PLAIN (default true). */
  auth?: boolean;
}

export interface SmtpConn {
  sock: Socket;
  lines: string[];
  /** Raw DATA payloads (up to, not including, the CRLF.CRLF terminator). */
  messages: Buffer[];
  proxyLine: string | null;
}

const END = Buffer.from("\r\n.\r\n");

export class MockSmtp {
  readonly server: Server;
  readonly conns: SmtpConn[] = [];
  port = 0;

  constructor(readonly opts: MockSmtpOptions) {
    this.server = createServer((s) => this.#onConn(s));
  }

  static async start(opts: MockSmtpOptions = {}): Promise<MockSmtp> {
    const m = new MockSmtp(opts);
    await new Promise<void>((r) => m.server.listen(0, "127.0.0.1", () => r()));
    m.port = (m.server.address() as { port: number }).port;
    return m;
  }

  #onConn(sock: Socket) {
    const c: SmtpConn = { sock, lines: [], messages: [], proxyLine: null };
    this.conns.push(c);
    sock.on("error", () => {});
    let greeted = false;
    const greet = () => {
      if (!greeted) sock.write(this.opts.greeting ?? "220 mock ESMTP\r\n");
      greeted = true;
    };
    // Greet at once unless a PROXY header may come first; it arrives in the first packet.
    const t = setTimeout(greet, 30);
    const buf = new ByteLog(false);
    /** In DATA: unread bytes before this offset hold no complete CRLF.CRLF (each byte is searched about once). */
    let dataScan = -1;
    sock.on("data", (d: Buffer) => {
      buf.push(d);
      for (let guard = 0; guard < 100000; guard++) {
        if (dataScan >= 0) {
          // The message stays unread in the log until its terminator arrives.
          const i = buf.peek().indexOf(END, Math.max(0, dataScan - (END.length - 1)));
          if (i < 0) {
            dataScan = buf.unread;
            return;
          }
          const msg = Buffer.from(buf.take(i));
          buf.take(END.length);
          c.messages.push(msg);
          dataScan = -1;
          sock.write(`250 2.0.0 queued ${msg.length} ${createHash("sha256").update(msg).digest("hex")}\r\n`);
          continue;
        }
        const lb = buf.line();
        if (!lb) return;
        const line = lb.subarray(0, lb.length - 1).toString("latin1").replace(/\r$/, "");
        if (!greeted && line.startsWith("PROXY ")) {
          c.proxyLine = line;
          clearTimeout(t);
          greet();
          continue;
        }
        c.lines.push(line);
        const cmd = line.split(" ")[0].toUpperCase();
        if (cmd === "EHLO") {
          sock.write("250-mock\r\n" + (this.opts.xclient === false ? "" : "250-XCLIENT ADDR LOGIN NAME HELO\r\n") + (this.opts.auth === false ? "250 8BITMIME\r\n" : "250 AUTH PLAIN\r\n"));
        } else if (cmd === "HELO") sock.write("250 mock\r\n");
        else if (cmd === "XCLIENT") sock.write("220 xclient ok\r\n");
        else if (cmd === "AUTH") {
          const dec = Buffer.from(line.split(" ")[2] ?? "", "base64").toString("latin1").split("\0");
          const users = this.opts.users ?? {};
          const good = Object.keys(users).length === 0 || users[dec[1]] === dec[2];
          sock.write(good ? "235 2.7.0 mock auth ok\r\n" : "535 5.7.8 mock says no\r\n");
        } else if (cmd === "MAIL" || cmd === "RCPT") {
          sock.write(line.includes("@") ? `250 2.1.0 ${cmd.toLowerCase()} ok\r\n` : "500 5.5.2 mock wants an @\r\n");
        } else if (cmd === "RSET" || cmd === "NOOP") sock.write("250 2.0.0 ok\r\n");
        else if (cmd === "QUIT") {
          sock.write("221 2.0.0 bye\r\n");
          sock.end();
          return;
        } else if (cmd === "DATA") {
          dataScan = 0;
          sock.write("354 go ahead\r\n");
        } else if (cmd === "XPROXY") sock.write(`211 ${c.proxyLine ?? "none"}\r\n`);
        else sock.write("502 5.5.2 mock: unknown\r\n");
      }
    });
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.sock.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
