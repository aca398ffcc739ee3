// A small IMAP backend for mailgate's backend-TLS extension: implicit TLS,
// or plain with STARTTLS (optionally misbehaving: refusing STARTTLS, or
// injecting a forged line right after its OK). It records whether each
// login happened inside TLS and which SNI the client sent.

import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer, TLSSocket } from "node:tls";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { ByteLog } from "./byte_log.ts";

export interface MockTlsImapOptions {
  mode: "implicit" | "starttls";
  fixtures: string;
  /** STARTTLS answered NO. */
  refuseStarttls?: boolean;
  /** Bytes sent in plaintext right after the STARTTLS OK (must be discarded by the proxy). */
  inject?: string;
}

export interface TlsLogin {
  user: string;
  pass: string;
  tls: boolean;
  servername: string | null;
  commands: string[];
}

export class MockTlsImap {
  readonly logins: TlsLogin[] = [];
  readonly commands: string[][] = [];
  port = 0;
  #server: Server | TlsServer;
  #socks = new Set<Duplex>();

  private constructor(readonly opts: MockTlsImapOptions) {
    const key = readFileSync(join(opts.fixtures, "server.key"));
    const cert = readFileSync(join(opts.fixtures, "server.pem"));
    if (opts.mode === "implicit") {
      this.#server = createTlsServer({ key, cert }, (s) => this.#serve(s, true, s.servername || null));
    } else {
      this.#server = createServer((s) => this.#serve(s, false, null, { key, cert }));
    }
  }

  static async start(opts: MockTlsImapOptions): Promise<MockTlsImap> {
    const m = new MockTlsImap(opts);
    await new Promise<void>((r) => m.#server.listen(0, "127.0.0.1", () => r()));
    m.port = (m.#server.address() as { port: number }).port;
    return m;
  }

  #serve(sock: Duplex, tls: boolean, servername: string | null, creds?: { key: Buffer; cert: Buffer }) {
    this.#socks.add(sock);
    sock.on("close", () => this.#socks.delete(sock));
    sock.on("error", () => {});
    const cmds: string[] = [];
    this.commands.push(cmds);
    sock.write("* OK mock TLS IMAP ready\r\n");
    let buf = new ByteLog(false);
    // LOGIN {u} -> "+", u bytes (stage user) -> " {p}" line (stage userEnd) -> "+",
    // p bytes (stage pass) -> "" line (stage passEnd) -> tagged reply.
    let login: { tag: string; user?: string; need: number; stage: "user" | "userEnd" | "pass" | "passEnd" } | null =
      null;
    const onData = (d: Buffer) => {
      buf.push(d);
      for (let guard = 0; guard < 10000; guard++) {
        if (login && (login.stage === "user" || login.stage === "pass")) {
          if (buf.unread < login.need) return;
          const lit = buf.take(login.need).toString("latin1");
          if (login.stage === "user") {
            login.user = lit;
            login.stage = "userEnd";
          } else {
            this.logins.push({ user: login.user!, pass: lit, tls, servername, commands: cmds });
            login.stage = "passEnd";
          }
          continue;
        }
        const lb = buf.line();
        if (!lb) return;
        const line = lb.subarray(0, lb.length - 1).toString("latin1").replace(/\r$/, "");
        if (login && login.stage === "userEnd") {
          const m = /^ \{(\d+)\}$/.exec(line);
          login.need = Number(m?.[1] ?? 0);
          login.stage = "pass";
          sock.write("+ go\r\n");
          continue;
        }
        if (login && login.stage === "passEnd") {
          sock.write(`${login.tag} OK logged in${tls ? " over TLS" : ""}\r\n`);
          login = null;
          continue;
        }
        cmds.push(line);
        const [tag, cmd0, arg] = line.split(" ");
        const cmd = (cmd0 ?? "").toUpperCase();
        if (cmd === "STARTTLS" && creds && !tls) {
          if (this.opts.refuseStarttls) {
            sock.write(`${tag} NO not today\r\n`);
            continue;
          }
          // Stop plaintext reads first: a fast client's ClientHello must go to TLS.
          sock.removeListener("data", onData);
          sock.pause();
          const t = new TLSSocket(sock as Socket, { isServer: true, key: creds.key, cert: creds.cert });
          sock.write(`${tag} OK begin TLS\r\n` + (this.opts.inject ?? ""));
          t.on("error", () => {});
          t.once("secure", () => {
            tls = true;
            servername = (t as unknown as { servername?: string }).servername || null;
          });
          buf = new ByteLog(false);
          t.on("data", onData);
          sock = t;
          this.#socks.add(t);
          return;
        }
        if (cmd === "CAPABILITY") {
          sock.write(`* CAPABILITY IMAP4rev1${tls ? "" : " STARTTLS"}\r\n${tag} OK done\r\n`);
        } else if (cmd === "LOGIN") {
          const m = /^\{(\d+)\}$/.exec(arg ?? "");
          login = { tag, need: Number(m?.[1] ?? 0), stage: "user" };
          sock.write("+ go\r\n");
        } else if (cmd === "WHOAMI") sock.write(`${tag} OK ${tls ? "tls" : "plain"} ${this.logins.at(-1)?.user}\r\n`);
        else sock.write(`${tag} BAD unknown\r\n`);
      }
    };
    sock.on("data", onData);
  }

  async stop(): Promise<void> {
    for (const s of this.#socks) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
