// Property tests of the three backend-login machines (issue #7): on any
// backend bytes they never throw, end at most once (done or fail) and then
// stay silent, never hold more than proxy_buffer of one reply, and reach the
// same outcome however the bytes are split; generated valid backend
// dialogues log in with exactly the credentials given and hand the client
// exactly the backend's final reply.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type { BackendContext, BackendLogin, BackendStep, Credentials } from "../../lib/core/machine.ts";
import { createImapBackendLogin } from "../../lib/imap/backend_login.ts";
import { createPop3BackendLogin } from "../../lib/pop3/backend_login.ts";
import { createSmtpBackendLogin } from "../../lib/smtp/backend_login.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { xtextEncode } from "../../lib/smtp/xtext.ts";
import { binary, check, cuts, imapConfig, pop3Config, smtpConfig, splitAt } from "../helpers/property.ts";
import type { ServerConfig } from "../../lib/config/types.ts";

type Proto = "imap" | "pop3" | "smtp";

function ctx(proto: Proto, o: Partial<ServerConfig>, creds: Partial<Credentials> = {}): BackendContext {
  const config = proto === "imap" ? imapConfig(o) : proto === "pop3" ? pop3Config(o) : smtpConfig(o);
  return {
    config,
    creds: {
      method: "plain",
      user: "client",
      pass: "client-pass",
      salt: null,
      tag: "a1",
      smtp: { helo: "client.example", esmtp: true, from: "", to: "" },
      ...creds,
    },
    user: creds.user ?? "user@example.com",
    pass: creds.pass ?? "secret",
    clientAddr: "192.0.2.7",
    clientHost: "client.example",
  };
}

function make(proto: Proto, c: BackendContext): BackendLogin {
  return proto === "imap" ? createImapBackendLogin(c) : proto === "pop3" ? createPop3BackendLogin(c) : createSmtpBackendLogin(c);
}

interface Outcome {
  /** Everything sent to the backend, in order. */
  sent: string;
  /** "done" / "fail" / "none". */
  end: string;
  /** toClient of the final step, plus the chunks that arrived after it (the relay would carry them). */
  toClient: string;
  log: string;
}

/** Feeds chunks the way the session does; checks the step protocol on the way. */
function run(m: BackendLogin, chunks: string[]): Outcome {
  const o: Outcome = { sent: "", end: "none", toClient: "", log: "" };
  for (let i = 0; i < chunks.length; i++) {
    const steps: BackendStep[] = m.push(binaryToBytes(chunks[i]));
    for (const s of steps) {
      assert.equal(o.end, "none", "a step after the end");
      if (s.kind === "send") o.sent += bytesToBinary(s.data);
      else if (s.kind === "starttls") assert.fail("no starttls without backend TLS");
      else {
        o.end = s.kind;
        o.toClient = bytesToBinary(s.toClient);
        o.log = s.kind === "fail" && s.log ? `${s.log.level} ${s.log.message}` : "";
      }
    }
    if (o.end !== "none") {
      // Once ended, the machine ignores anything more.
      assert.deepEqual(m.push(binaryToBytes("+ OK\r\n* OK\r\n220 x\r\n")), []);
      if (o.end === "done") o.toClient += chunks.slice(i + 1).join("");
      return o;
    }
  }
  return o;
}

/** Plausible backend reply lines of all three protocols, some broken. */
const replyLine = fc.tuple(
  fc.constantFrom(
    "* OK ", "* ", "+ ", "+", "a1 OK ", "a1 NO ", "a1 BAD ", "mgs1 OK ", "* BYE ", "+OK ", "-ERR ", ".",
    "220 ", "220-", "250-", "250 ", "250-XCLIENT ADDR NAME", "250 XCLIENT LOGIN", "235 ", "334 ", "535 ",
    "550 ", "", "\0", "\xff",
  ),
  binary(30),
  fc.constantFrom("\r\n", "\r\n", "\r\n", "\n", "\r", ""),
).map(([a, b, c]) => a + b + c);

const backendBytes = fc.oneof(fc.array(replyLine, { maxLength: 12 }).map((a) => a.join("")), binary(400));

const configs: fc.Arbitrary<Partial<ServerConfig>> = fc.record({
  proxyBuffer: fc.constantFrom(16, 64, 4096),
  proxyPassErrorMessage: fc.boolean(),
  xclient: fc.boolean(),
  proxySmtpAuth: fc.boolean(),
});

describe("backend login machines, properties", () => {
  for (const proto of ["imap", "pop3", "smtp"] as const) {
    test(`${proto}: any backend bytes: no throw, one end, bounded, same outcome split or whole`, () => {
      check(fc.property(configs, fc.constantFrom<Credentials["method"]>("plain", "none"), backendBytes, cuts, (o, method, bytes, at) => {
        const c = () => ctx(proto, o, { method });
        const whole = run(make(proto, c()), [bytes]);
        const split = run(make(proto, c()), splitAt(bytes, at));
        assert.equal(split.sent, whole.sent);
        assert.equal(split.end, whole.end);
        assert.equal(split.log, whole.log);
        // SMTP's own "235 2.0.0 OK" drops what the backend sent after its
        // last reply in the same read; everything else is split-invariant.
        if (!(proto === "smtp" && whole.end === "done" && whole.toClient.startsWith("235 2.0.0 OK\r\n"))) {
          if (whole.end === "fail" && whole.log.startsWith("info ")) {
            // proxy_pass_error_message: the backend bytes held at that moment.
            assert.ok(whole.toClient.startsWith(split.toClient), JSON.stringify([whole, split]));
          } else assert.equal(split.toClient, whole.toClient);
        }
        // The "too long" log shows less than one proxy_buffer of reply.
        const m = /too long response line: "(.*)"$/s.exec(whole.log.replace(/\\x[0-9a-f]{2}/g, "?"));
        if (m) assert.ok(m[1].length < o.proxyBuffer!, `${m[1].length}`);
      }));
    });
  }

  const user = fc.stringMatching(/^[!-~]{1,40}$/);
  const pass = fc.stringMatching(/^[A-Za-z0-9]{1,30}$/);
  const text = fc.stringMatching(/^[ -~]{0,40}$/);
  const untagged = fc.array(text.map((t) => `* ${t}\r\n`), { maxLength: 5 });

  test("imap: a valid dialogue logs in with the literal LOGIN and hands the final reply over", () => {
    check(fc.property(user, pass, text, text, text, untagged, binary(50), cuts, (u, p, g, c1, c2, un, after, at) => {
      const final = un.join("") + `a1 OK ${c2}\r\n`;
      const bytes = `* OK ${g}\r\n+ ${c1}\r\n+ go\r\n` + final + after;
      const out = run(createImapBackendLogin(ctx("imap", {}, { user: u, pass: p })), splitAt(bytes, at));
      assert.equal(out.sent, `a1 LOGIN {${u.length}}\r\n${u} {${p.length}}\r\n${p}\r\n`);
      assert.equal(out.end, "done");
      assert.equal(out.toClient, final + after);
    }));
  });

  test("pop3: a valid dialogue sends USER and PASS and hands the PASS reply over", () => {
    check(fc.property(user, pass, text, text, binary(50), cuts, (u, p, g, r, after, at) => {
      const bytes = `+OK ${g}\r\n+OK\r\n+OK ${r}\r\n` + after;
      const out = run(createPop3BackendLogin(ctx("pop3", {}, { user: u, pass: p })), splitAt(bytes, at));
      assert.equal(out.sent, `USER ${u}\r\nPASS ${p}\r\n`);
      assert.equal(out.end, "done");
      assert.equal(out.toClient, `+OK ${r}\r\n` + after);
    }));
  });

  test("smtp: a valid dialogue (multi-line EHLO, XCLIENT when offered, AUTH PLAIN) ends in 235", () => {
    const ehloLines = fc.array(fc.stringMatching(/^[A-Z0-9]{1,12}$/), { maxLength: 5 });
    check(fc.property(user, pass, fc.boolean(), fc.boolean(), ehloLines, cuts, (u, p, offerXclient, proxyAuth, exts, at) => {
      const words = offerXclient ? [...exts, "XCLIENT ADDR LOGIN NAME HELO"] : exts;
      const ehlo = ["mock", ...words].map((w, i, a) => `250${i === a.length - 1 ? " " : "-"}${w}\r\n`).join("");
      let bytes = "220 mock ESMTP\r\n" + ehlo;
      let want = "EHLO mail.example.com\r\n";
      if (offerXclient) {
        bytes += "220 xclient ok\r\n250 helo ok\r\n";
        want += `XCLIENT ADDR=192.0.2.7${proxyAuth ? "" : ` LOGIN=${xtextEncode(u)}`} NAME=client.example\r\nEHLO client.example\r\n`;
      }
      if (proxyAuth) {
        bytes += "235 2.7.0 ok\r\n";
        want += `AUTH PLAIN ${encodeBase64("\0" + u + "\0" + p)}\r\n`;
      }
      const out = run(createSmtpBackendLogin(ctx("smtp", { proxySmtpAuth: proxyAuth }, { user: u, pass: p })), splitAt(bytes, at));
      assert.equal(out.sent, want);
      assert.equal(out.end, "done");
      assert.equal(out.toClient, "235 2.0.0 OK\r\n");
    }));
  });
});
