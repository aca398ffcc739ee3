// Reads a backend's replies during the backend login (POP3 §9, and the same
// shape for IMAP §8 and SMTP): CRLF-terminated lines, one reply at a time,
// each reply bounded by proxy_buffer bytes as in nginx
// (ngx_mail_proxy_read_response: the buffer is reset after every reply and
// "upstream sent too long response line" when it fills without a CRLF).
//
// Lines are handed out whole, so the outcome does not depend on how the
// backend's bytes are chunked. A reply may span several lines (IMAP
// untagged lines, SMTP `250-` continuations): the caller asks for lines
// until the reply is complete, then calls endReply(); the bound covers all
// lines of the reply. Every byte is scanned once.

import { bytesToBinary } from "./bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "./line_buffer.ts";

const CR = 0x0d, LF = 0x0a;

export type ReplyLine =
  /** No complete line yet; push more. */
  | { kind: "more" }
  /** data()[start, cr) is the line; its CRLF is at cr. */
  | { kind: "line"; start: number; cr: number }
  /**
   * The reply does not fit into the bound. `text` is what nginx logs: the
   * held reply bytes up to the bound, minus the last one (binary string).
   */
  | { kind: "tooLong"; text: string };

export class ReplyReader {
  readonly #limit: number;
  readonly #input: LineBuffer;
  /** Start of the next line to hand out (relative to the reply start). */
  #lineStart = 0;
  /** Where the CRLF search resumes. */
  #scan = 0;
  /** push() was refused: more than the bound plus one read chunk held. */
  #overflow = false;

  /** limit: proxy_buffer, the most bytes one reply may take. */
  constructor(limit: number) {
    this.#limit = limit;
    this.#input = new LineBuffer(limit + READ_CHUNK_SLACK);
  }

  /** Appends backend bytes. */
  push(chunk: Uint8Array): void {
    if (!this.#input.push(chunk)) this.#overflow = true;
  }

  /** The next complete line of the current reply (after the last one handed out). */
  nextLine(): ReplyLine {
    const data = this.#input.view();
    const bound = Math.min(data.length, this.#limit);
    // Bytes were lost: nothing after this point can be trusted.
    if (this.#overflow) return this.#tooLong(data, bound);
    let i = Math.max(this.#scan, this.#lineStart);
    for (; i + 1 < bound; i++) {
      if (data[i] === CR && data[i + 1] === LF) {
        const start = this.#lineStart;
        this.#lineStart = this.#scan = i + 2;
        return { kind: "line", start, cr: i };
      }
    }
    this.#scan = i; // a trailing CR is looked at again with the next byte
    return data.length >= this.#limit ? this.#tooLong(data, bound) : { kind: "more" };
  }

  #tooLong(data: Uint8Array, bound: number): ReplyLine {
    return { kind: "tooLong", text: bytesToBinary(data.subarray(0, Math.max(0, bound - 1))) };
  }

  /** The held bytes, starting at the current reply; valid until the next call. */
  data(): Uint8Array {
    return this.#input.view();
  }

  /** The current reply is complete: drops it (every line handed out so far). */
  endReply(): void {
    this.#input.consume(this.#lineStart);
    this.#lineStart = this.#scan = 0;
  }

  /** Everything held from the current reply on (a copy); the reader is emptied. */
  take(): Uint8Array {
    this.#lineStart = this.#scan = 0;
    return this.#input.take();
  }
}
