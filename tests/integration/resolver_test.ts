// SMTP client host lookup (mail_resolver.t) through the real mailgate
// process: Client-Host and XCLIENT NAME= from the configured name server
// only (never /etc/hosts), [TEMPUNAVAIL] on failures, lookups never block
// other sessions, early commands answered exactly once.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, refuse, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { A, FakeDns, PTR, SERVFAIL, zone } from "../helpers/fake_dns.ts";
import { startMailgate, targets, type Running } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const PTR_NAME = "1.0.0.127.in-addr.arpa";

for (const target of targets()) {
  describe(`SMTP client host lookup (${target})`, () => {
    let mg: Running;
    let auth: MockAuth;
    let smtp: MockSmtp;
    let good: FakeDns;
    let fail: FakeDns;
    let silent: FakeDns;
    let port: Record<string, number>;
    before(async () => {
      smtp = await MockSmtp.start();
      auth = await MockAuth.start((req: AuthRequestSeen) => {
        const host = req.get("Client-Host") ?? "";
        return host.includes("UNAVAIL") ? refuse(host) : ok("127.0.0.1", smtp.port);
      });
      good = await FakeDns.start(zone({
        [`${PTR_NAME} PTR`]: { answers: [{ type: PTR, data: "a.example.net" }] },
        "a.example.net A": { answers: [{ type: A, data: "127.0.0.1" }] },
        "a.example.net AAAA": { answers: [] },
      }));
      fail = await FakeDns.start(zone({ [`${PTR_NAME} PTR`]: { rcode: SERVFAIL } }));
      silent = await FakeDns.start(() => null);
      const names = ["good", "fail", "silent"];
      port = await namedPorts(names);
      mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  server_name locahost;
  auth_http 127.0.0.1:${auth.port}/auth;
  smtp_auth none;
  resolver_timeout 2s;
  server { listen 127.0.0.1:${port.good}; protocol smtp; resolver 127.0.0.1:${good.port}; }
  server { listen 127.0.0.1:${port.fail}; protocol smtp; resolver 127.0.0.1:${fail.port}; }
  server { listen 127.0.0.1:${port.silent}; protocol smtp; resolver 127.0.0.1:${silent.port}; resolver_timeout 4s; }
}
`);
    });
    after(() => stopAll(mg, auth, smtp, good, fail, silent));

    async function mailRcpt(p: number): Promise<string> {
      const c = await TestClient.open(p);
      assert.equal(await c.line(20000), "220 locahost ESMTP ready\r\n");
      c.write("EHLO example.com\r\n");
      await c.until(/^250 /);
      c.write("MAIL FROM:<test@example.com>\r\nRCPT TO:<test@example.com>\r\n");
      assert.match(await c.line(), /^250 /);
      const r = await c.line(20000);
      c.close();
      return r;
    }

    it("PTR and a matching A record: Client-Host and XCLIENT NAME= are the name", async () => {
      assert.match(await mailRcpt(port.good), /^250 /);
      assert.equal(auth.requests.at(-1)!.get("Client-Host"), "a.example.net");
      assert.match(smtp.conns.at(-1)!.lines.find((l) => l.startsWith("XCLIENT")) ?? "", / NAME=a\.example\.net$/);
    });

    it("a later connection is served from the cache", async () => {
      const before = good.count();
      assert.match(await mailRcpt(port.good), /^250 /);
      assert.equal(good.count(), before, "no new query");
    });

    it("SERVFAIL: [TEMPUNAVAIL]", async () => {
      assert.equal(await mailRcpt(port.fail), "535 5.7.0 [TEMPUNAVAIL]\r\n");
    });

    it("no answer within resolver_timeout: [TEMPUNAVAIL]; a concurrent session still gets its greeting at once", async () => {
      // The silent lookup holds its session for resolver_timeout (4 s); the
      // other session's greeting must come while it is still pending. An
      // order check rather than a time bound: load cannot reorder them
      // unless it stalls mailgate for the whole 4 s.
      let slowDone = false;
      const slow = mailRcpt(port.silent).finally(() => (slowDone = true));
      const other = await TestClient.open(port.good);
      assert.equal(await other.line(), "220 locahost ESMTP ready\r\n");
      assert.equal(slowDone, false, "not blocked by the other lookup");
      other.close();
      assert.equal(await slow, "535 5.7.0 [TEMPUNAVAIL]\r\n");
    });

    it("EHLO sent before the greeting (while the lookup runs) is answered once, after the greeting", async () => {
      const c = await TestClient.open(port.silent);
      c.write("EHLO early.example\r\n");
      assert.equal(await c.line(20000), "220 locahost ESMTP ready\r\n");
      assert.deepEqual(await c.until(/^250 /), ["250 locahost\r\n"]);
      c.write("NOOP\r\n");
      assert.equal(await c.line(), "250 2.0.0 OK\r\n", "exactly one EHLO reply");
      c.close();
    });
  });
}
