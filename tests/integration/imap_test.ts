// IMAP end to end: the real mailgate process (under Deno, under Bun, and as
// the compiled executable) between a test client, a mock auth_http service
// and mock IMAP backends, checking exact bytes on the wire.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, createHmac } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, refuse, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockImap, pattern } from "../helpers/mock_imap.ts";
import { ROOT, startMailgate, targets, type Running } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const CA = readFileSync(join(TLS, "ca.pem"));
const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");
/**
 * auth_http_timeout everywhere but the `authshort` server: the mock auth
 * service runs in this process, and no stall of it on a loaded machine may
 * reach this (issue 13). `authshort` has the short one the hang case measures.
 */
const LONG_MS = 10_000;
const AUTH_SHORT_MS = 1000;
/** Upper-bound slack on top of a configured delay (processes share two cores). */
const SLACK_MS = 5000;

interface Env {
  mg: Running;
  auth: MockAuth;
  /** An auth service that keeps connections open (auth_http_keepalive). */
  kaAuth: MockAuth;
  backend: MockImap;
  chatty: MockImap;
  port: Record<string, number>;
}

async function setup(target: Parameters<typeof startMailgate>[0]): Promise<Env> {
  const backend = await MockImap.start({
    users: {
      "test@example.com": "secret",
      'te\\"st@example.com': 'se\\"cret',
      "alice@example.org": "secret",
      "test@example.net": "anything",
    },
  });
  const chatty = await MockImap.start({ untagged: ["* CAPABILITY IMAP4rev1 CHATTY", "* OK [ALERT] hello"] });
  const deadPort = (await freePorts(1))[0];
  const auth = await MockAuth.start((req: AuthRequestSeen) => {
    const user = req.get("Auth-User") ?? "";
    const pass = req.get("Auth-Pass") ?? "";
    const method = req.get("Auth-Method");
    if (user === "hang@example.com") return null;
    if (user === "garbage@example.com") return "this is not http\r\n\r\n";
    if (user === "down@example.com") return ok("127.0.0.1", deadPort);
    if (user === "chatty@example.com") return ok("127.0.0.1", chatty.port);
    if (user === "nowait@example.com") return refuse("Go away");
    if (user === "badpass@example.com") return ok("127.0.0.1", backend.port, { "Auth-User": "test@example.com", "Auth-Pass": "wrong" });
    if (method === "cram-md5") {
      const salt = req.get("Auth-Salt") ?? "";
      const want = createHmac("md5", "secret").update(salt).digest("hex");
      return pass === want ? ok("127.0.0.1", backend.port, { "Auth-Pass": "secret" }) : refuse("Bad digest", 1);
    }
    if (method === "external") return ok("127.0.0.1", backend.port, { "Auth-Pass": "secret" });
    if ((user === "test@example.com" && pass === "secret") || (user === 'te\\"st@example.com' && pass === 'se\\"cret')) {
      return ok("127.0.0.1", backend.port);
    }
    return refuse("Invalid login or password", 1);
  });
  const kaAuth = await MockAuth.start(
    () => `HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: ${backend.port}\r\nContent-Length: 0\r\n\r\n`,
    true,
  );
  const names = ["main", "passerr", "starttls", "only", "short", "table", "small", "ssl", "tls13", "keepalive", "authshort"];
  const port = await namedPorts(names);
  const conf = `
error_log stderr info;
events { }
mail {
  server_name mail.test;
  auth_http 127.0.0.1:${auth.port}/auth;
  auth_http_header X-Secret "s3cr3t";
  auth_http_timeout ${LONG_MS}ms;
  access_log access.log;
  imap_auth plain login cram-md5 external;
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  server { listen 127.0.0.1:${port.main}; protocol imap; max_errors 3; }
  server { listen 127.0.0.1:${port.passerr}; protocol imap; proxy_pass_error_message on; }
  server { listen 127.0.0.1:${port.starttls}; protocol imap; starttls on; }
  server { listen 127.0.0.1:${port.only}; protocol imap; starttls only; }
  server { listen 127.0.0.1:${port.short}; protocol imap; timeout 700ms; }
  server { listen 127.0.0.1:${port.table}; protocol imap; auth_table users.table; }
  server { listen 127.0.0.1:${port.small}; protocol imap; imap_client_buffer 256; max_errors 2; }
  server { listen 127.0.0.1:${port.ssl} ssl; protocol imap; }
  server { listen 127.0.0.1:${port.tls13} ssl; protocol imap; ssl_protocols TLSv1.3; }
  server { listen 127.0.0.1:${port.keepalive}; protocol imap; auth_http 127.0.0.1:${kaAuth.port}/ka; auth_http_keepalive 2; }
  server { listen 127.0.0.1:${port.authshort}; protocol imap; auth_http_timeout ${AUTH_SHORT_MS}ms; }
}
`;
  const table = `alice@example.org 127.0.0.1:${backend.port} plain:secret\n@example.net 127.0.0.1:${backend.port}\n`;
  const mg = await startMailgate(target, conf, { "users.table": table });
  return { mg, auth, kaAuth, backend, chatty, port };
}

async function client(port: number): Promise<TestClient> {
  const c = await TestClient.open(port);
  assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
  return c;
}

for (const target of targets()) {
  describe(`IMAP through mailgate (${target})`, () => {
    let env: Env;
    before(async () => {
      env = await setup(target);
    });
    after(() => stopAll(env.mg, env.auth, env.kaAuth, env.backend, env.chatty));

    it("CAPABILITY, NOOP and LOGOUT before login", async () => {
      const c = await client(env.port.main);
      c.write("a1 CAPABILITY\r\na2 NOOP\r\n");
      assert.equal(await c.line(), "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=EXTERNAL\r\n");
      assert.equal(await c.line(), "a1 OK completed\r\n");
      assert.equal(await c.line(), "a2 OK completed\r\n");
      c.write("a3 LOGOUT\r\n");
      assert.equal(await c.line(), "* BYE\r\n");
      assert.equal(await c.line(), "a3 OK completed\r\n");
      assert.ok(await c.waitClose());
    });

    it("LOGIN, then the relay carries commands both ways", async () => {
      const before = env.auth.requests.length;
      const c = await client(env.port.main);
      c.write("a1 LOGIN test@example.com secret\r\n");
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      c.write("a2 WHOAMI\r\n");
      assert.equal(await c.line(), "a2 OK test@example.com\r\n");
      const req = env.auth.requests[before];
      assert.equal(req.requestLine, "GET /auth HTTP/1.0");
      assert.deepEqual(req.headers.map(([k]) => k), [
        "Host", "Auth-Method", "Auth-User", "Auth-Pass", "Auth-Protocol", "Auth-Login-Attempt", "Client-IP", "X-Secret",
      ]);
      assert.equal(req.get("Host"), "127.0.0.1");
      assert.equal(req.get("Auth-Method"), "plain");
      assert.equal(req.get("Auth-Pass"), "secret");
      assert.equal(req.get("Auth-Protocol"), "imap");
      assert.equal(req.get("Auth-Login-Attempt"), "1");
      assert.equal(req.get("Client-IP"), "127.0.0.1");
      assert.equal(req.get("X-Secret"), "s3cr3t");
      c.write("a3 LOGOUT\r\n");
      assert.equal(await c.line(), "* BYE\r\n");
      assert.equal(await c.line(), "a3 OK logout\r\n");
      assert.ok(await c.waitClose());
    });

    it("auth_http_keepalive: sessions one after another share one auth connection (HTTP/1.1)", async () => {
      for (let i = 0; i < 3; i++) {
        const c = await client(env.port.keepalive);
        c.write(`a1 LOGIN test@example.com secret\r\na2 LOGOUT\r\n`);
        assert.equal(await c.line(), "a1 OK mock login ok\r\n");
        assert.equal(await c.line(), "* BYE\r\n");
        assert.equal(await c.line(), "a2 OK logout\r\n");
        assert.ok(await c.waitClose());
      }
      assert.equal(env.kaAuth.requests.length, 3);
      assert.ok(env.kaAuth.requests.every((r) => r.requestLine === "GET /ka HTTP/1.1"));
      assert.equal(env.kaAuth.connections, 1);
    });

    it("wrong password: NO after Auth-Wait, then a retry on the same connection works (attempt 2)", async () => {
      const c = await client(env.port.main);
      const t0 = Date.now();
      c.write("a2 LOGIN test@example.com wrong\r\n");
      assert.equal(await c.line(1000 + SLACK_MS), "a2 NO Invalid login or password\r\n");
      assert.ok(Date.now() - t0 >= 990, "Auth-Wait delays the refusal");
      c.write("a3 LOGIN test@example.com secret\r\n");
      assert.equal(await c.line(), "a3 OK mock login ok\r\n");
      const last = env.auth.requests.at(-1)!;
      assert.equal(last.get("Auth-Login-Attempt"), "2");
      c.close();
    });

    it("refusal without Auth-Wait closes the connection", async () => {
      const c = await client(env.port.main);
      c.write("a1 LOGIN nowait@example.com x\r\n");
      assert.equal(await c.line(), "a1 NO Go away\r\n");
      assert.ok(await c.waitClose());
    });

    it("quoted strings are unescaped; literals are taken verbatim", async () => {
      const c = await client(env.port.main);
      c.write('a1 LOGIN "te\\\\\\"st@example.com" "se\\\\\\"cret"\r\n');
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      assert.equal(env.auth.requests.at(-1)!.get("Auth-User"), 'te\\"st@example.com');
      c.close();
      const d = await client(env.port.main);
      d.write("a1 LOGIN {18}\r\n");
      assert.equal(await d.line(), "+ OK\r\n");
      d.write('te\\"st@example.com {8}\r\n');
      assert.equal(await d.line(), "+ OK\r\n");
      d.write('se\\"cret\r\n');
      assert.equal(await d.line(), "a1 OK mock login ok\r\n");
      const conn = env.backend.conns.at(-1)!;
      assert.equal(conn.user, 'te\\"st@example.com');
      assert.equal(conn.pass, 'se\\"cret');
      d.close();
    });

    it("non-synchronising literals in one packet; {0} is an empty string", async () => {
      const c = await client(env.port.main);
      c.write("a1 LOGIN {16+}\r\ntest@example.com {6+}\r\nsecret\r\n");
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      c.close();
      const d = await client(env.port.main);
      d.write("a1 LOGIN test@example.com {0}\r\n");
      assert.equal(await d.line(), "+ OK\r\n");
      d.write("\r\n");
      assert.equal(await d.line(3000), "a1 NO Invalid login or password\r\n");
      assert.equal(env.auth.requests.at(-1)!.get("Auth-Pass"), "");
      d.close();
    });

    it("AUTHENTICATE PLAIN (initial response and continuation), LOGIN, CRAM-MD5, EXTERNAL", async () => {
      const c1 = await client(env.port.main);
      c1.write(`1 AUTHENTICATE PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await c1.line(), "1 OK mock login ok\r\n");
      c1.close();

      const c2 = await client(env.port.main);
      c2.write("2 AUTHENTICATE PLAIN\r\n");
      assert.equal(await c2.line(), "+ \r\n");
      c2.write(b64("authz\0test@example.com\0secret") + "\r\n");
      assert.equal(await c2.line(), "2 OK mock login ok\r\n");
      c2.close();

      const c3 = await client(env.port.main);
      c3.write("3 AUTHENTICATE LOGIN\r\n");
      assert.equal(await c3.line(), "+ VXNlcm5hbWU6\r\n");
      c3.write(b64("test@example.com") + "\r\n");
      assert.equal(await c3.line(), "+ UGFzc3dvcmQ6\r\n");
      c3.write(b64("secret") + "\r\n");
      assert.equal(await c3.line(), "3 OK mock login ok\r\n");
      c3.close();

      const c4 = await client(env.port.main);
      c4.write("4 AUTHENTICATE CRAM-MD5\r\n");
      const ch = await c4.line();
      assert.match(ch, /^\+ [A-Za-z0-9+/=]+\r\n$/);
      const salt = Buffer.from(ch.slice(2).trim(), "base64").toString("latin1");
      assert.match(salt, /^<\d+\.\d+@mail\.test>$/);
      const digest = createHmac("md5", "secret").update(salt).digest("hex");
      c4.write(b64(`test@example.com ${digest}`) + "\r\n");
      assert.equal(await c4.line(), "4 OK mock login ok\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-Method"), "cram-md5");
      assert.equal(req.get("Auth-Salt"), salt);
      assert.equal(req.get("Auth-Pass"), digest);
      c4.close();

      const c5 = await client(env.port.main);
      c5.write(`5 AUTHENTICATE EXTERNAL ${b64("test@example.com")}\r\n`);
      assert.equal(await c5.line(), "5 OK mock login ok\r\n");
      const ext = env.auth.requests.at(-1)!;
      assert.equal(ext.get("Auth-Method"), "external");
      assert.equal(ext.get("Auth-Pass"), "");
      c5.close();
    });

    it("SASL: '*' cancels, bad base64 is a tagged BAD, session continues", async () => {
      const c = await client(env.port.main);
      const n = env.auth.requests.length;
      c.write("1 AUTHENTICATE PLAIN\r\n");
      assert.equal(await c.line(), "+ \r\n");
      c.write("*\r\n");
      assert.equal(await c.line(), "1 BAD invalid command\r\n");
      c.write("2 AUTHENTICATE LOGIN\r\n");
      assert.equal(await c.line(), "+ VXNlcm5hbWU6\r\n");
      c.write("!!!!\r\n");
      assert.equal(await c.line(), "2 BAD invalid command\r\n");
      c.write("3 NOOP\r\n");
      assert.equal(await c.line(), "3 OK completed\r\n");
      assert.equal(env.auth.requests.length, n, "no auth request for cancelled or broken exchanges");
      c.close();
    });

    it("pipelined commands: invalid + NOOP, and LOGIN + LOGOUT forwarded after login", async () => {
      const c = await client(env.port.main);
      c.write("a01 INVALID COMMAND WITH ARGUMENTS\r\na02 NOOP\r\n");
      assert.equal(await c.line(), "a01 BAD invalid command\r\n");
      assert.equal(await c.line(), "a02 OK completed\r\n");
      c.close();
      const d = await client(env.port.main);
      d.write("a01 LOGIN test@example.com secret\r\na02 LOGOUT\r\n");
      assert.equal(await d.line(), "a01 OK mock login ok\r\n");
      assert.equal(await d.line(), "* BYE\r\n");
      assert.equal(await d.line(), "a02 OK logout\r\n");
      assert.ok(await d.waitClose());
    });

    it("an invalid line ending in {n+} closes the connection; the literal is never executed", async () => {
      const c = await client(env.port.main);
      c.write("a03 FOOBAR {10+}\r\ntest test \r\na04 NOOP\r\n");
      assert.equal(await c.line(), "a03 BAD invalid command\r\n");
      assert.ok(await c.waitClose());
      assert.equal(c.pending(), "");
    });

    it("max_errors: the third invalid command gets its BAD and the connection closes", async () => {
      const c = await client(env.port.main);
      c.write("a1 FOO\r\na2 BAR\r\na3 BAZ\r\na4 NOOP\r\n");
      assert.equal(await c.line(), "a1 BAD invalid command\r\n");
      assert.equal(await c.line(), "a2 BAD invalid command\r\n");
      assert.equal(await c.line(), "a3 BAD invalid command\r\n");
      assert.ok(await c.waitClose());
      assert.equal(c.pending(), "");
    });

    it("imap_client_buffer: an overlong command gets BAD and close", async () => {
      const c = await client(env.port.small);
      c.write(`a1 LOGIN user ${"x".repeat(400)}\r\n`);
      assert.equal(await c.line(), "a1 BAD invalid command\r\n");
      assert.ok(await c.waitClose());
      const d = await client(env.port.small);
      d.write("a1 LOGIN {4096}\r\n");
      assert.equal(await d.line(), "a1 BAD invalid command\r\n");
      assert.ok(await d.waitClose());
    });

    it("untagged lines before the backend's tagged OK reach the client in order", async () => {
      const c = await client(env.port.main);
      c.write("a1 LOGIN chatty@example.com pw\r\n");
      assert.equal(await c.line(), "* CAPABILITY IMAP4rev1 CHATTY\r\n");
      assert.equal(await c.line(), "* OK [ALERT] hello\r\n");
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      c.close();
    });

    it("auth service failures give '* BAD internal server error' and close", async () => {
      for (const user of ["hang@example.com", "garbage@example.com", "down@example.com"]) {
        const c = await client(user === "hang@example.com" ? env.port.authshort : env.port.main);
        c.write(`a1 LOGIN ${user} pw\r\n`);
        assert.equal(await c.line(AUTH_SHORT_MS + SLACK_MS), "* BAD internal server error\r\n", user);
        assert.ok(await c.waitClose(), user);
      }
    });

    it("backend refusal: internal error, or the backend's reply with proxy_pass_error_message on", async () => {
      const c = await client(env.port.main);
      c.write("a1 LOGIN badpass@example.com x\r\n");
      assert.equal(await c.line(), "* BAD internal server error\r\n");
      assert.ok(await c.waitClose());
      const d = await client(env.port.passerr);
      d.write("a1 LOGIN badpass@example.com x\r\n");
      assert.equal(await d.line(), "a1 NO [AUTHENTICATIONFAILED] mock says no\r\n");
      assert.ok(await d.waitClose());
    });

    it("relays 8 MiB backend->client and 8 MiB client->backend byte for byte", async () => {
      const c = await client(env.port.main);
      c.write("a1 LOGIN test@example.com secret\r\n");
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      const n = 8 * 1024 * 1024;
      c.write(`a2 BLOB ${n}\r\n`);
      assert.equal(await c.line(), `* BLOB {${n}}\r\n`);
      const got = await c.bytes(n, 30000);
      assert.ok(got.equals(pattern(n, n)), "download intact");
      assert.equal(await c.line(), "\r\n");
      assert.equal(await c.line(), "a2 OK blob\r\n");
      const up = pattern(n, 7);
      c.write(`a3 UPLOAD {${n}+}\r\n`);
      c.write(up);
      c.write("\r\n");
      const sha = createHash("sha256").update(up).digest("hex");
      assert.equal(await c.line(30000), `a3 OK ${n} ${sha}\r\n`);
      c.close();
    });

    it("timeout closes a silent client", async () => {
      const t0 = Date.now();
      const c = await client(env.port.short);
      assert.ok(await c.waitClose(700 + SLACK_MS));
      // mailgate's timer starts after the connect began, so load only makes this later.
      assert.ok(Date.now() - t0 >= 690, `closed after ${Date.now() - t0} ms`);
    });

    it("a delayed refusal (Auth-Wait 1 s > timeout 700 ms) arrives, then `timeout` starts again (auth_http.md §4)", async () => {
      const c = await client(env.port.short);
      const t0 = Date.now();
      c.write("a1 LOGIN test@example.com wrong\r\n");
      assert.equal(await c.line(1000 + SLACK_MS), "a1 NO Invalid login or password\r\n", "not timed out while the auth service decided");
      const t = Date.now();
      assert.ok(await c.waitClose(700 + SLACK_MS));
      // Bounds load cannot break: the NO leaves mailgate >= 1 s after the
      // command (Auth-Wait), the close >= 700 ms after the NO; the test
      // process may see either late, so the gap between them is only
      // bounded above.
      const total = Date.now() - t0;
      const gap = Date.now() - t;
      assert.ok(total >= 1000 + 700 - 10, `closed ${total} ms after the command`);
      assert.ok(gap < 700 + SLACK_MS, `closed ${gap} ms after the NO`);
    });

    it("CAPABILITY with starttls on/only; only refuses LOGIN before TLS", async () => {
      const c = await client(env.port.starttls);
      c.write("1 CAPABILITY\r\n");
      assert.equal(await c.line(), "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=EXTERNAL STARTTLS\r\n");
      assert.equal(await c.line(), "1 OK completed\r\n");
      c.close();
      const d = await client(env.port.only);
      d.write("1 CAPABILITY\r\n");
      assert.equal(await d.line(), "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS STARTTLS LOGINDISABLED\r\n");
      assert.equal(await d.line(), "1 OK completed\r\n");
      d.write("2 LOGIN test@example.com secret\r\n");
      assert.equal(await d.line(), "2 BAD invalid command\r\n");
      d.close();
    });

    it("STARTTLS: pipelined plaintext is discarded; login works inside TLS", async () => {
      const c = await client(env.port.only);
      const n = env.auth.requests.length;
      c.write("1 STARTTLS\r\n2 LOGIN test@example.com secret\r\n");
      assert.equal(await c.line(), "1 OK completed\r\n");
      const tls = await new Promise<import("node:tls").TLSSocket>((resolve, reject) => {
        const t = tlsConnect({ socket: c.sock, ca: CA, servername: "localhost" }, () => resolve(t));
        t.once("error", reject);
      });
      const tc = TestClient.fromSocket(tls);
      tc.write("3 CAPABILITY\r\n");
      assert.equal(await tc.line(), "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=EXTERNAL\r\n");
      assert.equal(await tc.line(), "3 OK completed\r\n");
      assert.equal(env.auth.requests.length, n, "the injected LOGIN was never executed");
      tc.write("4 LOGIN test@example.com secret\r\n");
      assert.equal(await tc.line(), "4 OK mock login ok\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-SSL"), "on");
      assert.match(req.get("Auth-SSL-Protocol") ?? "", /^TLSv1\.[23]$/);
      assert.ok((req.get("Auth-SSL-Cipher") ?? "").length > 0);
      tc.write("5 WHOAMI\r\n");
      assert.equal(await tc.line(), "5 OK test@example.com\r\n");
      tls.destroy();
    });

    it("implicit TLS listener greets inside TLS", async () => {
      const tls = await new Promise<import("node:tls").TLSSocket>((resolve, reject) => {
        const t = tlsConnect({ port: env.port.ssl, host: "127.0.0.1", ca: CA, servername: "localhost" }, () => resolve(t));
        t.once("error", reject);
      });
      const tc = TestClient.fromSocket(tls);
      assert.equal(await tc.line(), "* OK IMAP4 ready\r\n");
      tc.write("1 CAPABILITY\r\n");
      assert.equal(await tc.line(), "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=EXTERNAL\r\n");
      tls.destroy();
    });

    it("ssl_protocols is applied: TLSv1.3 only refuses a TLSv1.2 client", async () => {
      const attempt = (maxVersion: "TLSv1.2" | "TLSv1.3") =>
        new Promise<string>((resolve) => {
          const t = tlsConnect({ port: env.port.tls13, host: "127.0.0.1", ca: CA, servername: "localhost", maxVersion }, () => {
            const p = t.getProtocol() ?? "";
            t.destroy();
            resolve(p);
          });
          t.once("error", () => resolve("refused"));
        });
      assert.equal(await attempt("TLSv1.2"), "refused");
      assert.equal(await attempt("TLSv1.3"), "TLSv1.3");
    });

    it("built-in auth table: verified password, domain route, refusal; no HTTP request", async () => {
      const n = env.auth.requests.length;
      const c = await client(env.port.table);
      c.write("a1 LOGIN alice@example.org wrong\r\n");
      assert.match(await c.line(5000), /^a1 NO /);
      c.write("a2 LOGIN alice@example.org secret\r\n");
      assert.equal(await c.line(), "a2 OK mock login ok\r\n");
      c.close();
      const d = await client(env.port.table);
      d.write("a1 LOGIN test@example.net anything\r\n");
      assert.equal(await d.line(), "a1 OK mock login ok\r\n");
      assert.equal(env.backend.conns.at(-1)!.user, "test@example.net");
      d.close();
      assert.equal(env.auth.requests.length, n);
    });

    it("access log: one line per session with login, upstream, bytes and outcome", async () => {
      const c = await client(env.port.main);
      const cPort = c.sock.localPort;
      c.write("a1 LOGIN test@example.com secret\r\na2 LOGOUT\r\n");
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      assert.ok(await c.waitClose());
      const d = await client(env.port.main);
      const dPort = d.sock.localPort;
      d.write("a1 LOGOUT\r\n");
      assert.ok(await d.waitClose());
      const deadline = Date.now() + 3000;
      let lines: string[] = [];
      while (Date.now() < deadline) {
        lines = readFileSync(join(env.mg.dir, "access.log"), "utf8").split("\n").filter(Boolean);
        if (lines.some((l) => l.includes(`client=127.0.0.1:${dPort} `))) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const mine = lines.find((l) => l.includes(`client=127.0.0.1:${cPort} `));
      assert.match(mine ?? "", new RegExp(
        `^\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d imap client=127\\.0\\.0\\.1:\\d+ server=127\\.0\\.0\\.1:${env.port.main} ` +
          `login="test@example.com" upstream=127\\.0\\.0\\.1:${env.backend.port} tls=no in=45 out=\\d+ time=\\d+\\.\\d{3} outcome=proxied$`,
      ));
      const quit = lines.find((l) => l.includes(`client=127.0.0.1:${dPort} `));
      assert.match(quit ?? "", / login=- upstream=- tls=no in=11 out=\d+ time=\S+ outcome=quit$/);
      assert.ok(!lines.join("\n").includes("secret"), "no password in the access log");
    });

    it("passwords never reach the log", () => {
      const log = env.mg.stderr();
      assert.ok(log.includes("client logged in"), "info log is on");
      for (const secret of ["secret", "se\\\"cret"]) {
        assert.ok(!log.includes(secret), `log contains ${secret}`);
      }
    });
  });
}
