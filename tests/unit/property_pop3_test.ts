// Property tests of the POP3 pre-auth machine under arbitrary and hostile
// input (issue #7): never throws, holds less than the 128-byte command
// buffer between commands, gives the same transcript however the bytes are
// split, hands over exactly the credentials of generated valid dialogues
// (USER/PASS, APOP, AUTH PLAIN/LOGIN in both forms) and logs no password.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { READ_CHUNK_SLACK } from "../../lib/core/line_buffer.ts";
import type { Credentials } from "../../lib/core/machine.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { createPop3Preauth } from "../../lib/pop3/preauth.ts";
import { POP3_COMMAND_BUFFER } from "../../lib/pop3/replies.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import {
  arbitraryInputProperty,
  binary,
  bytewise,
  check,
  cuts,
  driveHeld,
  hostileText,
  pop3Config,
  SALT,
  splitAt,
} from "../helpers/property.ts";

function machine(o: Partial<ServerConfig> = {}) {
  return createPop3Preauth({ config: pop3Config(o), tls: false, makeSalt: () => SALT });
}

function word(w: string): fc.Arbitrary<string> {
  return fc.array(fc.boolean(), { minLength: w.length, maxLength: w.length }).map((up) =>
    w.split("").map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join("")
  );
}

/** USER / PASS argument: no line end, no leading space (the rest of the line, spaces included). */
const lineValue = (max: number) =>
  binary(max, 1).map((s) => s.replace(/[\r\n]/g, "x").replace(/^ +/, "y"));
const password = fc.stringMatching(/^[A-Za-z0-9]{10,20}$/).map((s) => "Pw" + s);
const b64User = fc.oneof(binary(30, 1), fc.emailAddress().map((e) => e.slice(0, 40)));

interface Step {
  text: string;
  creds: { method: Credentials["method"]; user: string; pass: string } | null;
}

const simple: fc.Arbitrary<Step> = fc.oneof(word("CAPA"), word("NOOP")).map((w) => ({ text: `${w}\r\n`, creds: null }));

const userPass: fc.Arbitrary<Step> = fc.tuple(word("USER"), word("PASS"), lineValue(40), password, fc.boolean())
  .map(([u, p, name, pass, lf]) => ({
    text: `${u} ${name}${lf ? "\n" : "\r\n"}${p} ${pass}\r\n`,
    creds: { method: "plain" as const, user: name, pass },
  }));

const apop: fc.Arbitrary<Step> = fc.tuple(fc.stringMatching(/^[!-~]{1,40}$/), fc.stringMatching(/^[0-9a-f]{32}$/))
  .map(([name, digest]) => ({ text: `APOP ${name} ${digest}\r\n`, creds: { method: "apop" as const, user: name, pass: digest } }));

const authPlain: fc.Arbitrary<Step> = fc.tuple(b64User, password, fc.boolean()).map(([u, p, initial]) => {
  const name = u.replace(/\0/g, "");
  const b64 = encodeBase64("\0" + name + "\0" + p);
  return {
    text: initial ? `AUTH PLAIN ${b64}\r\n` : `AUTH plain\r\n${b64}\r\n`,
    creds: { method: "plain" as const, user: name, pass: p },
  };
});

const authLogin: fc.Arbitrary<Step> = fc.tuple(b64User, password, fc.boolean()).map(([u, p, initial]) => ({
  text: (initial ? `AUTH LOGIN ${encodeBase64(u)}\r\n` : `AUTH LOGIN\r\n${encodeBase64(u)}\r\n`) +
    `${encodeBase64(p)}\r\n`,
  creds: { method: "plain" as const, user: u, pass: p },
}));

const dialogue = fc.array(fc.oneof(simple, userPass, apop, authPlain, authLogin), { maxLength: 6 });

describe("POP3 pre-auth machine, properties", () => {
  test("arbitrary bytes: never throws, split-invariant, printable logs, bounded", () => {
    check(arbitraryInputProperty(() => machine(), POP3_COMMAND_BUFFER, fc.oneof(hostileText(12), binary(400))));
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
      for (const c of seenWhole) assert.equal(c.salt, c.method === "apop" ? SALT : null);
      // Only the refusals are -ERR lines; QUIT ends the session.
      assert.equal(whole.out.split("-ERR ").length - 1, seenWhole.length, whole.out);
      assert.ok(whole.closed && whole.out.endsWith("+OK\r\n"));
      for (const s of steps) {
        for (const e of whole.events) if (s.creds && e.startsWith("LOG ")) assert.ok(!e.includes(s.creds.pass), e);
      }
    }));
  });

  test("overlong lines close with -ERR and log only the command word", () => {
    check(fc.property(fc.constantFrom("USER", "PASS", "AUTH", "APOP", ""), password, fc.integer({ min: 128, max: 5000 }), (cmd, p, n) => {
      const run = driveHeld(machine(), [`${cmd} ${p}${"z".repeat(n)}\r\n`]);
      assert.ok(run.closed);
      assert.ok(run.out.endsWith("-ERR invalid command\r\n") || run.out.includes("-ERR"), run.out);
      for (const e of run.events) if (e.startsWith("LOG ")) assert.ok(!e.includes(p), e);
    }), 60);
  });

  test("a chunk beyond the buffer plus the read slack closes the session", () => {
    check(fc.property(fc.integer({ min: 1, max: 4096 }), (extra) => {
      const m = machine();
      m.push(new Uint8Array(POP3_COMMAND_BUFFER + READ_CHUNK_SLACK + extra).fill(0x0a));
      assert.equal(m.next().at(-1)?.kind, "close");
      assert.deepEqual(m.next(), []);
    }), 10);
  });
});
