// A bounded push buffer for protocol input (client commands, backend
// replies). Bytes are appended at the tail and consumed from the head;
// consumed bytes are discarded (the live region is moved to the front when
// the tail runs out of room), so a long pipelined session never needs more
// than one command plus one read chunk of memory.
//
// Parsers index the live region through view(); offsets relative to the
// head stay valid across push() (which may move or grow the storage), so a
// resumable parser keeps plain numbers between pushes, never views.

/** Starting storage; it grows by doubling as commands need. */
const INITIAL_CAPACITY = 512;

/**
 * How far beyond a protocol's own command cap the held input may grow.
 * Drivers pause reading as soon as input arrives while a machine is busy, so
 * the only excess over the cap is that chunk and one read in flight; Bun's
 * socket layer can deliver up to 512 KiB at once, so this leaves room for
 * that and refuses anything more.
 */
export const READ_CHUNK_SLACK = 1 << 20;

export class LineBuffer {
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  readonly #maxHeld: number;

  /** maxHeld: the most unconsumed bytes this buffer will ever hold. */
  constructor(maxHeld: number, initialCapacity = INITIAL_CAPACITY) {
    this.#maxHeld = maxHeld;
    this.#buf = new Uint8Array(Math.max(1, Math.min(initialCapacity, maxHeld)));
  }

  /** Unconsumed bytes held. */
  get length(): number {
    return this.#end - this.#start;
  }

  /**
   * Appends a copy of chunk. Returns false, appending nothing, when the
   * result would exceed maxHeld (the owner then treats the input as too long).
   */
  push(chunk: Uint8Array): boolean {
    const n = chunk.length;
    if (n === 0) return true;
    const held = this.#end - this.#start;
    if (held + n > this.#maxHeld) return false;
    if (this.#end + n > this.#buf.length) {
      if (held + n <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let size = this.#buf.length * 2;
        while (size < held + n) size *= 2;
        const next = new Uint8Array(Math.min(size, this.#maxHeld));
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = held;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += n;
    return true;
  }

  /**
   * The unconsumed bytes as a live, writable view (a parser may rewrite
   * bytes it has already scanned, e.g. to unescape in place). Valid until
   * the next push(), consume() or clear().
   */
  view(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** Drops the first n unconsumed bytes. */
  consume(n: number): void {
    this.#start += Math.min(n, this.#end - this.#start);
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /** Drops everything held. */
  clear(): void {
    this.#start = this.#end = 0;
  }

  /** A copy of everything held; the buffer is emptied. */
  take(): Uint8Array {
    const out = this.#buf.slice(this.#start, this.#end);
    this.clear();
    return out;
  }

  /** Offset (relative to the head) of the first `byte` at or after `from`, or -1. */
  indexOf(byte: number, from = 0): number {
    return this.#buf.subarray(this.#start, this.#end).indexOf(byte, from);
  }
}
