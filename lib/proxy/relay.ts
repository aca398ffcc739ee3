// The transparent relay between a client and its backend after login.
// Bytes are copied unchanged both ways with backpressure and no buffering of
// our own: a chunk read from one side is handed to the other side's write();
// when that returns false the source is paused until the destination drains.
// There is no half-close: when one side ends (EOF, close or error), what was
// read from it is flushed to the other side with end(), the ended side is
// destroyed, and the session is over once both connections have closed.

import type { Conn, ConnEvents } from "../runtime/types.ts";

/** Why the session ended: who ended it, inactivity, an error, or stop(). */
export type RelayEndReason = "client" | "backend" | "timeout" | "error" | "stopped";

export interface RelayStats {
  /** Bytes client -> backend. */
  up: number;
  /** Bytes backend -> client. */
  down: number;
}

export interface RelayOptions {
  /** proxy_timeout: inactivity (in either direction) that ends the session. */
  timeoutMs: number;
  /** Called exactly once, when both connections have closed. */
  onEnd(reason: RelayEndReason, stats: RelayStats): void;
}

/** setTimeout's largest delay; longer timeouts re-arm in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A zero-length write queues nothing and returns false exactly when the
 * connection's queue is still above its high-water mark; a drain() follows
 * then, as for any write that returned false. relay() uses it to learn
 * whether the caller's last write (pipelined client input, the backend's
 * login reply) left a connection blocked.
 */
const PROBE = new Uint8Array(0);

/**
 * Relay between `client` and `backend` until one side ends, an error, or
 * `timeoutMs` without activity. The caller writes any bytes that must go
 * first (pipelined client input to the backend, the backend's final login
 * reply to the client) before calling relay(); a connection whose queue is
 * still above its high-water mark keeps the other side paused until it
 * drains. Both connections must still be open. stop() closes both now.
 */
export function relay(client: Conn, backend: Conn, opts: RelayOptions): { stop(): void } {
  const r = new Relay(client, backend, opts);
  r.start();
  return { stop: () => r.stop() };
}

/**
 * One relayed session. A class with two small event objects rather than a
 * dozen closures: an idle proxied session keeps all of this alive, and
 * mailgate holds thousands of them.
 */
class Relay {
  readonly stats: RelayStats = { up: 0, down: 0 };
  lastActivity = Date.now();
  reason: RelayEndReason | null = null;
  clientClosed = false;
  backendClosed = false;
  done = false;
  /** backend.write() returned false: client is paused until backend drains. */
  backendBlocked = false;
  /** client.write() returned false: backend is paused until client drains. */
  clientBlocked = false;
  timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly client: Conn, readonly backend: Conn, readonly opts: RelayOptions) {}

  start(): void {
    const { client, backend } = this;
    client.attach(new ClientSide(this));
    backend.attach(new BackendSide(this));

    // Whatever the caller left queued decides who may read first.
    if (backend.write(PROBE)) client.resume();
    else {
      this.backendBlocked = true;
      client.pause();
    }
    if (client.write(PROBE)) backend.resume();
    else {
      this.clientBlocked = true;
      backend.pause();
    }

    // One timer for the whole session, never re-armed per chunk: when it
    // fires it either ends the session or sleeps for the time still left.
    // It also bounds the final flush after one side ended.
    this.timer = setTimeout(checkIdle, Math.min(this.opts.timeoutMs, MAX_TIMER_MS), this);
  }

  fromClient(chunk: Uint8Array): void {
    this.stats.up += chunk.length;
    this.lastActivity = Date.now();
    if (!this.backend.write(chunk) && !this.backendBlocked) {
      this.backendBlocked = true;
      this.client.pause();
    }
  }

  fromBackend(chunk: Uint8Array): void {
    this.stats.down += chunk.length;
    this.lastActivity = Date.now();
    if (!this.client.write(chunk) && !this.clientBlocked) {
      this.clientBlocked = true;
      this.backend.pause();
    }
  }

  /** client drained: the backend may be read again. */
  clientDrained(): void {
    this.lastActivity = Date.now();
    if (this.clientBlocked) {
      this.clientBlocked = false;
      if (this.reason === null) this.backend.resume();
    }
  }

  /** backend drained: the client may be read again. */
  backendDrained(): void {
    this.lastActivity = Date.now();
    if (this.backendBlocked) {
      this.backendBlocked = false;
      if (this.reason === null) this.client.resume();
    }
  }

  /** First cause wins. `from` flushes what was read from it to the other side. */
  shutdown(r: RelayEndReason, from: "client" | "backend" | null): void {
    if (this.reason !== null) return;
    this.reason = r;
    if (from === "client") {
      this.client.destroy();
      this.backend.end();
    } else if (from === "backend") {
      this.backend.destroy();
      this.client.end();
    } else {
      this.client.destroy();
      this.backend.destroy();
    }
  }

  finish(): void {
    if (this.done || !this.clientClosed || !this.backendClosed) return;
    this.done = true;
    clearTimeout(this.timer);
    this.opts.onEnd(this.reason ?? "error", { up: this.stats.up, down: this.stats.down });
  }

  check(): void {
    if (this.done) return;
    const idle = Date.now() - this.lastActivity;
    if (idle >= this.opts.timeoutMs) {
      if (this.reason === null) this.reason = "timeout";
      this.client.destroy();
      this.backend.destroy();
      return;
    }
    this.timer = setTimeout(checkIdle, Math.min(this.opts.timeoutMs - idle, MAX_TIMER_MS), this);
  }

  stop(): void {
    if (this.done) return;
    if (this.reason === null) this.reason = "stopped";
    this.client.destroy();
    this.backend.destroy();
  }
}

/** The idle timer's callback (the relay comes as its argument: no closure per session). */
function checkIdle(r: Relay): void {
  r.check();
}

class ClientSide implements ConnEvents {
  constructor(readonly r: Relay) {}
  data(chunk: Uint8Array): void {
    this.r.fromClient(chunk);
  }
  drain(): void {
    this.r.clientDrained();
  }
  end(): void {
    this.r.shutdown("client", "client");
  }
  close(err?: Error): void {
    this.r.clientClosed = true;
    this.r.shutdown(err ? "error" : "client", "client");
    this.r.finish();
  }
}

class BackendSide implements ConnEvents {
  constructor(readonly r: Relay) {}
  data(chunk: Uint8Array): void {
    this.r.fromBackend(chunk);
  }
  drain(): void {
    this.r.backendDrained();
  }
  end(): void {
    this.r.shutdown("backend", "backend");
  }
  close(err?: Error): void {
    this.r.backendClosed = true;
    this.r.shutdown(err ? "error" : "backend", "backend");
    this.r.finish();
  }
}
