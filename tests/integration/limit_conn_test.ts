// limit_conn through the real process (README "Protection"): limit 1 by
// $remote_user — the second concurrent session of a user is refused with
// freenginx's line and closed; once the first has ended the user gets in
// again; in dry run the second one is let in and the limit only logged.
// One mailgate start per target.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestClient } from "../helpers/client.ts";
import { type AuthRequestSeen, MockAuth, ok } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

for (const target of targets()) {
  describe(`limit_conn (${target})`, () => {
    let mg: Running;
    let auth: MockAuth;
    let imap: MockImap;
    let port: Record<string, number>;

    before(async () => {
      imap = await MockImap.start();
      // ivan and judy are one account to the auth service (X-User), counted by $auth_http_x_user.
      auth = await MockAuth.start((req: AuthRequestSeen) =>
        ok(
          "127.0.0.1",
          imap.port,
          /^(ivan|judy)$/.test(req.get("Auth-User") ?? "") ? { "X-User": "shared" } : {},
        )
      );
      const names = ["limit", "dry", "hdr", "pop3"];
      port = await namedPorts(names);
      mg = await startMailgate(
        target,
        `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  limit_conn_zone $remote_user zone=users:1m;
  limit_conn users 1;
  server { listen 127.0.0.1:${port.limit}; protocol imap; limit_conn_log_level warn; }
  server { listen 127.0.0.1:${port.dry}; protocol imap; limit_conn_dry_run on; }
  limit_conn_zone $auth_http_x_user zone=accounts:32k;
  server { listen 127.0.0.1:${port.hdr}; protocol imap; limit_conn accounts 1; }
  server { listen 127.0.0.1:${port.pop3}; protocol pop3; }
}
`,
      );
    });
    after(() => stopAll(mg, auth, imap));

    /** Logs in as `user`; the open client and the reply line. */
    async function login(p: number, user: string): Promise<{ c: TestClient; reply: string }> {
      const c = await TestClient.open(p);
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      c.write(`a1 LOGIN ${user} secret\r\n`);
      return { c, reply: await c.line(5000) };
    }

    it("the second concurrent session of a user is refused and closed; after the first ends, one gets in", async () => {
      const first = await login(port.limit, "frank");
      assert.match(first.reply, /^a1 OK/);
      const second = await login(port.limit, "frank");
      assert.equal(second.reply, "a1 NO [UNAVAILABLE] Too many connections\r\n");
      assert.ok(await second.c.waitClose());
      await mg.waitLog(/\[warn\][^\n]*limiting connections by zone "users"/);
      // another user is not affected
      const other = await login(port.limit, "grace");
      assert.match(other.reply, /^a1 OK/);
      other.c.close();
      first.c.write("a2 LOGOUT\r\n");
      assert.ok(await first.c.waitClose());
      await mg.waitLog(/proxied session done[^\n]*login: "frank"/);
      const third = await login(port.limit, "frank");
      assert.match(third.reply, /^a1 OK/);
      third.c.close();
    });

    it("limit_conn_dry_run: the second session is let in, the limit logged", async () => {
      const first = await login(port.dry, "heidi");
      assert.match(first.reply, /^a1 OK/);
      const second = await login(port.dry, "heidi");
      assert.match(second.reply, /^a1 OK/);
      await mg.waitLog(/\[error\][^\n]*limiting connections, dry run, by zone "users"/);
      first.c.close();
      second.c.close();
    });

    it("$auth_http_x_user: two logins the auth service names one account are one count", async () => {
      const first = await login(port.hdr, "ivan");
      assert.match(first.reply, /^a1 OK/);
      const second = await login(port.hdr, "judy");
      assert.equal(second.reply, "a1 NO [UNAVAILABLE] Too many connections\r\n");
      assert.ok(await second.c.waitClose());
      first.c.close();
    });

    it("POP3 with limit_conn: RESP-CODES in CAPA", async () => {
      const c = await TestClient.open(port.pop3);
      assert.match(await c.line(), /^\+OK/);
      c.write("CAPA\r\n");
      const lines: string[] = [];
      for (let i = 0; i < 20; i++) {
        const l = await c.line();
        lines.push(l);
        if (l === ".\r\n") break;
      }
      assert.ok(lines.includes("RESP-CODES\r\n"), lines.join(""));
      c.close();
    });
  });
}
