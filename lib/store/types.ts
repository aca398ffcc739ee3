// The shared store: the state that N mailgate instances (and the worker
// processes of one) must see as one — auth cache entries, failed-login
// windows, connection counts. Backed by Redis when `shared_store` is set
// (redis.ts, shared.ts), by a bounded process-local map otherwise or while
// Redis is unreachable (local.ts).
//
// The contract the features built on it rely on: no call ever rejects and
// none waits longer than `shared_store_timeout`; on a timeout or any Redis
// fault that one call is answered by the process-local store instead. A
// login is never held up by Redis, at the price of per-process counts while
// it is down.

export type StoreState = "shared" | "local";

export interface SharedStore {
  /** "shared" while Redis answers, "local" otherwise (or without shared_store). */
  readonly state: StoreState;
  /**
   * Adds one to the counter at `key` (created at 0) and returns the new
   * value. A counter created by this call expires `ttlMs` later; a running
   * one keeps its expiry (a fixed window, as a failed-login limit wants).
   * Atomic across instances (one Lua script on Redis).
   */
  incr(key: string, ttlMs: number): Promise<number>;
  /**
   * Subtracts one and returns the new value, never below 0: at 0 the key
   * is deleted, so a count that lost its increments (Redis flushed or
   * restarted) restarts instead of going negative.
   */
  decr(key: string): Promise<number>;
  /** The value at `key`, or null when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Stores `value`; it expires `ttlMs` later. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Stores `value` unless the key exists, and returns the value now stored:
   * ours, or the one another instance set first. `ttlMs` undefined = no expiry.
   */
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<string>;
  /** Sets a new expiry on an existing key; false when the key is absent. */
  expire(key: string, ttlMs: number): Promise<boolean>;
  del(key: string): Promise<void>;
  /** Closes the Redis connection and stops reconnecting. Idempotent. */
  close(): void;
}

/** Where the store's messages go (the error log); never given a password. */
export type StoreLog = (level: "error" | "warn" | "notice" | "info", message: string) => void;
