// The auth cache and the failed-login limits (README "Protection") around a
// counting auth service, over the process-local store with a fake clock.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { AuthCache, cacheable, open } from "../../lib/protect/cache.ts";
import { limitAddress, limitUser, LoginLimits } from "../../lib/protect/limits.ts";
import { DEFAULT_REFUSAL, protectAuthService } from "../../lib/protect/guard.ts";
import { LocalStore } from "../../lib/store/local.ts";
import type { AuthRequest, AuthResult, AuthService } from "../../lib/auth/types.ts";
import type { Credentials } from "../../lib/core/machine.ts";
import type { SharedStore } from "../../lib/store/types.ts";

/** The local store, recording every set() (what would reach Redis). */
function recording(inner: LocalStore): SharedStore & { sets: [string, string][] } {
  const sets: [string, string][] = [];
  return {
    sets,
    get state() {
      return inner.state;
    },
    incr: (k, t) => inner.incr(k, t),
    decr: (k) => inner.decr(k),
    get: (k) => inner.get(k),
    set: (k, v, t) => {
      sets.push([k, v]);
      return inner.set(k, v, t);
    },
    setIfAbsent: (k, v, t) => inner.setIfAbsent(k, v, t),
    expire: (k, t) => inner.expire(k, t),
    del: (k) => inner.del(k),
    close: () => inner.close(),
  };
}

function req(
  user: string,
  pass: string,
  o: Partial<AuthRequest> & { method?: Credentials["method"] } = {},
): AuthRequest {
  return {
    protocol: "imap",
    creds: { method: o.method ?? "plain", user, pass, salt: null },
    attempt: 1,
    clientIp: "192.0.2.1",
    clientHost: null,
    proxyProtocol: null,
    tls: null,
    verifyClient: "off",
    passClientCert: false,
    ...o,
  };
}

/** Accepts pass "right" (Auth-Pass replaced by "backend-secret"), refuses the rest; counts calls. */
function counting(
  refusal: AuthResult = { kind: "refused", message: "Bad pass", waitSec: 3, errorCode: null },
) {
  const svc = {
    calls: 0,
    next: null as AuthResult | null,
    authenticate(r: AuthRequest): Promise<AuthResult> {
      svc.calls++;
      if (svc.next) {
        const n = svc.next;
        svc.next = null;
        return Promise.resolve(n);
      }
      return Promise.resolve(
        r.creds.pass === "right"
          ? {
            kind: "ok",
            addr: "127.0.0.1",
            port: 143,
            user: r.creds.user,
            pass: "backend-secret",
            backendName: "b",
          }
          : refusal,
      );
    },
  };
  return svc;
}

function setup(
  o: { ttl?: number; neg?: number; ip?: number; user?: number; windowMs?: number } = {},
) {
  let now = 1_000_000;
  const clock = () => now;
  const store = recording(new LocalStore(1000, clock));
  const warns: string[] = [];
  const cache = new AuthCache({
    ttlMs: o.ttl ?? 0,
    negativeTtlMs: o.neg ?? 0,
    scope: "imap|test",
    secret: new Uint8Array(32).fill(7),
    store,
  });
  const w = o.windowMs ?? 60_000;
  const limits = new LoginLimits({
    ip: o.ip ? { count: o.ip, windowMs: w } : null,
    user: o.user ? { count: o.user, windowMs: w } : null,
    store,
    warn: (m) => warns.push(m),
  });
  const inner = counting();
  const svc: AuthService = protectAuthService(inner as AuthService, cache, limits);
  return { svc, inner, store, warns, advance: (ms: number) => (now += ms) };
}

describe("auth cache", () => {
  test("a hit skips the auth service until the TTL; other passwords, users, addresses miss", async () => {
    const t = setup({ ttl: 10_000 });
    const first = await t.svc.authenticate(req("alice", "right"));
    assert.equal(first.kind, "ok");
    assert.deepEqual(await t.svc.authenticate(req("alice", "right")), {
      kind: "ok",
      addr: "127.0.0.1",
      port: 143,
      user: "alice",
      pass: "backend-secret",
      backendName: "b",
    });
    assert.equal(t.inner.calls, 1);
    await t.svc.authenticate(req("alice", "wrong"));
    await t.svc.authenticate(req("bob", "right"));
    await t.svc.authenticate(req("alice", "right", { clientIp: "192.0.2.2" }));
    await t.svc.authenticate(req("alice", "right", { protocol: "pop3" }));
    assert.equal(t.inner.calls, 5);
    t.advance(10_001);
    await t.svc.authenticate(req("alice", "right"));
    assert.equal(t.inner.calls, 6);
  });
  test("refusals only with auth_cache_negative_ttl", async () => {
    const a = setup({ ttl: 10_000 });
    await a.svc.authenticate(req("alice", "wrong"));
    await a.svc.authenticate(req("alice", "wrong"));
    assert.equal(a.inner.calls, 2);
    const b = setup({ neg: 5_000 });
    const r1 = await b.svc.authenticate(req("alice", "wrong"));
    const r2 = await b.svc.authenticate(req("alice", "wrong"));
    assert.equal(b.inner.calls, 1);
    assert.equal(r2.kind, "refused");
    assert.equal(
      r1.kind === "refused" && r2.kind === "refused" && r2.message === r1.message &&
        r2.waitSec === 3,
      true,
    );
    await b.svc.authenticate(req("alice", "right"));
    await b.svc.authenticate(req("alice", "right"));
    assert.equal(b.inner.calls, 3, "positive answers not cached without auth_cache_ttl");
  });
  test("never cached: errors, WAIT results, temporary SMTP codes, APOP, CRAM-MD5, EXTERNAL, tokens", async () => {
    const t = setup({ ttl: 10_000, neg: 10_000 });
    for (
      const next of [
        { kind: "error", log: "x" },
        {
          kind: "ok",
          addr: "127.0.0.1",
          port: 1,
          user: "u",
          pass: "p",
          backendName: "b",
          uncacheable: true,
        },
        { kind: "refused", message: "later", waitSec: 0, errorCode: "451 4.3.0" },
      ] as AuthResult[]
    ) {
      t.inner.calls = 0;
      t.inner.next = next;
      await t.svc.authenticate(req("carol", "right"));
      await t.svc.authenticate(req("carol", "right"));
      assert.equal(t.inner.calls, 2, JSON.stringify(next));
      t.advance(20_000);
    }
    for (
      const method of ["apop", "cram-md5", "external", "xoauth2", "oauthbearer", "none"] as const
    ) {
      assert.equal(cacheable(req("u", "p", { method })), false, method);
    }
    assert.equal(cacheable(req("u", "p", { waitUser: "x" })), false);
    assert.equal(cacheable(req("u", "p")), true);
  });
  test("the store holds no readable password, and the entry opens only with the right password", async () => {
    const t = setup({ ttl: 10_000 });
    await t.svc.authenticate(req("alice", "right"));
    assert.equal(t.store.sets.length, 1);
    const [key, sealed] = t.store.sets[0];
    const dump = key + sealed + Buffer.from(sealed, "base64").toString("latin1");
    for (const secret of ["right", "backend-secret", "alice", "127.0.0.1"]) {
      assert.ok(!dump.includes(secret), `${secret} readable in the store`);
    }
    assert.match(key, /^mailgate:auth:[0-9a-f]{64}$/);
    assert.equal(open(new Uint8Array(32), sealed), null, "another key does not open it");
  });
});

describe("login limits", () => {
  test("after N failures from one address: refused without asking, same answer; warn once", async () => {
    const t = setup({ ip: 3 });
    for (let i = 0; i < 3; i++) await t.svc.authenticate(req(`u${i}`, "wrong"));
    assert.equal(t.inner.calls, 3);
    assert.equal(t.warns.length, 1);
    assert.match(t.warns[0], /3 failed logins from 192\.0\.2\.1 within 60s/);
    for (let i = 0; i < 5; i++) {
      const r = await t.svc.authenticate(req("alice", i === 4 ? "right" : "wrong"));
      assert.equal(r.kind, "refused");
      assert.deepEqual(r.kind === "refused" && [r.message, r.waitSec, r.errorCode], [
        "Bad pass",
        3,
        null,
      ]);
    }
    assert.equal(t.inner.calls, 3, "locked-out attempts never reach the auth service");
    assert.equal(t.warns.length, 1, "one warning per lockout");
    assert.ok(!t.warns[0].includes("wrong"));
    // Another address still logs in.
    assert.equal(
      (await t.svc.authenticate(req("alice", "right", { clientIp: "198.51.100.9" }))).kind,
      "ok",
    );
    t.advance(60_001);
    assert.equal((await t.svc.authenticate(req("alice", "right"))).kind, "ok");
  });
  test("user limit: case-folded; a success clears the count", async () => {
    const t = setup({ user: 2 });
    await t.svc.authenticate(req("Alice", "wrong", { clientIp: "192.0.2.1" }));
    assert.equal(
      (await t.svc.authenticate(req("alice", "right", { clientIp: "192.0.2.2" }))).kind,
      "ok",
    );
    await t.svc.authenticate(req("ALICE", "wrong", { clientIp: "192.0.2.3" }));
    assert.equal(t.warns.length, 0, "the success cleared the first failure");
    await t.svc.authenticate(req("aLiCe", "wrong", { clientIp: "192.0.2.4" }));
    assert.equal(t.warns.length, 1);
    assert.match(t.warns[0], /for user "alice"/);
    const calls = t.inner.calls;
    const r = await t.svc.authenticate(req("alice", "right", { clientIp: "192.0.2.5" }));
    assert.equal(r.kind, "refused");
    assert.equal(t.inner.calls, calls);
    assert.equal((await t.svc.authenticate(req("bob", "right"))).kind, "ok");
  });
  test("before any refusal was seen, a lockout answers as the auth table does", () => {
    assert.deepEqual(DEFAULT_REFUSAL, {
      message: "Invalid login or password",
      waitSec: 2,
      errorCode: null,
    });
  });
  test("IPv6 counted per /64, IPv4-mapped as IPv4; user names case-folded", () => {
    assert.equal(limitAddress("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(limitAddress("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
    assert.notEqual(limitAddress("2001:db8:1:3::1"), limitAddress("2001:db8:1:2::1"));
    assert.equal(limitAddress("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(limitAddress("192.0.2.7"), "192.0.2.7");
    assert.equal(limitUser("Alice@Example.COM"), "alice@example.com");
  });
  test("failures from one IPv6 /64 add up", async () => {
    const t = setup({ ip: 2 });
    await t.svc.authenticate(req("a", "wrong", { clientIp: "2001:db8::1" }));
    await t.svc.authenticate(req("a", "wrong", { clientIp: "2001:db8::2" }));
    assert.equal(t.warns.length, 1);
    assert.match(t.warns[0], /from 2001:db8::\/64/);
    const r = await t.svc.authenticate(req("b", "right", { clientIp: "2001:db8::ffff" }));
    assert.equal(r.kind, "refused");
    assert.equal(
      (await t.svc.authenticate(req("b", "right", { clientIp: "2001:db8:0:1::1" }))).kind,
      "ok",
    );
  });
});
