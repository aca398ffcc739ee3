// Both ends' socket I/O: a small line/byte reader with step timeouts, and
// writes with backpressure (the payload raw, or as SMTP DATA hex lines).

import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import type { Payload } from "./payload.ts";

/** Longest protocol line either side accepts. */
const MAX_LINE = 8192;
/** One step of a session (a reply, a payload) must complete within this. */
export const STEP_TIMEOUT_MS = 120_000;
/** SMTP DATA carries the payload as hex lines of this many bytes. */
const HEX_LINE_BYTES = 38;

export class Closed extends Error {}
export class Timeout extends Error {}

/** Lines and counted bytes from a socket, with a deadline per call. */
export class Reader {
  #chunks: Buffer[] = [];
  #len = 0;
  #wake: (() => void) | null = null;
  #closed = false;

  constructor(readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.#chunks.push(d);
      this.#len += d.length;
      this.#notify();
    });
    sock.on("close", () => {
      this.#closed = true;
      this.#notify();
    });
    sock.on("error", () => {});
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async #more(deadline: number, what: string): Promise<void> {
    if (this.#closed) throw new Closed(`closed by peer, waiting for ${what}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Timeout(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, left);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** The next line without its CRLF / LF (latin1). */
  async line(what = "a line", ms = STEP_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      let acc = 0;
      for (const c of this.#chunks) {
        const i = c.indexOf(10);
        if (i >= 0) {
          const b = this.#take(acc + i + 1);
          const end = b.length >= 2 && b[b.length - 2] === 13 ? b.length - 2 : b.length - 1;
          return b.toString("latin1", 0, end);
        }
        acc += c.length;
        if (acc > MAX_LINE) throw new Error("line too long");
      }
      await this.#more(deadline, what);
    }
  }

  /** Exactly n bytes, handed to sink piece by piece as they arrive. */
  async bytes(n: number, sink: (b: Buffer) => void, ms = STEP_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (n > 0) {
      if (this.#chunks.length === 0) {
        await this.#more(deadline, `${n} more payload bytes`);
        continue;
      }
      const c = this.#chunks[0];
      const k = Math.min(n, c.length);
      sink(c.subarray(0, k));
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
      this.#len -= k;
      n -= k;
    }
  }

  #take(n: number): Buffer {
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0];
      if (c.length <= left) {
        parts.push(c);
        this.#chunks.shift();
        left -= c.length;
      } else {
        parts.push(c.subarray(0, left));
        this.#chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#len -= n;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }
}

/** Writes with backpressure. */
export function send(sock: Socket, data: string | Uint8Array): Promise<void> {
  if (sock.write(typeof data === "string" ? Buffer.from(data, "latin1") : data)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      sock.off("drain", done);
      sock.off("close", done);
      resolve();
    };
    sock.on("drain", done);
    sock.on("close", done);
  });
}

export async function sendPayload(sock: Socket, p: Payload): Promise<void> {
  for (let k = 0; k < p.blocks && !sock.destroyed; k++) await send(sock, p.block(k));
}

/** The payload as SMTP DATA: hex lines (never a leading "."), then the end line. */
export async function sendHexPayload(sock: Socket, p: Payload): Promise<void> {
  for (let k = 0; k < p.blocks && !sock.destroyed; k++) {
    const b = p.block(k);
    let text = "";
    for (let i = 0; i < b.length; i += HEX_LINE_BYTES) text += b.toString("hex", i, Math.min(b.length, i + HEX_LINE_BYTES)) + "\r\n";
    await send(sock, text);
  }
  await send(sock, ".\r\n");
}
