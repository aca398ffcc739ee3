// A node:stream Duplex over the raw byte side of a connection, so node:tls
// can run TLS on a socket whose bytes the connection itself reads (a
// STARTTLS upgrade, a PROXY header before the ClientHello).
// The Duplex owns no socket and reads nothing itself: the connection's one
// data path pushes ciphertext into it (so bytes that were already read when
// TLS started reach the TLS layer, not the app), and its writes go to the
// connection's socket.
// Built from options rather than as a subclass, so that node:stream is
// loaded only when a connection starts TLS (builtins.ts).

import type { Duplex } from "node:stream";
import { nodeStream } from "../builtins.ts";

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

export type RawDuplex = Duplex;

export function rawDuplex(raw: RawSide): RawDuplex {
  // No decoding or object mode: Uint8Array chunks in, Buffers out.
  return new (nodeStream().Duplex)({
    allowHalfOpen: true,
    decodeStrings: true,
    read() {
      raw.wantRead();
    },
    write(chunk: Uint8Array, _enc: string, cb: (err?: Error | null) => void) {
      raw.write(chunk, cb);
    },
    final(cb: (err?: Error | null) => void) {
      raw.finish();
      cb();
    },
    destroy(err: Error | null, cb: (err?: Error | null) => void) {
      raw.destroy(err);
      cb(err);
    },
  });
}
