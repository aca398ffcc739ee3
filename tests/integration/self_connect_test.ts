// Issue 13: an auth answer whose Auth-Server/Auth-Port is one of mailgate's
// own listeners must not make mailgate connect to itself (nginx does, and
// replays the login to itself until something gives). The client gets the
// internal-error reply, one error line names the auth answer, and the auth
// service sees exactly one request. Checked for a listener on a specific
// address, for a wildcard listener reached through loopback and through
// one of the machine's other addresses, and, as the control, a backend on
// another port of the same host, which must still work.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts } from "../helpers/ports.ts";

const INTERNAL = "* BAD internal server error\r\n";

/** A non-loopback IPv4 address of this machine, if it has one. */
function machineIpv4(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.family === "IPv4" && !i.internal) return i.address;
  }
  return null;
}

for (const target of targets()) {
  describe(`self-connect (${target})`, () => {
    let mg: Running;
    let auth: MockAuth;
    let backend: MockImap;
    let exact = 0;
    let wild = 0;
    const other = machineIpv4();

    before(async () => {
      backend = await MockImap.start();
      [exact, wild] = await freePorts(2);
      auth = await MockAuth.start((req) => {
        switch (req.get("Auth-User")) {
          case "self":
            return ok("127.0.0.1", exact);
          case "wild":
            return ok("127.0.0.1", wild);
          case "wildother":
            return ok(other ?? "127.0.0.1", wild);
          default:
            return ok("127.0.0.1", backend.port);
        }
      });
      mg = await startMailgate(
        target,
        `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  server { listen 127.0.0.1:${exact}; protocol imap; }
  server { listen 0.0.0.0:${wild}; protocol imap; }
}
`,
      );
    });

    after(async () => {
      await mg?.stop();
      auth?.server.close();
      backend?.server.close();
    });

    /** Logs in as `user` on `port`; returns the answer and the auth requests it caused. */
    async function login(port: number, user: string): Promise<{ reply: string; requests: number }> {
      const before = auth.requests.length;
      const c = await TestClient.open(port);
      try {
        assert.match(await c.line(), /^\* OK/);
        c.write(`a1 LOGIN ${user} secret\r\n`);
        const reply = await c.line(10000);
        return { reply, requests: auth.requests.length - before };
      } finally {
        c.sock.destroy();
      }
    }

    /** Error lines naming this Auth-Server/Auth-Port. */
    const errorsFor = (server: string, port: number) =>
      mg.stderr().split("\n").filter((l) =>
        l.includes("[error]") && l.includes(`Auth-Server: ${server}, Auth-Port: ${port}`)
      );

    it("auth answer naming a listener on a specific address: internal error, no second login", async () => {
      const r = await login(exact, "self");
      assert.equal(r.reply, INTERNAL);
      assert.equal(r.requests, 1);
      await mg.waitLog(new RegExp(`Auth-Server: 127\\.0\\.0\\.1, Auth-Port: ${exact}`));
      const lines = errorsFor("127.0.0.1", exact);
      assert.equal(lines.length, 1, mg.stderr());
      assert.match(lines[0], new RegExp(`own listener 127\\.0\\.0\\.1:${exact}.*login: "self"`));
      assert.equal(mg.stderr().split("\n").filter((l) => l.includes('login: "self"') && l.includes("logged in")).length, 0);
    });

    it("wildcard listener 0.0.0.0, Auth-Server 127.0.0.1: the same", async () => {
      const r = await login(wild, "wild");
      assert.equal(r.reply, INTERNAL);
      assert.equal(r.requests, 1);
      await mg.waitLog(new RegExp(`Auth-Server: 127\\.0\\.0\\.1, Auth-Port: ${wild}`));
      const lines = errorsFor("127.0.0.1", wild);
      assert.equal(lines.length, 1, mg.stderr());
      assert.match(lines[0], new RegExp(`own listener 0\\.0\\.0\\.0:${wild}`));
    });

    it("wildcard listener, Auth-Server one of the machine's other addresses: the same", async (t) => {
      if (other === null) return t.skip("no non-loopback IPv4 address on this machine");
      const r = await login(wild, "wildother");
      assert.equal(r.reply, INTERNAL);
      assert.equal(r.requests, 1);
      await mg.waitLog(new RegExp(`Auth-Server: ${other.replaceAll(".", "\\.")}, Auth-Port: ${wild}`));
      assert.equal(errorsFor(other, wild).length, 1, mg.stderr());
    });

    it("a backend on another port of this host is still dialled", async () => {
      const r = await login(exact, "alice");
      assert.match(r.reply, /^a1 OK/);
      assert.equal(r.requests, 1);
    });
  });
}
