// The session driver (lib/proxy/session.ts) over in-memory connections
// (tests/helpers/fake_conn.ts): a scripted IMAP client, a scripted auth
// service and a scripted backend, with the session's timers on a clock the
// test advances. Covers the paths between the protocol machines: a login
// that is proxied, a refusal, a backend that cannot be reached, dies
// mid-login or never answers, a client that leaves during auth or during
// the backend login, a backend that is mailgate itself (issue 13), and
// SMTP's pre-greeting hook (greeting delay, early talker).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ListenConfig, LogLevel, ServerConfig } from "../../lib/config/types.ts";
import type { AuthRequest, AuthResult, AuthService } from "../../lib/auth/types.ts";
import type { ErrorLog } from "../../lib/log/error_log.ts";
import type { AccessLog, AccessRecord } from "../../lib/log/access_log.ts";
import type { ConnectSpec, Runtime } from "../../lib/runtime/types.ts";
import { PROTOCOLS } from "../../lib/proxy/protocols.ts";
import { Session } from "../../lib/proxy/session.ts";
import type { Timers } from "../../lib/proxy/timers.ts";
import { OwnAddresses } from "../../lib/proxy/own_addresses.ts";
import { type FakeConn, fakeConnector, fakeConnPair, recordConn } from "../helpers/fake_conn.ts";
import { imapConfig, smtpConfig } from "../helpers/property.ts";
import { bytesToBinary, textBytes } from "../../lib/core/bytes.ts";
import { LimitConn } from "../../lib/protect/limit_conn.ts";
import { LocalStore } from "../../lib/store/local.ts";
import type { SharedStore } from "../../lib/store/types.ts";

const INTERNAL = "* BAD internal server error\r\n";
const TIMEOUT_MS = 60_000;

/** Timers the test fires by advancing a virtual clock. */
class ManualClock implements Timers {
  now = 0;
  #seq = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(h: unknown): void {
    this.#timers.delete(h as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  /** Moves the clock forward, firing what falls due in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let n = 0; n < 1000; n++) {
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.#timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
  }
}

/** Lets queued fake-conn events run until cond() holds (bounded). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 0));
  }
  throw new Error(`never happened: ${what}`);
}

/** A few more macrotasks, to show that something does NOT happen. */
async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}

/** What the test wants the "backend" side of each connect to do. */
type BackendScript = (server: FakeConn, spec: ConnectSpec) => void;

/**
 * An IMAP backend that greets, answers the LOGIN literals, and afterwards
 * records what it gets (lines: what it received). `dieAt`: close instead
 * of answering the n-th line (1 = LOGIN {n}).
 */
function imapBackend(opts: { dieAt?: number; silent?: boolean; afterLogin?: (server: FakeConn) => void } = {}) {
  const seen = { text: "", conns: [] as FakeConn[] };
  const script: BackendScript = (server) => {
    seen.conns.push(server);
    let lines = 0;
    let buf = "";
    server.attach({
      data(chunk) {
        seen.text += bytesToBinary(chunk);
        if (lines >= 3) return;
        buf += bytesToBinary(chunk);
        for (let i = buf.indexOf("\r\n"); i >= 0 && lines < 3; i = buf.indexOf("\r\n")) {
          buf = buf.slice(i + 2);
          lines++;
          if (opts.dieAt === lines) return server.destroy();
          server.write(textBytes(lines < 3 ? "+ go\r\n" : "a1 OK backend says hello\r\n"));
          if (lines === 3) opts.afterLogin?.(server);
        }
      },
      drain() {},
      end() {},
      close() {},
    });
    if (!opts.silent) server.write(textBytes("* OK backend ready\r\n"));
  };
  return { script, seen };
}

interface Harness {
  clock: ManualClock;
  client: FakeConn;
  rec: ReturnType<typeof recordConn>;
  session: Session;
  logs: { level: LogLevel; message: string }[];
  access: AccessRecord[];
  authRequests: AuthRequest[];
  connects: ConnectSpec[];
  /** The session called onDone. */
  finished: boolean;
  send(text: string): void;
}

function harness(o: {
  config?: ServerConfig;
  auth?: (req: AuthRequest) => Promise<AuthResult> | AuthResult;
  backend?: BackendScript;
  connectError?: Error;
  own?: OwnAddresses;
  limitConn?: LimitConn;
} = {}): Harness {
  const clock = new ManualClock();
  const logs: Harness["logs"] = [];
  const access: AccessRecord[] = [];
  const authRequests: AuthRequest[] = [];
  const connects: ConnectSpec[] = [];
  const log = {
    enabled: () => true,
    log: (level: LogLevel, message: string) => logs.push({ level, message }),
    info: (message: string) => logs.push({ level: "info", message }),
    error: (message: string) => logs.push({ level: "error", message }),
  } as unknown as ErrorLog;
  const auth: AuthService = {
    authenticate: async (req) => {
      authRequests.push(req);
      return await (o.auth ?? (() => ok()))(req);
    },
  };
  const connector = fakeConnector((server, spec) => {
    connects.push(spec);
    if (o.connectError) throw o.connectError;
    (o.backend ?? imapBackend().script)(server, spec);
  });
  const config = o.config ?? imapConfig();
  const [client, accepted] = fakeConnPair({
    local: { family: "ipv4", address: "192.0.2.7", port: 50000 },
    remote: { family: "ipv4", address: "127.0.0.1", port: 1143 },
  });
  const session = new Session({
    runtime: { connect: connector.connect } as unknown as Runtime,
    server: config,
    listen: {
      ssl: false,
      proxyProtocol: false,
      address: { kind: "tcp", host: "127.0.0.1", port: 1143, wildcard: false },
    } as ListenConfig,
    protocol: PROTOCOLS[config.protocol],
    log,
    auth,
    tls: null,
    accessLog: { log: (r: AccessRecord) => access.push(r) } as unknown as AccessLog,
    resolver: null,
    backendTls: null,
    own: o.own ?? null,
    timers: clock,
    limitConn: o.limitConn ?? null,
    onDone: () => (h.finished = true),
  }, accepted);
  const rec = recordConn(client);
  const h: Harness = {
    clock,
    client,
    rec,
    session,
    logs,
    access,
    authRequests,
    connects,
    finished: false,
    send: (text) => void client.write(textBytes(text)),
  };
  session.start();
  return h;
}

/** Waits (bounded) until the session is over. */
const ended = (h: Harness) => until(() => h.finished, "session over");

function ok(over: Partial<Extract<AuthResult, { kind: "ok" }>> = {}): AuthResult {
  return { kind: "ok", addr: "127.0.0.1", port: 143, user: "alice", pass: "secret", backendName: "127.0.0.1:143", ...over };
}

/** Test config: IMAP with a long `timeout` the clock controls, nginx's other defaults. */
function imap(over: Partial<ServerConfig> = {}): ServerConfig {
  return imapConfig({
    timeoutMs: TIMEOUT_MS,
    proxyTimeoutMs: 10 * 60_000,
    smtpGreetingDelayMs: 0,
    ssl: { verifyClient: "off" } as ServerConfig["ssl"],
    authHttpPassClientCert: false,
    proxySsl: { ssl: false, starttls: false } as ServerConfig["proxySsl"],
    proxyProtocol: "off",
    authTable: null,
    setRealIpFrom: [],
    ...over,
  });
}

const logged = (h: Harness, level: LogLevel, re: RegExp) =>
  h.logs.filter((l) => l.level === level && re.test(l.message)).length;

async function loginAsAlice(h: Harness): Promise<void> {
  await until(() => h.rec.text().includes("* OK"), "greeting");
  h.send("a1 LOGIN alice secret\r\n");
}

describe("session driver", () => {
  test("a login that is proxied: backend login, then bytes both ways, access log 'proxied'", async () => {
    const be = imapBackend();
    const h = harness({ config: imap(), backend: be.script });
    await loginAsAlice(h);
    await until(() => h.rec.text().includes("a1 OK backend says hello\r\n"), "login reply relayed");
    assert.equal(h.connects.length, 1);
    assert.deepEqual([h.connects[0].kind === "tcp" && h.connects[0].host, h.connects[0].kind === "tcp" && h.connects[0].port], ["127.0.0.1", 143]);
    // The backend got the LOGIN with literals, and the password only there.
    assert.match(be.seen.text, /^a1 LOGIN \{5\}\r\nalice \{6\}\r\nsecret\r\n$/);
    assert.equal(h.authRequests[0].creds.user, "alice");
    assert.equal(h.session.phase, "relay");
    // Relay: both ways, unchanged.
    h.send("a2 NOOP\r\n");
    await until(() => be.seen.text.endsWith("a2 NOOP\r\n"), "client bytes at the backend");
    be.seen.conns[0].write(textBytes("a2 OK noop\r\n"));
    await until(() => h.rec.text().endsWith("a2 OK noop\r\n"), "backend bytes at the client");
    assert.equal(h.clock.pending, 0, "no session timer runs during the relay (proxy_timeout is the relay's)");
    h.client.end();
    await ended(h);
    assert.equal(h.access.length, 1);
    assert.equal(h.access[0].outcome, "proxied");
    assert.equal(h.access[0].upstream, "127.0.0.1:143");
    assert.equal(logged(h, "info", /^client logged in$/), 1);
    assert.ok(!h.logs.some((l) => l.message.includes("secret")), "the password is never logged");
  });

  test("backend bytes right behind its login reply, then its close: the client gets all, the session ends", async () => {
    const be = imapBackend({
      afterLogin: (server) => {
        server.write(textBytes("* 1 EXISTS\r\n"));
        server.end();
      },
    });
    const h = harness({ config: imap(), backend: be.script });
    await loginAsAlice(h);
    await ended(h);
    assert.match(h.rec.text(), /a1 OK backend says hello\r\n\* 1 EXISTS\r\n$/);
    assert.equal(h.access[0].outcome, "proxied");
  });

  test("client input pipelined behind the credentials reaches the backend after the login", async () => {
    const be = imapBackend();
    const h = harness({ config: imap(), backend: be.script });
    await until(() => h.rec.text().includes("* OK"), "greeting");
    h.send("a1 LOGIN alice secret\r\na2 SELECT INBOX\r\n");
    await until(() => be.seen.text.endsWith("secret\r\na2 SELECT INBOX\r\n"), "pipelined command at the backend");
    h.client.destroy();
    await ended(h);
  });

  test("auth refusal without Auth-Wait: the protocol's NO, close, no backend connect", async () => {
    const h = harness({
      config: imap(),
      auth: () => ({ kind: "refused", message: "Go away", waitSec: 0, errorCode: null }),
    });
    await loginAsAlice(h);
    await ended(h);
    assert.match(h.rec.text(), /\r\na1 NO Go away\r\n$/);
    assert.equal(h.connects.length, 0);
    assert.equal(logged(h, "info", /^client login failed: "Go away"$/), 1);
    assert.equal(h.access[0].outcome, "refused");
  });

  test("auth refusal with Auth-Wait: the NO comes after the wait, and the client may try again", async () => {
    let n = 0;
    const h = harness({
      config: imap(),
      auth: () => (n++ === 0 ? { kind: "refused", message: "Try again", waitSec: 2, errorCode: null } : ok()),
    });
    await loginAsAlice(h);
    await until(() => h.authRequests.length === 1 && h.clock.pending === 1, "Auth-Wait armed");
    await settle();
    assert.ok(!h.rec.text().includes("a1 NO"), "no answer before the wait is over");
    h.clock.advance(1999);
    await settle();
    assert.ok(!h.rec.text().includes("a1 NO"));
    h.clock.advance(1);
    await until(() => h.rec.text().includes("a1 NO Try again\r\n"), "refusal after Auth-Wait");
    h.send("a1 LOGIN alice secret\r\n");
    await until(() => h.session.phase === "relay", "second attempt proxied");
    assert.equal(h.authRequests[1].attempt, 2);
    h.client.destroy();
    await ended(h);
  });

  test("backend connect failure: internal error, one error line naming the upstream", async () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    const h = harness({ config: imap(), connectError: refused });
    await loginAsAlice(h);
    await ended(h);
    await until(() => h.rec.text().endsWith(INTERNAL), "internal error");
    assert.equal(logged(h, "error", /^connect\(\) to 127\.0\.0\.1:143 failed \(111: Connection refused\)$/), 1);
    assert.equal(h.logs.filter((l) => l.level === "error").length, 1);
    assert.equal(h.access[0].outcome, "backend-error");
    assert.equal(h.clock.pending, 0);
  });

  test("backend dies mid-login: internal error, 'upstream prematurely closed connection' once", async () => {
    const be = imapBackend({ dieAt: 2 });
    const h = harness({ config: imap(), backend: be.script });
    await loginAsAlice(h);
    await ended(h);
    await until(() => h.rec.text().endsWith(INTERNAL), "internal error");
    assert.equal(logged(h, "error", /^upstream prematurely closed connection$/), 1);
    assert.equal(h.access[0].outcome, "backend-error");
    assert.ok(!h.rec.text().includes("+ go"), "the backend's continuation is not the client's");
  });

  test("client closes while the auth service is asked: no backend connect afterwards", async () => {
    let answer!: (r: AuthResult) => void;
    const h = harness({ config: imap(), auth: () => new Promise<AuthResult>((r) => (answer = r)) });
    await loginAsAlice(h);
    await until(() => h.authRequests.length === 1, "auth asked");
    h.client.destroy();
    await ended(h);
    answer(ok());
    await settle();
    assert.equal(h.connects.length, 0);
    assert.equal(h.access[0].outcome, "closed");
    assert.equal(h.clock.pending, 0);
  });

  test("client closes during the backend login: the backend connection is closed too", async () => {
    const be = imapBackend({ silent: true });
    const h = harness({ config: imap(), backend: be.script });
    await loginAsAlice(h);
    await until(() => be.seen.conns.length === 1, "backend connected");
    h.client.destroy();
    await ended(h);
    await until(() => be.seen.conns[0].isClosed, "backend side closed");
    assert.equal(h.clock.pending, 0);
  });

  test("backend that never answers: 'upstream timed out' at `timeout`, internal error, access log 'timeout'", async () => {
    const be = imapBackend({ silent: true });
    const h = harness({ config: imap(), backend: be.script });
    await loginAsAlice(h);
    await until(() => be.seen.conns.length === 1, "backend connected");
    h.clock.advance(TIMEOUT_MS - 1);
    await settle();
    assert.equal(h.session.phase, "backend");
    h.clock.advance(1);
    await ended(h);
    await until(() => h.rec.text().endsWith(INTERNAL), "internal error");
    assert.equal(logged(h, "info", /^upstream timed out$/), 1);
    assert.equal(h.logs.filter((l) => l.level === "error").length, 0);
    assert.equal(h.access[0].outcome, "timeout");
    await until(() => be.seen.conns[0].isClosed, "backend closed");
  });

  test("idle client after the greeting: 'client timed out' at `timeout`", async () => {
    const h = harness({ config: imap() });
    await until(() => h.rec.text().includes("* OK"), "greeting");
    h.clock.advance(TIMEOUT_MS);
    await ended(h);
    await until(() => h.client.isClosed, "client side closed");
    assert.equal(logged(h, "info", /^client timed out$/), 1);
    assert.equal(h.access[0].outcome, "timeout");
  });

  test("an auth answer naming mailgate's own listener: internal error, no connect (issue 13)", async () => {
    const own = new OwnAddresses();
    own.update([{ host: "0.0.0.0", port: 1143 }], []);
    const h = harness({
      config: imap(),
      own,
      auth: () => ok({ addr: "127.0.0.1", port: 1143, backendName: "127.0.0.1:1143" }),
    });
    await loginAsAlice(h);
    await ended(h);
    await until(() => h.rec.text().endsWith(INTERNAL), "internal error");
    assert.equal(h.connects.length, 0);
    const errors = h.logs.filter((l) => l.level === "error");
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /Auth-Server: 127\.0\.0\.1, Auth-Port: 1143.*own listener 0\.0\.0\.0:1143/);
    assert.equal(h.access[0].outcome, "auth-error");
  });

  test("an auth answer naming another port of this machine is dialled", async () => {
    const own = new OwnAddresses();
    own.update([{ host: "0.0.0.0", port: 1143 }], []);
    const h = harness({ config: imap(), own });
    await loginAsAlice(h);
    await until(() => h.session.phase === "relay", "proxied");
    assert.equal(h.connects.length, 1);
    h.client.destroy();
    await ended(h);
  });

  describe("SMTP pre-greeting hook (smtp_greeting_delay)", () => {
    const smtp = (delayMs: number) =>
      smtpConfig({ ...imap(), protocol: "smtp", smtpGreetingDelayMs: delayMs, smtpAuth: ["plain"] } as Partial<ServerConfig>);

    test("no greeting before the delay; then the greeting with timeout armed again", async () => {
      const h = harness({ config: smtp(5000) });
      await settle();
      assert.equal(h.rec.text(), "");
      h.clock.advance(5000);
      await until(() => /^220 /.test(h.rec.text()), "greeting after the delay");
      assert.equal(h.clock.pending, 1, "`timeout` runs from the greeting");
      h.client.destroy();
      await ended(h);
    });

    test("a client that talks during the delay gets 503 and is closed", async () => {
      const h = harness({ config: smtp(5000) });
      await settle();
      h.send("EHLO early.test\r\n");
      await until(() => h.client.isClosed, "client side closed");
      await ended(h);
      assert.equal(h.rec.text(), "503 5.5.0 Improper use of SMTP command pipelining\r\n");
      assert.equal(h.access[0].outcome, "rejected");
      assert.equal(h.access[0].bytesIn, "EHLO early.test\r\n".length);
      assert.equal(h.clock.pending, 0);
      assert.equal(logged(h, "info", /before greeting/), 1);
    });

    test("no delay, no resolver: greeting at once, Client-Host [UNAVAILABLE]", async () => {
      const h = harness({
        config: smtp(0),
        auth: () => ({ kind: "refused", message: "No", waitSec: 0, errorCode: null }),
      });
      await until(() => /^220 /.test(h.rec.text()), "greeting");
      h.send(`EHLO c.test\r\nAUTH PLAIN ${btoa("\0alice\0secret")}\r\n`);
      await ended(h);
      assert.equal(h.authRequests[0].clientHost, "[UNAVAILABLE]");
    });
  });
});

describe("session driver: limit_conn (limit 1 by $remote_user) releases its count on every end path", () => {
  const KEY = "mailgate:lc:users:alice";
  function limits(store: SharedStore = new LocalStore()) {
    const zone = { name: "users", text: "$remote_user", key: { kind: "remote_user" as const }, loc: { file: "t", line: 1 } };
    const lc = new LimitConn({ config: { limits: [{ zone, conn: 1 }], dryRun: false, logLevel: "error" }, store });
    return { lc, store, count: () => store.get(KEY) };
  }

  test("relay end: counted while proxied, released when the client leaves", async () => {
    const l = limits();
    const h = harness({ config: imap(), limitConn: l.lc });
    await loginAsAlice(h);
    await until(() => h.session.phase === "relay", "relay");
    assert.equal(await l.count(), "1");
    h.client.end();
    await ended(h);
    assert.equal(await l.count(), null);
  });

  test("over the limit: the tagged refusal, the close, the error line; the holder keeps its count", async () => {
    const l = limits();
    const first = harness({ config: imap(), limitConn: l.lc });
    await loginAsAlice(first);
    await until(() => first.session.phase === "relay", "relay");
    const h = harness({ config: imap(), limitConn: l.lc });
    await loginAsAlice(h);
    await ended(h);
    assert.equal(h.rec.text(), "* OK IMAP4 ready\r\na1 NO [UNAVAILABLE] Too many connections\r\n");
    assert.equal(h.connects.length, 0, "the backend is not dialed");
    assert.equal(logged(h, "error", /^limiting connections by zone "users"$/), 1);
    assert.equal(await l.count(), "1");
    first.session.abort(); // shutdown: released too
    await ended(first);
    assert.equal(await l.count(), null);
  });

  test("backend connect failure: released", async () => {
    const l = limits();
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    const h = harness({ config: imap(), connectError: refused, limitConn: l.lc });
    await loginAsAlice(h);
    await ended(h);
    assert.equal(await l.count(), null);
  });

  test("client closes during the backend login: released", async () => {
    const l = limits();
    const be = imapBackend({ silent: true });
    const h = harness({ config: imap(), backend: be.script, limitConn: l.lc });
    await loginAsAlice(h);
    await until(() => be.seen.conns.length === 1, "backend connected");
    assert.equal(await l.count(), "1");
    h.client.destroy();
    await ended(h);
    assert.equal(await l.count(), null);
  });

  test("client closes while the store is counting: released once the count arrives, no backend dial", async () => {
    const inner = new LocalStore();
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    const slow: SharedStore = {
      state: "local",
      incr: async (k, ttl) => {
        await gate;
        return await inner.incr(k, ttl);
      },
      decr: (k) => inner.decr(k),
      get: (k) => inner.get(k),
      set: (k, v, ttl) => inner.set(k, v, ttl),
      setIfAbsent: (k, v, ttl) => inner.setIfAbsent(k, v, ttl),
      expire: (k, ttl) => inner.expire(k, ttl),
      del: (k) => inner.del(k),
      close: () => {},
    };
    const l = limits(slow);
    const h = harness({ config: imap(), limitConn: l.lc });
    await loginAsAlice(h);
    await until(() => h.authRequests.length === 1, "auth asked");
    await settle();
    h.client.destroy();
    await ended(h);
    go();
    await settle();
    assert.equal(await inner.get(KEY), null);
    assert.equal(h.connects.length, 0);
  });
});
