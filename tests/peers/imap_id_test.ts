// Real peers (issue 15): IMAP ID before login, and the client's address
// forwarded to a real Dovecot that trusts mailgate (login_trusted_networks):
// with proxy_imap_id on, Dovecot's own login line shows the address a PROXY
// header claimed and mailgate's session id; the same for POP3 with
// proxy_pop3_xclient on. Clients are Python's imaplib / poplib (behind a
// PROXY v1 header they write themselves) and a raw socket for bad input.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { startMailgate, targets, type Running } from "../helpers/mailgate.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { freePorts } from "../helpers/ports.ts";
import { TestClient } from "../helpers/client.ts";

const avail = peersAvailable("dovecot", "python3");
const USER = "alice@example.org";
const PASS = "wonderland";
const CLAIMED = "203.0.113.7";
const CLIENT_TIMEOUT_MS = 30000;

function python(script: string) {
  return spawnSync("python3", ["-c", script], { timeout: CLIENT_TIMEOUT_MS, maxBuffer: 1 << 20 });
}

/** Python: a socket to 127.0.0.1:port that first sends a PROXY v1 header claiming CLAIMED (or nothing). */
const PY_SOCKET = `
import socket
def proxied(port, timeout, claim):
    s = socket.create_connection(("127.0.0.1", port), timeout)
    if claim:
        s.sendall(("PROXY TCP4 %s 127.0.0.1 40000 %d\\r\\n" % (claim, port)).encode())
    return s
`;

/** imaplib: ID ("name" "imaplib"), then LOGIN and SELECT; prints the ID answer and the SELECT result. */
function imaplibLogin(port: number, claim: string | null) {
  const r = python(`
import imaplib, json, sys
${PY_SOCKET}
imaplib.Commands["ID"] = ("NONAUTH", "AUTH", "SELECTED")
class C(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return proxied(self.port, timeout, ${claim === null ? "None" : `"${claim}"`})
m = C("127.0.0.1", ${port}, timeout=20)
typ, dat = m._simple_command("ID", '("name" "imaplib" "x-originating-ip" "10.9.9.9")')
_, ids = m._untagged_response(typ, dat, "ID")
m.login("${USER}", "${PASS}")
sel = m.select("INBOX")[0]
m.logout()
sys.stdout.write(json.dumps({"id": typ, "ids": [x.decode() if x else None for x in ids], "select": sel}))
`);
  assert.equal(r.status, 0, String(r.stderr));
  return JSON.parse(String(r.stdout));
}

function poplibLogin(port: number, claim: string) {
  const r = python(`
import poplib, json, sys
${PY_SOCKET}
class C(poplib.POP3):
    def _create_socket(self, timeout):
        return proxied(self.port, timeout, "${claim}")
p = C("127.0.0.1", ${port}, timeout=20)
p.user("${USER}")
resp = p.pass_("${PASS}")
count, size = p.stat()
p.quit()
sys.stdout.write(json.dumps({"pass": resp.decode(), "count": count}))
`);
  assert.equal(r.status, 0, String(r.stderr));
  return JSON.parse(String(r.stdout));
}

/** Dovecot's login lines for USER (imap-login / pop3-login). */
function loginLines(d: Dovecot, service: "imap-login" | "pop3-login"): string[] {
  return d.log().split("\n").filter((l) => l.includes(`${service}: Info: Login: user=<${USER}>`));
}

/**
 * The login lines after the first `skip`, once there are `skip + 1`: Dovecot
 * writes its log line asynchronously (bounded wait, then whatever is there).
 */
async function newLoginLines(d: Dovecot, service: "imap-login" | "pop3-login", skip: number): Promise<string[]> {
  const deadline = Date.now() + 10000;
  while (loginLines(d, service).length <= skip && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return loginLines(d, service).slice(skip);
}

describe("real peers: IMAP ID and the client's address to Dovecot", { skip: avail.ok ? false : avail.why }, () => {
  let dovecot: Dovecot;
  before(async () => {
    dovecot = await startDovecot({ [USER]: PASS }, { trustedNetworks: "127.0.0.1/32" });
  });
  after(async () => {
    await dovecot?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      // imap: PROXY header + proxy_imap_id; plain: neither; pop3: PROXY header + proxy_pop3_xclient.
      let imap: number, plain: number, pop3: number;
      before(async () => {
        [imap, plain, pop3] = await freePorts(3);
        mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  auth_table users.table;
  max_errors 2;
  server { listen 127.0.0.1:${imap} proxy_protocol; protocol imap; set_real_ip_from 127.0.0.1;
           proxy_imap_id on; imap_id name mailgate vendor "example org"; }
  server { listen 127.0.0.1:${plain}; protocol imap; }
  server { listen 127.0.0.1:${pop3} proxy_protocol; protocol pop3; set_real_ip_from 127.0.0.1;
           proxy_pop3_xclient on; auth_table pop3.table; }
}
`, {
          "users.table": `@example.org 127.0.0.1:${dovecot.imapPort}\n`,
          "pop3.table": `@example.org 127.0.0.1:${dovecot.pop3Port}\n`,
        });
      });
      after(async () => {
        await mg?.stop();
      });

      it("imaplib: ID before login gets * ID (NIL without imap_id), and the login is as before", async () => {
        const before = loginLines(dovecot, "imap-login").length;
        const out = imaplibLogin(plain, null);
        assert.equal(out.id, "OK");
        assert.deepEqual(out.ids, ["NIL"]);
        assert.equal(out.select, "OK");
        // proxy_imap_id off: Dovecot sees mailgate's own address.
        const lines = await newLoginLines(dovecot, "imap-login", before);
        assert.equal(lines.length, 1, dovecot.log());
        assert.match(lines[0], /rip=127\.0\.0\.1,/);
      });

      it("behind a PROXY header claiming 203.0.113.7: Dovecot logs rip=203.0.113.7 (not the client's own x-originating-ip) and mailgate's session id", async () => {
        const before = loginLines(dovecot, "imap-login").length;
        const out = imaplibLogin(imap, CLAIMED);
        assert.deepEqual(out.ids, ['("name" "mailgate" "vendor" "example org")']);
        assert.equal(out.select, "OK");
        const lines = await newLoginLines(dovecot, "imap-login", before);
        assert.equal(lines.length, 1, dovecot.log());
        assert.match(lines[0], new RegExp(`rip=${CLAIMED.replaceAll(".", "\\.")},`));
        // x-session-id "*N": the same *N that prefixes mailgate's own lines for this client.
        const session = /session=<(\*\d+)>/.exec(lines[0]);
        assert.ok(session, lines[0]);
        await mg.waitLog(new RegExp(`\\${session[1]} client logged in, client: ${CLAIMED.replaceAll(".", "\\.")},`));
      });

      it("POP3 with proxy_pop3_xclient: Dovecot logs rip=203.0.113.7", async () => {
        const before = loginLines(dovecot, "pop3-login").length;
        const out = poplibLogin(pop3, CLAIMED);
        assert.match(out.pass, /^\+OK/);
        const lines = await newLoginLines(dovecot, "pop3-login", before);
        assert.equal(lines.length, 1, dovecot.log());
        assert.match(lines[0], new RegExp(`rip=${CLAIMED.replaceAll(".", "\\.")},`));
        const session = /session=<(\*\d+)>/.exec(lines[0]);
        assert.ok(session, lines[0]);
      });

      it("bad ID input: BAD, counted toward max_errors (2 here)", async () => {
        const c = await TestClient.open(plain);
        try {
          assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
          const pairs = Array.from({ length: 31 }, (_, i) => `"k${i}" "v"`).join(" ");
          c.write(`a ID (${pairs})\r\n`);
          assert.equal(await c.line(), "a BAD invalid command\r\n");
          c.write("b ID NIL\r\n");
          assert.equal(await c.line(), "* ID NIL\r\n");
          assert.equal(await c.line(), "b OK completed\r\n");
          c.write(`c ID ("k" "${"v".repeat(1025)}")\r\n`);
          assert.equal(await c.line(), "c BAD invalid command\r\n");
          assert.equal(await c.waitClose(), true, "second error: closed");
        } finally {
          c.close();
        }
      });
    });
  }
});
