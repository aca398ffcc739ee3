// Scale-out, tested for real (README "Shared state"): HAProxy in TCP mode
// with send-proxy-v2 in front of two mailgate instances (the first two
// targets: deno and bun by default), both `listen ... proxy_protocol` with
// `set_real_ip_from 127.0.0.1`, sharing one real redis-server, real Dovecot
// behind them, the mock auth service counting its requests. HAProxy has one
// frontend per instance (feA, feB: explicit routing) and one round-robin
// frontend over both (feRR). Clients bind 127.0.0.x source addresses on
// loopback, so the address HAProxy passes on tells them apart.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect, type Socket } from "node:net";
import { TestClient } from "../helpers/client.ts";
import { type AuthRequestSeen, MockAuth, ok, refuse } from "../helpers/mock_auth.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { type HAProxy, startHAProxy } from "../helpers/haproxy.ts";
import { type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts } from "../helpers/ports.ts";
import { type RedisServer, startRedis } from "../helpers/redis.ts";
import { stopAll } from "../helpers/stop_all.ts";

const avail = peersAvailable("dovecot", "haproxy", "redis-server", "redis-cli");
const USERS = 8;
const user = (i: number) => `u${i}@example.org`;
const pass = (i: number) => `pw-${i}`;
const CONNECTED = /shared store redis:\/\/127\.0\.0\.1:\d+ \(db 0\) connected/;
const OUTAGE = /shared store redis:\/\/127\.0\.0\.1:\d+ unavailable/;
/** Outage lines in one instance's log (a fresh /g regex each time: exec/match state stays out of waitLog). */
const outages = (m: Running) => m.stderr().match(new RegExp(OUTAGE.source, "g"))?.length ?? 0;
const BACK = /shared store redis:\/\/127\.0\.0\.1:\d+ \(db 0\) reachable again/;

/** A client whose source address is `from` (any 127.0.0.0/8 address works on loopback). */
function openFrom(port: number, from: string): Promise<TestClient> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect(
      { host: "127.0.0.1", port, localAddress: from },
      () => resolve(TestClient.fromSocket(s)),
    );
    s.once("error", reject);
  });
}

describe("scale-out: HAProxy, two instances, one Redis, Dovecot", {
  skip: avail.ok ? false : avail.why,
}, () => {
  let redis: RedisServer;
  let dovecot: Dovecot;
  let auth: MockAuth;
  let haproxy: HAProxy;
  const mgs: Running[] = [];
  let fe: { a: number; b: number; rr: number };
  const asked = (u: string) => auth.requests.filter((r) => r.get("Auth-User") === u).length;

  before(async () => {
    redis = await startRedis();
    dovecot = await startDovecot(
      Object.fromEntries(Array.from({ length: USERS }, (_, i) => [user(i), pass(i)])),
    );
    // The auth service knows the same passwords as Dovecot; no Auth-Wait,
    // so a refusal (and a lockout, which answers the same) is immediate.
    auth = await MockAuth.start((req: AuthRequestSeen) => {
      const i = Number(/^u(\d+)@/.exec(req.get("Auth-User") ?? "")?.[1] ?? -1);
      return i >= 0 && req.get("Auth-Pass") === pass(i)
        ? ok("127.0.0.1", dovecot.imapPort)
        : refuse("Bad password");
    });
    const [mgA, mgB, a, b, rr] = await freePorts(5);
    fe = { a, b, rr };
    haproxy = await startHAProxy(`
listen feA
  bind 127.0.0.1:${a}
  server A 127.0.0.1:${mgA} send-proxy-v2
listen feB
  bind 127.0.0.1:${b}
  server B 127.0.0.1:${mgB} send-proxy-v2
listen feRR
  bind 127.0.0.1:${rr}
  balance roundrobin
  server A 127.0.0.1:${mgA} send-proxy-v2
  server B 127.0.0.1:${mgB} send-proxy-v2
`);
    const ts = targets();
    for (const [i, port] of [mgA, mgB].entries()) {
      const mg = await startMailgate(
        ts[i] ?? ts[0],
        `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  shared_store redis://127.0.0.1:${redis.port};
  auth_cache_ttl 60s;
  auth_fail_limit_ip 3 60s;
  auth_fail_limit_user 3 60s;
  server { listen 127.0.0.1:${port} proxy_protocol; protocol imap; set_real_ip_from 127.0.0.1; }
}
`,
      );
      mgs.push(mg);
      await mg.waitLog(CONNECTED);
    }
  });
  after(() => stopAll(haproxy, ...mgs, auth, dovecot, redis));

  /** One login through frontend `port` from source `from`; the tagged reply. */
  async function login(port: number, u: string, p: string, from = "127.0.0.9"): Promise<string> {
    const c = await openFrom(port, from);
    try {
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      c.write(`a1 LOGIN ${u} ${p}\r\n`);
      return (await c.until(/^a1 /, 10000)).at(-1)!;
    } finally {
      c.close();
    }
  }
  const NO = "a1 NO Bad password\r\n";

  it("failed logins spread over both instances lock the client address out on both", async () => {
    const from = "127.0.0.2";
    assert.equal(await login(fe.a, "nobody0", "guess", from), NO);
    assert.equal(await login(fe.b, "nobody1", "guess", from), NO);
    assert.equal(await login(fe.a, "nobody2", "guess", from), NO);
    const seen = auth.requests.length;
    assert.equal(await login(fe.b, user(0), pass(0), from), NO, "locked on B");
    assert.equal(await login(fe.a, user(0), pass(0), from), NO, "locked on A");
    assert.equal(auth.requests.length, seen, "the auth service was not asked");
    assert.match(
      await login(fe.b, user(0), pass(0), "127.0.0.3"),
      /^a1 OK/,
      "another address logs in",
    );
    const ips = auth.requests.slice(0, seen).map((r) => r.get("Client-IP"));
    assert.deepEqual([...new Set(ips)], [from], "the real client address reached the auth service");
  });

  it("failed logins spread over both instances lock the user out on both", async () => {
    const u = user(1);
    for (
      const [port, from] of [[fe.a, "127.0.0.4"], [fe.b, "127.0.0.5"], [fe.a, "127.0.0.6"]] as const
    ) {
      assert.equal(await login(port, u, "guess", from), NO);
    }
    const before = asked(u);
    assert.equal(await login(fe.b, u, pass(1), "127.0.0.7"), NO, "locked on B");
    assert.equal(await login(fe.a, u, pass(1), "127.0.0.7"), NO, "locked on A");
    assert.equal(asked(u), before, "the auth service was not asked");
    const warns = mgs.map((m) =>
      m.stderr().match(/failed logins for user "u1@example\.org"/g)?.length ?? 0
    );
    assert.equal(warns[0] + warns[1], 1, `warned once in all (${warns})`);
    assert.ok(
      !mgs.some((m) => m.stderr().includes(pass(1)) || m.stderr().includes("guess")),
      "no password logged",
    );
  });

  it("a login through A fills the cache; the next one through B does not reach the auth service", async () => {
    const u = user(2);
    assert.match(await login(fe.a, u, pass(2)), /^a1 OK/);
    assert.equal(asked(u), 1);
    assert.match(await login(fe.b, u, pass(2)), /^a1 OK/);
    assert.equal(asked(u), 1, "B answered from A's entry");
  });

  it("Redis killed: logins go on (local state), outage logged once per instance; back: sharing resumes", async () => {
    await redis.kill();
    await Promise.all(mgs.map((m) => m.waitLog(OUTAGE)));
    for (let i = 0; i < 3; i++) {
      assert.match(await login(fe.a, user(3), pass(3)), /^a1 OK/, "A works without Redis");
      assert.match(await login(fe.b, user(3), pass(3)), /^a1 OK/, "B works without Redis");
    }
    assert.deepEqual(mgs.map(outages), [1, 1], "one outage line each");
    await redis.restart();
    await Promise.all(mgs.map((m) => m.waitLog(BACK)));
    const u = user(4);
    assert.match(await login(fe.a, u, pass(4)), /^a1 OK/);
    assert.match(await login(fe.b, u, pass(4)), /^a1 OK/);
    assert.equal(asked(u), 1, "B found the entry A made after Redis returned");
    assert.ok(mgs.every((m) => m.proc.exitCode === null), "both still running");
  });

  it("concurrent sessions through the round-robin frontend each get their own bytes back", async () => {
    const n = 6;
    const rounds = await Promise.all(Array.from({ length: n }, async (_, k) => {
      const i = 5 + (k % 3); // u5..u7, two sessions each, possibly on different instances
      const c = await openFrom(fe.rr, `127.0.1.${k + 1}`);
      try {
        assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
        c.write(`a1 LOGIN ${user(i)} ${pass(i)}\r\n`);
        assert.match((await c.until(/^a1 /, 10000)).at(-1)!, /^a1 OK/);
        const body = Buffer.from(
          `From: s${k}@example.org\r\nSubject: session ${k}\r\n\r\n` +
            `${"x".repeat(1000 * (k + 1))}\r\n\xe9\xff ${k}\r\n`,
          "latin1",
        );
        c.write(`a2 APPEND INBOX {${body.length}}\r\n`);
        assert.match(await c.line(10000), /^\+ /);
        c.write(body);
        c.write("\r\n");
        assert.match((await c.until(/^a2 /, 10000)).at(-1)!, /^a2 OK/);
        c.write(`a3 SELECT INBOX\r\na4 SEARCH HEADER Subject "session ${k}"\r\n`);
        const search = await c.until(/^a4 /, 10000);
        const uid = /^\* SEARCH (\d+)\r\n$/.exec(search.find((l) => l.startsWith("* SEARCH"))!)
          ?.[1];
        assert.ok(uid, `found its message: ${search}`);
        c.write(`a5 FETCH ${uid} BODY.PEEK[]\r\n`);
        const head = await c.line(10000);
        const len = Number(/\{(\d+)\}\r\n$/.exec(head)?.[1]);
        assert.equal(len, body.length, head);
        const got = await c.bytes(len);
        assert.ok(got.equals(body), `session ${k}: bytes differ`);
        assert.match((await c.until(/^a5 /, 10000)).at(-1)!, /^a5 OK/);
        c.write("a6 LOGOUT\r\n");
        await c.waitClose(5000);
      } finally {
        c.close();
      }
      return k;
    }));
    assert.equal(rounds.length, n);
  });
});
