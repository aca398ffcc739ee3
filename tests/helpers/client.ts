// A line-oriented test client over node:net with bounded waits. It keeps
// every byte received so tests can check exact bytes on the wire.

import { connect, type Socket } from "node:net";
import { Buffer } from "node:buffer";

export class TestClient {
  readonly sock: Socket;
  #buf = Buffer.alloc(0);
  #closed = false;
  #waiters: (() => void)[] = [];
  /** Everything received, in order. */
  received = Buffer.alloc(0);

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on("data", (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.received = Buffer.concat([this.received, d]);
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
      const i = this.#buf.indexOf(10);
      if (i >= 0) {
        const l = this.#buf.subarray(0, i + 1).toString("latin1");
        this.#buf = this.#buf.subarray(i + 1);
        return l;
      }
      if (this.#closed) throw new Error(`EOF while waiting for a line (pending ${JSON.stringify(this.#buf.toString("latin1"))})`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.#wait(left))) {
        throw new Error(`timeout waiting for a line (pending ${JSON.stringify(this.#buf.toString("latin1"))})`);
      }
    }
  }

  /** Exactly n bytes. */
  async bytes(n: number, ms = 10000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.#buf.length < n) {
      if (this.#closed) throw new Error(`EOF after ${this.#buf.length} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.#wait(left))) throw new Error(`timeout after ${this.#buf.length} of ${n} bytes`);
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return Buffer.from(out);
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
    return this.#buf.toString("latin1");
  }

  close(): void {
    this.sock.destroy();
  }
}
