// Bytes received by a test client or mock server, kept in amortised linear
// time. Appending chunk after chunk with Buffer.concat copies everything
// received so far on every chunk: quadratic, ~165 MB copied for a 3 MiB
// stream, which stalled the test process's event loop (and every mock
// serving from it) for most of a second under load (issue 13).
//
// One growable buffer, doubled when full, with a read cursor:
//   - `all` (keepAll only): every byte received, as a view;
//   - next line / n bytes / the unread rest, consumed from the cursor.
// Bytes below the write position never change once written (growth copies
// into new memory), so every view handed out stays valid.

import { Buffer } from "node:buffer";

const MIN_CAPACITY = 64 * 1024;

export class ByteLog {
  #mem = Buffer.alloc(0);
  /** Offset of byte 0 of the stream in #mem (0 when everything is kept). */
  #base = 0;
  #len = 0;
  #read = 0;
  /** Unread bytes before this offset hold no LF (so a long line is scanned once). */
  #scanned = 0;
  /** Bytes copied so far, pushes included: stays within a small multiple of what was pushed. */
  copied = 0;

  /** keepAll: remember every byte for `all`; otherwise consumed bytes may be dropped. */
  constructor(readonly keepAll = true) {}

  push(d: Uint8Array): void {
    if (d.length === 0) return;
    const end = this.#base + this.#len;
    if (end + d.length > this.#mem.length) {
      // Grow into new memory (views of the old stay valid), dropping
      // consumed bytes when they need not be kept.
      const from = this.keepAll ? 0 : this.#read;
      const keep = this.#len - from;
      const next = Buffer.allocUnsafe(Math.max(MIN_CAPACITY, 2 * (keep + d.length)));
      this.#mem.copy(next, 0, this.#base + from, end);
      this.copied += keep;
      this.#mem = next;
      this.#base = -from;
    }
    this.#mem.set(d, this.#base + this.#len);
    this.copied += d.length;
    this.#len += d.length;
  }

  /** Bytes pushed so far. */
  get length(): number {
    return this.#len;
  }

  /** Everything received, in order (a view; keepAll only). */
  get all(): Buffer {
    if (!this.keepAll) throw new Error("ByteLog: all() needs keepAll");
    return this.#mem.subarray(0, this.#len);
  }

  /** Bytes not yet consumed. */
  get unread(): number {
    return this.#len - this.#read;
  }

  /** The unread bytes (a view), not consumed. */
  peek(): Buffer {
    return this.#mem.subarray(this.#base + this.#read, this.#base + this.#len);
  }

  /** Consumes and returns the next n unread bytes (a view); n must be <= unread. */
  take(n: number): Buffer {
    if (n > this.unread) throw new Error(`ByteLog: take(${n}) with ${this.unread} unread`);
    const out = this.#mem.subarray(this.#base + this.#read, this.#base + this.#read + n);
    this.#read += n;
    if (this.#scanned < this.#read) this.#scanned = this.#read;
    return out;
  }

  /** Consumes and returns the next line including its LF, or null when no LF is unread yet. */
  line(): Buffer | null {
    const start = this.#base + this.#read;
    const end = this.#base + this.#len;
    const i = this.#mem.subarray(0, end).indexOf(10, this.#base + this.#scanned);
    if (i < 0) {
      this.#scanned = this.#len;
      return null;
    }
    const out = this.#mem.subarray(start, i + 1);
    this.#read = i + 1 - this.#base;
    this.#scanned = this.#read;
    return out;
  }
}
