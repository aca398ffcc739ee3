// A small Redis client over the runtime adapter's connect(): what the shared
// store needs and no more. Commands are pipelined (written at once, replies
// matched in order), each with its own deadline; the connection is set up
// with AUTH / SELECT / PING before any command is let through, and comes
// back by itself with a back-off (100 ms doubling to 2 s) after any fault.
//
// Why not an npm client: ioredis and node-redis speak node:net, which only
// lib/runtime may import (tools/check_boundary.ts), and both queue commands
// while disconnected, the opposite of what a login wants (an answer from
// the local store now). Bun's built-in client has no Deno twin. RESP2 over
// the adapter is ~400 lines with the parser, works the same on both
// runtimes and in the compiled executable, and is tested against the real
// redis-server.
//
// Never queued: while not connected every command fails at once, so the
// caller falls back without waiting. Logged once per outage (error) and
// once when it ends (notice); the password is never in a message.

import type { Timers } from "../proxy/timers.ts";
import { REAL_TIMERS } from "../proxy/timers.ts";
import type { Conn, ConnectSpec } from "../runtime/types.ts";
import type { RedisTarget } from "./redis_url.ts";
import { encodeCommand, type Reply, RespError, RespParser } from "./resp.ts";
import type { StoreLog } from "./types.ts";
import { sharedStoreOutages } from "../metrics/mail_metrics.ts";

export const BACKOFF_MIN_MS = 100;
export const BACKOFF_MAX_MS = 2000;
/** Commands waiting for a reply on one connection; beyond, a command fails at once. */
export const MAX_IN_FLIGHT = 10_000;

export interface RedisClientOptions {
  target: RedisTarget;
  connect: (spec: ConnectSpec) => Promise<Conn>;
  log: StoreLog;
  timers?: Timers;
  /** Connect plus AUTH/SELECT/PING must finish within this (default 1000 ms). */
  setupTimeoutMs?: number;
  /** A connection with replies outstanding and none arriving for this long is dropped (default 2000 ms). */
  stallMs?: number;
}

/** Why a command did not get a reply; the store answers it locally instead. */
export class RedisUnavailable extends Error {}

interface Pending {
  resolve(reply: Reply): void;
  reject(error: Error): void;
  done: boolean;
  timer: unknown;
}

export class RedisClient {
  readonly #o: RedisClientOptions;
  readonly #timers: Timers;
  #conn: Conn | null = null;
  #parser = new RespParser();
  #pending: Pending[] = [];
  #ready = false;
  #closed = false;
  /** An outage has been logged and its end not yet. */
  #down = false;
  /** The first successful connection has been announced. */
  #announced = false;
  #backoff = BACKOFF_MIN_MS;
  #retry: unknown = null;
  #stall: unknown = null;
  #repliesSinceStallArm = 0;
  #closeReason: string | null = null;
  #listeners: (() => void)[] = [];

  constructor(options: RedisClientOptions) {
    this.#o = options;
    this.#timers = options.timers ?? REAL_TIMERS;
  }

  /** True while commands are sent to Redis. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Calls fn each time the client becomes ready (tests wait on it). */
  onReady(fn: () => void): void {
    this.#listeners.push(fn);
  }

  start(): void {
    void this.#open();
  }

  /**
   * Sends one command; resolves with its reply, rejects (RedisUnavailable)
   * when not connected, on timeout, on an error reply, or when the
   * connection is lost first.
   */
  command(args: readonly (string | number)[], timeoutMs: number): Promise<Reply> {
    if (!this.#ready || this.#conn === null) {
      return Promise.reject(new RedisUnavailable("not connected"));
    }
    if (this.#pending.length >= MAX_IN_FLIGHT) {
      return Promise.reject(new RedisUnavailable("too many commands in flight"));
    }
    return this.#send(this.#conn, args, timeoutMs);
  }

  #send(conn: Conn, args: readonly (string | number)[], timeoutMs: number): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const p: Pending = { resolve, reject, done: false, timer: null };
      p.timer = this.#timers.set(() => {
        if (p.done) return;
        p.done = true;
        // The reply may still come; its slot stays in the queue so later replies match.
        reject(new RedisUnavailable(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.push(p);
      this.#armStall();
      conn.write(encodeCommand(args));
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retry !== null) this.#timers.clear(this.#retry);
    this.#retry = null;
    this.#drop("client closed");
  }

  async #open(): Promise<void> {
    if (this.#closed) return;
    const { host, port, db, user, password } = this.#o.target;
    const setupMs = this.#o.setupTimeoutMs ?? 1000;
    let conn: Conn;
    try {
      conn = await this.#o.connect({ kind: "tcp", host, port, timeoutMs: setupMs });
    } catch (e) {
      this.#outage(`connect failed: ${(e as Error).message}`);
      this.#scheduleRetry();
      return;
    }
    if (this.#closed) {
      conn.destroy();
      return;
    }
    this.#conn = conn;
    this.#parser = new RespParser();
    this.#closeReason = null;
    conn.attach({
      data: (chunk) => this.#data(conn, chunk),
      drain: () => {},
      // Redis never half-closes: EOF is the end of the connection. Some adapters
      // deliver close() only after our side ends too, so end it here.
      end: () => {
        if (this.#conn !== conn) return;
        this.#closeReason ??= "connection closed by Redis";
        conn.destroy();
      },
      close: (error) => this.#closed_(conn, error),
    });
    const setup: Promise<Reply>[] = [];
    if (password !== null) {
      setup.push(
        this.#send(conn, user !== null ? ["AUTH", user, password] : ["AUTH", password], setupMs),
      );
    }
    if (db !== 0) setup.push(this.#send(conn, ["SELECT", db], setupMs));
    setup.push(this.#send(conn, ["PING"], setupMs));
    try {
      await Promise.all(setup);
    } catch (e) {
      if (this.#conn === conn) {
        this.#closeReason = `connection set-up failed: ${(e as Error).message}`;
        conn.destroy();
      }
      return;
    }
    if (this.#conn !== conn || this.#closed) return;
    this.#ready = true;
    this.#backoff = BACKOFF_MIN_MS;
    const where = `${this.#o.target.display} (db ${db})`;
    if (!this.#announced) {
      this.#announced = true;
      this.#o.log(
        "notice",
        `shared store ${where} connected${this.#down ? " after an outage" : ""}`,
      );
    } else if (this.#down) {
      this.#o.log("notice", `shared store ${where} reachable again, state is shared`);
    }
    this.#down = false;
    for (const fn of this.#listeners) fn();
  }

  #data(conn: Conn, chunk: Uint8Array): void {
    if (this.#conn !== conn) return;
    let replies: Reply[];
    try {
      replies = this.#parser.push(chunk);
    } catch (e) {
      this.#closeReason = `protocol error: ${(e as Error).message}`;
      conn.destroy();
      return;
    }
    for (const r of replies) {
      const p = this.#pending.shift();
      if (p === undefined) {
        this.#closeReason = "protocol error: reply without a command";
        conn.destroy();
        return;
      }
      this.#repliesSinceStallArm++;
      if (p.done) continue;
      p.done = true;
      this.#timers.clear(p.timer);
      if (r instanceof RespError) p.reject(new RedisUnavailable(r.message));
      else p.resolve(r);
    }
  }

  #armStall(): void {
    if (this.#stall !== null) return;
    this.#repliesSinceStallArm = 0;
    const conn = this.#conn;
    this.#stall = this.#timers.set(() => {
      this.#stall = null;
      if (this.#conn !== conn || conn === null || this.#pending.length === 0) return;
      if (this.#repliesSinceStallArm > 0) return this.#armStall();
      this.#closeReason = `no reply for ${this.#o.stallMs ?? 2000} ms`;
      conn.destroy();
    }, this.#o.stallMs ?? 2000);
  }

  #closed_(conn: Conn, error?: Error): void {
    if (this.#conn !== conn) return;
    const reason = this.#closeReason ??
      (error ? `connection lost: ${error.message}` : "connection closed by Redis");
    this.#drop(reason);
    if (this.#closed) return;
    this.#outage(reason);
    this.#scheduleRetry();
  }

  /** Forgets the connection and fails every command waiting on it. */
  #drop(reason: string): void {
    this.#ready = false;
    const conn = this.#conn;
    this.#conn = null;
    if (this.#stall !== null) this.#timers.clear(this.#stall);
    this.#stall = null;
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) {
      if (p.done) continue;
      p.done = true;
      this.#timers.clear(p.timer);
      p.reject(new RedisUnavailable(reason));
    }
    conn?.destroy();
  }

  #outage(reason: string): void {
    if (this.#down || this.#closed) return;
    this.#down = true;
    sharedStoreOutages.inc();
    this.#o.log(
      "error",
      `shared store ${this.#o.target.display} unavailable (${reason}), using process-local state until it returns`,
    );
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retry !== null) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#retry = this.#timers.set(() => {
      this.#retry = null;
      void this.#open();
    }, delay);
  }
}
