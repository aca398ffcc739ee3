// A mock POP3 backend: greets, takes USER/PASS, then answers
//   NOOP -> +OK noop; QUIT -> +OK bye (close); WHOAMI -> +OK <user>
//   BLOB <n> -> +OK <n> CRLF <n pattern bytes> CRLF . CRLF
//   UPLOAD <n> -> reads n raw bytes -> +OK <n> <sha256 hex>
// Every connection's raw input is recorded.

import { createServer, type Server, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { pattern } from "./mock_imap.ts";
import { ByteLog } from "./byte_log.ts";

export interface MockPop3Options {
  greeting?: string;
  /** user -> password; empty = accept anyone. */
  users?: Record<string, string>;
  passReply?: string;
}

export interface Pop3Conn {
  sock: Socket;
  /** All bytes received on this connection (a view). */
  readonly raw: Buffer;
  user: string | null;
  pass: string | null;
  lines: string[];
}

export class MockPop3 {
  readonly server: Server;
  readonly conns: Pop3Conn[] = [];
  port = 0;

  constructor(readonly opts: MockPop3Options) {
    this.server = createServer((s) => this.#onConn(s));
  }

  static async start(opts: MockPop3Options = {}): Promise<MockPop3> {
    const m = new MockPop3(opts);
    await new Promise<void>((r) => m.server.listen(0, "127.0.0.1", () => r()));
    m.port = (m.server.address() as { port: number }).port;
    return m;
  }

  #onConn(sock: Socket) {
    // One log holds the raw input and, past its read cursor, what is still to parse.
    const buf = new ByteLog();
    const c: Pop3Conn = {
      sock,
      get raw() {
        return buf.all;
      },
      user: null,
      pass: null,
      lines: [],
    };
    this.conns.push(c);
    sock.on("error", () => {});
    sock.write(this.opts.greeting ?? "+OK mock POP3 ready\r\n");
    let loggedIn = false;
    let upload: { left: number; h: ReturnType<typeof createHash>; n: number } | null = null;
    sock.on("data", (d: Buffer) => {
      buf.push(d);
      for (let guard = 0; guard < 100000; guard++) {
        if (upload) {
          const take = Math.min(upload.left, buf.unread);
          upload.h.update(buf.take(take));
          upload.left -= take;
          if (upload.left > 0) return;
          sock.write(`+OK ${upload.n} ${upload.h.digest("hex")}\r\n`);
          upload = null;
          continue;
        }
        const lb = buf.line();
        if (!lb) return;
        const line = lb.subarray(0, lb.length - 1).toString("latin1").replace(/\r$/, "");
        c.lines.push(line);
        const [cmd0, ...args] = line.split(" ");
        const cmd = cmd0.toUpperCase();
        const arg = line.slice(cmd0.length + 1);
        if (!loggedIn) {
          if (cmd === "USER") {
            c.user = arg;
            sock.write("+OK user\r\n");
          } else if (cmd === "PASS") {
            c.pass = arg;
            const users = this.opts.users ?? {};
            if (Object.keys(users).length && users[c.user ?? ""] !== arg) sock.write("-ERR [AUTH] mock says no\r\n");
            else {
              loggedIn = true;
              sock.write(this.opts.passReply ?? "+OK mock logged in\r\n");
            }
          } else sock.write("-ERR not logged in\r\n");
          continue;
        }
        if (cmd === "NOOP") sock.write("+OK noop\r\n");
        else if (cmd === "WHOAMI") sock.write(`+OK ${c.user}\r\n`);
        else if (cmd === "QUIT") {
          sock.write("+OK bye\r\n");
          sock.end();
          return;
        } else if (cmd === "BLOB") {
          const n = Number(args[0]);
          sock.write(`+OK ${n}\r\n`);
          const p = pattern(n, n);
          let off = 0;
          const pump = () => {
            while (off < p.length) {
              const chunk = p.subarray(off, off + 65536);
              off += chunk.length;
              if (!sock.write(chunk)) return void sock.once("drain", pump);
            }
            sock.write("\r\n.\r\n");
          };
          pump();
        } else if (cmd === "UPLOAD") {
          upload = { left: Number(args[0]), h: createHash("sha256"), n: Number(args[0]) };
        } else sock.write("-ERR unknown\r\n");
      }
    });
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.sock.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
