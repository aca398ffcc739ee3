// POP3 end to end through the real mailgate process (Deno, Bun, executable),
// with a mock auth service and a mock POP3 backend; exact bytes on the wire.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, createHmac } from "node:crypto";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, refuse, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockPop3 } from "../helpers/mock_pop3.ts";
import { pattern } from "../helpers/mock_imap.ts";
import { ROOT, startMailgate, targets, type Running, type Target } from "../helpers/mailgate.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const CA = readFileSync(join(TLS, "ca.pem"));
const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");

interface Env {
  mg: Running;
  auth: MockAuth;
  backend: MockPop3;
  port: Record<string, number>;
}

async function setup(target: Target): Promise<Env> {
  const backend = await MockPop3.start({ users: { "test@example.com": "secret" } });
  const auth = await MockAuth.start((req: AuthRequestSeen) => {
    const user = req.get("Auth-User") ?? "";
    const pass = req.get("Auth-Pass") ?? "";
    const method = req.get("Auth-Method");
    const salt = req.get("Auth-Salt") ?? "";
    if (method === "apop") {
      const want = createHash("md5").update(salt + "secret").digest("hex");
      return pass === want ? ok("127.0.0.1", backend.port, { "Auth-Pass": "secret" }) : refuse("Bad digest", 1);
    }
    if (method === "cram-md5") {
      const want = createHmac("md5", "secret").update(salt).digest("hex");
      return pass === want ? ok("127.0.0.1", backend.port, { "Auth-Pass": "secret" }) : refuse("Bad digest", 1);
    }
    if (method === "external") return ok("127.0.0.1", backend.port, { "Auth-Pass": "secret" });
    if (user === "nowait@example.com") return refuse("Go away");
    if (user === "badpass@example.com") return ok("127.0.0.1", backend.port, { "Auth-User": "test@example.com", "Auth-Pass": "x" });
    if (user === "test@example.com" && pass === "secret") return ok("127.0.0.1", backend.port);
    return refuse("Invalid login or password", 1);
  });
  const names = ["main", "starttls", "only", "short", "quiet"];
  const port = await namedPorts(names);
  const conf = `
error_log stderr info;
events { }
mail {
  server_name mail.test;
  auth_http 127.0.0.1:${auth.port}/auth;
  pop3_auth plain apop cram-md5 external;
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  server { listen 127.0.0.1:${port.main}; protocol pop3; max_errors 2; proxy_pass_error_message on; }
  server { listen 127.0.0.1:${port.starttls}; protocol pop3; starttls on; pop3_auth plain cram-md5; }
  server { listen 127.0.0.1:${port.only}; protocol pop3; starttls only; pop3_auth plain cram-md5; }
  server { listen 127.0.0.1:${port.short}; protocol pop3; timeout 700ms; }
  server { listen 127.0.0.1:${port.quiet}; protocol pop3; pop3_auth plain; }
}
`;
  const mg = await startMailgate(target, conf);
  return { mg, auth, backend, port };
}

async function client(port: number, saltRe = /^\+OK POP3 ready( <\d+\.\d+@mail\.test>)?\r\n$/): Promise<[TestClient, string]> {
  const c = await TestClient.open(port);
  const greeting = await c.line();
  assert.match(greeting, saltRe);
  const salt = /<[^>]+>/.exec(greeting)?.[0] ?? "";
  return [c, salt];
}

for (const target of targets()) {
  describe(`POP3 through mailgate (${target})`, () => {
    let env: Env;
    before(async () => {
      env = await setup(target);
    });
    after(async () => {
      await env.mg.stop();
      await env.auth.stop();
      await env.backend.stop();
    });

    it("greeting carries the APOP salt only when apop/cram-md5 is enabled", async () => {
      const [c, salt] = await client(env.port.main);
      assert.match(salt, /^<\d+\.\d+@mail\.test>$/);
      c.close();
      const d = await TestClient.open(env.port.quiet);
      assert.equal(await d.line(), "+OK POP3 ready\r\n");
      d.close();
    });

    it("USER/PASS log in; pipelined USER, PASS, QUIT give three +OK", async () => {
      const [c] = await client(env.port.main);
      c.write("USER test@example.com\r\n");
      assert.equal(await c.line(), "+OK\r\n");
      c.write("PASS secret\r\n");
      assert.equal(await c.line(), "+OK mock logged in\r\n");
      c.write("WHOAMI\r\n");
      assert.equal(await c.line(), "+OK test@example.com\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-Protocol"), "pop3");
      assert.equal(req.get("Auth-Method"), "plain");
      assert.equal(req.get("Auth-Salt"), undefined, "no Auth-Salt for plain");
      c.close();
      const [d] = await client(env.port.main);
      d.write("USER test@example.com\r\nPASS secret\r\nQUIT\r\n");
      assert.equal(await d.line(), "+OK\r\n");
      assert.equal(await d.line(), "+OK mock logged in\r\n");
      assert.equal(await d.line(), "+OK bye\r\n");
      assert.ok(await d.waitClose());
    });

    it("APOP: wrong digest -ERR (session continues), right digest +OK", async () => {
      const [c, salt] = await client(env.port.main);
      c.write(`APOP test@example.com ${"0".repeat(32)}\r\n`);
      assert.equal(await c.line(3000), "-ERR Bad digest\r\n");
      const digest = createHash("md5").update(salt + "secret").digest("hex");
      c.write(`APOP test@example.com ${digest}\r\n`);
      assert.equal(await c.line(), "+OK mock logged in\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-Method"), "apop");
      assert.equal(req.get("Auth-Salt"), salt);
      assert.equal(req.get("Auth-Login-Attempt"), "2");
      c.close();
    });

    it("AUTH lists the mechanisms; CAPA", async () => {
      const [c] = await client(env.port.main);
      c.write("AUTH\r\n");
      assert.deepEqual(await c.until(/^\.\r\n$/), ["+OK methods supported:\r\n", "PLAIN\r\n", "LOGIN\r\n", "CRAM-MD5\r\n", "EXTERNAL\r\n", ".\r\n"]);
      c.write("CAPA\r\n");
      assert.deepEqual(await c.until(/^\.\r\n$/), [
        "+OK Capability list follows\r\n", "TOP\r\n", "USER\r\n", "UIDL\r\n", "SASL PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n", ".\r\n",
      ]);
      c.close();
    });

    it("AUTH PLAIN / LOGIN / CRAM-MD5 / EXTERNAL", async () => {
      const [c1] = await client(env.port.main);
      c1.write(`AUTH PLAIN ${b64("\0test@example.com\0wrong")}\r\n`);
      assert.equal(await c1.line(3000), "-ERR Invalid login or password\r\n");
      c1.write(`AUTH PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await c1.line(), "+OK mock logged in\r\n");
      c1.close();

      const [c2] = await client(env.port.main);
      c2.write(`AUTH LOGIN\r\n${b64("test@example.com")}\r\n${b64("secret")}\r\n`);
      assert.equal(await c2.line(), "+ VXNlcm5hbWU6\r\n");
      assert.equal(await c2.line(), "+ UGFzc3dvcmQ6\r\n");
      assert.equal(await c2.line(), "+OK mock logged in\r\n");
      c2.close();

      const [c3, salt] = await client(env.port.main);
      c3.write("AUTH CRAM-MD5\r\n");
      const ch = await c3.line();
      assert.equal(ch, `+ ${b64(salt)}\r\n`, "the challenge is the greeting's salt");
      const digest = createHmac("md5", "secret").update(salt).digest("hex");
      c3.write(b64(`test@example.com ${digest}`) + "\r\n");
      assert.equal(await c3.line(), "+OK mock logged in\r\n");
      c3.close();

      const [c4] = await client(env.port.main);
      c4.write("AUTH EXTERNAL\r\n");
      assert.equal(await c4.line(), "+ VXNlcm5hbWU6\r\n");
      c4.write(b64("test@example.com") + "\r\n");
      assert.equal(await c4.line(), "+OK mock logged in\r\n");
      assert.equal(env.auth.requests.at(-1)!.get("Auth-Pass"), "");
      c4.close();
    });

    it("'*' cancels a SASL exchange; invalid + NOOP pipelined", async () => {
      const [c] = await client(env.port.main);
      const n = env.auth.requests.length;
      c.write("AUTH PLAIN\r\n");
      assert.equal(await c.line(), "+ \r\n");
      c.write("*\r\n");
      assert.equal(await c.line(), "-ERR invalid command\r\n");
      c.write("FOOB\r\nNOOP\r\n");
      assert.equal(await c.line(), "-ERR invalid command\r\n");
      assert.equal(await c.line(), "+OK\r\n");
      assert.equal(env.auth.requests.length, n);
      c.close();
    });

    it("max_errors 2: two -ERR then close; a line over pop3_client_buffer (4096) closes", async () => {
      const [c] = await client(env.port.main);
      c.write("AAAA\r\nBBBB\r\nNOOP\r\n");
      assert.equal(await c.line(), "-ERR invalid command\r\n");
      assert.equal(await c.line(), "-ERR invalid command\r\n");
      assert.ok(await c.waitClose());
      assert.equal(c.pending(), "");
      const [d] = await client(env.port.main);
      d.write(`USER ${"x".repeat(4100)}\r\n`);
      assert.equal(await d.line(), "-ERR invalid command\r\n");
      assert.ok(await d.waitClose());
    });

    it("a refusal without Auth-Wait: -ERR, then close; pipelined commands are not answered", async () => {
      const c = await TestClient.open(env.port.main);
      await c.line();
      c.write("USER nowait@example.com\r\nPASS x\r\nNOOP\r\n");
      assert.equal(await c.line(), "+OK\r\n");
      assert.equal(await c.line(), "-ERR Go away\r\n");
      assert.ok(await c.waitClose(5000));
      assert.equal(c.pending(), "", "nothing after the refusal");
    });

    it("backend refusal with proxy_pass_error_message on: the backend's -ERR, then close", async () => {
      const [c] = await client(env.port.main);
      c.write("USER badpass@example.com\r\nPASS x\r\n");
      assert.equal(await c.line(), "+OK\r\n");
      assert.equal(await c.line(), "-ERR [AUTH] mock says no\r\n");
      assert.ok(await c.waitClose());
    });

    it("relays 4 MiB each way byte for byte", async () => {
      const [c] = await client(env.port.main);
      c.write("USER test@example.com\r\nPASS secret\r\n");
      assert.equal(await c.line(), "+OK\r\n");
      assert.equal(await c.line(), "+OK mock logged in\r\n");
      const n = 4 << 20;
      c.write(`BLOB ${n}\r\n`);
      assert.equal(await c.line(), `+OK ${n}\r\n`);
      assert.ok((await c.bytes(n, 30000)).equals(pattern(n, n)));
      assert.equal(await c.line(), "\r\n");
      assert.equal(await c.line(), ".\r\n");
      const up = pattern(n, 9);
      c.write(`UPLOAD ${n}\r\n`);
      c.write(up);
      assert.equal(await c.line(30000), `+OK ${n} ${createHash("sha256").update(up).digest("hex")}\r\n`);
      c.close();
    });

    it("CAPA with starttls on/only; only refuses USER before STLS", async () => {
      const [c] = await client(env.port.starttls);
      c.write("CAPA\r\n");
      assert.deepEqual(await c.until(/^\.\r\n$/), [
        "+OK Capability list follows\r\n", "TOP\r\n", "USER\r\n", "UIDL\r\n", "SASL PLAIN LOGIN CRAM-MD5\r\n", "STLS\r\n", ".\r\n",
      ]);
      c.close();
      const [d] = await client(env.port.only);
      d.write("CAPA\r\n");
      assert.deepEqual(await d.until(/^\.\r\n$/), ["+OK Capability list follows\r\n", "TOP\r\n", "UIDL\r\n", "STLS\r\n", ".\r\n"]);
      d.write("USER test@example.com\r\n");
      assert.equal(await d.line(), "-ERR invalid command\r\n");
      d.write("AUTH LOGIN\r\n");
      assert.equal(await d.line(), "-ERR invalid command\r\n");
      d.close();
    });

    it("STLS: pipelined plaintext discarded, login inside TLS", async () => {
      const [c] = await client(env.port.only);
      const n = env.auth.requests.length;
      c.write("STLS\r\nUSER test@example.com\r\nPASS secret\r\n");
      assert.equal(await c.line(), "+OK\r\n");
      const tls = await new Promise<TLSSocket>((resolve, reject) => {
        const t = tlsConnect({ socket: c.sock, ca: CA, servername: "localhost" }, () => resolve(t));
        t.once("error", reject);
      });
      const tc = TestClient.fromSocket(tls);
      tc.write("CAPA\r\n");
      assert.deepEqual(await tc.until(/^\.\r\n$/), [
        "+OK Capability list follows\r\n", "TOP\r\n", "USER\r\n", "UIDL\r\n", "SASL PLAIN LOGIN CRAM-MD5\r\n", ".\r\n",
      ]);
      tc.write("PASS secret\r\n");
      assert.equal(await tc.line(), "-ERR invalid command\r\n", "the injected USER was discarded");
      assert.equal(env.auth.requests.length, n);
      tc.write("USER test@example.com\r\nPASS secret\r\n");
      assert.equal(await tc.line(), "+OK\r\n");
      assert.equal(await tc.line(), "+OK mock logged in\r\n");
      assert.equal(env.auth.requests.at(-1)!.get("Auth-SSL"), "on");
      tls.destroy();
    });

    it("timeout closes a silent client", async () => {
      const [c] = await client(env.port.short);
      assert.ok(await c.waitClose(700 + 5000));
    });
  });
}
