// A line-oriented test client over node:net with bounded waits. It keeps
// every byte received so tests can check exact bytes on the wire, in one
// growable buffer (ByteLog): linear, so a multi-megabyte stream does not
// stall the test process's event loop, where the mocks also run.

import { connect, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { ByteLog } from "./byte_log.ts";

export class TestClient {
  readonly sock: Socket;
  #log = new ByteLog();
  #closed = false;
  #waiters: (() => void)[] = [];

  /** Everything received, in order (a view: do not write into it). */
  get received(): Buffer {
    return this.#log.all;
  }

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on("data", (d: Buffer) => {
      this.#log.push(d);
      this.#wake();
    });
    sock.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    sock.on("error", () => {});
  }

  static open(port: number, host = "127.0.0.1"): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new TestClient(s)));
      s.once("error", reject);
    });
  }

  static fromSocket(sock: Socket): TestClient {
    return new TestClient(sock);
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#waiters = this.#waiters.filter((f) => f !== fn);
        resolve(false);
      }, ms);
      const fn = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.#waiters.push(fn);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Uint8Array): void {
    this.sock.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  /** Next line including its CRLF/LF, as a latin1 string; throws on timeout or EOF. */
  async line(ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const l = this.#log.line();
      if (l) return l.toString("latin1");
      if (this.#closed) throw new Error(`EOF while waiting for a line (pending ${this.#shown()})`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.#wait(left))) {
        throw new Error(`timeout waiting for a line (pending ${this.#shown()})`);
      }
    }
  }

  /** Exactly n bytes. */
  async bytes(n: number, ms = 10000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.#log.unread < n) {
      if (this.#closed) throw new Error(`EOF after ${this.#log.unread} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.#wait(left))) throw new Error(`timeout after ${this.#log.unread} of ${n} bytes`);
    }
    return Buffer.from(this.#log.take(n));
  }

  /** Lines until one matches `re` (inclusive). */
  async until(re: RegExp, ms = 5000): Promise<string[]> {
    const out: string[] = [];
    const deadline = Date.now() + ms;
    for (let i = 0; i < 10000; i++) {
      const l = await this.line(Math.max(1, deadline - Date.now()));
      out.push(l);
      if (re.test(l)) return out;
    }
    throw new Error("too many lines");
  }

  /** Resolves true when the peer closes within ms (pending data is ignored). */
  async waitClose(ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.#wait(left))) return this.#closed;
    }
    return true;
  }

  /** Bytes received but not yet consumed by line()/bytes(). */
  pending(): string {
    return this.#log.peek().toString("latin1");
  }

  /** The pending bytes for an error message, capped (a stream can be megabytes). */
  #shown(): string {
    const p = this.#log.peek();
    const s = JSON.stringify(p.subarray(0, 2000).toString("latin1"));
    return p.length > 2000 ? `${s}… (${p.length} bytes)` : s;
  }

  close(): void {
    this.sock.destroy();
  }
}
