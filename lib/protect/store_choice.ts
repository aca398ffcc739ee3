// Which store the protection state lives in, decided per call: the
// process's shared store when `shared_store` is configured (so every
// instance sees one cache and one set of counters), else the server's own
// bounded local store (auth_cache_size entries). Per call, because a reload
// may add or drop `shared_store` after the auth services were built.

import { LocalStore } from "../store/local.ts";
import type { SharedStore } from "../store/types.ts";

export function chooseStore(shared: (() => SharedStore) | undefined, own: LocalStore): SharedStore {
  const pick = (): SharedStore => {
    const s = shared?.();
    return s !== undefined && !(s instanceof LocalStore) ? s : own;
  };
  return {
    get state() {
      return pick().state;
    },
    incr: (k, ttl) => pick().incr(k, ttl),
    decr: (k) => pick().decr(k),
    get: (k) => pick().get(k),
    set: (k, v, ttl) => pick().set(k, v, ttl),
    setIfAbsent: (k, v, ttl) => pick().setIfAbsent(k, v, ttl),
    expire: (k, ttl) => pick().expire(k, ttl),
    del: (k) => pick().del(k),
    close: () => {}, // neither is ours to close
  };
}
