// Real peers: Dovecot as the IMAP backend, curl's imap:// client and
// Python's imaplib as clients, through the real mailgate process.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { pattern } from "../helpers/mock_imap.ts";
import { startMailgate, targets, type Running } from "../helpers/mailgate.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { freePorts } from "../helpers/ports.ts";

const avail = peersAvailable("dovecot", "curl", "python3");

/** A message with 8-bit bytes (no NUL: Dovecot rewrites NULs in FETCH), lines starting with '.', CRLF endings, ~1 MiB body. */
function bigMessage(): Buffer {
  const head = "From: sender@example.org\r\nTo: alice@example.org\r\nSubject: big\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n";
  const lines: string[] = [];
  const raw = pattern(700 * 1024, 3);
  for (let i = 0; i < raw.length; i += 76) {
    let l = "";
    for (const b of raw.subarray(i, i + 76)) l += String.fromCharCode(b === 10 || b === 13 || b === 0 ? 65 : b);
    lines.push((i % 760 === 0 ? "." : "") + l);
  }
  return Buffer.from(head + lines.join("\r\n") + "\r\n", "latin1");
}

describe("real peers: Dovecot IMAP behind mailgate", { skip: avail.ok ? false : avail.why }, () => {
  let dovecot: Dovecot;
  const small = Buffer.from("From: a@example.org\r\nSubject: hello\r\n\r\nHello, world.\r\n..not a terminator\r\n", "latin1");
  const big = bigMessage();
  before(async () => {
    dovecot = await startDovecot({ "alice@example.org": "wonderland" });
    dovecot.deliver("alice@example.org", "1.small", small);
    dovecot.deliver("alice@example.org", "2.big", big);
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
  server { listen 127.0.0.1:${port}; protocol imap; imap_capabilities IMAP4rev1 LITERAL+; proxy_pass_error_message on; }
}
`, { "users.table": `@example.org 127.0.0.1:${dovecot.imapPort}\n` });
      });
      after(async () => {
        await mg?.stop();
      });

      it("curl imap:// fetches messages byte for byte", () => {
        for (const [uid, want] of [[1, small], [2, big]] as const) {
          const r = spawnSync("curl", ["-s", "--max-time", "30", "--user", "alice@example.org:wonderland",
            `imap://127.0.0.1:${port}/INBOX;UID=${uid}`], { maxBuffer: 64 << 20 });
          assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
          assert.ok(Buffer.from(r.stdout).equals(want), `message ${uid} differs (${r.stdout.length} vs ${want.length} bytes)`);
        }
      });

      it("curl with a wrong password fails cleanly", () => {
        const r = spawnSync("curl", ["-s", "--max-time", "20", "--user", "alice@example.org:nope",
          `imap://127.0.0.1:${port}/INBOX;UID=1`]);
        assert.equal(r.status, 67, "curl: login denied");
      });

      it("Python imaplib logs in with a literal password and fetches", () => {
        const py = `
import imaplib, sys, hashlib
m = imaplib.IMAP4("127.0.0.1", ${port})
m.login("alice@example.org", "wonderland")
m.select("INBOX")
typ, data = m.fetch("2", "(RFC822)")
body = data[0][1]
sys.stdout.write(hashlib.sha256(body).hexdigest() + " " + str(len(body)))
m.logout()
`;
        const r = spawnSync("python3", ["-c", py], { timeout: 30000 });
        assert.equal(r.status, 0, String(r.stderr));
        const [digest, len] = String(r.stdout).split(" ");
        assert.equal(Number(len), big.length);
        assert.equal(digest, createHash("sha256").update(big).digest("hex"));
      });
    });
  }
});

