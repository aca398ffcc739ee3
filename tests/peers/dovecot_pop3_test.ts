// Real peers: Dovecot as the POP3 backend, curl's pop3:// client and
// Python's poplib as clients, through the real mailgate process.
//
// POP3 dot-stuffs RETR output; both clients undo it, so what they return must
// equal, byte for byte, what was delivered into the maildir.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { pattern } from "../helpers/mock_imap.ts";
import { startMailgate, targets, type Running } from "../helpers/mailgate.ts";
import { type Dovecot, maildirFiles, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { freePorts } from "../helpers/ports.ts";

const avail = peersAvailable("dovecot", "curl", "python3");
const USER = "alice@example.org";
const PASS = "wonderland";
/** Bound on every client process (the big message is a few MiB over loopback). */
const CLIENT_TIMEOUT_MS = 30000;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * Lines that need POP3 dot-stuffing (".", "..", ".x"), 8-bit bytes (no NUL:
 * Dovecot rewrites NULs), CRLF endings throughout.
 */
const SMALL = Buffer.from(
  "From: sender@example.org\r\nTo: alice@example.org\r\nSubject: dots\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n" +
    "Hello.\r\n.\r\n..\r\n.leading dot\r\n...three\r\nlatin-1: \xe9\xe8\xfc\xff\x80\x81\r\nend\r\n",
  "latin1",
);

/** About 3 MiB of 8-bit text, every tenth line starting with '.', CRLF endings. */
function bigMessage(): Buffer {
  const head = "From: sender@example.org\r\nTo: alice@example.org\r\nSubject: big\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n";
  const lines: string[] = [];
  const raw = pattern(3 * 1024 * 1024, 5);
  for (let i = 0; i < raw.length; i += 76) {
    let l = "";
    for (const b of raw.subarray(i, i + 76)) l += String.fromCharCode(b === 10 || b === 13 || b === 0 ? 66 : b);
    lines.push((i % 760 === 0 ? "." : "") + l);
  }
  return Buffer.from(head + lines.join("\r\n") + "\r\n", "latin1");
}

function curl(args: string[]) {
  return spawnSync("curl", ["-s", "--max-time", String(CLIENT_TIMEOUT_MS / 1000), ...args], {
    maxBuffer: 64 << 20,
    timeout: CLIENT_TIMEOUT_MS + 5000,
  });
}

function python(script: string) {
  return spawnSync("python3", ["-c", script], { timeout: CLIENT_TIMEOUT_MS, maxBuffer: 16 << 20 });
}

describe("real peers: Dovecot POP3 behind mailgate", { skip: avail.ok ? false : avail.why }, () => {
  let dovecot: Dovecot;
  const big = bigMessage();
  before(async () => {
    dovecot = await startDovecot({ [USER]: PASS });
    dovecot.deliver(USER, "1.small", SMALL);
    dovecot.deliver(USER, "2.big", big);
  });
  after(async () => {
    await dovecot?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      let port: number;
      before(async () => {
        [port] = await freePorts(1);
        mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  auth_table users.table;
  server { listen 127.0.0.1:${port}; protocol pop3; proxy_pass_error_message on; }
}
`, { "users.table": `@example.org 127.0.0.1:${dovecot.pop3Port}\n` });
      });
      after(async () => {
        await mg?.stop();
      });

      it("curl pop3:// (SASL PLAIN) retrieves messages byte for byte", () => {
        for (const [n, want] of [[1, SMALL], [2, big]] as const) {
          const r = curl(["--user", `${USER}:${PASS}`, `pop3://127.0.0.1:${port}/${n}`]);
          assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
          const got = Buffer.from(r.stdout);
          assert.ok(got.equals(want), `message ${n} differs (${got.length} vs ${want.length} bytes)`);
        }
      });

      it("curl pop3:// with AUTH=LOGIN retrieves, and LIST shows the delivered sizes", () => {
        const r = curl(["--login-options", "AUTH=LOGIN", "--user", `${USER}:${PASS}`, `pop3://127.0.0.1:${port}/1`]);
        assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
        assert.ok(Buffer.from(r.stdout).equals(SMALL), "message 1 differs");
        // Without a message number curl sends LIST and prints the listing.
        const l = curl(["--user", `${USER}:${PASS}`, `pop3://127.0.0.1:${port}/`]);
        assert.equal(l.status, 0, `curl exit ${l.status}: ${l.stderr}`);
        assert.equal(String(l.stdout), `1 ${SMALL.length}\r\n2 ${big.length}\r\n`);
      });

      it("curl with a wrong password fails cleanly, and the next login works", () => {
        const r = curl(["--user", `${USER}:nope`, `pop3://127.0.0.1:${port}/1`]);
        assert.equal(r.status, 67, `curl: login denied expected, got ${r.status}: ${r.stderr}`);
        assert.equal(r.stdout.length, 0);
        const ok = curl(["--user", `${USER}:${PASS}`, `pop3://127.0.0.1:${port}/1`]);
        assert.equal(ok.status, 0, `curl exit ${ok.status}: ${ok.stderr}`);
        assert.ok(Buffer.from(ok.stdout).equals(SMALL), "message 1 differs after a failed login");
      });

      it("Python poplib: USER/PASS, STAT, RETR (dot-stuffing undone) byte for byte", () => {
        // poplib returns the lines without CRLF and with the stuffed dot removed.
        const py = `
import poplib, hashlib, json, sys
p = poplib.POP3("127.0.0.1", ${port}, timeout=20)
p.user("${USER}")
p.pass_("${PASS}")
count, size = p.stat()
out = {"count": count, "size": size, "msgs": []}
resp, lines, octets = p.top(1, 0)
out["top"] = (b"\\r\\n".join(lines) + b"\\r\\n").decode("latin-1")
out["uidl"] = len(p.uidl()[1])
for n in (1, 2):
    resp, lines, octets = p.retr(n)
    body = b"\\r\\n".join(lines) + b"\\r\\n"
    out["msgs"].append([len(body), hashlib.sha256(body).hexdigest(), resp.decode("latin-1")])
p.quit()
sys.stdout.write(json.dumps(out))
`;
        const r = python(py);
        assert.equal(r.status, 0, String(r.stderr));
        const out = JSON.parse(String(r.stdout));
        assert.equal(out.count, 2);
        assert.equal(out.size, SMALL.length + big.length);
        assert.equal(out.uidl, 2);
        // TOP 1 0: the header and the empty line after it.
        const header = SMALL.subarray(0, SMALL.indexOf("\r\n\r\n") + 4).toString("latin1");
        assert.equal(out.top, header);
        assert.deepEqual(out.msgs.map((m: string[]) => m.slice(0, 2)), [[SMALL.length, sha256(SMALL)], [big.length, sha256(big)]]);
      });

      it("Python poplib with a wrong password gets -ERR (error_proto), then logs in", () => {
        const py = `
import poplib, sys
p = poplib.POP3("127.0.0.1", ${port}, timeout=20)
p.user("${USER}")
try:
    p.pass_("nope")
    sys.stdout.write("accepted")
except poplib.error_proto as e:
    sys.stdout.write("refused:" + e.args[0].decode("latin-1") + "\\n")
p = poplib.POP3("127.0.0.1", ${port}, timeout=20)
p.user("${USER}")
p.pass_("${PASS}")
sys.stdout.write("stat:%d" % p.stat()[0])
p.quit()
`;
        const r = python(py);
        assert.equal(r.status, 0, String(r.stderr));
        const [refusal, stat] = String(r.stdout).split("\n");
        assert.match(refusal, /^refused:-ERR /);
        assert.equal(stat, "stat:2");
      });

      it("Python poplib: DELE and QUIT through mailgate remove the message from the maildir", () => {
        const name = `3.dele-${target}`;
        const msg = Buffer.from(`Subject: delete me (${target})\r\n\r\n.\r\nbye \xfe\r\n`, "latin1");
        dovecot.deliver(USER, name, msg);
        const py = `
import poplib, hashlib, sys
p = poplib.POP3("127.0.0.1", ${port}, timeout=20)
p.user("${USER}")
p.pass_("${PASS}")
count = p.stat()[0]
resp, lines, octets = p.retr(count)
body = b"\\r\\n".join(lines) + b"\\r\\n"
sys.stdout.write("%d %s\\n" % (count, hashlib.sha256(body).hexdigest()))
sys.stdout.write(p.dele(count).decode("latin-1") + "\\n")
sys.stdout.write(p.quit().decode("latin-1"))
`;
        const r = python(py);
        assert.equal(r.status, 0, String(r.stderr));
        const [first, dele, quit] = String(r.stdout).split("\n");
        assert.equal(first, `3 ${sha256(msg)}`);
        assert.match(dele, /^\+OK/);
        assert.match(quit, /^\+OK/);
        assert.deepEqual(maildirFiles(dovecot, USER).filter((f) => f.includes(name)), [], "the deleted message is still in the maildir");
        assert.equal(maildirFiles(dovecot, USER).length, 2);
      });
    });
  }
});
