// Real peers for SMTP: real clients (curl smtp://, swaks, Python's smtplib)
// send through the real mailgate process to real SMTP servers:
//
// * Postfix (tests/helpers/postfix.ts) delivering into virtual maildirs:
//   mailgate verifies the password itself (auth_table `plain:`) and logs in
//   with XCLIENT (Postfix advertises it to 127.0.0.0/8); and `smtp_auth
//   none` servers (MTA-style, routed by recipient, with and without XCLIENT).
//   Postfix stores lines with LF, so a delivered file is compared with the
//   sent message with every CRLF turned into LF (the messages have no other
//   CR or LF), after removing exactly the fields Postfix adds at the top
//   (POSTFIX_ADDED_FIELDS: Return-Path, X-Original-To, Delivered-To from the
//   virtual delivery agent, Received from smtpd/cleanup).
// * Dovecot's submission service with `proxy_smtp_auth on` (mailgate logs in
//   with AUTH PLAIN), relaying to a recording mock SMTP sink in this process.
//   The sink keeps DATA raw, CRLF and dot-stuffing included, so the check is
//   byte for byte after removing the one Received field Dovecot prepends.
//
// Clients run with runClient (async): the sink lives in this process and
// spawnSync would stop it from answering while a client runs (Dovecot's
// relay client then waits for the sink's greeting until the client times
// out). Dovecot adds an auth penalty delay (a few seconds) to the first
// login from 127.0.0.1 after a failed one, so wrong-password attempts against
// it are kept to one per target.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { pattern } from "../helpers/mock_imap.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { startMailgate, targets, type Running } from "../helpers/mailgate.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { type Postfix, splitPostfixDelivery, startPostfix } from "../helpers/postfix.ts";
import { freePorts } from "../helpers/ports.ts";
import { runClient } from "../helpers/run_client.ts";

const availPostfix = peersAvailable("postfix", "curl", "swaks", "python3");
const availDovecot = peersAvailable("dovecot", "curl", "swaks", "python3");

const ALICE = "alice@example.org";
const ALICE_PASS = "wonderland";
const BOB = "bob@example.org";
const BOB_PASS = "builder";
const WRONG = "nope";
const CLIENT_HELO = "client.test";
const CLIENT_TIMEOUT_MS = 60000;
/** Size of the big message: several MiB. */
const BIG_BYTES = 5 * 1024 * 1024;

/** mailgate's settings common to both backends; mailgate's own EHLO reply offers these. */
const MAIL_COMMON = `
  server_name mail.test;
  smtp_capabilities PIPELINING "SIZE 52428800" 8BITMIME;
`;

let serial = 0;

/**
 * A message with a unique Message-ID (the marker to find it after delivery),
 * lines that need SMTP dot-stuffing (".", "..", ".x"), 8-bit bytes and CRLF
 * endings. No backslash or '%': swaks would expand "\n" and %TOKENS%.
 */
function smallMessage(tag: string): { marker: string; data: Buffer } {
  const marker = `<${tag}.${++serial}.${Date.now()}@client.test>`;
  const text = `From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: ${tag}\r\n` +
    `Date: Sun, 22 Nov 2026 12:00:00 +0000\r\nMessage-ID: ${marker}\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
    `Hello.\r\n.\r\n..\r\n.leading dot\r\n...three dots\r\n` +
    `latin-1: \xe0\xe9\xee\xf5\xfc\xff and high bytes \x80\x81\x9f\xa0\r\n\r\nend\r\n`;
  return { marker, data: Buffer.from(text, "latin1") };
}

/** BIG_BYTES of 8-bit text in 76-byte lines, every tenth starting with '.'. */
function bigMessage(tag: string): { marker: string; data: Buffer } {
  const marker = `<${tag}.${++serial}.${Date.now()}@client.test>`;
  const head = `From: alice@example.org\r\nTo: alice@example.org\r\nSubject: big\r\nDate: Sun, 22 Nov 2026 12:00:00 +0000\r\n` +
    `Message-ID: ${marker}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`;
  const raw = pattern(BIG_BYTES, serial);
  const parts: string[] = [];
  for (let i = 0; i < raw.length; i += 76) {
    let l = i % 760 === 0 ? "." : "";
    for (const b of raw.subarray(i, i + 76)) l += String.fromCharCode(b === 10 || b === 13 || b === 0 ? 67 : b);
    parts.push(l);
  }
  return { marker, data: Buffer.from(head + parts.join("\r\n") + "\r\n", "latin1") };
}

/** The message as Postfix stores it: CRLF -> LF (asserting there is no other CR or LF). */
function crlfToLf(b: Buffer): Buffer {
  const s = b.toString("latin1");
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(s), "test message must use CRLF only");
  return Buffer.from(s.replaceAll("\r\n", "\n"), "latin1");
}

/** What an SMTP client sends after DATA for `msg`, before the final ".": dot-stuffed, CRLF ended. */
function dotStuffed(msg: Buffer): Buffer {
  return Buffer.from(msg.toString("latin1").replace(/^\./gm, ".."), "latin1");
}

function assertSameBytes(got: Buffer, want: Buffer, what: string) {
  if (got.equals(want)) return;
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  assert.fail(`${what}: ${got.length} bytes, want ${want.length}; first difference at ${i}: ` +
    `got ${JSON.stringify(got.subarray(i, i + 40).toString("latin1"))}, want ${JSON.stringify(want.subarray(i, i + 40).toString("latin1"))}`);
}

function curlSend(port: number, opts: { user?: string; pass?: string; from: string; to: string[]; data: Buffer }) {
  const args = ["-sS", "--max-time", String(CLIENT_TIMEOUT_MS / 1000 - 5), `smtp://127.0.0.1:${port}/${CLIENT_HELO}`,
    "--mail-from", opts.from, ...opts.to.flatMap((t) => ["--mail-rcpt", t]), "--upload-file", "-"];
  if (opts.user) args.push("--user", `${opts.user}:${opts.pass}`);
  return runClient("curl", args, { input: opts.data, timeoutMs: CLIENT_TIMEOUT_MS });
}

function swaksSend(
  port: number,
  opts: { auth?: "PLAIN" | "LOGIN"; user?: string; pass?: string; from: string; to: string; data: Buffer; pipeline?: boolean; helo?: boolean },
) {
  const args = ["--server", `127.0.0.1:${port}`, "--ehlo", CLIENT_HELO, "--from", opts.from, "--to", opts.to,
    "--timeout", "30", "--data", "-"];
  if (opts.auth) args.push("--auth", opts.auth, "--auth-user", opts.user!, "--auth-password", opts.pass!);
  if (opts.pipeline) args.push("--pipeline");
  if (opts.helo) args.push("--protocol", "SMTP"); // HELO instead of EHLO
  // swaks ends the data it is given with CRLF "." CRLF, so a message that
  // already ends in CRLF would gain an empty line: give it the message
  // without its last CRLF.
  assert.ok(opts.data.subarray(-2).toString("latin1") === "\r\n");
  return runClient("swaks", args, { input: opts.data.subarray(0, -2), timeoutMs: CLIENT_TIMEOUT_MS });
}

/**
 * Python smtplib: one session, EHLO, optional login, then every message of
 * the JSON on stdin with sendmail(); prints a JSON result: per message the
 * refused recipients, or the exception and whether the connection was still
 * open after it (NOOP answered). login() tries each mechanism mailgate
 * offers (PLAIN, then LOGIN) until one works; with `mech` only that one.
 */
async function pythonSend(
  port: number,
  opts: { login?: [string, string]; mech?: "PLAIN" | "LOGIN" },
  msgs: { from: string; to: string[]; data: Buffer }[],
): Promise<{ sent: Record<string, [number, string]>[]; error?: unknown[]; after?: string }> {
  const login = opts.login
    ? opts.mech
      ? `s.user, s.password = ${JSON.stringify(opts.login[0])}, ${JSON.stringify(opts.login[1])}
    s.auth(${JSON.stringify(opts.mech)}, s.auth_${opts.mech.toLowerCase()})`
      : `s.login(${JSON.stringify(opts.login[0])}, ${JSON.stringify(opts.login[1])})`
    : "pass";
  const py = `
import smtplib, sys, json, base64
msgs = json.loads(sys.stdin.read())
out = {"sent": []}
s = smtplib.SMTP("127.0.0.1", ${port}, local_hostname="${CLIENT_HELO}", timeout=30)
try:
    s.ehlo()
    ${login}
    for m in msgs:
        refused = s.sendmail(m["from"], m["to"], base64.b64decode(m["data"]))
        out["sent"].append({k: [v[0], v[1].decode("latin-1")] for k, v in refused.items()})
    s.quit()
except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as e:
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        out["error"] = ["SMTPRecipientsRefused", {k: [v[0], v[1].decode("latin-1")] for k, v in e.recipients.items()}]
    else:
        out["error"] = [type(e).__name__, e.smtp_code, e.smtp_error.decode("latin-1")]
    try:
        out["after"] = "open" if s.noop()[0] == 250 else "noop refused"
    except smtplib.SMTPServerDisconnected:
        out["after"] = "closed"
sys.stdout.write(json.dumps(out))
`;
  const input = JSON.stringify(msgs.map((m) => ({ from: m.from, to: m.to, data: m.data.toString("base64") })));
  const r = await runClient("python3", ["-c", py], { input, timeoutMs: CLIENT_TIMEOUT_MS });
  assert.equal(r.status, 0, `python: ${r.stderr}`);
  return JSON.parse(r.stdout.toString("utf8"));
}

describe("real peers: Postfix behind mailgate (XCLIENT, smtp_auth none)", { skip: availPostfix.ok ? false : availPostfix.why }, () => {
  let postfix: Postfix;
  before(async () => {
    postfix = await startPostfix({ domain: "example.org", users: [ALICE, BOB] });
  });
  after(async () => {
    await postfix?.stop();
  });

  /** The delivered copy of `msg` for user, checked byte for byte; returns the fields Postfix added. */
  async function deliveredAs(user: string, msg: { marker: string; data: Buffer }): Promise<Record<string, string>> {
    const file = await postfix.waitDelivered(user, msg.marker);
    const { added, rest } = splitPostfixDelivery(file);
    assertSameBytes(rest, crlfToLf(msg.data), `message delivered to ${user}`);
    assert.equal(added["Delivered-To"], user);
    return added;
  }

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      let authPort: number;
      let mtaPort: number;
      let mtaXclientPort: number;
      before(async () => {
        [authPort, mtaPort, mtaXclientPort] = await freePorts(3);
        mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
${MAIL_COMMON}
  server { listen 127.0.0.1:${authPort}; protocol smtp; smtp_auth plain login; auth_table users.table; }
  server { listen 127.0.0.1:${mtaPort}; protocol smtp; smtp_auth none; xclient off; auth_table routes.table; }
  server { listen 127.0.0.1:${mtaXclientPort}; protocol smtp; smtp_auth none; auth_table routes.table; }
}
`, {
          "users.table": `${ALICE} 127.0.0.1:${postfix.port} plain:${ALICE_PASS}\n${BOB} 127.0.0.1:${postfix.port} plain:${BOB_PASS}\n`,
          "routes.table": `@example.org 127.0.0.1:${postfix.port}\n`,
        });
      });
      after(async () => {
        await mg?.stop();
      });

      it("curl smtp:// (AUTH PLAIN, XCLIENT to Postfix): dots and 8-bit delivered byte for byte", async () => {
        const msg = smallMessage("curl-xclient");
        const r = await curlSend(authPort, { user: ALICE, pass: ALICE_PASS, from: ALICE, to: [BOB], data: msg.data });
        assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
        const added = await deliveredAs(BOB, msg);
        // XCLIENT then the client's own EHLO replayed: Postfix names the client's HELO, not mailgate's.
        assert.match(added["Received"], new RegExp(`^from ${CLIENT_HELO.replace(".", "\\.")} \\(unknown \\[127\\.0\\.0\\.1\\]\\)`));
        // XCLIENT LOGIN= made Postfix treat the session as authenticated as alice.
        const id = /with ESMTP\S* id (\w+)/.exec(added["Received"])?.[1];
        assert.ok(id, added["Received"]);
        assert.match(postfix.log(), new RegExp(`${id}: client=unknown\\[127\\.0\\.0\\.1\\], sasl_method=XCLIENT, sasl_username=alice@example\\.org`));
      });

      it(`curl smtp:// sends a ${BIG_BYTES >> 20} MiB 8-bit message, delivered byte for byte`, async () => {
        const msg = bigMessage("curl-big");
        const r = await curlSend(authPort, { user: ALICE, pass: ALICE_PASS, from: ALICE, to: [ALICE], data: msg.data });
        assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
        await deliveredAs(ALICE, msg);
      });

      it("swaks --auth PLAIN and --auth LOGIN (pipelined) deliver byte for byte", async () => {
        for (const [auth, pipeline] of [["PLAIN", false], ["LOGIN", true]] as const) {
          const msg = smallMessage(`swaks-${auth}`);
          const r = await swaksSend(authPort, { auth, user: BOB, pass: BOB_PASS, from: BOB, to: ALICE, data: msg.data, pipeline });
          assert.equal(r.status, 0, `swaks exit ${r.status}: ${r.stdout}${r.stderr}`);
          assert.match(r.stdout.toString("latin1"), /^<- +235 2\.0\.0 OK\r?$/m, "mailgate's own 235");
          await deliveredAs(ALICE, msg);
        }
      });

      it("Python smtplib: login, two messages in one session, two recipients each", async () => {
        const m1 = smallMessage("py-1");
        const m2 = smallMessage("py-2");
        const out = await pythonSend(authPort, { login: [ALICE, ALICE_PASS] }, [
          { from: ALICE, to: [ALICE, BOB], data: m1.data },
          { from: ALICE, to: [BOB, ALICE], data: m2.data },
        ]);
        assert.deepEqual(out, { sent: [{}, {}] });
        for (const user of [ALICE, BOB]) for (const m of [m1, m2]) await deliveredAs(user, m);
      });

      it("a wrong password: curl fails (67), smtplib gets mailgate's 535, nothing is delivered", async () => {
        const msg = smallMessage("wrong-password");
        const r = await curlSend(authPort, { user: ALICE, pass: WRONG, from: ALICE, to: [ALICE], data: msg.data });
        assert.equal(r.status, 67, `curl: login denied expected, got ${r.status}: ${r.stderr}`);
        // smtplib tries PLAIN, then LOGIN: mailgate refuses both and keeps the session.
        const out = await pythonSend(authPort, { login: [ALICE, WRONG] }, [{ from: ALICE, to: [ALICE], data: msg.data }]);
        assert.deepEqual(out, { sent: [], error: ["SMTPAuthenticationError", 535, "5.7.0 Invalid login or password"], after: "open" });
        assert.ok(!postfix.delivered(ALICE).some((b) => b.includes(msg.marker)), "a refused client's message was delivered");
      });

      it("smtp_auth none: swaks and smtplib without AUTH, routed by recipient, delivered byte for byte", async () => {
        const msg = smallMessage("none-swaks");
        const r = await swaksSend(mtaPort, { from: "sender@elsewhere.test", to: BOB, data: msg.data });
        assert.equal(r.status, 0, `swaks exit ${r.status}: ${r.stdout}${r.stderr}`);
        const added = await deliveredAs(BOB, msg);
        // xclient off: Postfix saw mailgate's EHLO (server_name), not the client's.
        assert.match(added["Received"], /^from mail\.test \(unknown \[127\.0\.0\.1\]\)/);
        assert.equal(added["Return-Path"], "<sender@elsewhere.test>");
        const m1 = smallMessage("none-py-1");
        const m2 = bigMessage("none-py-2");
        const out = await pythonSend(mtaPort, {}, [
          { from: "sender@elsewhere.test", to: [ALICE], data: m1.data },
          { from: "other@elsewhere.test", to: [ALICE, BOB], data: m2.data },
        ]);
        assert.deepEqual(out, { sent: [{}, {}] });
        await deliveredAs(ALICE, m1);
        await deliveredAs(ALICE, m2);
        await deliveredAs(BOB, m2);
      });

      it("smtp_auth none with XCLIENT (MX-style): Postfix sees the client's address and EHLO or HELO", async () => {
        for (const [helo, proto] of [[false, "ESMTP"], [true, "SMTP"]] as const) {
          const msg = smallMessage(`none-xclient-${proto}`);
          const r = await swaksSend(mtaXclientPort, { from: "sender@elsewhere.test", to: ALICE, data: msg.data, pipeline: !helo, helo });
          assert.equal(r.status, 0, `swaks exit ${r.status}: ${r.stdout}${r.stderr}`);
          const added = await deliveredAs(ALICE, msg);
          assert.match(added["Received"], new RegExp(`^from ${CLIENT_HELO.replace(".", "\\.")} \\(unknown \\[127\\.0\\.0\\.1\\]\\)`));
          const id = new RegExp(`with ${proto} id (\\w+)`).exec(added["Received"])?.[1];
          assert.ok(id, `${proto}: ${added["Received"]}`);
          // No LOGIN= for an unauthenticated session: Postfix logs no SASL user.
          assert.match(postfix.log(), new RegExp(`${id}: client=unknown\\[127\\.0\\.0\\.1\\]\n`));
        }
      });

      it("smtp_auth none: a recipient outside the table gets 550 5.7.1 Relay access denied", async () => {
        const msg = smallMessage("none-relay");
        const out = await pythonSend(mtaPort, {}, [{ from: ALICE, to: ["someone@elsewhere.test"], data: msg.data }]);
        // The table's refusal ends the session (waitSec 0).
        assert.deepEqual(out, { sent: [], error: ["SMTPRecipientsRefused", { "someone@elsewhere.test": [550, "5.7.1 Relay access denied"] }], after: "closed" });
        const r = await swaksSend(mtaPort, { from: ALICE, to: "someone@elsewhere.test", data: msg.data });
        assert.equal(r.status, 24, `swaks: no RCPT accepted expected, got ${r.status}: ${r.stdout}`);
      });
    });
  }
});

describe("real peers: Dovecot submission behind mailgate (proxy_smtp_auth on)", { skip: availDovecot.ok ? false : availDovecot.why }, () => {
  let sink: MockSmtp;
  let dovecot: Dovecot;
  const CAROL = "carol@example.org";
  const CAROL_PASS = "carolpass";
  before(async () => {
    // Dovecot relays what it accepts to this sink, which keeps DATA raw.
    sink = await MockSmtp.start({ xclient: false, auth: false });
    dovecot = await startDovecot({ [ALICE]: ALICE_PASS, [CAROL]: CAROL_PASS }, { submissionRelay: sink.port });
  });
  after(async () => {
    await dovecot?.stop();
    await sink?.stop();
  });

  /**
   * The sink's copy of msg, checked byte for byte: Dovecot's Received field
   * (the first field, with its folded lines) removed, the rest must be the
   * dot-stuffed message without its last CRLF (the sink stops at CRLF.CRLF).
   * Returns the envelope commands the sink saw in that session.
   */
  function relayedAs(msg: { marker: string; data: Buffer }): string[] {
    const conn = sink.conns.find((c) => c.messages.some((m) => m.includes(msg.marker)));
    assert.ok(conn, `the sink got no message ${msg.marker}; dovecot log:\n${dovecot.log()}`);
    const got = conn.messages.find((m) => m.includes(msg.marker))!;
    const received = /^Received: [^\r]*\r\n(?:[ \t][^\r]*\r\n)*/.exec(got.toString("latin1"));
    assert.ok(received, `no Received field on top: ${JSON.stringify(got.subarray(0, 80).toString("latin1"))}`);
    const want = dotStuffed(msg.data);
    assertSameBytes(got.subarray(received[0].length), want.subarray(0, want.length - 2), "message relayed by Dovecot");
    return conn.lines.filter((l) => /^(MAIL|RCPT)/.test(l));
  }

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      let verifiedPort: number;
      let passPort: number;
      before(async () => {
        [verifiedPort, passPort] = await freePorts(2);
        // verified: mailgate checks the `plain:` password, then AUTH PLAIN to Dovecot.
        // passthrough: no password in the table, Dovecot checks it; xclient on,
        // but Dovecot does not offer XCLIENT to this address, so none is sent.
        mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
${MAIL_COMMON}
  proxy_smtp_auth on;
  server { listen 127.0.0.1:${verifiedPort}; protocol smtp; smtp_auth plain login; xclient off; auth_table verified.table; }
  server { listen 127.0.0.1:${passPort}; protocol smtp; smtp_auth plain login; auth_table passthrough.table; proxy_pass_error_message on; }
}
`, {
          "verified.table": `${ALICE} 127.0.0.1:${dovecot.submissionPort} plain:${ALICE_PASS}\n`,
          "passthrough.table": `@example.org 127.0.0.1:${dovecot.submissionPort}\n`,
        });
      });
      after(async () => {
        await mg?.stop();
      });

      it("curl smtp://: small and several-MiB messages arrive byte for byte", async () => {
        for (const msg of [smallMessage("dovecot-curl"), bigMessage("dovecot-curl-big")]) {
          const r = await curlSend(verifiedPort, { user: ALICE, pass: ALICE_PASS, from: ALICE, to: ["rcpt@elsewhere.test"], data: msg.data });
          assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
          const env = relayedAs(msg);
          assert.equal(env[0].split(" ")[1], `FROM:<${ALICE}>`);
          assert.deepEqual(env.slice(1), ["RCPT TO:<rcpt@elsewhere.test>"]);
        }
      });

      it("swaks --auth LOGIN and Python smtplib (two messages) through the passthrough server", async () => {
        const s = smallMessage("dovecot-swaks");
        const r = await swaksSend(passPort, { auth: "LOGIN", user: CAROL, pass: CAROL_PASS, from: CAROL, to: "x@elsewhere.test", data: s.data, pipeline: true });
        assert.equal(r.status, 0, `swaks exit ${r.status}: ${r.stdout}${r.stderr}`);
        assert.deepEqual(relayedAs(s), [`MAIL FROM:<${CAROL}>`, "RCPT TO:<x@elsewhere.test>"]);
        const m1 = smallMessage("dovecot-py-1");
        const m2 = bigMessage("dovecot-py-2");
        const out = await pythonSend(passPort, { login: [CAROL, CAROL_PASS] }, [
          { from: CAROL, to: ["y@elsewhere.test"], data: m1.data },
          { from: CAROL, to: ["y@elsewhere.test", "z@elsewhere.test"], data: m2.data },
        ]);
        assert.deepEqual(out, { sent: [{}, {}] });
        relayedAs(m1);
        relayedAs(m2);
      });

      it("a wrong password: mailgate's 535 (verified, session stays), Dovecot's own 535 passed through (then closed)", async () => {
        const msg = smallMessage("dovecot-wrong");
        const v = await pythonSend(verifiedPort, { login: [ALICE, WRONG] }, [{ from: ALICE, to: ["x@elsewhere.test"], data: msg.data }]);
        assert.deepEqual(v, { sent: [], error: ["SMTPAuthenticationError", 535, "5.7.0 Invalid login or password"], after: "open" });
        const c = await curlSend(verifiedPort, { user: ALICE, pass: WRONG, from: ALICE, to: ["x@elsewhere.test"], data: msg.data });
        assert.equal(c.status, 67, `curl: login denied expected, got ${c.status}: ${c.stderr}`);
        // proxy_pass_error_message on: the backend's refusal unchanged, then mailgate closes (spec smtp.md 8.3).
        // One attempt only: each failure adds to Dovecot's auth penalty for 127.0.0.1.
        const p = await pythonSend(passPort, { login: [CAROL, WRONG], mech: "PLAIN" }, [{ from: CAROL, to: ["x@elsewhere.test"], data: msg.data }]);
        assert.deepEqual(p, { sent: [], error: ["SMTPAuthenticationError", 535, "5.7.8 Authentication failed."], after: "closed" });
        assert.ok(!sink.conns.some((conn) => conn.messages.some((m) => m.includes(msg.marker))), "a refused client's message was relayed");
      });
    });
  }
});
