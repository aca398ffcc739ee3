// mailgate's TLS-to-backend extension through the real process: implicit
// TLS (proxy_ssl) and STARTTLS (proxy_starttls) to IMAP backends, with
// certificate verification, refusal, and plaintext injection after the
// backend's STARTTLS OK.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockTlsImap } from "../helpers/mock_tls_imap.ts";
import { ROOT, startMailgate, targets, type Running } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");

for (const target of targets()) {
  describe(`TLS to backends (${target})`, () => {
    let mg: Running;
    let auth: MockAuth;
    const be: Record<string, MockTlsImap> = {};
    let port: Record<string, number>;
    before(async () => {
      be.implicit = await MockTlsImap.start({ mode: "implicit", fixtures: TLS });
      be.starttls = await MockTlsImap.start({ mode: "starttls", fixtures: TLS });
      be.refuse = await MockTlsImap.start({ mode: "starttls", fixtures: TLS, refuseStarttls: true });
      be.inject = await MockTlsImap.start({ mode: "starttls", fixtures: TLS, inject: "a1 OK forged login\r\n" });
      auth = await MockAuth.start((req: AuthRequestSeen) => ok("127.0.0.1", be[req.get("X-Backend")!].port));
      const names = ["implicit", "starttls", "refuse", "inject", "badname"];
      port = await namedPorts(names);
      const verify = `proxy_ssl_verify on; proxy_ssl_trusted_certificate ${join(TLS, "ca.pem")}; proxy_ssl_name localhost;`;
      mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  server { listen 127.0.0.1:${port.implicit}; protocol imap; proxy_ssl on; ${verify} auth_http_header X-Backend implicit; }
  server { listen 127.0.0.1:${port.starttls}; protocol imap; proxy_starttls on; ${verify} auth_http_header X-Backend starttls; }
  server { listen 127.0.0.1:${port.refuse}; protocol imap; proxy_starttls on; auth_http_header X-Backend refuse; }
  server { listen 127.0.0.1:${port.inject}; protocol imap; proxy_starttls on; auth_http_header X-Backend inject; }
  server { listen 127.0.0.1:${port.badname}; protocol imap; proxy_ssl on; proxy_ssl_verify on;
           proxy_ssl_trusted_certificate ${join(TLS, "ca.pem")}; proxy_ssl_name wrong.example; auth_http_header X-Backend implicit; }
}
`);
    });
    after(() => stopAll(mg, auth, ...Object.values(be)));

    async function login(p: number): Promise<[TestClient, string]> {
      const c = await TestClient.open(p);
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      c.write("a1 LOGIN alice secret\r\n");
      return [c, await c.line(5000)];
    }

    it("proxy_ssl on: the login runs inside TLS, verified against proxy_ssl_name", async () => {
      const [c, reply] = await login(port.implicit);
      assert.equal(reply, "a1 OK logged in over TLS\r\n");
      c.write("a2 WHOAMI\r\n");
      assert.equal(await c.line(), "a2 OK tls alice\r\n");
      assert.equal(be.implicit.logins.at(-1)!.pass, "secret");
      c.close();
    });

    it("proxy_starttls on: STARTTLS, capabilities re-read over TLS, then LOGIN", async () => {
      const [c, reply] = await login(port.starttls);
      assert.equal(reply, "a1 OK logged in over TLS\r\n");
      const l = be.starttls.logins.at(-1)!;
      assert.equal(l.tls, true);
      assert.deepEqual(l.commands.map((x) => x.split(" ")[1]), ["STARTTLS", "CAPABILITY", "LOGIN"]);
      c.close();
    });

    it("a backend that refuses STARTTLS is a login failure, never a plaintext fallback", async () => {
      const [c, reply] = await login(port.refuse);
      assert.equal(reply, "* BAD internal server error\r\n");
      assert.ok(await c.waitClose());
      assert.equal(be.refuse.logins.length, 0, "no password was sent in plaintext");
      await mg.waitLog(/upstream does not support STARTTLS: "mgs1 NO not today"/);
    });

    it("bytes the backend sends in plaintext after its STARTTLS OK are discarded", async () => {
      const [c, reply] = await login(port.inject);
      assert.equal(reply, "a1 OK logged in over TLS\r\n", "the forged plaintext line never reached the client");
      c.close();
    });

    it("certificate name mismatch: internal error, nothing sent", async () => {
      const before = be.implicit.logins.length;
      const [c, reply] = await login(port.badname);
      assert.equal(reply, "* BAD internal server error\r\n");
      assert.ok(await c.waitClose());
      assert.equal(be.implicit.logins.length, before);
    });
  });
}
