// A mock auth_http server over raw node:net, so tests see the exact request
// bytes and can answer with anything (including malformed responses).

import { createServer, type Server, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { ByteLog } from "./byte_log.ts";

export interface AuthRequestSeen {
  raw: string;
  requestLine: string;
  /** Header lines in order, as [name, value] exactly as sent. */
  headers: [string, string][];
  get(name: string): string | undefined;
}

/** What to answer: a full raw response, or null to never answer (hang). */
export type AuthHandler = (req: AuthRequestSeen) => string | null | Promise<string | null>;

export function ok(server: string, port: number, extra: Record<string, string> = {}): string {
  let s = `HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: ${server}\r\nAuth-Port: ${port}\r\n`;
  for (const [k, v] of Object.entries(extra)) s += `${k}: ${v}\r\n`;
  return s + "\r\n";
}

export function refuse(message: string, wait?: number, extra: Record<string, string> = {}): string {
  let s = `HTTP/1.0 200 OK\r\nAuth-Status: ${message}\r\n`;
  if (wait !== undefined) s += `Auth-Wait: ${wait}\r\n`;
  for (const [k, v] of Object.entries(extra)) s += `${k}: ${v}\r\n`;
  return s + "\r\n";
}

export class MockAuth {
  readonly requests: AuthRequestSeen[] = [];
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  port = 0;
  /** Connections accepted so far. */
  connections = 0;
  handler: AuthHandler;

  /**
   * keepAlive: answer every request on a connection and leave it open (for
   * auth_http_keepalive; the handler's answer must then frame itself, e.g.
   * HTTP/1.1 with Content-Length: 0). Default: one request, then close.
   */
  constructor(handler: AuthHandler, readonly keepAlive = false) {
    this.handler = handler;
    this.server = createServer((sock) => this.#onConn(sock));
  }

  static async start(handler: AuthHandler, keepAlive = false): Promise<MockAuth> {
    const m = new MockAuth(handler, keepAlive);
    await new Promise<void>((r) => m.server.listen(0, "127.0.0.1", () => r()));
    m.port = (m.server.address() as { port: number }).port;
    return m;
  }

  #onConn(sock: Socket) {
    this.connections++;
    this.sockets.add(sock);
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => {});
    const buf = new ByteLog(false);
    let done = false;
    sock.on("data", async (d: Buffer) => {
      if (done) return;
      buf.push(d);
      const end = buf.peek().indexOf("\r\n\r\n");
      if (end < 0) return;
      done = !this.keepAlive;
      const raw = buf.take(end + 4).toString("latin1");
      const lines = raw.split("\r\n").slice(0, -2);
      const headers: [string, string][] = lines.slice(1).map((l) => {
        const i = l.indexOf(": ");
        return i < 0 ? [l.replace(/:$/, ""), ""] : [l.slice(0, i), l.slice(i + 2)];
      });
      const req: AuthRequestSeen = {
        raw,
        requestLine: lines[0],
        headers,
        get: (name) => {
          let v: string | undefined;
          for (const [k, val] of headers) if (k.toLowerCase() === name.toLowerCase()) v = val;
          return v;
        },
      };
      this.requests.push(req);
      const answer = await this.handler(req);
      if (answer === null) return; // hang
      if (this.keepAlive) sock.write(Buffer.from(answer, "latin1"));
      else sock.end(Buffer.from(answer, "latin1"));
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
