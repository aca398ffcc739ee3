// The process-local store: what a process uses without `shared_store`, and
// for each call Redis does not answer in time. Bounded (least recently used
// entries go first, so a flood of keys from a brute-force run cannot grow
// it) and expiring by timestamps checked on access: no timer per key.

import { BoundedMap } from "../core/bounded_map.ts";
import type { SharedStore } from "./types.ts";

/** Default bound on keys per process. */
export const LOCAL_STORE_MAX = 100_000;

interface Entry {
  value: string;
  /** Clock time at which the entry is gone; Infinity = never. */
  expires: number;
}

export class LocalStore implements SharedStore {
  readonly state = "local" as const;
  readonly #map: BoundedMap<string, Entry>;
  readonly #now: () => number;

  constructor(max = LOCAL_STORE_MAX, now: () => number = Date.now) {
    this.#map = new BoundedMap(max);
    this.#now = now;
  }

  get size(): number {
    return this.#map.size;
  }

  #live(key: string): Entry | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= this.#now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e;
  }

  incrSync(key: string, ttlMs: number): number {
    const e = this.#live(key);
    if (e === undefined) {
      this.#map.set(key, { value: "1", expires: this.#now() + ttlMs });
      return 1;
    }
    const n = (parseInt(e.value, 10) || 0) + 1;
    e.value = String(n);
    return n;
  }

  decrSync(key: string): number {
    const e = this.#live(key);
    if (e === undefined) return 0;
    const n = (parseInt(e.value, 10) || 0) - 1;
    if (n <= 0) {
      this.#map.delete(key);
      return 0;
    }
    e.value = String(n);
    return n;
  }

  getSync(key: string): string | null {
    return this.#live(key)?.value ?? null;
  }

  setSync(key: string, value: string, ttlMs: number): void {
    this.#map.set(key, { value, expires: this.#now() + ttlMs });
  }

  setIfAbsentSync(key: string, value: string, ttlMs?: number): string {
    const e = this.#live(key);
    if (e !== undefined) return e.value;
    this.#map.set(key, { value, expires: ttlMs === undefined ? Infinity : this.#now() + ttlMs });
    return value;
  }

  expireSync(key: string, ttlMs: number): boolean {
    const e = this.#live(key);
    if (e === undefined) return false;
    e.expires = this.#now() + ttlMs;
    return true;
  }

  incr(key: string, ttlMs: number): Promise<number> {
    return Promise.resolve(this.incrSync(key, ttlMs));
  }
  decr(key: string): Promise<number> {
    return Promise.resolve(this.decrSync(key));
  }
  get(key: string): Promise<string | null> {
    return Promise.resolve(this.getSync(key));
  }
  set(key: string, value: string, ttlMs: number): Promise<void> {
    this.setSync(key, value, ttlMs);
    return Promise.resolve();
  }
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<string> {
    return Promise.resolve(this.setIfAbsentSync(key, value, ttlMs));
  }
  expire(key: string, ttlMs: number): Promise<boolean> {
    return Promise.resolve(this.expireSync(key, ttlMs));
  }
  del(key: string): Promise<void> {
    this.#map.delete(key);
    return Promise.resolve();
  }
  close(): void {}
}
