// Real clients (issue 15): curl --oauth2-bearer against mailgate's IMAP,
// POP3 and SMTP listeners, each listener advertising only one of XOAUTH2 /
// OAUTHBEARER so curl's choice covers both; Python imaplib
// authenticate("XOAUTH2") and smtplib auth("XOAUTH2"). The auth service (a
// mock auth_http in this process) checks the token and answers Auth-Pass;
// IMAP and POP3 go on to a real Dovecot with that password (freenginx's
// default backend login), SMTP to the mock SMTP backend. Clients run without
// blocking (runClient): the mock auth lives in this process.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { MockAuth, ok, refuse } from "../helpers/mock_auth.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { freePorts } from "../helpers/ports.ts";
import { runClient } from "../helpers/run_client.ts";

const avail = peersAvailable("dovecot", "curl", "python3");
const USER = "alice@example.org";
const PASS = "wonderland";
const TOKEN = "ya29.curl-and-python-token";
const CLIENT_TIMEOUT_MS = 30000;

const curl = (args: string[]) =>
  runClient("curl", ["-s", "-S", "--max-time", String(CLIENT_TIMEOUT_MS / 1000), ...args], {
    timeoutMs: CLIENT_TIMEOUT_MS + 5000,
  });

describe("real clients: curl --oauth2-bearer, imaplib and smtplib XOAUTH2", {
  skip: avail.ok ? false : avail.why,
}, () => {
  let dovecot: Dovecot;
  let smtp: MockSmtp;
  let auth: MockAuth;
  before(async () => {
    dovecot = await startDovecot({ [USER]: PASS });
    smtp = await MockSmtp.start({ users: { [USER]: PASS } });
    auth = await MockAuth.start((req) => {
      const method = req.get("Auth-Method");
      if ((method !== "xoauth2" && method !== "oauthbearer") || req.get("Auth-Pass") !== TOKEN) {
        return refuse("bad token");
      }
      const port = {
        imap: dovecot.imapPort,
        pop3: dovecot.pop3Port,
        smtp: smtp.port,
      }[req.get("Auth-Protocol")!]!;
      return ok("127.0.0.1", port, { "Auth-Pass": PASS });
    });
  });
  after(async () => {
    await auth?.stop();
    await smtp?.stop();
    await dovecot?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      const p: Record<string, number> = {};
      const names = ["imapXo", "imapOb", "pop3Xo", "pop3Ob", "smtpXo", "smtpOb"];
      before(async () => {
        const ports = await freePorts(names.length);
        names.forEach((n, i) => (p[n] = ports[i]));
        mg = await startMailgate(
          target,
          `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  server { listen 127.0.0.1:${p.imapXo}; protocol imap; imap_auth xoauth2; imap_capabilities IMAP4rev1 SASL-IR; }
  server { listen 127.0.0.1:${p.imapOb}; protocol imap; imap_auth oauthbearer; }
  server { listen 127.0.0.1:${p.pop3Xo}; protocol pop3; pop3_auth xoauth2; }
  server { listen 127.0.0.1:${p.pop3Ob}; protocol pop3; pop3_auth oauthbearer; }
  server { listen 127.0.0.1:${p.smtpXo}; protocol smtp; smtp_auth xoauth2; }
  server { listen 127.0.0.1:${p.smtpOb}; protocol smtp; smtp_auth oauthbearer; }
}
`,
        );
      });
      after(async () => {
        await mg?.stop();
      });

      for (const [name, mech] of [["imapXo", "xoauth2"], ["imapOb", "oauthbearer"]] as const) {
        it(`curl imap:// picks ${mech} and lists the mailbox`, async () => {
          const before = auth.requests.length;
          const r = await curl([
            "--user",
            USER,
            "--oauth2-bearer",
            TOKEN,
            `imap://127.0.0.1:${p[name]}/`,
          ]);
          assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
          assert.match(r.stdout.toString(), /INBOX/);
          const req = auth.requests.slice(before).at(-1)!;
          assert.equal(req.get("Auth-Method"), mech);
          assert.equal(req.get("Auth-User"), USER);
        });
      }

      for (const [name, mech] of [["pop3Xo", "xoauth2"], ["pop3Ob", "oauthbearer"]] as const) {
        it(`curl pop3:// picks ${mech} and lists (empty maildir)`, async () => {
          const before = auth.requests.length;
          const r = await curl([
            "--user",
            USER,
            "--oauth2-bearer",
            TOKEN,
            `pop3://127.0.0.1:${p[name]}/`,
          ]);
          assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
          assert.equal(auth.requests.slice(before).at(-1)!.get("Auth-Method"), mech);
        });
      }

      for (const [name, mech] of [["smtpXo", "xoauth2"], ["smtpOb", "oauthbearer"]] as const) {
        it(`curl smtp:// picks ${mech} and sends a message`, async () => {
          const before = auth.requests.length;
          const r = await runClient("curl", [
            "-s",
            "-S",
            "--max-time",
            "30",
            "--user",
            USER,
            "--oauth2-bearer",
            TOKEN,
            "--mail-from",
            USER,
            "--mail-rcpt",
            "bob@example.org",
            "--upload-file",
            "-",
            `smtp://127.0.0.1:${p[name]}/client.example`,
          ], { input: "Subject: t\r\n\r\nhello\r\n", timeoutMs: CLIENT_TIMEOUT_MS });
          assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
          assert.equal(auth.requests.slice(before).at(-1)!.get("Auth-Method"), mech);
        });
      }

      it("curl with a wrong token fails cleanly (IMAP, POP3: login denied)", async () => {
        for (const url of [`imap://127.0.0.1:${p.imapOb}/`, `pop3://127.0.0.1:${p.pop3Xo}/`]) {
          const r = await curl(["--user", USER, "--oauth2-bearer", "wrong", url]);
          assert.equal(r.status, 67, `${url}: curl exit ${r.status}: ${r.stderr}`); // CURLE_LOGIN_DENIED
        }
      });

      it("Python imaplib authenticate('XOAUTH2') and smtplib auth('XOAUTH2')", async () => {
        const r = await runClient("python3", [
          "-c",
          `
import imaplib, smtplib, sys
payload = "user=${USER}\\x01auth=Bearer ${TOKEN}\\x01\\x01"
m = imaplib.IMAP4("127.0.0.1", ${p.imapXo}, timeout=20)
typ, _ = m.authenticate("XOAUTH2", lambda _: payload.encode())
sel = m.select("INBOX")[0]
m.logout()
s = smtplib.SMTP("127.0.0.1", ${p.smtpXo}, timeout=20)
s.ehlo("client.example")
code, _ = s.auth("XOAUTH2", lambda challenge=None: payload, initial_response_ok=True)
s.quit()
sys.stdout.write(f"{typ} {sel} {code}")
`,
        ], { timeoutMs: CLIENT_TIMEOUT_MS });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.toString(), "OK OK 235");
      });

      it("the token is never in mailgate's log", () => {
        assert.ok(!mg.stderr().includes(TOKEN));
        assert.ok(!mg.stderr().includes("wrong"), "nor the wrong one");
      });
    });
  }
});
