// First run: the shipped conf/mailgate.conf and conf/users.table, moved to
// test ports. The start-up notice says where logins are routed; a login
// routed to a backend where nothing listens gets the internal error, logged
// with nginx's connect() line and, once, a hint in plain words; a login
// routed to a running backend works.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { ROOT, type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts } from "../helpers/ports.ts";

/** `text` with `from` replaced once; fails if the shipped file no longer has it. */
function replaceOnce(text: string, from: RegExp, to: string): string {
  assert.match(text, from, `shipped file changed: ${from} not found`);
  return text.replace(from, to);
}

for (const target of targets()) {
  describe(`first run with the shipped configuration (${target})`, () => {
    let mg: Running;
    let backend: MockImap;
    let listen: number;
    let dead: number;
    before(async () => {
      [listen, dead] = await freePorts(2);
      backend = await MockImap.start({ users: { "alice@example.org": "secret" } });
      const conf = replaceOnce(
        readFileSync(join(ROOT, "conf", "mailgate.conf"), "utf8"),
        /listen +127\.0\.0\.1:1143;/,
        `listen 127.0.0.1:${listen};`,
      );
      const table = replaceOnce(
        readFileSync(join(ROOT, "conf", "users.table"), "utf8"),
        /^\*( +)127\.0\.0\.1:143$/m,
        `*$1127.0.0.1:${dead}`,
      ) + `alice@example.org 127.0.0.1:${backend.port}\n`;
      mg = await startMailgate(target, conf, { "users.table": table }, /routing imap on .*\n/);
    });
    after(() => stopAll(mg, backend));

    it("the start-up notice names the auth table and its backends", () => {
      const line = /\[notice\] \d+#0: (routing .*)\n/.exec(mg.stderr());
      assert.equal(
        line?.[1],
        `routing imap on 127.0.0.1:${listen} by auth table ${join(mg.dir, "users.table")} ` +
          `(backends 127.0.0.1:${dead}, 127.0.0.1:${backend.port})`,
      );
    });

    it("a refused backend: internal error, nginx's connect() line, and the hint once", async () => {
      for (let i = 1; i <= 2; i++) {
        const c = await TestClient.open(listen);
        assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
        c.write(`a${i} LOGIN bob@example.com secret\r\n`);
        assert.equal(await c.line(), "* BAD internal server error\r\n");
        c.close();
        await mg.waitLog(new RegExp(`(connect\\(\\) to 127\\.0\\.0\\.1:${dead} failed[^\\n]*\\n[^]*){${i}}`));
      }
      const err = mg.stderr();
      const connects = err.match(
        new RegExp(
          `\\[error\\] \\d+#0: \\*\\d+ connect\\(\\) to 127\\.0\\.0\\.1:${dead} failed \\(111: Connection refused\\), ` +
            `client: 127\\.0\\.0\\.1, server: 127\\.0\\.0\\.1:${listen}, login: "bob@example\\.com", upstream: 127\\.0\\.0\\.1:${dead}\\n`,
          "g",
        ),
      );
      assert.equal(connects?.length, 2, err);
      const hints = err.match(/\[notice\] \d+#0: \*\d+ backend .*\n/g) ?? [];
      assert.equal(hints.length, 1, err);
      assert.ok(
        hints[0].includes(
          `backend 127.0.0.1:${dead} refused the connection: no mail server listens there, so logins ` +
            `routed to it fail with an internal server error; start one there, or change the route ` +
            `(auth table ${join(mg.dir, "users.table")}), client: 127.0.0.1`,
        ),
        hints[0],
      );
    });

    it("a login routed to a running backend works", async () => {
      const c = await TestClient.open(listen);
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      c.write("a1 LOGIN alice@example.org secret\r\n");
      assert.match(await c.line(), /^a1 OK /);
      c.write("a2 LOGOUT\r\n");
      await c.until(/^a2 OK/);
      c.close();
    });
  });
}
