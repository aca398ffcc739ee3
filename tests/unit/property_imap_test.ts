// Property tests of the IMAP command parser and pre-auth machine under
// arbitrary and hostile input (issue #7): they never throw, never hold more
// than imap_client_buffer between commands, give the same transcript however
// the bytes are split, and hand over exactly the credentials of generated
// valid LOGIN / AUTHENTICATE dialogues, with no password in any log line.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../../lib/core/line_buffer.ts";
import type { Credentials } from "../../lib/core/machine.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { ImapParser } from "../../lib/imap/parser.ts";
import { createImapPreauth } from "../../lib/imap/preauth.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import {
  assertSaneRun,
  binary,
  bytewise,
  check,
  cuts,
  driveHeld,
  hostileText,
  imapConfig,
  SALT,
  splitAt,
} from "../helpers/property.ts";

const CAP = 4096;

function machine(o: Partial<ServerConfig> = {}, tls = false) {
  return createImapPreauth({ config: imapConfig({ imapClientBuffer: CAP, ...o }), tls, makeSalt: () => SALT });
}

// ---- generators of valid dialogue ------------------------------------------

const tag = fc.stringMatching(/^[A-Za-z0-9._-]{1,32}$/);

/** A case-mixed spelling of a command word. */
function word(w: string): fc.Arbitrary<string> {
  return fc.array(fc.boolean(), { minLength: w.length, maxLength: w.length }).map((up) =>
    w.split("").map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join("")
  );
}

/** One IMAP string value in a wire form the parser must read back as `value`. */
function encode(value: string): fc.Arbitrary<{ wire: string[]; sync: number }> {
  const forms: fc.Arbitrary<{ wire: string[]; sync: number }>[] = [
    // Literal: synchronising (the client waits for "+ OK") or not.
    fc.boolean().map((sync) =>
      sync
        ? { wire: [`{${value.length}}\r\n`, value], sync: 1 }
        : { wire: [`{${value.length}+}\r\n${value}`], sync: 0 }
    ),
  ];
  if (!/[\r\n]/.test(value)) {
    forms.push(fc.constant({ wire: ['"' + value.replace(/[\\"]/g, (c) => "\\" + c) + '"'], sync: 0 }));
  }
  if (value.length > 0 && !/[ \r\n]/.test(value) && value[0] !== '"' && value[0] !== "{") {
    forms.push(fc.constant({ wire: [value], sync: 0 }));
  }
  return fc.oneof(...forms);
}

/** A password that is recognisable in logs and never a substring of fixed text. */
const password = fc.tuple(fc.stringMatching(/^[A-Za-z0-9]{8,20}$/), binary(20)).map(([a, b]) => "Pw" + a + b);
const user = fc.oneof(binary(40, 1), fc.emailAddress().map((e) => e.slice(0, 60)));

/** One step of a valid dialogue: the bytes, and the credentials it must produce (if any). */
interface Step {
  text: string;
  creds: { user: string; pass: string; method: Credentials["method"] } | null;
  /** Synchronising literals in the step (each answered by "+ OK"). */
  sync: number;
}

const simple: fc.Arbitrary<Step> = fc.tuple(tag, fc.oneof(word("CAPABILITY"), word("NOOP"))).map((
  [t, w],
) => ({ text: `${t} ${w}\r\n`, creds: null, sync: 0 }));

const login: fc.Arbitrary<Step> = fc.tuple(tag, word("LOGIN"), user, password).chain(([t, w, u, p]) =>
  fc.tuple(encode(u), encode(p)).map(([eu, ep]) => ({
    // Each literal's data directly follows its CRLF; the line goes on after it.
    text: `${t} ${w} ${eu.wire.join("")} ${ep.wire.join("")}\r\n`,
    creds: { user: u, pass: p, method: "plain" as const },
    sync: eu.sync + ep.sync,
  }))
);

const authPlain: fc.Arbitrary<Step> = fc.tuple(tag, word("AUTHENTICATE"), binary(10), user, password, fc.boolean())
  .map(([t, w, authz, u, p, initial]) => {
    const b64 = encodeBase64(authz.replace(/\0/g, "") + "\0" + u.replace(/\0/g, "") + "\0" + p);
    const text = initial ? `${t} ${w} PLAIN ${b64}\r\n` : `${t} ${w} plain\r\n${b64}\r\n`;
    return { text, creds: { user: u.replace(/\0/g, ""), pass: p, method: "plain" as const }, sync: 0 };
  });

const authLogin: fc.Arbitrary<Step> = fc.tuple(tag, user, password, fc.boolean()).map(([t, u, p, initial]) => ({
  text: initial
    ? `${t} AUTHENTICATE LOGIN ${encodeBase64(u)}\r\n${encodeBase64(p)}\r\n`
    : `${t} AUTHENTICATE LOGIN\r\n${encodeBase64(u)}\r\n${encodeBase64(p)}\r\n`,
  creds: { user: u, pass: p, method: "plain" as const },
  sync: 0,
}));

const dialogue = fc.array(fc.oneof(simple, login, authPlain, authLogin), { maxLength: 6 });

// ---- properties --------------------------------------------------------------

describe("IMAP parser and pre-auth machine, properties", () => {
  test("arbitrary bytes: never throws, same transcript whole / split / byte by byte, bounded", () => {
    check(fc.property(fc.oneof(hostileText(12), binary(300)), cuts, (input, at) => {
      const whole = driveHeld(machine(), [input]);
      const split = driveHeld(machine(), splitAt(input, at));
      assertSaneRun(whole);
      assert.deepEqual(split.events, whole.events);
      assert.equal(split.closed, whole.closed);
      // Between commands the machine holds less than one command's worth.
      assert.ok(whole.held < CAP, `held ${whole.held}`);
      assert.ok(split.held < CAP, `held ${split.held}`);
    }));
  });

  test("byte-by-byte delivery of hostile input gives the whole-input transcript", () => {
    check(fc.property(hostileText(8), (input) => {
      assert.deepEqual(driveHeld(machine(), bytewise(input)).events, driveHeld(machine(), [input]).events);
    }), 60);
  });

  test("generated valid dialogues: exact credentials, split-invariant, LOGOUT closes", () => {
    check(fc.property(dialogue, tag, cuts, (steps, lt, at) => {
      const text = steps.map((s) => s.text).join("") + `${lt} LOGOUT\r\n`;
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
      const want = steps.filter((s) => s.creds !== null).map((s) => s.creds!);
      assert.deepEqual(seenWhole.map((c) => ({ user: c.user, pass: c.pass, method: c.method })), want);
      // One "+ OK" per synchronising literal, no error reply, and LOGOUT ends it.
      const conts = whole.events.filter((e) => e === "S: + OK\r\n").length;
      assert.equal(conts, steps.reduce((n, s) => n + s.sync, 0));
      assert.ok(!whole.out.includes(" BAD "), whole.out);
      assert.ok(whole.closed);
      assert.ok(whole.out.endsWith(`* BYE\r\n${lt} OK completed\r\n`));
      // Passwords never reach a log line.
      for (const s of steps) {
        if (!s.creds) continue;
        for (const e of whole.events) {
          if (e.startsWith("LOG ")) assert.ok(!e.includes(s.creds.pass.slice(0, 10)), e);
        }
      }
    }));
  });

  test("a password in an overlong or broken command never reaches the log", () => {
    check(fc.property(tag, password, fc.integer({ min: 0, max: CAP * 2 }), fc.boolean(), (t, p, pad, lf) => {
      const line = `${t} LOGIN user ${p}${"x".repeat(pad)}${lf ? "\r\n" : ""}`;
      const run = driveHeld(machine(), [line]);
      for (const e of run.events) if (e.startsWith("LOG ")) assert.ok(!e.includes(p.slice(0, 10)), e);
    }), 60);
  });

  test("huge literal announcements are refused at once, without a continuation", () => {
    const sizes = fc.oneof(
      fc.integer({ min: CAP, max: 2 ** 53 - 1 }).map(String),
      fc.constantFrom("4294967296", "99999999999999999999", "18446744073709551616", "9".repeat(400)),
    );
    check(fc.property(tag, sizes, fc.boolean(), (t, n, plus) => {
      const run = driveHeld(machine(), [`${t} LOGIN {${n}${plus ? "+" : ""}}\r\n`]);
      assert.ok(!run.out.includes("+ OK"), run.out);
      assert.ok(run.closed);
      assert.ok(run.out.endsWith(" BAD invalid command\r\n"));
    }));
  });

  test("a chunk larger than the buffer plus the read slack closes the session; nothing is kept", () => {
    check(fc.property(fc.integer({ min: 1, max: 4096 }), fc.constantFrom(0x61, 0x0a, 0x20), (extra, fill) => {
      const m = machine();
      m.push(new Uint8Array(CAP + READ_CHUNK_SLACK + extra).fill(fill));
      const steps = m.next();
      assert.equal(steps.at(-1)?.kind, "close");
      assert.deepEqual(m.next(), []);
    }), 20);
  });

  test("parser alone: after 'more' it never holds a complete command nor more than the cap", () => {
    check(fc.property(fc.oneof(hostileText(12), binary(600)), cuts, (input, at) => {
      const buf = new LineBuffer(CAP + READ_CHUNK_SLACK);
      const parser = new ImapParser(CAP);
      let mode: "command" | "response" = "command";
      for (const chunk of splitAt(input, at)) {
        assert.ok(buf.push(binaryToBytes(chunk)));
        for (let i = 0; i < 10_000; i++) {
          const r = parser.parse(buf, mode);
          if (r.kind === "more") {
            assert.ok(buf.length < CAP, `held ${buf.length}`);
            break;
          }
          if (r.kind === "tooLong") {
            assert.ok(r.head.length <= 256);
            buf.clear();
            break;
          }
          if (r.kind === "line") mode = r.line.command === "AUTHENTICATE" ? "response" : "command";
        }
      }
      assert.ok(buf.length <= CAP, `held ${buf.length} after input ${JSON.stringify(bytesToBinary(binaryToBytes(input)).slice(0, 40))}`);
    }));
  });
});
