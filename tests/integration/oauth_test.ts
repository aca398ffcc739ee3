// XOAUTH2 and OAUTHBEARER end to end through the real mailgate process
// (issue 15): one mailgate per target with an IMAP, a POP3 and an SMTP
// listener, the mock auth service and mock backends. The auth service sees
// Auth-Method xoauth2/oauthbearer, the user and the bare token, and answers
// with Auth-Pass for the backend (freenginx's default backend login); a
// refusal with Auth-Error-SASL goes to the client as the error challenge.
// No token ever reaches mailgate's error log.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { TestClient } from "../helpers/client.ts";
import { type AuthRequestSeen, MockAuth, ok, refuse } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { MockPop3 } from "../helpers/mock_pop3.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { type Running, startMailgate, type Target, targets } from "../helpers/mailgate.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");
const GOOD = "good." + "x".repeat(40);
/** A 4 KB+ token, as Microsoft's with many claims. */
const BIG = "big." + "A".repeat(4200);
const SASLFAIL = "saslfail.token.1";
const BADSASL = "badsasl.token.2";
const ERROR_JSON_B64 = b64('{"status":"invalid_token","scheme":"bearer"}');
const xo = (user: string, token: string) => b64(`user=${user}\x01auth=Bearer ${token}\x01\x01`);
const ob = (authz: string, token: string) =>
  b64(`n,a=${authz},\x01host=mail.test\x01port=143\x01auth=Bearer ${token}\x01\x01`);

interface Env {
  mg: Running;
  auth: MockAuth;
  imap: MockImap;
  pop3: MockPop3;
  smtp: MockSmtp;
  port: Record<string, number>;
}

async function setup(target: Target): Promise<Env> {
  const users = { "test@example.com": "secret" };
  const imap = await MockImap.start({ users });
  const pop3 = await MockPop3.start({ users });
  const smtp = await MockSmtp.start({ users });
  const backend: Record<string, number> = { imap: imap.port, pop3: pop3.port, smtp: smtp.port };
  const auth = await MockAuth.start((req: AuthRequestSeen) => {
    const method = req.get("Auth-Method");
    const pass = req.get("Auth-Pass") ?? "";
    const port = backend[req.get("Auth-Protocol") ?? ""];
    if (method !== "xoauth2" && method !== "oauthbearer") return refuse("only tokens here");
    if (pass === GOOD || pass === BIG) {
      return ok("127.0.0.1", port, { "Auth-User": "test@example.com", "Auth-Pass": "secret" });
    }
    if (pass === SASLFAIL) {
      return refuse("auth-failed", undefined, {
        "Auth-Error-SASL": ERROR_JSON_B64,
        "Auth-Error-Code": "535 5.7.8",
      });
    }
    if (pass === BADSASL) {
      return refuse("auth-failed", undefined, { "Auth-Error-SASL": "{not-base64}" });
    }
    return refuse("auth-failed");
  });
  const names = ["imap", "pop3", "smtp"];
  const port = await namedPorts(names);
  const conf = `
error_log stderr info;
events { }
mail {
  server_name mail.test;
  auth_http 127.0.0.1:${auth.port}/auth;
  server { listen 127.0.0.1:${port.imap}; protocol imap; imap_auth xoauth2 oauthbearer; imap_client_buffer 16k; }
  server { listen 127.0.0.1:${port.pop3}; protocol pop3; pop3_auth plain xoauth2 oauthbearer; pop3_client_buffer 16k; }
  server { listen 127.0.0.1:${port.smtp}; protocol smtp; smtp_auth xoauth2 oauthbearer; smtp_client_buffer 16k; }
}
`;
  const mg = await startMailgate(target, conf);
  return { mg, auth, imap, pop3, smtp, port };
}

async function open(port: number): Promise<TestClient> {
  const c = await TestClient.open(port);
  await c.line();
  return c;
}

for (const target of targets()) {
  describe(`XOAUTH2 / OAUTHBEARER through mailgate (${target})`, () => {
    let env: Env;
    before(async () => {
      env = await setup(target);
    });
    after(async () => {
      await env.mg.stop();
      await env.auth.stop();
      await env.imap.stop();
      await env.pop3.stop();
      await env.smtp.stop();
    });

    it("IMAP: capabilities; XOAUTH2 (SASL-IR) logs in to the backend with Auth-Pass", async () => {
      const c = await open(env.port.imap);
      c.write("a0 CAPABILITY\r\n");
      assert.match(await c.line(), /AUTH=OAUTHBEARER AUTH=XOAUTH2\r\n$/);
      await c.line();
      c.write(`a1 AUTHENTICATE XOAUTH2 ${xo("test@example.com", GOOD)}\r\n`);
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-Method"), "xoauth2");
      assert.equal(req.get("Auth-User"), "test@example.com");
      assert.equal(req.get("Auth-Pass"), GOOD);
      c.close();
    });

    it("IMAP: OAUTHBEARER after the empty challenge, a 4 KB+ token, a= unescaped", async () => {
      const c = await open(env.port.imap);
      c.write("a1 AUTHENTICATE OAUTHBEARER\r\n");
      assert.equal(await c.line(), "+ \r\n");
      c.write(ob("test=2C=3D@example.com", BIG) + "\r\n");
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-Method"), "oauthbearer");
      assert.equal(req.get("Auth-User"), "test,=@example.com");
      assert.equal(req.get("Auth-Pass"), BIG);
      c.close();
    });

    it("IMAP: Auth-Error-SASL is the error challenge; the dummy reply, then NO and close (no Auth-Wait)", async () => {
      const c = await open(env.port.imap);
      c.write(`a1 AUTHENTICATE XOAUTH2 ${xo("test@example.com", SASLFAIL)}\r\n`);
      assert.equal(await c.line(), `+ ${ERROR_JSON_B64}\r\n`);
      c.write("AQ==\r\n");
      assert.equal(await c.line(), "a1 NO auth-failed\r\n");
      assert.ok(await c.waitClose());
    });

    it("POP3: CAPA SASL lists them; OAUTHBEARER IR with a 4 KB+ token; malformed -ERR", async () => {
      const c = await open(env.port.pop3);
      c.write("CAPA\r\n");
      const capa = await c.until(/^\.\r\n$/);
      assert.ok(capa.includes("SASL PLAIN LOGIN OAUTHBEARER XOAUTH2\r\n"), capa.join(""));
      c.write(`AUTH OAUTHBEARER ${b64("n,,\x01auth=Bearer x\x01")}\r\n`);
      assert.equal(await c.line(), "-ERR invalid command\r\n");
      c.write(`AUTH OAUTHBEARER ${ob("test@example.com", BIG)}\r\n`);
      assert.equal(await c.line(), "+OK mock logged in\r\n");
      c.close();
    });

    it("POP3: an Auth-Error-SASL that is not base64 is ignored: a plain -ERR, logged", async () => {
      const c = await open(env.port.pop3);
      c.write(`AUTH XOAUTH2 ${xo("test@example.com", BADSASL)}\r\n`);
      assert.equal(await c.line(), "-ERR auth-failed\r\n");
      assert.ok(await c.waitClose());
      await env.mg.waitLog(/sent invalid "Auth-Error-SASL" header \(not base64\), ignored/);
    });

    it("SMTP: EHLO AUTH line; XOAUTH2 235; error challenge 334, then Auth-Error-Code", async () => {
      const c = await open(env.port.smtp);
      c.write("EHLO client.example\r\n");
      const ehlo = await c.until(/^250 /);
      assert.ok(ehlo.includes("250 AUTH OAUTHBEARER XOAUTH2\r\n"), ehlo.join(""));
      c.write(`AUTH OAUTHBEARER ${ob("test@example.com", SASLFAIL)}\r\n`);
      assert.equal(await c.line(), `334 ${ERROR_JSON_B64}\r\n`);
      c.write("AQ==\r\n");
      assert.equal(await c.line(), "535 5.7.8 auth-failed\r\n");
      assert.ok(await c.waitClose());
      const d = await open(env.port.smtp);
      d.write("EHLO client.example\r\n");
      await d.until(/^250 /);
      d.write(`AUTH XOAUTH2 ${xo("test@example.com", GOOD)}\r\n`);
      assert.equal(await d.line(), "235 2.0.0 OK\r\n");
      d.close();
    });

    it("no token in the error log", () => {
      const log = env.mg.stderr();
      for (const t of [GOOD, BIG.slice(0, 40), SASLFAIL, BADSASL]) assert.ok(!log.includes(t), t);
    });
  });
}
