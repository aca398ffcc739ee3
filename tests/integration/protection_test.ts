// Protection through the real process (README "Protection"): the auth
// cache answers a repeated login without the auth service; wrong passwords
// from one address (the real one, from a trusted PROXY header) lock that
// address out while the same user from elsewhere still logs in; max_commands
// closes a chatty pre-auth session. One mailgate start per target. Then two
// instances (the first two targets) sharing one redis-server: the cache and
// the counters of one are the other's. Both parts end by reading /metrics
// (status_listen) for the protection metrics the cases above produced.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestClient } from "../helpers/client.ts";
import { type AuthRequestSeen, MockAuth, ok, refuse } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";
import { redisAvailable, type RedisServer, startRedis } from "../helpers/redis.ts";
import { metricSum } from "../helpers/metrics_text.ts";

for (const target of targets()) {
  describe(`protection (${target})`, () => {
    let mg: Running;
    let auth: MockAuth;
    let imap: MockImap;
    let port: Record<string, number>;
    /** Auth requests seen per user. */
    const asked = (user: string) => auth.requests.filter((r) => r.get("Auth-User") === user).length;

    before(async () => {
      imap = await MockImap.start();
      // No Auth-Wait: a wrong password ends the session at once (no delay to wait out).
      auth = await MockAuth.start((req: AuthRequestSeen) =>
        req.get("Auth-Pass") === "right" ? ok("127.0.0.1", imap.port) : refuse("Bad password")
      );
      const names = ["cache", "limit", "chatty", "status"];
      port = await namedPorts(names);
      mg = await startMailgate(
        target,
        `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  status_listen 127.0.0.1:${port.status};
  server { listen 127.0.0.1:${port.cache}; protocol imap; auth_cache_ttl 60s; }
  server { listen 127.0.0.1:${port.limit} proxy_protocol; protocol imap; set_real_ip_from 127.0.0.1;
           auth_fail_limit_ip 3 60s; }
  server { listen 127.0.0.1:${port.chatty}; protocol imap; max_commands 2; }
}
`,
      );
    });
    after(() => stopAll(mg, auth, imap));

    /** Logs in as user/pass (after a PROXY header claiming `from`, if given); the reply line. */
    async function login(p: number, user: string, pass: string, from?: string): Promise<string> {
      const c = await TestClient.open(p);
      if (from) c.write(`PROXY TCP4 ${from} 127.0.0.1 40000 ${p}\r\n`);
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      c.write(`a1 LOGIN ${user} ${pass}\r\n`);
      const reply = await c.line(5000);
      c.close();
      return reply;
    }

    it("auth_cache_ttl: the second login with the same credentials does not reach the auth service", async () => {
      assert.match(await login(port.cache, "carol", "right"), /^a1 OK/);
      assert.equal(asked("carol"), 1);
      assert.match(await login(port.cache, "carol", "right"), /^a1 OK/);
      assert.equal(asked("carol"), 1, "answered from the cache");
      assert.equal(await login(port.cache, "carol", "wrong"), "a1 NO Bad password\r\n");
      assert.equal(asked("carol"), 2, "another password is another key");
    });

    it("auth_fail_limit_ip: the address is locked out, told what a wrong password gets; others still log in", async () => {
      for (let i = 0; i < 3; i++) {
        assert.equal(
          await login(port.limit, `mallory${i}`, "guess", "203.0.113.7"),
          "a1 NO Bad password\r\n",
        );
      }
      await mg.waitLog(/\[warn\].*3 failed logins from 203\.0\.113\.7 within 60s/);
      const before = auth.requests.length;
      assert.equal(
        await login(port.limit, "dave", "right", "203.0.113.7"),
        "a1 NO Bad password\r\n",
      );
      assert.equal(auth.requests.length, before, "the auth service was not asked");
      assert.match(await login(port.limit, "dave", "right", "198.51.100.4"), /^a1 OK/);
      assert.equal(
        mg.stderr().match(/failed logins from 203\.0\.113\.7/g)?.length,
        1,
        "warned once",
      );
      assert.ok(!/guess/.test(mg.stderr()), "no password in the log");
    });

    it("/metrics: the cache hit, the lockout and the refusal by it (after the two cases above)", async () => {
      // One process: its counters are current when the login replies were read.
      const t = await (await fetch(`http://127.0.0.1:${port.status}/metrics`)).text();
      assert.equal(metricSum(t, "mailgate_auth_cache_lookups_total", { result: "hit" }), 1);
      assert.equal(metricSum(t, "mailgate_auth_cache_lookups_total", { result: "miss" }), 2);
      assert.equal(metricSum(t, "mailgate_auth_lockouts_total", { kind: "ip" }), 1);
      assert.equal(metricSum(t, "mailgate_logins_total", { outcome: "limited" }), 1);
      assert.equal(metricSum(t, "mailgate_logins_total", { outcome: "refused" }), 4);
    });

    it("max_commands: the command past the limit gets BAD, then the close", async () => {
      const c = await TestClient.open(port.chatty);
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      c.write("a NOOP\r\nb NOOP\r\nc NOOP\r\n");
      assert.equal(await c.line(), "a OK completed\r\n");
      assert.equal(await c.line(), "b OK completed\r\n");
      assert.equal(await c.line(), "c BAD invalid command\r\n");
      assert.ok(await c.waitClose());
      await mg.waitLog(/client sent too many commands/);
    });
  });
}

const avail = redisAvailable();
describe(
  "protection across two instances sharing Redis",
  { skip: avail.ok ? false : avail.why },
  () => {
    let redis: RedisServer;
    let auth: MockAuth;
    let imap: MockImap;
    const mgs: Running[] = [];
    const ports: number[] = [];
    const asked = (user: string) => auth.requests.filter((r) => r.get("Auth-User") === user).length;

    before(async () => {
      redis = await startRedis();
      imap = await MockImap.start();
      auth = await MockAuth.start((req: AuthRequestSeen) =>
        req.get("Auth-Pass") === "right" ? ok("127.0.0.1", imap.port) : refuse("Bad password")
      );
      const ts = targets();
      ports.push(...await freePorts(6)); // per instance: plain, with limit_conn, status_listen
      for (let i = 0; i < 2; i++) {
        const mg = await startMailgate(
          ts[i] ?? ts[0],
          `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  shared_store redis://127.0.0.1:${redis.port};
  status_listen 127.0.0.1:${ports[4 + i]};
  auth_cache_ttl 60s;
  auth_fail_limit_user 3 60s;
  limit_conn_zone $remote_user zone=users:1m;
  server { listen 127.0.0.1:${ports[i]}; protocol imap; }
  server { listen 127.0.0.1:${ports[2 + i]}; protocol imap; limit_conn users 1; }
}
`,
        );
        mgs.push(mg);
        await mg.waitLog(/shared store redis:\/\/127\.0\.0\.1:\d+ \(db 0\) connected/);
      }
    });
    after(() => stopAll(...mgs, auth, imap, redis));

    async function login(p: number, user: string, pass: string): Promise<string> {
      const c = await TestClient.open(p);
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      c.write(`a1 LOGIN ${user} ${pass}\r\n`);
      const reply = await c.line(5000);
      c.close();
      return reply;
    }

    it("a login through A fills the cache; the same login through B does not reach the auth service", async () => {
      assert.match(await login(ports[0], "erin", "right"), /^a1 OK/);
      assert.match(await login(ports[1], "erin", "right"), /^a1 OK/);
      assert.equal(asked("erin"), 1, "B found A's entry (one secret, agreed through Redis)");
      const keys = await redis.cli("KEYS", "mailgate:auth:*");
      assert.ok(!keys.includes("erin") && !(await redis.cli("KEYS", "*")).includes("right"));
    });

    it("failures spread over both instances lock the user out on both; warned once", async () => {
      assert.equal(await login(ports[0], "frank", "guess"), "a1 NO Bad password\r\n");
      assert.equal(await login(ports[1], "frank", "guess"), "a1 NO Bad password\r\n");
      assert.equal(await login(ports[0], "frank", "guess"), "a1 NO Bad password\r\n");
      const before = asked("frank");
      assert.equal(await login(ports[1], "frank", "right"), "a1 NO Bad password\r\n");
      assert.equal(await login(ports[0], "frank", "right"), "a1 NO Bad password\r\n");
      assert.equal(asked("frank"), before, "locked out on both without asking");
      const warns = mgs.map((m) =>
        m.stderr().match(/failed logins for user "frank"/g)?.length ?? 0
      );
      assert.equal(warns[0] + warns[1], 1, `one warning in all (${warns})`);
    });

    it("limit_conn counts span both instances: a user held on A is refused on B until A's session ends", async () => {
      const key = "mailgate:lc:users:gwen";
      const a = await TestClient.open(ports[2]);
      assert.equal(await a.line(), "* OK IMAP4 ready\r\n");
      a.write("a1 LOGIN gwen right\r\n");
      assert.match(await a.line(5000), /^a1 OK/);
      assert.equal((await redis.cli("GET", key)).trim(), "1");
      assert.ok(Number((await redis.cli("PTTL", key)).trim()) > 0, "the key expires unless refreshed");
      assert.equal(await login(ports[3], "gwen", "right"), "a1 NO [UNAVAILABLE] Too many connections\r\n");
      a.write("a2 LOGOUT\r\n");
      assert.ok(await a.waitClose());
      // A's decrement travels through Redis: wait (bounded) until it has landed.
      for (let i = 0; i < 200 && (await redis.cli("GET", key)).trim() !== ""; i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.match(await login(ports[3], "gwen", "right"), /^a1 OK/);
    });

    it("/metrics: the store is up on both, no outage; B counts its cache hit and its limit_conn refusal", async () => {
      const [ta, tb] = await Promise.all(
        [4, 5].map(async (i) => await (await fetch(`http://127.0.0.1:${ports[i]}/metrics`)).text()),
      );
      assert.equal(metricSum(ta, "mailgate_shared_store_up"), 1);
      assert.equal(metricSum(tb, "mailgate_shared_store_up"), 1);
      assert.equal(metricSum(tb, "mailgate_limit_conn_refused_total", { zone: "users" }), 1);
      assert.equal(metricSum(ta, "mailgate_limit_conn_refused_total"), 0);
      assert.equal(metricSum(tb, "mailgate_auth_cache_lookups_total", { result: "hit" }) >= 1, true);
      assert.equal(metricSum(ta, "mailgate_shared_store_outages_total"), 0);
    });
  },
);
