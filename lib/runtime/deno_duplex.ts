// A node:stream Duplex over the raw byte layer of a native Deno connection,
// so node:tls can run TLS on a socket accepted with Deno.listen (Deno's own
// TLS API has no server STARTTLS, client certificates or SNI).
// The Duplex owns no socket and reads nothing itself: the connection's single
// read loop pushes ciphertext into it (so the bytes of a read that was
// already in flight when TLS started reach the TLS layer, not the app), and
// its writes go to the connection's write queue.

import { Duplex } from "node:stream";

export interface RawSide {
  /** The TLS layer wants more ciphertext (push() returned false earlier). */
  wantRead(): void;
  /** Queue ciphertext; cb once written to the socket. The chunk is not reused by the caller. */
  write(chunk: Uint8Array, cb: (err?: Error | null) => void): void;
  /** The TLS layer has finished writing (after close_notify): flush, then close. */
  finish(): void;
  /** The TLS layer was destroyed. */
  destroy(err: Error | null): void;
}

export class RawDuplex extends Duplex {
  #raw: RawSide;

  constructor(raw: RawSide) {
    // No decoding or object mode: Uint8Array chunks in, Buffers out.
    super({ allowHalfOpen: true, decodeStrings: true });
    this.#raw = raw;
  }

  override _read(): void {
    this.#raw.wantRead();
  }

  override _write(chunk: Uint8Array, _enc: string, cb: (err?: Error | null) => void): void {
    this.#raw.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#raw.finish();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#raw.destroy(err);
    cb(err);
  }
}
