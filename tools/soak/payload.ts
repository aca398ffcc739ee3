// The payload of a seed: 4 KiB blocks of xorshift bytes stamped with the
// block number, so bytes that are lost, truncated, reordered or belong to
// another session (crossed) never match; and the check that compares
// arriving bytes with it as they come.

import { Buffer } from "node:buffer";

export const BLOCK = 4096;

/** The payload of one seed: 4 KiB blocks of xorshift bytes, each stamped with its number. */
export class Payload {
  readonly #base = Buffer.alloc(BLOCK);
  constructor(readonly seed: number, readonly length: number) {
    let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
    for (let i = 0; i < BLOCK; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#base[i] = x & 0xff;
    }
  }

  /** Block k (the last one may be short); a fresh buffer. */
  block(k: number): Buffer {
    const n = Math.min(BLOCK, this.length - k * BLOCK);
    const b = Buffer.from(this.#base.subarray(0, n));
    if (n >= 4) b.writeUInt32BE(k ^ this.seed, 0);
    return b;
  }

  get blocks(): number {
    return Math.ceil(this.length / BLOCK);
  }
}

/** Compares arriving bytes with a payload. */
export class PayloadCheck {
  received = 0;
  ok = true;
  #k = -1;
  #cur: Buffer = Buffer.alloc(0);
  constructor(readonly payload: Payload) {}

  push(data: Uint8Array): void {
    let off = 0;
    while (off < data.length && this.ok) {
      if (this.received >= this.payload.length) {
        this.ok = false;
        return;
      }
      const k = Math.floor(this.received / BLOCK);
      if (k !== this.#k) {
        this.#k = k;
        this.#cur = this.payload.block(k);
      }
      const at = this.received % BLOCK;
      const n = Math.min(this.#cur.length - at, data.length - off);
      if (Buffer.compare(this.#cur.subarray(at, at + n), data.subarray(off, off + n)) !== 0) this.ok = false;
      off += n;
      this.received += n;
    }
  }

  get complete(): boolean {
    return this.ok && this.received === this.payload.length;
  }
}
