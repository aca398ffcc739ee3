// limit_conn as freenginx's ngx_mail_limit_conn_module (README "Protection"):
// the four directives (values, errors, inheritance), key evaluation, the
// refusal bytes per protocol, RESP-CODES in POP3 CAPA, and the counting:
// refusal over the limit, dry run, empty keys, release, TTL refresh.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import type { LimitConnConfig } from "../../lib/config/limit_conn_directives.ts";
import {
  authHeaderValue,
  keyValue,
  LimitConn,
  type LimitConnVars,
  tooManyConnections,
} from "../../lib/protect/limit_conn.ts";
import { LocalStore } from "../../lib/store/local.ts";
import { pop3CapaLists } from "../../lib/pop3/replies.ts";
import type { Timers } from "../../lib/proxy/timers.ts";
import { AuthCache } from "../../lib/protect/cache.ts";
import type { AuthRequest } from "../../lib/auth/types.ts";

async function servers(mailBody: string, ...bodies: string[]): Promise<ServerConfig[]> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-lc-"));
  try {
    const srv = bodies.map((b, i) =>
      `server {\nlisten 127.0.0.1:${10110 + i};\nprotocol pop3;\n${b}\n}\n`
    ).join("");
    writeFileSync(
      join(dir, "nginx.conf"),
      `events {}\nmail {\nauth_http 127.0.0.1:9000;\n${mailBody}\n${srv}}\n`,
    );
    const cfg = await loadConfig({
      file: join(dir, "nginx.conf"),
      prefix: dir,
      hostname: "h.test",
    });
    return cfg.mail!.servers;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function configError(mailBody: string, body = ""): Promise<string> {
  try {
    await servers(mailBody, body);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail("configuration accepted");
}

const ZONES =
  "limit_conn_zone $remote_user zone=users:1m; limit_conn_zone $remote_addr zone=addrs:64k;" +
  " limit_conn_zone $auth_http_x_user zone=hdr:32k;";

test("directives: values, defaults, inheritance only where a level has no limit_conn", async () => {
  const [a, b, c] = await servers(
    ZONES + " limit_conn users 2; limit_conn_log_level warn;",
    "",
    "limit_conn addrs 3; limit_conn hdr 4; limit_conn_dry_run on;",
    "limit_conn_log_level info;",
  );
  assert.deepEqual(a.limitConn!.limits.map((l) => [l.zone.name, l.conn]), [["users", 2]]);
  assert.equal(a.limitConn!.dryRun, false);
  assert.equal(a.limitConn!.logLevel, "warn");
  assert.deepEqual(b.limitConn!.limits.map((l) => [l.zone.name, l.zone.key, l.conn]), [
    ["addrs", { kind: "remote_addr" }, 3],
    ["hdr", { kind: "auth_http", header: "x_user" }, 4],
  ]);
  assert.equal(b.limitConn!.dryRun, true);
  assert.equal(c.limitConn!.logLevel, "info");
  const [none] = await servers(ZONES, "");
  assert.equal(none.limitConn, null);
  const [dflt] = await servers(ZONES, "limit_conn users 1;");
  assert.equal(dflt.limitConn!.logLevel, "error");
  assert.equal(dflt.limitConn!.dryRun, false);
});

test("directive errors, with freenginx's messages", async () => {
  assert.match(await configError("limit_conn_zone $host zone=a:1m;"), /invalid parameter "\$host"/);
  assert.match(
    await configError("limit_conn_zone $remote_user zone=a;"),
    /invalid zone size "zone=a"/,
  );
  assert.match(
    await configError("limit_conn_zone $remote_user zone=a:1k;"),
    /zone "zone=a:1k" is too small/,
  );
  assert.match(await configError("limit_conn_zone $remote_user a:1m;"), /invalid parameter "a:1m"/);
  assert.match(
    await configError(
      "limit_conn_zone $remote_user zone=a:1m; limit_conn_zone $remote_addr zone=a:1m;",
    ),
    /limit_conn_zone "a" is already bound to key "\$remote_user"/,
  );
  assert.match(
    await configError(ZONES, "limit_conn users 0;"),
    /invalid number of connections "0"/,
  );
  assert.match(
    await configError(ZONES, "limit_conn users 65536;"),
    /connection limit must be less 65536/,
  );
  assert.match(
    await configError(ZONES, "limit_conn users 1; limit_conn users 2;"),
    /"limit_conn" directive is duplicate/,
  );
  assert.match(
    await configError("", "limit_conn nowhere 1;"),
    /zero size shared memory zone "nowhere"/,
  );
  assert.match(await configError(ZONES, "limit_conn_log_level debug;"), /invalid value "debug"/);
  assert.match(
    await configError("", "limit_conn_zone $remote_user zone=a:1m;"),
    /not allowed here/,
  );
});

test("key evaluation: $remote_user, $remote_addr, $auth_http_<header> (dashes as underscores, any case)", () => {
  const vars: LimitConnVars = {
    remoteAddr: "192.0.2.7",
    remoteUser: "alice",
    authHeaders: [["Date", "x"], ["X-User", "bob"], ["x-user", "later"]],
  };
  assert.equal(keyValue({ kind: "remote_user" }, vars), "alice");
  assert.equal(keyValue({ kind: "remote_addr" }, vars), "192.0.2.7");
  assert.equal(keyValue({ kind: "auth_http", header: "x_user" }, vars), "bob");
  assert.equal(keyValue({ kind: "auth_http", header: "x_other" }, vars), "");
  assert.equal(authHeaderValue(null, "x_user"), "");
});

test("refusal bytes per protocol", () => {
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.equal(
    text(tooManyConnections("imap", "a1")),
    "a1 NO [UNAVAILABLE] Too many connections\r\n",
  );
  assert.equal(
    text(tooManyConnections("pop3", undefined)),
    "-ERR [SYS/TEMP] Too many connections\r\n",
  );
  assert.equal(text(tooManyConnections("smtp", undefined)), "454 4.7.0 Too many connections\r\n");
});

test("POP3 CAPA gains RESP-CODES only where limit_conn applies, once", async () => {
  const [withLimit, without, already] = await servers(
    ZONES,
    "limit_conn users 1;",
    "",
    "limit_conn users 1; pop3_capabilities TOP RESP-CODES;",
  );
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.match(
    text(pop3CapaLists(without).full),
    /^\+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL /,
  );
  assert.equal(
    text(pop3CapaLists(withLimit).full),
    text(pop3CapaLists(without).full).replace("UIDL\r\n", "UIDL\r\nRESP-CODES\r\n"),
  );
  assert.ok(text(pop3CapaLists(withLimit).starttlsOnly).includes("RESP-CODES\r\n"));
  assert.ok(!text(pop3CapaLists(without).full).includes("RESP-CODES"));
  assert.equal(text(pop3CapaLists(already).full).match(/RESP-CODES/g)!.length, 1);
});

/** Timers run by hand. */
function manualTimers() {
  let next = 1;
  const pending = new Map<number, { fn: () => void; ms: number }>();
  const timers: Timers = {
    set: (fn, ms) => {
      pending.set(next, { fn, ms });
      return next++;
    },
    clear: (h) => void pending.delete(h as number),
  };
  return {
    timers,
    pending,
    fire() {
      const all = [...pending.values()];
      pending.clear();
      for (const t of all) t.fn();
    },
  };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

function config(over: Partial<LimitConnConfig> = {}): LimitConnConfig {
  const zone = (name: string, key: LimitConnConfig["limits"][0]["zone"]["key"], text: string) => ({
    name,
    text,
    key,
    loc: { file: "t", line: 1 },
  });
  return {
    limits: [
      { zone: zone("users", { kind: "remote_user" }, "$remote_user"), conn: 1 },
      { zone: zone("addrs", { kind: "remote_addr" }, "$remote_addr"), conn: 2 },
    ],
    dryRun: false,
    logLevel: "warn",
    ...over,
  };
}

const V = (user: string, addr = "192.0.2.1"): LimitConnVars => ({
  remoteAddr: addr,
  remoteUser: user,
  authHeaders: null,
});

test("over the limit: refused, logged at limit_conn_log_level, nothing of the refused one counted", async () => {
  const store = new LocalStore();
  const t = manualTimers();
  const lc = new LimitConn({ config: config(), store, timers: t.timers });
  const logs: string[] = [];
  const log = (level: string, m: string) => logs.push(`${level}: ${m}`);
  const first = await lc.acquire(V("alice"), log);
  assert.equal(first.ok, true);
  assert.equal(await store.get("mailgate:lc:users:alice"), "1");
  assert.equal(await store.get("mailgate:lc:addrs:192.0.2.1"), "1");
  const second = await lc.acquire(V("alice"), log);
  assert.equal(second.ok, false);
  assert.deepEqual(logs, ['warn: limiting connections by zone "users"']);
  assert.equal(await store.get("mailgate:lc:users:alice"), "1");
  assert.equal(await store.get("mailgate:lc:addrs:192.0.2.1"), "1");
  // the address zone (limit 2) refuses a third user from the same address
  assert.equal((await lc.acquire(V("bob"), log)).ok, true);
  assert.equal((await lc.acquire(V("carol"), log)).ok, false);
  assert.equal(logs[1], 'warn: limiting connections by zone "addrs"');
  assert.equal(await store.get("mailgate:lc:users:carol"), null);
  // release: counts go back, keys vanish at 0; a second release does nothing
  if (first.ok) {
    first.release();
    first.release();
  }
  await flush();
  assert.equal(await store.get("mailgate:lc:users:alice"), null);
  assert.equal(await store.get("mailgate:lc:addrs:192.0.2.1"), "1");
  assert.equal((await lc.acquire(V("alice"), log)).ok, true);
});

test("dry run: logged, let through, and (as freenginx) not counted", async () => {
  const store = new LocalStore();
  const lc = new LimitConn({
    config: config({ dryRun: true }),
    store,
    timers: manualTimers().timers,
  });
  const logs: string[] = [];
  const log = (level: string, m: string) => logs.push(`${level}: ${m}`);
  assert.equal((await lc.acquire(V("alice"), log)).ok, true);
  const second = await lc.acquire(V("alice"), log);
  assert.equal(second.ok, true);
  assert.deepEqual(logs, ['warn: limiting connections, dry run, by zone "users"']);
  assert.equal(await store.get("mailgate:lc:users:alice"), "1");
});

test("empty key values are not counted; over-long ones are skipped with an error line", async () => {
  const store = new LocalStore();
  const lc = new LimitConn({ config: config(), store, timers: manualTimers().timers });
  const logs: string[] = [];
  const log = (level: string, m: string) => logs.push(`${level}: ${m}`);
  assert.equal((await lc.acquire(V("", ""), log)).ok, true);
  assert.equal((await lc.acquire(V("", ""), log)).ok, true);
  assert.deepEqual(logs, []);
  const long = "u".repeat(256);
  assert.equal((await lc.acquire(V(long, ""), log)).ok, true);
  assert.equal((await lc.acquire(V(long, ""), log)).ok, true);
  assert.match(logs[0], /^error: the value of the "\$remote_user" key is more than 255 bytes/);
});

test("held keys get their TTL refreshed, vanished counts put back, refresh stops when nothing is held", async () => {
  const store = new LocalStore();
  const t = manualTimers();
  const lc = new LimitConn({ config: config(), store, timers: t.timers, ttlMs: 30_000 });
  const got = await lc.acquire(V("alice"), () => {});
  assert.equal(t.pending.size, 1);
  assert.equal([...t.pending.values()][0].ms, 10_000);
  await store.del("mailgate:lc:users:alice"); // as if Redis was flushed
  t.fire();
  await flush();
  await flush();
  assert.equal(await store.get("mailgate:lc:users:alice"), "1");
  assert.equal(t.pending.size, 1, "still held: refresh rescheduled");
  if (got.ok) got.release();
  await flush();
  assert.equal(t.pending.size, 0);
  assert.equal(lc.heldCount("mailgate:lc:users:alice"), 0);
  assert.equal(await store.get("mailgate:lc:users:alice"), null);
});

test("an OK from the auth cache keeps the auth_http headers, so $auth_http_ keys still count on cache hits", async () => {
  const cache = new AuthCache({
    ttlMs: 60_000,
    negativeTtlMs: 0,
    scope: "t",
    secret: new Uint8Array(32).fill(7),
    store: new LocalStore(),
  });
  const req = {
    protocol: "imap",
    creds: { method: "plain", user: "alice", pass: "secret", salt: null },
    attempt: 1,
    clientIp: "192.0.2.1",
    clientHost: null,
    proxyProtocol: null,
    tls: null,
    verifyClient: "off",
    passClientCert: false,
  } as AuthRequest;
  const headers = [["X-User", "alice@example.org"]] as const;
  await cache.store(req, {
    kind: "ok",
    addr: "127.0.0.1",
    port: 143,
    user: "alice",
    pass: "x",
    backendName: "b",
    headers,
  });
  const hit = await cache.lookup(req);
  assert.equal(hit?.kind, "ok");
  assert.deepEqual(hit?.kind === "ok" ? hit.headers : null, [["X-User", "alice@example.org"]]);
});
