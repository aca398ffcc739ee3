// Protection through the real process (README "Protection"): the auth
// cache answers a repeated login without the auth service; wrong passwords
// from one address (the real one, from a trusted PROXY header) lock that
// address out while the same user from elsewhere still logs in; max_commands
// closes a chatty pre-auth session. One mailgate start per target.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestClient } from "../helpers/client.ts";
import { type AuthRequestSeen, MockAuth, ok, refuse } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts } from "../helpers/ports.ts";

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
      const names = ["cache", "limit", "chatty"];
      const ps = await freePorts(names.length);
      port = Object.fromEntries(names.map((n, i) => [n, ps[i]]));
      mg = await startMailgate(
        target,
        `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
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
