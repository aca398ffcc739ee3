// The window between a STARTTLS step and tlsStarted(): the session has sent
// the OK and is about to hand the connection to TLS. It pauses the client
// before sending the OK, but a chunk already being delivered can still
// reach the machine. Every pre-auth machine must discard such bytes
// (CVE-2011-0411 class), whether they come in the STARTTLS packet or in a
// later one.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type { PreauthMachine, ClientStep } from "../../lib/core/machine.ts";
import { createImapPreauth } from "../../lib/imap/preauth.ts";
import { createPop3Preauth } from "../../lib/pop3/preauth.ts";
import { createSmtpPreauth } from "../../lib/smtp/preauth.ts";
import { imapConfig, pop3Config, SALT, smtpConfig } from "../helpers/property.ts";

const render = (steps: ClientStep[]) =>
  steps.map((s) => (s.kind === "send" ? "S: " + bytesToBinary(s.data) : s.kind.toUpperCase()));

const CASES: { name: string; make: () => PreauthMachine; starttls: string; injected: string; probe: string; answer: RegExp }[] = [
  {
    name: "IMAP",
    make: () => createImapPreauth({ config: imapConfig({ starttls: "on" }), tls: false, makeSalt: () => SALT }),
    starttls: "a STARTTLS\r\n",
    injected: "b LOGIN mallory x\r\n",
    probe: "c NOOP\r\n",
    answer: /^S: c OK/,
  },
  {
    name: "POP3",
    make: () => createPop3Preauth({ config: pop3Config({ starttls: "on" }), tls: false, makeSalt: () => SALT }),
    starttls: "STLS\r\n",
    injected: "USER mallory\r\nPASS x\r\n",
    probe: "NOOP\r\n",
    answer: /^S: \+OK/,
  },
  {
    name: "SMTP",
    make: () => createSmtpPreauth({ config: smtpConfig({ starttls: "on" }), tls: false, makeSalt: () => SALT }),
    starttls: "EHLO a\r\nSTARTTLS\r\n",
    injected: "MAIL FROM:<mallory@example.com>\r\n",
    probe: "NOOP\r\n",
    answer: /^S: 250/,
  },
];

/** Runs next() until the machine waits; returns the rendered steps. */
function drain(m: PreauthMachine): string[] {
  const out: string[] = [];
  for (let i = 0; i < 20; i++) {
    const steps = m.next();
    if (steps.length === 0) break;
    out.push(...render(steps));
  }
  return out;
}

describe("bytes between STARTTLS and the handshake are discarded", () => {
  for (const c of CASES) {
    test(`${c.name}: pushed after the starttls step, before tlsStarted()`, () => {
      const m = c.make();
      m.push(binaryToBytes(c.starttls));
      const before = drain(m);
      assert.equal(before.at(-1), "STARTTLS");
      m.push(binaryToBytes(c.injected));
      assert.deepEqual(drain(m), [], "nothing runs before the handshake");
      m.tlsStarted();
      assert.deepEqual(drain(m), [], "the injected command is gone");
      m.push(binaryToBytes(c.probe));
      const after = drain(m);
      assert.equal(after.length, 1);
      assert.match(after[0], c.answer);
    });
  }
});
