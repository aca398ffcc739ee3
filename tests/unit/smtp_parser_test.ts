// lib/smtp/parser.ts on its own (smtp.md §4): command lines, AUTH response
// lines, lone CRs, the smtp_client_buffer bound; every valid transcript
// parses the same whole, split at every byte boundary, and byte by byte.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../../lib/core/line_buffer.ts";
import {
  type LineMode,
  MAX_ARGS,
  type ParseResult,
  SmtpParser,
  TOO_LONG_LOG_HEAD,
} from "../../lib/smtp/parser.ts";
import { binary, bytewise, check, cuts, hostileText, splitAt } from "../helpers/property.ts";

const CAP = 512;
/** Bound on parse() calls per piece (every loop in a test is bounded). */
const MAX_CALLS = 10_000;

/**
 * Feeds `pieces` (binary strings) and collects every result but "more";
 * stops after tooLong. An AUTH command with one argument switches the next
 * line to response mode, as the machine does.
 */
function parse(pieces: string[], cap = CAP): { results: ParseResult[]; held: number } {
  const input = new LineBuffer(cap + READ_CHUNK_SLACK);
  const parser = new SmtpParser(cap);
  let mode: LineMode = "command";
  const results: ParseResult[] = [];
  for (const piece of pieces) {
    assert.ok(input.push(binaryToBytes(piece)), "the test never pushes beyond the buffer");
    for (let calls = 0;; calls++) {
      assert.ok(calls < MAX_CALLS, "parser did not settle");
      const r = parser.parse(input, mode);
      if (r.kind === "more") break;
      results.push(r);
      if (r.kind === "tooLong") return { results, held: input.length };
      mode = r.kind === "command" && r.command === "AUTH" && r.args.length === 1
        ? "response"
        : "command";
    }
  }
  return { results, held: input.length };
}

const results = (...pieces: string[]) => parse(pieces).results;

function cmd(command: string, args: string[], line: string, lineEnd = "\r\n"): ParseResult {
  return { kind: "command", command, args, line, lineEnd } as ParseResult;
}

describe("SMTP command lines (smtp.md §4)", () => {
  test("command word in any case, arguments split on runs of spaces, line end kept", () => {
    assert.deepEqual(results("ehlo  client.example \r\n"), [
      cmd("EHLO", ["client.example"], "ehlo  client.example "),
    ]);
    assert.deepEqual(results("MAIL FROM:<a@b>\n"), [
      cmd("MAIL", ["FROM:<a@b>"], "MAIL FROM:<a@b>", "\n"),
    ]);
    assert.deepEqual(results("StartTLS\r\n"), [cmd("STARTTLS", [], "StartTLS")]);
  });
  test("unknown words, empty lines, a leading space, digits: invalid, consumed", () => {
    for (const bad of ["DATA\r\n", "\r\n", " NOOP\r\n", "NO0P\r\n", "\xe9HLO x\r\n"]) {
      assert.deepEqual(
        results(bad + "NOOP\r\n"),
        [{ kind: "invalid" }, cmd("NOOP", [], "NOOP")],
        JSON.stringify(bad),
      );
    }
  });
  test(`at most ${MAX_ARGS} arguments`, () => {
    const most = "RCPT" + " a".repeat(MAX_ARGS);
    assert.equal(results(most + "\r\n")[0].kind, "command");
    assert.deepEqual(results(most + " a\r\n"), [{ kind: "invalid" }]);
  });
  test("a lone CR makes the line invalid; CR CR LF too", () => {
    assert.deepEqual(results("NO\rOP\r\n"), [{ kind: "invalid" }]);
    assert.deepEqual(results("NOOP\r\r\n"), [{ kind: "invalid" }]);
  });
});

describe("SMTP AUTH response lines", () => {
  test("the line without its end, not split", () => {
    assert.deepEqual(results("AUTH LOGIN\r\n", "dXNlcg== x\r\n", "NOOP\r\n"), [
      cmd("AUTH", ["LOGIN"], "AUTH LOGIN"),
      { kind: "response", line: "dXNlcg== x" },
      cmd("NOOP", [], "NOOP"),
    ]);
  });
});

describe("SMTP line bound (smtp_client_buffer)", () => {
  test("a line of exactly the bound with its LF fits; without LF it is too long, with a capped head", () => {
    const fits = "HELO " + "x".repeat(CAP - 7) + "\r\n";
    assert.equal(results(fits)[0].kind, "command");
    const r = parse(["HELO " + "x".repeat(CAP)]);
    assert.equal(r.results.length, 1);
    assert.equal(r.results[0].kind, "tooLong");
    assert.equal((r.results[0] as { head: string }).head.length, TOO_LONG_LOG_HEAD);
  });
  test("reset() forgets the scan position of a dropped partial line", () => {
    const input = new LineBuffer(CAP + READ_CHUNK_SLACK);
    const parser = new SmtpParser(CAP);
    input.push(binaryToBytes("STARTTLS-injected-without-lf"));
    assert.deepEqual(parser.parse(input, "command"), { kind: "more" });
    input.clear();
    parser.reset();
    input.push(binaryToBytes("\nNOOP\r\n"));
    assert.deepEqual(parser.parse(input, "command"), { kind: "invalid" });
    assert.deepEqual(parser.parse(input, "command"), cmd("NOOP", [], "NOOP"));
  });
});

// ---- properties --------------------------------------------------------------

const arg = fc.stringMatching(/^[!-~]{1,12}$/);
const validLine = fc.tuple(
  fc.constantFrom("EHLO", "helo", "MAIL", "RCPT", "RSET", "NOOP", "Vrfy", "AUTH", "starttls"),
  fc.array(arg, { maxLength: MAX_ARGS }),
  fc.constantFrom(" ", "  "),
).map(([c, a, sep]) => [c, ...a].join(sep));
const transcript = fc.array(fc.tuple(validLine, fc.constantFrom("\r\n", "\n")), {
  minLength: 1,
  maxLength: 8,
})
  .map((ls) => ls.map(([l, e]) => l + e).join(""));

describe("SMTP parser, properties", () => {
  test("a valid transcript parses the same whole, split at every byte boundary, and byte by byte", () => {
    check(
      fc.property(transcript, (t) => {
        const whole = parse([t]);
        assert.equal(whole.held, 0, "every line consumed");
        assert.ok(
          whole.results.every((r) => r.kind === "command" || r.kind === "response"),
          JSON.stringify(whole.results),
        );
        for (let i = 1; i < t.length; i++) {
          assert.deepEqual(parse([t.slice(0, i), t.slice(i)]), whole, `split at ${i}`);
        }
        assert.deepEqual(parse(bytewise(t)), whole);
      }),
      60,
    );
  });
  test("hostile input: never throws, split-invariant, never holds a complete line or more than the cap", () => {
    check(fc.property(fc.oneof(hostileText(12), binary(1200)), cuts, (input, at) => {
      const whole = parse([input]);
      assert.deepEqual(parse(splitAt(input, at)), whole);
      if (whole.results.at(-1)?.kind !== "tooLong") {
        assert.ok(whole.held < CAP, `held ${whole.held}`);
      }
    }));
  });
});
