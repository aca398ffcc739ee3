// What every Conn implementation in this folder shares (net_conn.ts for
// Deno, bun.ts and its node:tls layer for Bun): the write high-water mark,
// the close() rule of the Conn contract, and error normalisation.

import type { ConnEvents } from "../types.ts";

/** write() returns false once more than this many bytes are queued. */
export const WRITE_HIGH_WATER = 64 * 1024;

/** Handlers before the first attach(). */
export const NO_EVENTS: ConnEvents = { data() {}, drain() {}, end() {}, close() {} };

export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** A failure that ends the connection: `close` it with the error, and the rejection for the caller. */
export function closedWith(e: unknown, close: (err: Error) => void): Promise<never> {
  const err = toError(e);
  close(err);
  return Promise.reject(err);
}

/**
 * A connection's close() event. It is reported once, from a microtask (so
 * destroy() never re-enters its caller), to the handlers current at that
 * time (the relay may just have taken over). Handlers attached after it
 * was reported hear it too, so a relay started on a dead connection ends
 * at once.
 */
export class CloseReport {
  #reported = false;
  #error: Error | undefined;

  /** Schedules the report; `current` gives the handlers when it runs. */
  report(err: Error | undefined, current: () => ConnEvents): void {
    this.#error = err;
    queueMicrotask(() => {
      this.#reported = true;
      try {
        current().close(err);
      } catch (e) {
        console.error("mailgate: close handler failed:", e);
      }
    });
  }

  /** For attach(): when the close was already reported, tells `events` too and returns true. */
  replay(events: ConnEvents): boolean {
    if (!this.#reported) return false;
    const err = this.#error;
    queueMicrotask(() => events.close(err));
    return true;
  }
}
