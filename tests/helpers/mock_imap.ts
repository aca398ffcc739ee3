// A mock IMAP backend: greets, accepts `tag LOGIN {n}` literal logins the
// way mailgate sends them, then answers a few commands so tests can check
// the relay byte for byte:
//   tag NOOP              -> tag OK noop
//   tag LOGOUT            -> * BYE / tag OK logout, close
//   tag BLOB <n>          -> * BLOB {n} CRLF <n pattern bytes> CRLF tag OK blob
//   tag UPLOAD {n}        -> (+ go) reads n bytes -> tag OK <n> <sha256 hex>
//   tag WHOAMI            -> tag OK <user>
// Every connection's raw input is recorded.

import { createServer, type Server, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { ByteLog } from "./byte_log.ts";

export interface MockImapOptions {
  greeting?: string;
  /** user -> password; a user not listed is refused. Empty map = accept anyone. */
  users?: Record<string, string>;
  /** Untagged lines (without CRLF) sent before the tagged LOGIN OK. */
  untagged?: string[];
  closeAfterGreeting?: boolean;
  noGreeting?: boolean;
  /** Delay before each reply during login, ms. */
  slowMs?: number;
  loginReply?: (tag: string) => string;
}

export function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Length of a complete PROXY v1/v2 header at the start of b, else 0. */
export function proxyHeaderLength(b: Buffer): number {
  if (b.length >= 16 && b.subarray(0, 12).equals(V2_SIG)) return 16 + b.readUInt16BE(14);
  if (b.subarray(0, 6).toString("latin1") === "PROXY ") {
    const i = b.indexOf("\r\n");
    return i < 0 ? 0 : i + 2;
  }
  return 0;
}

export interface BackendConn {
  sock: Socket;
  /** All bytes received on this connection (a view). */
  readonly raw: Buffer;
  user: string | null;
  pass: string | null;
  /** Lines seen (latin1, without line end). */
  commands: string[];
  /** A PROXY protocol header (v1 or v2) that came first, raw. */
  proxy: Buffer | null;
}

export class MockImap {
  readonly server: Server;
  readonly conns: BackendConn[] = [];
  port = 0;
  opts: MockImapOptions;

  constructor(opts: MockImapOptions) {
    this.opts = opts;
    this.server = createServer((sock) => this.#onConn(sock));
  }

  static async start(opts: MockImapOptions = {}): Promise<MockImap> {
    const m = new MockImap(opts);
    await new Promise<void>((r) => m.server.listen(0, "127.0.0.1", () => r()));
    m.port = (m.server.address() as { port: number }).port;
    return m;
  }

  #onConn(sock: Socket) {
    const o = this.opts;
    // One log holds the raw input and, past its read cursor, what is still to parse.
    const buf = new ByteLog();
    const c: BackendConn = {
      sock,
      get raw() {
        return buf.all;
      },
      user: null,
      pass: null,
      commands: [],
      proxy: null,
    };
    this.conns.push(c);
    sock.on("error", () => {});
    if (o.noGreeting) return;
    sock.write(o.greeting ?? "* OK mock IMAP ready\r\n");
    if (o.closeAfterGreeting) {
      sock.end();
      return;
    }
    let literal: { n: number; then: (b: Buffer) => void } | null = null;
    let loggedIn = false;
    const reply = (s: string) => {
      if (o.slowMs && !loggedIn) setTimeout(() => sock.write(s), o.slowMs);
      else sock.write(s);
    };
    let login: { tag: string; stage: number; user?: string } | null = null;
    const onLine = (line: string) => {
      c.commands.push(line);
      if (login) {
        // "<user bytes> {p}" already consumed by literal handling
        return;
      }
      const m = /^(\S+) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return reply("* BAD parse\r\n");
      const [, tag, cmd0, rest] = m;
      const cmd = cmd0.toUpperCase();
      if (cmd === "LOGIN" && !loggedIn) {
        const lm = /^\{(\d+)\}$/.exec(rest ?? "");
        if (!lm) return reply(`${tag} BAD mock wants literals\r\n`);
        login = { tag, stage: 0 };
        reply("+ go ahead\r\n");
        literal = {
          n: Number(lm[1]),
          then: (u) => {
            login!.user = u.toString("latin1");
            // expect " {p}\r\n"
            pendingAfterUser = true;
          },
        };
        return;
      }
      if (!loggedIn) return reply(`${tag} BAD not logged in\r\n`);
      if (cmd === "NOOP") return reply(`${tag} OK noop\r\n`);
      if (cmd === "LOGOUT") {
        sock.write(`* BYE\r\n${tag} OK logout\r\n`);
        sock.end();
        return;
      }
      if (cmd === "WHOAMI") return reply(`${tag} OK ${c.user}\r\n`);
      if (cmd === "BLOB") {
        const n = Number(rest);
        sock.write(`* BLOB {${n}}\r\n`);
        const p = pattern(n, n);
        let off = 0;
        const pump = () => {
          while (off < p.length) {
            const chunk = p.subarray(off, off + 65536);
            off += chunk.length;
            if (!sock.write(chunk)) return void sock.once("drain", pump);
          }
          sock.write(`\r\n${tag} OK blob\r\n`);
        };
        pump();
        return;
      }
      if (cmd === "UPLOAD") {
        const lm = /^\{(\d+)\+?\}$/.exec(rest ?? "");
        if (!lm) return reply(`${tag} BAD\r\n`);
        if (!rest!.includes("+")) reply("+ go\r\n");
        const h = createHash("sha256");
        let got = 0;
        const n = Number(lm[1]);
        streamLiteral = {
          left: n,
          feed: (b) => {
            h.update(b);
            got += b.length;
          },
          done: () => {
            skipCrlf = true;
            reply(`${tag} OK ${got} ${h.digest("hex")}\r\n`);
          },
        };
        return;
      }
      reply(`${tag} BAD unknown\r\n`);
    };
    let pendingAfterUser = false;
    let skipCrlf = false;
    let streamLiteral: { left: number; feed: (b: Buffer) => void; done: () => void } | null = null;
    let first = true;
    sock.on("data", (d: Buffer) => {
      buf.push(d);
      if (first) {
        // A PROXY header arrives in the proxy's first write: keep it aside.
        first = false;
        const n = proxyHeaderLength(buf.peek());
        if (n > 0) c.proxy = Buffer.from(buf.take(n));
      }
      for (let guard = 0; guard < 100000; guard++) {
        if (streamLiteral) {
          const take = Math.min(streamLiteral.left, buf.unread);
          if (take > 0) {
            streamLiteral.feed(buf.take(take));
            streamLiteral.left -= take;
          }
          if (streamLiteral.left > 0) return;
          const s = streamLiteral;
          streamLiteral = null;
          s.done();
          continue;
        }
        if (literal) {
          if (buf.unread < literal.n) return;
          const lit = buf.take(literal.n);
          const l = literal;
          literal = null;
          l.then(Buffer.from(lit));
          continue;
        }
        const lb = buf.line();
        if (!lb) return;
        let line = lb.subarray(0, lb.length - 1).toString("latin1");
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (skipCrlf && line === "") {
          skipCrlf = false;
          continue;
        }
        skipCrlf = false;
        if (pendingAfterUser && login) {
          pendingAfterUser = false;
          const pm = /^ \{(\d+)\}$/.exec(line);
          if (!pm) {
            reply(`${login.tag} BAD mock wants a password literal\r\n`);
            login = null;
            continue;
          }
          reply("+ go ahead\r\n");
          const lg = login;
          literal = {
            n: Number(pm[1]),
            then: (p) => {
              c.pass = p.toString("latin1");
              c.user = lg.user!;
              awaitingPassCrlf = lg.tag;
            },
          };
          continue;
        }
        if (awaitingPassCrlf !== null && login) {
          const tag = awaitingPassCrlf;
          awaitingPassCrlf = null;
          login = null;
          const users = o.users ?? {};
          const okUser = Object.keys(users).length === 0 || users[c.user!] === c.pass;
          if (line !== "") {
            reply(`${tag} BAD junk after password\r\n`);
            continue;
          }
          if (!okUser) {
            reply(o.loginReply ? o.loginReply(tag) : `${tag} NO [AUTHENTICATIONFAILED] mock says no\r\n`);
            continue;
          }
          loggedIn = true;
          for (const u of o.untagged ?? []) sock.write(u + "\r\n");
          sock.write(o.loginReply ? o.loginReply(tag) : `${tag} OK mock login ok\r\n`);
          continue;
        }
        onLine(line);
      }
    });
    let awaitingPassCrlf: string | null = null;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.sock.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
