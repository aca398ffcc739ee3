// The protection metrics (README "Metrics"): auth cache lookups, lockouts,
// lockout refusals marked "limited", limit_conn refusals by zone, the shared
// store's up gauge, and how the master combines them. The registry is the
// process's own, so each test reads differences, not absolute values.

import { test } from "node:test";
import assert from "node:assert/strict";
import { AuthCache } from "../../lib/protect/cache.ts";
import { LoginLimits } from "../../lib/protect/limits.ts";
import { protectAuthService } from "../../lib/protect/guard.ts";
import { LimitConn } from "../../lib/protect/limit_conn.ts";
import type { LimitConnConfig } from "../../lib/config/limit_conn_directives.ts";
import { LocalStore } from "../../lib/store/local.ts";
import type { AuthRequest, AuthResult, AuthService } from "../../lib/auth/types.ts";
import type { Timers } from "../../lib/proxy/timers.ts";
import { registry, sampleSharedStore, watchSharedStore } from "../../lib/metrics/mail_metrics.ts";
import { type FamilySnapshot, mergeSnapshots } from "../../lib/metrics/registry.ts";

function value(name: string, ...labels: string[]): number {
  const f = registry.snapshot().find((x) => x.name === name);
  assert.ok(f, `family ${name}`);
  const s = f.series.find((x) => x.labels.join(",") === labels.join(","));
  return s?.value ?? 0;
}

function req(user: string, pass: string): AuthRequest {
  return {
    protocol: "imap",
    creds: { method: "plain", user, pass, salt: null },
    attempt: 1,
    clientIp: "192.0.2.9",
    clientHost: null,
    proxyProtocol: null,
    tls: null,
    verifyClient: "off",
    passClientCert: false,
  };
}

const inner: AuthService = {
  authenticate: (r: AuthRequest): Promise<AuthResult> =>
    Promise.resolve(
      r.creds.pass === "right"
        ? { kind: "ok", addr: "127.0.0.1", port: 143, user: r.creds.user, pass: null, backendName: "b" }
        : { kind: "refused", message: "Bad pass", waitSec: 0, errorCode: null },
    ),
};

function guarded(o: { ttl: number; neg: number; ip?: number; user?: number }) {
  const store = new LocalStore();
  const cache = new AuthCache({
    ttlMs: o.ttl,
    negativeTtlMs: o.neg,
    scope: "metrics-test",
    secret: new Uint8Array(32).fill(3),
    store,
  });
  const limits = new LoginLimits({
    ip: o.ip ? { count: o.ip, windowMs: 60_000 } : null,
    user: o.user ? { count: o.user, windowMs: 60_000 } : null,
    store,
    warn: () => {},
  });
  return protectAuthService(inner, cache, limits);
}

const cacheCounts = () =>
  ["hit", "negative_hit", "miss"].map((r) => value("mailgate_auth_cache_lookups", r));

test("auth cache lookups are counted as hit, negative_hit and miss", async () => {
  const before = cacheCounts();
  const svc = guarded({ ttl: 60_000, neg: 60_000 });
  await svc.authenticate(req("alice", "right")); // miss, stored
  await svc.authenticate(req("alice", "right")); // hit
  await svc.authenticate(req("alice", "wrong")); // miss, refusal stored
  await svc.authenticate(req("alice", "wrong")); // negative hit
  const after = cacheCounts();
  assert.deepEqual(after.map((v, i) => v - before[i]), [1, 1, 2]);
});

test("a disabled cache counts no lookups", async () => {
  const before = cacheCounts();
  await guarded({ ttl: 0, neg: 0 }).authenticate(req("bob", "right"));
  assert.deepEqual(cacheCounts(), before);
});

test("one lockout counted per lockout started; refusals by it are marked limited", async () => {
  const ip0 = value("mailgate_auth_lockouts", "ip");
  const user0 = value("mailgate_auth_lockouts", "user");
  const svc = guarded({ ttl: 0, neg: 0, ip: 3 });
  const results: AuthResult[] = [];
  for (let i = 0; i < 5; i++) results.push(await svc.authenticate(req(`u${i}`, "wrong")));
  assert.equal(value("mailgate_auth_lockouts", "ip") - ip0, 1);
  assert.equal(value("mailgate_auth_lockouts", "user") - user0, 0);
  // the auth service's own refusals are not "limited"; the lockout's are
  const limited = results.map((r) => r.kind === "refused" && r.limited === true);
  assert.deepEqual(limited, [false, false, false, true, true]);

  const svcUser = guarded({ ttl: 0, neg: 0, user: 2 });
  for (let i = 0; i < 3; i++) await svcUser.authenticate(req("carol", "wrong"));
  assert.equal(value("mailgate_auth_lockouts", "user") - user0, 1);
});

test("limit_conn refusals are counted by zone; dry-run ones are not", async () => {
  const timers: Timers = { set: () => 0, clear: () => {} };
  const config = (dryRun: boolean): LimitConnConfig => ({
    limits: [{
      zone: { name: "mz", text: "$remote_user", key: { kind: "remote_user" }, loc: { file: "t", line: 1 } },
      conn: 1,
    }],
    dryRun,
    logLevel: "warn",
  });
  const v = { remoteAddr: "192.0.2.1", remoteUser: "dave", authHeaders: null };
  const before = value("mailgate_limit_conn_refused", "mz");
  const lc = new LimitConn({ config: config(false), store: new LocalStore(), timers });
  assert.equal((await lc.acquire(v, () => {})).ok, true);
  assert.equal((await lc.acquire(v, () => {})).ok, false);
  assert.equal(value("mailgate_limit_conn_refused", "mz") - before, 1);
  const dry = new LimitConn({ config: config(true), store: new LocalStore(), timers });
  await dry.acquire(v, () => {});
  assert.equal((await dry.acquire(v, () => {})).ok, true);
  assert.equal(value("mailgate_limit_conn_refused", "mz") - before, 1);
});

test("mailgate_shared_store_up follows the store's state, absent without shared_store", () => {
  const up = () => registry.snapshot().find((f) => f.name === "mailgate_shared_store_up")!.series;
  watchSharedStore(() => null);
  sampleSharedStore();
  assert.equal(up().length, 0);
  let state = "shared";
  watchSharedStore(() => ({ state }));
  sampleSharedStore();
  assert.equal(up()[0].value, 1);
  state = "local";
  sampleSharedStore();
  assert.equal(up()[0].value, 0);
  watchSharedStore(() => null); // a reload dropped shared_store: 0, not a stale 1
  state = "shared";
  sampleSharedStore();
  assert.equal(up()[0].value, 0);
});

test("the master takes the minimum of the up gauge and sums the protection counters", () => {
  const worker = (up: number, hits: number): FamilySnapshot[] => [
    {
      name: "mailgate_shared_store_up",
      help: "",
      type: "gauge",
      labelNames: [],
      merge: "min",
      series: [{ labels: [], value: up, created: 1 }],
    },
    {
      name: "mailgate_auth_cache_lookups",
      help: "",
      type: "counter",
      labelNames: ["result"],
      series: [{ labels: ["hit"], value: hits, created: 1 }],
    },
  ];
  // the master's own snapshot has no up series (it holds no store)
  const master: FamilySnapshot[] = [{ ...worker(0, 0)[0], series: [] }];
  const all = mergeSnapshots([master, worker(1, 2), worker(1, 3)]);
  assert.equal(all[0].series[0].value, 1);
  assert.equal(all[1].series[0].value, 5);
  const oneDown = mergeSnapshots([master, worker(1, 2), worker(0, 3)]);
  assert.equal(oneDown[0].series[0].value, 0);
  // through JSON, as the workers' reports travel
  const viaJson = mergeSnapshots([JSON.parse(JSON.stringify(worker(1, 0))), worker(0, 0)]);
  assert.equal(viaJson[0].series[0].value, 0);
});
