// Regression tests for what the property tests of issue #7 found, one
// fixed example per finding (the properties themselves live in the other
// property_*_test.ts files).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { MAX_LOGGED_WORD, redactCommand } from "../../lib/core/redact.ts";
import { createImapPreauth } from "../../lib/imap/preauth.ts";
import { createPop3Preauth } from "../../lib/pop3/preauth.ts";
import { createSmtpPreauth } from "../../lib/smtp/preauth.ts";
import { createImapBackendLogin } from "../../lib/imap/backend_login.ts";
import { createPop3BackendLogin } from "../../lib/pop3/backend_login.ts";
import type { BackendContext } from "../../lib/core/machine.ts";
import { drive } from "../helpers/drive_machine.ts";
import { AuthResponseParser } from "../../lib/auth/http_response.ts";
import { imapConfig, pop3Config, SALT, smtpConfig } from "../helpers/property.ts";

const CREDS = encodeBase64("\0alice@example.org\0" + "Secret-Password-1234567890".repeat(4));

function logs(events: string[]): string[] {
  return events.filter((e) => e.startsWith("LOG "));
}

describe("regressions found by the property tests", () => {
  // Finding (auth_http_keepalive work): an invalid header inside the first
  // `cap` bytes of a chunk longer than the cap was reported as "too-big"
  // when fed whole and as "invalid-header" when fed in pieces.
  test("auth_http response: a bad header within the cap is invalid-header however it is fed", () => {
    const text = "HTTP/1.0 200 OK\r\nAuth-Status: OK\rAuth-Status: OK\r\n" + "Auth-Status: OK\r\n".repeat(4) + "\r\n";
    const whole = new AuthResponseParser(64).feed(binaryToBytes(text));
    const split = new AuthResponseParser(64);
    split.feed(binaryToBytes(text.slice(0, 34)));
    assert.deepEqual(whole, { kind: "error", reason: "invalid-header" });
    assert.deepEqual(split.feed(binaryToBytes(text.slice(34))), whole);
  });

  // Finding 1: a "too long command" log line showed the first word of the
  // line, whatever it was. A client that pipelines `AUTH PLAIN` and its
  // base64 answer, where the AUTH is refused (here: starttls only), has the
  // answer read as a command line; when it fills the buffer, its first 64
  // characters (user and password, base64) went to the log.
  test("POP3: a refused AUTH's pipelined base64 answer never reaches the log", () => {
    const m = createPop3Preauth({ config: pop3Config({ starttls: "only" }), tls: false, makeSalt: () => SALT });
    const run = drive(m, [`AUTH PLAIN\r\n${CREDS}\r\n`]);
    assert.deepEqual(logs(run.events), ['LOG info client sent too long command "..."']);
  });

  test("SMTP: the same with smtp_client_buffer filled by the answer", () => {
    const m = createSmtpPreauth({ config: smtpConfig({ starttls: "only", smtpClientBuffer: 64 }), tls: false, makeSalt: () => SALT });
    const run = drive(m, [`AUTH PLAIN\r\n${CREDS}\r\n`]);
    assert.deepEqual(logs(run.events), ['LOG info client sent too long command "..."']);
  });

  test("IMAP: a line of one long word shows no word; a tag and command still show", () => {
    const m = createImapPreauth({ config: imapConfig({ imapClientBuffer: 64 }), tls: false, makeSalt: () => SALT });
    const run = drive(m, [`${CREDS}\r\n`]);
    assert.deepEqual(logs(run.events), ['LOG info client sent too long command "..."']);
    const m2 = createImapPreauth({ config: imapConfig({ imapClientBuffer: 64 }), tls: false, makeSalt: () => SALT });
    assert.deepEqual(logs(drive(m2, [`a1 LOGIN alice ${CREDS}\r\n`]).events), [
      'LOG info client sent too long command "a1 LOGIN..."',
    ]);
  });

  test("POP3: a leading space does not make the password the logged word", () => {
    const m = createPop3Preauth({ config: pop3Config(), tls: false, makeSalt: () => SALT });
    const run = drive(m, [" Secret-Password-1234567890" + "x".repeat(200) + "\r\n"]);
    assert.deepEqual(logs(run.events), ['LOG info client sent too long command "..."']);
  });

  test("redactCommand: words up to MAX_LOGGED_WORD are shown, longer ones end the head", () => {
    const w = "w".repeat(MAX_LOGGED_WORD);
    assert.equal(redactCommand(`${w} rest`, 1, MAX_LOGGED_WORD), `${w}...`);
    assert.equal(redactCommand(`${w}w rest`, 1, MAX_LOGGED_WORD), "...");
    assert.equal(redactCommand(`a1 ${w}w`, 2, MAX_LOGGED_WORD), "a1...");
    // Without the bound (the SMTP early-talker log), as before.
    assert.equal(redactCommand(`${w}w rest`, 1), `${w}w...`);
  });

  // Finding 2: IMAP and POP3 logged a backend's invalid / too long reply raw,
  // so a backend could write CR, LF or escape bytes into the error log and
  // forge log lines. Fixed: every protocol's upstream log lines go through
  // escapeForLog (lib/core/log_text.ts).
  test("IMAP and POP3 backend replies reach the log without control bytes", () => {
    const ctx = (proto: "imap" | "pop3"): BackendContext => ({
      config: proto === "imap" ? imapConfig() : pop3Config(),
      creds: { method: "plain", user: "u", pass: "p", salt: null, tag: "a1" },
      user: "u",
      pass: "p",
      clientAddr: "192.0.2.7",
      clientHost: "h",
    });
    const forged = "BAD\n2030/01/01 00:00:00 [emerg] 1#0: forged\x1b[2J\r\n";
    for (const m of [createImapBackendLogin(ctx("imap")), createPop3BackendLogin(ctx("pop3"))]) {
      const steps = m.push(binaryToBytes(forged));
      const fail = steps.find((s) => s.kind === "fail");
      assert.ok(fail && fail.kind === "fail" && fail.log);
      assert.ok(!/[\x00-\x1f\x7f]/.test(fail.log.message), JSON.stringify(fail.log.message));
    }
  });
});
