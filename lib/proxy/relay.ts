// The transparent relay between a client and its backend after login.
// Bytes are copied unchanged both ways with backpressure and no buffering of
// our own: a chunk read from one side is handed to the other side's write();
// when that returns false the source is paused until the destination drains.
// There is no half-close: when one side ends (EOF, close or error), what was
// read from it is flushed to the other side with end(), the ended side is
// destroyed, and the session is over once both connections have closed.

import type { Conn } from "../runtime/types.ts";

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
  const stats: RelayStats = { up: 0, down: 0 };
  let lastActivity = Date.now();
  let reason: RelayEndReason | null = null;
  let clientClosed = false;
  let backendClosed = false;
  let done = false;
  /** backend.write() returned false: client is paused until backend drains. */
  let backendBlocked = false;
  /** client.write() returned false: backend is paused until client drains. */
  let clientBlocked = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const finish = () => {
    if (done || !clientClosed || !backendClosed) return;
    done = true;
    clearTimeout(timer);
    opts.onEnd(reason ?? "error", { up: stats.up, down: stats.down });
  };

  /** First cause wins. `from` flushes what was read from it to the other side. */
  const shutdown = (r: RelayEndReason, from: "client" | "backend" | null) => {
    if (reason !== null) return;
    reason = r;
    if (from === "client") {
      client.destroy();
      backend.end();
    } else if (from === "backend") {
      backend.destroy();
      client.end();
    } else {
      client.destroy();
      backend.destroy();
    }
  };

  client.attach({
    data(chunk) {
      stats.up += chunk.length;
      lastActivity = Date.now();
      if (!backend.write(chunk) && !backendBlocked) {
        backendBlocked = true;
        client.pause();
      }
    },
    drain() {
      lastActivity = Date.now();
      if (clientBlocked) {
        clientBlocked = false;
        if (reason === null) backend.resume();
      }
    },
    end() {
      shutdown("client", "client");
    },
    close(err) {
      clientClosed = true;
      shutdown(err ? "error" : "client", "client");
      finish();
    },
  });

  backend.attach({
    data(chunk) {
      stats.down += chunk.length;
      lastActivity = Date.now();
      if (!client.write(chunk) && !clientBlocked) {
        clientBlocked = true;
        backend.pause();
      }
    },
    drain() {
      lastActivity = Date.now();
      if (backendBlocked) {
        backendBlocked = false;
        if (reason === null) client.resume();
      }
    },
    end() {
      shutdown("backend", "backend");
    },
    close(err) {
      backendClosed = true;
      shutdown(err ? "error" : "backend", "backend");
      finish();
    },
  });

  // Whatever the caller left queued decides who may read first.
  if (backend.write(PROBE)) client.resume();
  else {
    backendBlocked = true;
    client.pause();
  }
  if (client.write(PROBE)) backend.resume();
  else {
    clientBlocked = true;
    backend.pause();
  }

  // One timer for the whole session, never re-armed per chunk: when it
  // fires it either ends the session or sleeps for the time still left.
  // It also bounds the final flush after one side ended.
  const check = () => {
    if (done) return;
    const idle = Date.now() - lastActivity;
    if (idle >= opts.timeoutMs) {
      if (reason === null) reason = "timeout";
      client.destroy();
      backend.destroy();
      return;
    }
    timer = setTimeout(check, Math.min(opts.timeoutMs - idle, MAX_TIMER_MS));
  };
  timer = setTimeout(check, Math.min(opts.timeoutMs, MAX_TIMER_MS));

  return {
    stop() {
      if (done) return;
      if (reason === null) reason = "stopped";
      client.destroy();
      backend.destroy();
    },
  };
}
