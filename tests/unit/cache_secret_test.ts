// The auth cache's shared secret re-agreed after Redis outages, flushes and
// answers the local fallback gave (lib/protect/cache.ts #resolveSecret).
// "Redis" here is one LocalStore shared by the fake stores; each fake also
// has its own local fallback, answering while its state is "local".

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { AuthCache, RECHECK_MS, SHARED_SECRET_KEY } from "../../lib/protect/cache.ts";
import { LocalStore } from "../../lib/store/local.ts";
import type { AuthRequest, AuthResult } from "../../lib/auth/types.ts";
import type { SharedStore, StoreState } from "../../lib/store/types.ts";

/** A SharedStore over `redis` while shared, over its own local map otherwise. */
class FakeStore implements SharedStore {
  state: StoreState;
  readonly local = new LocalStore();
  /** Set: the next setIfAbsent is answered by the local fallback (a timeout) while still "shared". */
  timeoutNext = false;
  constructor(readonly redis: LocalStore, state: StoreState) {
    this.state = state;
  }
  #s(): LocalStore {
    return this.state === "shared" ? this.redis : this.local;
  }
  incr(k: string, t: number) {
    return this.#s().incr(k, t);
  }
  decr(k: string) {
    return this.#s().decr(k);
  }
  get(k: string) {
    return this.#s().get(k);
  }
  set(k: string, v: string, t: number) {
    return this.#s().set(k, v, t);
  }
  setIfAbsent(k: string, v: string, t?: number) {
    if (this.timeoutNext) {
      this.timeoutNext = false;
      return this.local.setIfAbsent(k, v, t);
    }
    return this.#s().setIfAbsent(k, v, t);
  }
  expire(k: string, t: number) {
    return this.#s().expire(k, t);
  }
  del(k: string) {
    return this.#s().del(k);
  }
  close() {}
}

function req(user: string): AuthRequest {
  return {
    protocol: "imap",
    creds: { method: "plain", user, pass: "right", salt: null },
    attempt: 1,
    clientIp: "192.0.2.1",
    clientHost: null,
    proxyProtocol: null,
    tls: null,
    verifyClient: "off",
    passClientCert: false,
  };
}

const OK: AuthResult = {
  kind: "ok",
  addr: "127.0.0.1",
  port: 143,
  user: "u",
  pass: null,
  backendName: "b",
};

let clock = 1_000_000;
function cacheOn(store: SharedStore): AuthCache {
  return new AuthCache({
    ttlMs: 60_000,
    negativeTtlMs: 0,
    scope: "imap|t",
    secret: null,
    store,
    now: () => clock,
  });
}

/** Another instance's secret (this process's own is one per process, so it is written by hand). */
const OTHER = "ab".repeat(32);

describe("auth cache secret re-agreement", () => {
  test("an instance started while Redis was down agrees once Redis is back", async () => {
    const redis = new LocalStore();
    await redis.setIfAbsent(SHARED_SECRET_KEY, OTHER);
    const a = new FakeStore(redis, "shared");
    const b = new FakeStore(redis, "local");
    const ca = cacheOn(a), cb = cacheOn(b);
    await cb.store(req("down"), OK); // made locally under this process's own secret
    b.state = "shared";
    await ca.store(req("alice"), OK);
    assert.equal((await cb.lookup(req("alice")))?.kind, "ok", "B found A's entry");
    await cb.store(req("bob"), OK);
    assert.equal((await ca.lookup(req("bob")))?.kind, "ok", "A found B's entry");
  });

  test("an ask answered by the local fallback (timeout) is asked again", async () => {
    const redis = new LocalStore();
    await redis.setIfAbsent(SHARED_SECRET_KEY, OTHER);
    const a = new FakeStore(redis, "shared");
    const b = new FakeStore(redis, "shared");
    await b.local.setIfAbsent(SHARED_SECRET_KEY, "cd".repeat(32)); // what B's fallback holds
    b.timeoutNext = true;
    const ca = cacheOn(a), cb = cacheOn(b);
    await ca.store(req("alice"), OK);
    assert.equal(await cb.lookup(req("alice")), null, "B's first ask fell back: a miss");
    clock += RECHECK_MS;
    await cb.lookup(req("alice")); // the re-ask runs beside this lookup
    assert.equal((await cb.lookup(req("alice")))?.kind, "ok", "B agreed after the re-ask");
  });

  test("Redis restarted empty: the secret in use is offered again, a new instance joins it", async () => {
    const redis = new LocalStore();
    await redis.setIfAbsent(SHARED_SECRET_KEY, OTHER);
    const a = new FakeStore(redis, "shared");
    const ca = cacheOn(a);
    await ca.store(req("alice"), OK);
    // Outage seen by A, Redis comes back empty.
    a.state = "local";
    await ca.lookup(req("alice"));
    await redis.del(SHARED_SECRET_KEY);
    a.state = "shared";
    await ca.lookup(req("alice")); // re-ask after the outage: offers OTHER again
    await ca.store(req("carol"), OK);
    const c = cacheOn(new FakeStore(redis, "shared")); // an instance started now
    assert.equal(await redis.get(SHARED_SECRET_KEY), OTHER);
    assert.equal((await c.lookup(req("carol")))?.kind, "ok", "the new instance finds A's entry");
  });

  test("Redis flushed and another instance set a new secret: adopted at the next re-ask", async () => {
    const redis = new LocalStore();
    await redis.setIfAbsent(SHARED_SECRET_KEY, OTHER);
    const a = new FakeStore(redis, "shared");
    const ca = cacheOn(a);
    await ca.store(req("alice"), OK);
    await redis.del(SHARED_SECRET_KEY);
    await redis.setIfAbsent(SHARED_SECRET_KEY, "ef".repeat(32)); // set first by another instance
    const cb = cacheOn(new FakeStore(redis, "shared"));
    await cb.store(req("dave"), OK);
    clock += RECHECK_MS;
    await ca.lookup(req("dave"));
    assert.equal((await ca.lookup(req("dave")))?.kind, "ok", "A adopted the new secret");
  });
});
