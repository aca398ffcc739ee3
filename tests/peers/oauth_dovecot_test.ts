// Real peers (issue 15): OAuth tokens through mailgate to a real Dovecot
// whose oauth2 passdb validates them against a small introspection endpoint
// started here (tests/helpers/introspection.ts).
//
// * proxy_oauth_passthrough on: mailgate logs in to Dovecot with the
//   client's mechanism and token; Dovecot asks the endpoint, so the good
//   token logs in (Dovecot's own login line says method=XOAUTH2 /
//   OAUTHBEARER) and a bad one is refused by Dovecot: its RFC 7628 error
//   challenge gets the dummy answer and the client gets the internal error
//   (or, with proxy_pass_error_message on, Dovecot's own NO).
// * passthrough off (the default): the auth service (a mock auth_http that
//   accepts the good token) answers Auth-Pass, and mailgate logs in to the
//   same Dovecot with LOGIN and that password (Dovecot's line: method=PLAIN).
// Clients: Python imaplib authenticate("XOAUTH2"/"OAUTHBEARER", ...) and a
// raw POP3 socket. No token ever appears in mailgate's log.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { type Introspection, startIntrospection } from "../helpers/introspection.ts";
import { MockAuth, ok, refuse } from "../helpers/mock_auth.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { freePorts } from "../helpers/ports.ts";
import { runClient } from "../helpers/run_client.ts";

const avail = peersAvailable("dovecot", "python3");
const USER = "alice@example.org";
const PASS = "wonderland";
const GOOD = "ya29.good-token-for-alice";
const BAD = "ya29.expired-token";
/** A 5 KB token (Microsoft Entra ID JWTs with group claims grow so): needs imap_client_buffer 16k. */
const BIG = "eyJ0eXAiOiJKV1QifQ." + "x".repeat(5000) + ".sig";
const CLIENT_TIMEOUT_MS = 30000;

/** One client session: IMAP through imaplib's authenticate(), or POP3's AUTH XOAUTH2 on a raw socket. */
interface Case {
  proto: "imap" | "pop3" | "smtp";
  port: number;
  mech: "XOAUTH2" | "OAUTHBEARER";
  token: string;
}

/**
 * Runs the cases one after the other in ONE Python process (its start-up
 * costs more than a login on a busy machine), without blocking: the
 * introspection endpoint and the mock auth live in this process. Per case:
 * IMAP "OK <select result>", "NO: <text>" (tagged refusal) or "BAD: <text>"
 * (the untagged BAD before the connection closed); POP3 the reply lines.
 */
async function runCases(cases: Case[]): Promise<string[]> {
  const r = await runClient("python3", [
    "-c",
    `
import base64, imaplib, json, socket, sys
USER = "${USER}"
def payload(mech, token):
    if mech == "XOAUTH2":
        return ("user=%s\\x01auth=Bearer %s\\x01\\x01" % (USER, token)).encode()
    return ("n,a=%s,\\x01auth=Bearer %s\\x01\\x01" % (USER, token)).encode()
def imap(port, mech, token):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    try:
        m.authenticate(mech, lambda _: payload(mech, token))
        sel = m.select("INBOX")[0]
        m.logout()
        return "OK " + sel
    except imaplib.IMAP4.abort as e:
        bad = m.untagged_responses.get("BAD", [b""])[-1]
        return "BAD: " + (bad.decode("latin1") if bad else str(e))
    except imaplib.IMAP4.error as e:
        return "NO: " + str(e)
def pop3(port, mech, token):
    s = socket.create_connection(("127.0.0.1", port), 20)
    f = s.makefile("rb")
    lines = [f.readline()]
    s.sendall(("AUTH %s %s\\r\\n" % (mech, base64.b64encode(payload(mech, token)).decode())).encode())
    lines.append(f.readline())
    if lines[-1].startswith(b"+OK"):
        s.sendall(b"STAT\\r\\nQUIT\\r\\n")
        lines.append(f.readline())
    s.close()
    return "".join(l.decode("latin1") for l in lines[1:]).strip()
def smtp(port, mech, token):
    s = socket.create_connection(("127.0.0.1", port), 20)
    f = s.makefile("rb")
    def reply():
        lines = [f.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(f.readline())
        return lines[-1].decode("latin1").strip()
    reply()
    s.sendall(b"EHLO client.example\\r\\n")
    reply()
    s.sendall(("AUTH %s %s\\r\\n" % (mech, base64.b64encode(payload(mech, token)).decode())).encode())
    r = reply()
    s.close()
    return r
out = []
for c in json.loads(sys.argv[1]):
    out.append({"imap": imap, "pop3": pop3, "smtp": smtp}[c["proto"]](c["port"], c["mech"], c["token"]))
sys.stdout.write(json.dumps(out))
`,
    JSON.stringify(cases),
  ], { timeoutMs: CLIENT_TIMEOUT_MS * 2 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.toString()) as string[];
}

/** Dovecot's login lines for USER (imap-login / pop3-login). */
type LoginService = "imap-login" | "pop3-login" | "submission-login";
function loginLines(d: Dovecot, service: LoginService): string[] {
  return d.log().split("\n").filter((l) => l.includes(`${service}: Info: Login: user=<${USER}>`));
}

/** The login lines after the first `skip`, once there are `count` of them (Dovecot logs asynchronously; bounded wait). */
async function newLoginLines(
  d: Dovecot,
  service: LoginService,
  skip: number,
  count: number,
): Promise<string[]> {
  const deadline = Date.now() + 10000;
  while (loginLines(d, service).length < skip + count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return loginLines(d, service).slice(skip);
}

describe("real peers: OAuth tokens to a Dovecot with an oauth2 passdb", {
  skip: avail.ok ? false : avail.why,
}, () => {
  let dovecot: Dovecot;
  let intro: Introspection;
  let auth: MockAuth;
  let sink: MockSmtp;
  before(async () => {
    intro = await startIntrospection({ [GOOD]: USER, [BIG]: USER });
    // Dovecot's submission service needs a relay; nothing is sent through it here.
    sink = await MockSmtp.start({ xclient: false, auth: false });
    dovecot = await startDovecot({ [USER]: PASS }, {
      oauth2IntrospectionUrl: intro.url,
      submissionRelay: sink.port,
    });
    // The default path: the auth service validates the token itself and hands out the password.
    // Asked with X-Route: only (auth_http_header), it only routes: no Auth-Pass, the backend validates.
    auth = await MockAuth.start((req) =>
      req.get("X-Route") === "only"
        ? ok("127.0.0.1", dovecot.imapPort)
        : req.get("Auth-Pass") === GOOD && req.get("Auth-User") === USER
        ? ok("127.0.0.1", dovecot.imapPort, { "Auth-Pass": PASS })
        : refuse("Invalid token")
    );
  });
  after(async () => {
    await dovecot?.stop();
    await intro?.stop();
    await auth?.stop();
    await sink?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      let results: string[];
      /** What the introspection endpoint was asked, and Dovecot's new login lines, during the cases. */
      let asked: string[];
      let imapLogins: string[], pop3Logins: string[], smtpLogins: string[];
      before(async () => {
        // pass: passthrough on; passErr: the same with proxy_pass_error_message on;
        // plain: passthrough off, auth_http answers Auth-Pass; pop3: passthrough on;
        // routed: passthrough on, auth_http answers without Auth-Pass.
        // smtp: passthrough on with proxy_smtp_auth on, to Dovecot's submission service.
        const [pass, passErr, plain, pop3, routed, smtp] = await freePorts(6);
        mg = await startMailgate(
          target,
          `
error_log stderr info;
events { }
mail {
  proxy_oauth_passthrough on;
  server { listen 127.0.0.1:${pass}; protocol imap; imap_auth plain xoauth2 oauthbearer; auth_table imap.table;
           imap_client_buffer 16k; }
  server { listen 127.0.0.1:${passErr}; protocol imap; imap_auth xoauth2; auth_table imap.table;
           proxy_pass_error_message on; }
  server { listen 127.0.0.1:${plain}; protocol imap; imap_auth xoauth2 oauthbearer;
           auth_http 127.0.0.1:${auth.port}; proxy_oauth_passthrough off; }
  server { listen 127.0.0.1:${pop3}; protocol pop3; pop3_auth plain xoauth2; auth_table pop3.table; }
  server { listen 127.0.0.1:${routed}; protocol imap; imap_auth oauthbearer;
           auth_http 127.0.0.1:${auth.port}; auth_http_header X-Route only; }
  server { listen 127.0.0.1:${smtp}; protocol smtp; smtp_auth plain xoauth2; auth_table smtp.table;
           proxy_smtp_auth on; xclient off; }
}
`,
          {
            "imap.table": `@example.org 127.0.0.1:${dovecot.imapPort}\n`,
            "pop3.table": `@example.org 127.0.0.1:${dovecot.pop3Port}\n`,
            "smtp.table": `@example.org 127.0.0.1:${dovecot.submissionPort}\n`,
          },
        );
        const seen = intro.seen.length;
        const imapSkip = loginLines(dovecot, "imap-login").length;
        const pop3Skip = loginLines(dovecot, "pop3-login").length;
        const smtpSkip = loginLines(dovecot, "submission-login").length;
        results = await runCases([
          { proto: "imap", port: pass, mech: "XOAUTH2", token: GOOD },
          { proto: "imap", port: pass, mech: "OAUTHBEARER", token: GOOD },
          { proto: "imap", port: pass, mech: "XOAUTH2", token: BAD },
          { proto: "imap", port: passErr, mech: "XOAUTH2", token: BAD },
          { proto: "imap", port: plain, mech: "XOAUTH2", token: GOOD },
          { proto: "imap", port: plain, mech: "XOAUTH2", token: BAD },
          { proto: "pop3", port: pop3, mech: "XOAUTH2", token: GOOD },
          { proto: "pop3", port: pop3, mech: "XOAUTH2", token: BAD },
          { proto: "imap", port: routed, mech: "OAUTHBEARER", token: GOOD },
          { proto: "smtp", port: smtp, mech: "XOAUTH2", token: GOOD },
          { proto: "smtp", port: smtp, mech: "XOAUTH2", token: BAD },
          { proto: "imap", port: pass, mech: "XOAUTH2", token: BIG },
        ]);
        asked = intro.seen.slice(seen);
        imapLogins = await newLoginLines(dovecot, "imap-login", imapSkip, 5);
        pop3Logins = await newLoginLines(dovecot, "pop3-login", pop3Skip, 1);
        smtpLogins = await newLoginLines(dovecot, "submission-login", smtpSkip, 1);
      });
      after(async () => {
        if (mg && process.env.OAUTH_DEBUG) console.log(mg.stderr(), dovecot.log());
        await mg?.stop();
      });

      it("Dovecot's endpoint was asked about exactly the tokens mailgate forwarded (passthrough on)", () => {
        // IMAP: good (XOAUTH2), good (OAUTHBEARER), bad, bad (pass_error_message); none for
        // passthrough off; POP3: good, bad; auth_http without Auth-Pass: good; SMTP: good, bad;
        // IMAP: the 5 KB token, whole.
        assert.deepEqual(asked, [GOOD, GOOD, BAD, BAD, GOOD, BAD, GOOD, GOOD, BAD, BIG]);
      });

      it("passthrough: the good token logs in with the client's mechanism (Dovecot's login line says so)", () => {
        assert.deepEqual(results.slice(0, 2), ["OK OK", "OK OK"]);
        assert.equal(imapLogins.length, 5, dovecot.log());
        assert.match(imapLogins[0], /method=XOAUTH2,/);
        assert.match(imapLogins[1], /method=OAUTHBEARER,/);
      });

      it("passthrough: a bad token is refused by Dovecot; the client gets the internal error", () => {
        assert.equal(results[2], "BAD: internal server error");
        assert.match(
          mg.stderr(),
          /\[error\] .*upstream sent invalid response: "\w+ NO \[AUTHENTICATIONFAILED\]/,
        );
      });

      it("passthrough with proxy_pass_error_message on: a bad token gets Dovecot's own NO", () => {
        assert.equal(results[3], "NO: [AUTHENTICATIONFAILED] Authentication failed.");
      });

      it("passthrough off (default): the auth service's Auth-Pass logs in to the same Dovecot with LOGIN", () => {
        assert.equal(results[4], "OK OK");
        assert.match(imapLogins[2], /method=PLAIN,/);
        // The auth service refuses a bad token before any backend is asked.
        assert.equal(results[5], "NO: Invalid token");
      });

      it("POP3 passthrough: AUTH XOAUTH2 with the good token logs in; a bad one gets the internal error", () => {
        assert.match(results[6], /^\+OK .*\r\n\+OK 0 0$/s);
        assert.equal(pop3Logins.length, 1, dovecot.log());
        assert.match(pop3Logins[0], /method=XOAUTH2,/);
        assert.equal(results[7], "-ERR internal server error");
      });

      it("passthrough with an auth_http answer without Auth-Pass: the client's token logs in", () => {
        assert.equal(results[8], "OK OK");
        assert.match(imapLogins[3], /method=OAUTHBEARER,/);
      });

      it("SMTP passthrough (proxy_smtp_auth on): AUTH XOAUTH2 to Dovecot's submission; a bad token: 451", () => {
        assert.equal(results[9], "235 2.0.0 OK");
        assert.equal(smtpLogins.length, 1, dovecot.log());
        assert.match(smtpLogins[0], /method=XOAUTH2,/);
        assert.equal(results[10], "451 4.3.2 Internal server error");
      });

      it("a 5 KB token (imap_client_buffer 16k) reaches Dovecot whole and logs in", () => {
        assert.equal(results[11], "OK OK");
        assert.match(imapLogins[4], /method=XOAUTH2,/);
      });

      it("no token in any line mailgate logged", () => {
        const log = mg.stderr();
        for (const t of [GOOD, BAD, BIG]) {
          assert.ok(!log.includes(t), `token in mailgate's log:\n${log}`);
        }
        assert.ok(!/Bearer|auth=/.test(log), log);
      });
    });
  }
});
