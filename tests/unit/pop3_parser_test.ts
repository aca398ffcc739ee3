// lib/pop3/parser.ts on its own: the 128-byte line framer, the command-line
// syntax (pop3.md §2) and the SASL response-line rule (§7); every valid
// transcript parses the same whole, split at every byte boundary, and byte
// by byte.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../../lib/core/line_buffer.ts";
import {
  type Framed,
  LineFramer,
  MAX_ARGS,
  parseCommandLine,
  parseResponseLine,
} from "../../lib/pop3/parser.ts";
import { POP3_COMMAND_BUFFER } from "../../lib/pop3/replies.ts";
import { binary, bytewise, check, cuts, hostileText, splitAt } from "../helpers/property.ts";

/** Bound on next() calls per piece (every loop in a test is bounded). */
const MAX_CALLS = 10_000;

/** Frames `pieces` (binary strings) with the real bound; stops after tooLong. */
function frame(pieces: string[], bound = POP3_COMMAND_BUFFER): Framed[] {
  const input = new LineBuffer(bound + READ_CHUNK_SLACK);
  const framer = new LineFramer(bound);
  const out: Framed[] = [];
  for (const piece of pieces) {
    assert.ok(input.push(binaryToBytes(piece)), "the test never pushes beyond the buffer");
    for (let calls = 0;; calls++) {
      assert.ok(calls < MAX_CALLS, "framer did not settle");
      const r = framer.next(input);
      if (r.kind === "more") break;
      out.push(r);
      if (r.kind === "tooLong") return out;
      input.consume(r.length);
    }
  }
  return out;
}

const lines = (...texts: [string, number][]): Framed[] =>
  texts.map(([text, length]) => ({ kind: "line", text, length }));

describe("POP3 line framer (pop3.md §2)", () => {
  test("LF or CR LF ends a line; the line end is not part of the text", () => {
    assert.deepEqual(
      frame(["USER a\r\nNOOP\nQUIT\r\n"]),
      lines(["USER a", 8], ["NOOP", 5], ["QUIT", 6]),
    );
  });
  test("a CR not right before the LF stays in the text (parseCommandLine refuses it)", () => {
    assert.deepEqual(frame(["NO\rOP\r\n"]), lines(["NO\rOP", 7]));
    assert.deepEqual(frame(["NOOP\r\r\n"]), lines(["NOOP\r", 7]));
  });
  test("no LF yet: more; the line waits for its end", () => {
    assert.deepEqual(frame(["USER a", "b\r"]), []);
    assert.deepEqual(frame(["USER a", "b\r", "\n"]), lines(["USER ab", 9]));
  });
  test("128 bytes with the LF fit; one more byte without LF is too long", () => {
    const fits = "PASS " + "x".repeat(POP3_COMMAND_BUFFER - 7) + "\r\n";
    assert.equal(fits.length, POP3_COMMAND_BUFFER);
    assert.deepEqual(frame([fits]), lines([fits.slice(0, -2), POP3_COMMAND_BUFFER]));
    const long = "PASS " + "x".repeat(POP3_COMMAND_BUFFER);
    const r = frame([long]);
    assert.equal(r.length, 1);
    assert.equal(r[0].kind, "tooLong");
    assert.equal((r[0] as { head: string }).head, long.slice(0, POP3_COMMAND_BUFFER));
  });
});

describe("POP3 command lines (pop3.md §2)", () => {
  test("command words: four letters, any case, known ones only", () => {
    assert.deepEqual(parseCommandLine("noop"), { kind: "command", command: "NOOP", args: [] });
    assert.deepEqual(parseCommandLine("CaPa"), { kind: "command", command: "CAPA", args: [] });
    for (const bad of ["", " NOOP", "NOOPX", "NOP", "RETR 1", "N0OP", "\xe9OOP"]) {
      assert.deepEqual(parseCommandLine(bad), { kind: "invalid" }, JSON.stringify(bad));
    }
  });
  test("USER and PASS take the rest of the line, inner spaces included", () => {
    assert.deepEqual(parseCommandLine("PASS  my secret "), {
      kind: "command",
      command: "PASS",
      args: ["my secret "],
    });
    assert.deepEqual(parseCommandLine("USER"), { kind: "command", command: "USER", args: [] });
    assert.deepEqual(parseCommandLine("USER   "), { kind: "command", command: "USER", args: [] });
  });
  test("other commands split on spaces; more than MAX_ARGS is invalid", () => {
    assert.deepEqual(parseCommandLine("APOP  bob  0123"), {
      kind: "command",
      command: "APOP",
      args: ["bob", "0123"],
    });
    const most = "AUTH" + " a".repeat(MAX_ARGS);
    assert.equal(parseCommandLine(most).kind, "command");
    assert.deepEqual(parseCommandLine(most + " a"), { kind: "invalid" });
  });
  test("a lone CR anywhere makes the line invalid", () => {
    assert.deepEqual(parseCommandLine("PASS a\rb"), { kind: "invalid" });
  });
});

describe("POP3 SASL response lines (pop3.md §7)", () => {
  test("first word, '*' cancels, more than MAX_ARGS words is invalid, CR is invalid", () => {
    assert.deepEqual(parseResponseLine("dGVzdA== "), { kind: "value", value: "dGVzdA==" });
    assert.deepEqual(parseResponseLine(""), { kind: "value", value: "" });
    assert.deepEqual(parseResponseLine("*"), { kind: "cancel" });
    assert.deepEqual(parseResponseLine(" *"), { kind: "value", value: "*" });
    assert.deepEqual(parseResponseLine("a b c"), { kind: "value", value: "a" });
    assert.deepEqual(parseResponseLine("a b c d"), { kind: "invalid" });
    assert.deepEqual(parseResponseLine("a\rb"), { kind: "invalid" });
  });
});

// ---- properties --------------------------------------------------------------

/** A valid POP3 line: a known command with arguments that fit. */
const word = fc.stringMatching(/^[!-~]{1,10}$/);
const validLine = fc.oneof(
  fc.tuple(fc.constantFrom("USER", "pass", "User"), fc.stringMatching(/^[ -~]{0,60}$/)).map((
    [c, a],
  ) => `${c} ${a}`),
  fc.tuple(
    fc.constantFrom("APOP", "AUTH", "capa", "NOOP", "stls", "QUIT"),
    fc.array(word, { maxLength: 3 }),
  )
    .map(([c, a]) => [c, ...a].join(" ")),
);
const transcript = fc.array(fc.tuple(validLine, fc.constantFrom("\r\n", "\n")), {
  minLength: 1,
  maxLength: 8,
})
  .map((ls) => ls.map(([l, e]) => l + e).join(""));

describe("POP3 parser, properties", () => {
  test("a valid transcript frames and parses the same whole, split at every byte boundary, and byte by byte", () => {
    check(
      fc.property(transcript, (t) => {
        const whole = frame([t]);
        assert.ok(
          whole.every((r) => r.kind === "line" && parseCommandLine(r.text).kind === "command"),
        );
        assert.equal(
          whole.reduce((n, r) => n + (r.kind === "line" ? r.length : 0), 0),
          t.length,
          "every byte consumed",
        );
        for (let i = 1; i < t.length; i++) {
          assert.deepEqual(frame([t.slice(0, i), t.slice(i)]), whole, `split at ${i}`);
        }
        assert.deepEqual(frame(bytewise(t)), whole);
      }),
      60,
    );
  });
  test("hostile input: never throws, split-invariant, never holds a complete line or more than the bound", () => {
    check(fc.property(fc.oneof(hostileText(10), binary(400)), cuts, (input, at) => {
      const whole = frame([input]);
      assert.deepEqual(frame(splitAt(input, at)), whole);
      for (const r of whole) {
        if (r.kind === "line") {
          parseCommandLine(r.text);
          parseResponseLine(r.text);
          assert.ok(r.length <= POP3_COMMAND_BUFFER);
        } else assert.ok(r.kind === "tooLong" && r.head.length <= POP3_COMMAND_BUFFER);
      }
    }));
  });
});
