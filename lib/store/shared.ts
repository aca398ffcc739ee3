// The SharedStore used with `shared_store`: each call goes to Redis while
// the client is connected and to the process-local store otherwise, or when
// Redis does not answer within `shared_store_timeout`, or answers with an
// error. Calls never reject. Counters are Lua scripts (EVAL), so the
// increment and its expiry are one atomic step in one round trip.

import type { Conn, ConnectSpec } from "../runtime/types.ts";
import type { Timers } from "../proxy/timers.ts";
import { LocalStore } from "./local.ts";
import { RedisClient } from "./redis.ts";
import type { RedisTarget } from "./redis_url.ts";
import type { Reply } from "./resp.ts";
import type { SharedStore, StoreLog, StoreState } from "./types.ts";

export const DEFAULT_STORE_TIMEOUT_MS = 100;

// INCR, and an expiry only on a key that has none (just created, or made by
// a DECR of a flushed key): a fixed window from the first increment.
const INCR_SCRIPT = "local v = redis.call('INCR', KEYS[1]) " +
  "if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return v";
// Never below 0: after FLUSHALL a decrement of a lost count deletes instead.
const DECR_SCRIPT = "local v = redis.call('DECR', KEYS[1]) " +
  "if v <= 0 then redis.call('DEL', KEYS[1]) return 0 end return v";
// SET NX, and the winner's value either way (the first instance's secret).
const SETNX_SCRIPT = "local ok " +
  "if ARGV[2] == '' then ok = redis.call('SET', KEYS[1], ARGV[1], 'NX') " +
  "else ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) end " +
  "if ok then return ARGV[1] end return redis.call('GET', KEYS[1])";

export interface RedisStoreOptions {
  target: RedisTarget;
  connect: (spec: ConnectSpec) => Promise<Conn>;
  log: StoreLog;
  timeoutMs?: number;
  timers?: Timers;
  local?: LocalStore;
  setupTimeoutMs?: number;
  stallMs?: number;
}

export class RedisStore implements SharedStore {
  readonly target: RedisTarget;
  readonly client: RedisClient;
  readonly local: LocalStore;
  readonly #timeout: number;

  constructor(o: RedisStoreOptions) {
    this.target = o.target;
    this.#timeout = o.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    this.local = o.local ?? new LocalStore();
    this.client = new RedisClient({
      target: o.target,
      connect: o.connect,
      log: o.log,
      timers: o.timers,
      setupTimeoutMs: o.setupTimeoutMs,
      stallMs: o.stallMs ?? Math.max(2000, 10 * this.#timeout),
    });
    this.client.start();
  }

  get state(): StoreState {
    return this.client.ready ? "shared" : "local";
  }

  /** The reply, or `fallback()`'s answer when Redis cannot give one in time. */
  async #call<T>(
    args: (string | number)[],
    read: (r: Reply) => T | typeof BAD,
    fallback: () => T,
  ): Promise<T> {
    if (!this.client.ready) return fallback();
    try {
      const v = read(await this.client.command(args, this.#timeout));
      return v === BAD ? fallback() : v;
    } catch {
      return fallback();
    }
  }

  incr(key: string, ttlMs: number): Promise<number> {
    return this.#call(
      ["EVAL", INCR_SCRIPT, 1, key, Math.max(1, Math.ceil(ttlMs))],
      int,
      () => this.local.incrSync(key, ttlMs),
    );
  }
  decr(key: string): Promise<number> {
    return this.#call(["EVAL", DECR_SCRIPT, 1, key], int, () => this.local.decrSync(key));
  }
  get(key: string): Promise<string | null> {
    return this.#call(["GET", key], strOrNull, () => this.local.getSync(key));
  }
  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.#call(
      ["SET", key, value, "PX", Math.max(1, Math.ceil(ttlMs))],
      (r) => r === "OK" ? undefined : BAD,
      () => this.local.setSync(key, value, ttlMs),
    );
  }
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<string> {
    const px = ttlMs === undefined ? "" : Math.max(1, Math.ceil(ttlMs));
    return this.#call(
      ["EVAL", SETNX_SCRIPT, 1, key, value, px],
      (r) => typeof r === "string" ? r : BAD,
      () => this.local.setIfAbsentSync(key, value, ttlMs),
    );
  }
  expire(key: string, ttlMs: number): Promise<boolean> {
    return this.#call(
      ["PEXPIRE", key, Math.max(1, Math.ceil(ttlMs))],
      (r) => typeof r === "number" ? r === 1 : BAD,
      () => this.local.expireSync(key, ttlMs),
    );
  }
  del(key: string): Promise<void> {
    return this.#call(["DEL", key], (r) => typeof r === "number" ? undefined : BAD, () => {
      void this.local.del(key);
    });
  }
  close(): void {
    this.client.close();
  }
}

/** A reply of the wrong type (not Redis, or a flushed script's key of another type): answer locally. */
const BAD: unique symbol = Symbol("unexpected reply");

function int(r: Reply): number | typeof BAD {
  return typeof r === "number" ? r : BAD;
}
function strOrNull(r: Reply): string | null | typeof BAD {
  return r === null || typeof r === "string" ? r : BAD;
}
