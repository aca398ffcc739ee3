// Property tests of the SMTP pre-auth machine under arbitrary and hostile
// input (issue #7): never throws, holds less than smtp_client_buffer between
// commands, gives the same transcript however the bytes are split, hands
// over exactly the credentials of generated valid dialogues (AUTH PLAIN /
// LOGIN in both forms, `smtp_auth none` MAIL + RCPT) and logs no password.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { READ_CHUNK_SLACK } from "../../lib/core/line_buffer.ts";
import type { Credentials } from "../../lib/core/machine.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { createSmtpPreauth } from "../../lib/smtp/preauth.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import {
  arbitraryInputProperty,
  binary,
  bytewise,
  check,
  cuts,
  driveHeld,
  hostileText,
  SALT,
  smtpConfig,
  splitAt,
} from "../helpers/property.ts";

const CAP = 512;

function machine(o: Partial<ServerConfig> = {}) {
  return createSmtpPreauth({ config: smtpConfig({ smtpClientBuffer: CAP, ...o }), tls: false, makeSalt: () => SALT });
}

function word(w: string): fc.Arbitrary<string> {
  return fc.array(fc.boolean(), { minLength: w.length, maxLength: w.length }).map((up) =>
    w.split("").map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join("")
  );
}

const domain = fc.domain().map((d) => d.slice(0, 60));
const password = fc.stringMatching(/^[A-Za-z0-9]{10,20}$/).map((s) => "Pw" + s);
const b64User = fc.oneof(binary(30, 1), fc.emailAddress().map((e) => e.slice(0, 40)));
const eol = fc.constantFrom("\r\n", "\r\n", "\n");

interface Step {
  text: string;
  creds: { method: Credentials["method"]; user: string; pass: string } | null;
}

const hello: fc.Arbitrary<Step> = fc.tuple(fc.oneof(word("EHLO"), word("HELO")), domain, eol).map(([w, d, e]) => ({
  text: `${w} ${d}${e}`,
  creds: null,
}));
const simple: fc.Arbitrary<Step> = fc.tuple(fc.oneof(word("NOOP"), word("RSET")), eol).map(([w, e]) => ({ text: w + e, creds: null }));

const authPlain: fc.Arbitrary<Step> = fc.tuple(b64User, password, fc.boolean(), eol).map(([u, p, initial, e]) => {
  const name = u.replace(/\0/g, "");
  const b64 = encodeBase64("\0" + name + "\0" + p);
  return {
    text: initial ? `AUTH PLAIN ${b64}${e}` : `AUTH plain${e}${b64}${e}`,
    creds: { method: "plain" as const, user: name, pass: p },
  };
});

const authLogin: fc.Arbitrary<Step> = fc.tuple(b64User, password, fc.boolean()).map(([u, p, initial]) => ({
  text: (initial ? `AUTH LOGIN ${encodeBase64(u)}\r\n` : `AUTH LOGIN\r\n${encodeBase64(u)}\r\n`) +
    `${encodeBase64(p)}\r\n`,
  creds: { method: "plain" as const, user: u, pass: p },
}));

const dialogue = fc.array(fc.oneof(hello, simple, authPlain, authLogin), { maxLength: 6 });

describe("SMTP pre-auth machine, properties", () => {
  test("arbitrary bytes: never throws, split-invariant, printable logs, bounded", () => {
    check(arbitraryInputProperty(() => machine(), CAP, fc.oneof(hostileText(12), binary(700))));
  });

  test("the same with smtp_auth none (MAIL and RCPT reach the auth step)", () => {
    check(arbitraryInputProperty(() => machine({ smtpAuth: ["none", "plain"] }), CAP, hostileText(12)));
  });

  test("byte-by-byte delivery gives the whole-input transcript", () => {
    check(fc.property(hostileText(8), (input) => {
      assert.deepEqual(driveHeld(machine(), bytewise(input)).events, driveHeld(machine(), [input]).events);
    }), 60);
  });

  test("generated valid dialogues: exact credentials, split-invariant, QUIT closes, no password logged", () => {
    check(fc.property(dialogue, cuts, (steps, at) => {
      const text = steps.map((s) => s.text).join("") + "QUIT\r\n";
      const seen: Credentials[] = [];
      const auth = (c: Credentials) => {
        seen.push(c);
        return "denied";
      };
      const whole = driveHeld(machine(), [text], auth);
      const seenWhole = seen.splice(0);
      const split = driveHeld(machine(), splitAt(text, at), auth);
      assert.deepEqual(split.events, whole.events);
      assert.deepEqual(seen, seenWhole);
      assert.deepEqual(
        seenWhole.map((c) => ({ method: c.method, user: c.user, pass: c.pass })),
        steps.filter((s) => s.creds).map((s) => s.creds),
      );
      assert.ok(!/^5\d\d /m.test(whole.out.replace(/^535 .*$/gm, "")), whole.out);
      assert.ok(whole.closed && /221 [^\r]*\r\n$/.test(whole.out), whole.out);
      for (const s of steps) {
        for (const e of whole.events) if (s.creds && e.startsWith("LOG ")) assert.ok(!e.includes(s.creds.pass), e);
      }
    }));
  });

  test("smtp_auth none: MAIL and RCPT text is handed over as typed", () => {
    const addr = fc.emailAddress().map((e) => e.slice(0, 60));
    check(fc.property(domain, addr, addr, cuts, (d, from, to, at) => {
      const text = `EHLO ${d}\r\nMAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\n`;
      const seen: Credentials[] = [];
      driveHeld(machine({ smtpAuth: ["none"] }), splitAt(text, at), (c) => {
        seen.push(c);
        return null;
      });
      assert.equal(seen.length, 1);
      assert.equal(seen[0].method, "none");
      assert.deepEqual(seen[0].smtp, { helo: d, esmtp: true, from: `MAIL FROM:<${from}>`, to: `RCPT TO:<${to}>` });
    }));
  });

  test("overlong lines close with 500 and never log a password", () => {
    check(fc.property(fc.constantFrom("AUTH PLAIN", "AUTH LOGIN", "", "EHLO", "MAIL FROM:"), password, fc.integer({ min: CAP, max: 5000 }), (cmd, p, n) => {
      const run = driveHeld(machine(), [`${cmd} ${p}${"z".repeat(n)}\r\n`]);
      assert.ok(run.closed);
      for (const e of run.events) if (e.startsWith("LOG ")) assert.ok(!e.includes(p), e);
    }), 60);
  });

  test("a chunk beyond the buffer plus the read slack closes the session", () => {
    check(fc.property(fc.integer({ min: 1, max: 4096 }), (extra) => {
      const m = machine();
      m.push(new Uint8Array(CAP + READ_CHUNK_SLACK + extra).fill(0x41));
      assert.equal(m.next().at(-1)?.kind, "close");
      assert.deepEqual(m.next(), []);
    }), 10);
  });
});
