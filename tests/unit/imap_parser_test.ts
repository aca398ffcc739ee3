import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import { LineBuffer } from "../../lib/core/line_buffer.ts";
import { ImapParser, type LineMode, type ParseResult } from "../../lib/imap/parser.ts";

/** Bound on parse() calls per test input (every loop in a test is bounded). */
const MAX_CALLS = 10_000;

/**
 * Feeds `text` (a binary string) in the given pieces and collects every
 * result except "more"; stops after tooLong. Lines whose tag is "auth"
 * switch the next line to response mode (as the machine would).
 */
function parse(
  text: string,
  opts: { cap?: number; mode?: LineMode; pieces?: string[] } = {},
): ParseResult[] {
  const cap = opts.cap ?? 4096;
  const input = new LineBuffer(cap + 1024);
  const parser = new ImapParser(cap);
  let mode: LineMode = opts.mode ?? "command";
  const out: ParseResult[] = [];
  let calls = 0;
  for (const piece of opts.pieces ?? [text]) {
    input.push(binaryToBytes(piece));
    for (;;) {
      assert.ok(++calls < MAX_CALLS, "parser did not settle");
      const r = parser.parse(input, mode);
      if (r.kind === "more") break;
      out.push(r);
      if (r.kind === "tooLong") return out;
      if (r.kind === "line") mode = r.line.tag === "auth" ? "response" : opts.mode ?? "command";
    }
  }
  return out;
}

function line(
  tag: string | null,
  command: string | null,
  args: string[],
  exactlyStar = false,
): ParseResult {
  return { kind: "line", line: { tag, command, args, exactlyStar } } as ParseResult;
}
const CONT: ParseResult = { kind: "continuation" };
function invalid(tag: string | null, closeAfter = false): ParseResult {
  return { kind: "invalid", tag, closeAfter };
}

describe("tags (imap.md §2)", () => {
  test("letters, digits, - . _ up to 32 characters", () => {
    const tag32 = "aZ09-._" + "x".repeat(25);
    assert.deepEqual(parse(`${tag32} NOOP\r\n`), [line(tag32, "NOOP", [])]);
    assert.deepEqual(parse(`${tag32}y NOOP\r\n`), [invalid(null)]);
  });
  test("anything else in the tag is invalid, with no tag", () => {
    assert.deepEqual(parse("* NOOP\r\n"), [invalid(null)]);
    assert.deepEqual(parse("+ NOOP\r\n"), [invalid(null)]);
    assert.deepEqual(parse("a*b NOOP\r\n"), [invalid(null)]);
    assert.deepEqual(parse("a{1}\r\n"), [invalid(null)]);
  });
  test("CR/LF before the first space is invalid (empty line too)", () => {
    assert.deepEqual(parse("abc\r\n"), [invalid(null)]);
    assert.deepEqual(parse("abc\n"), [invalid(null)]);
    assert.deepEqual(parse("\r\n"), [invalid(null)]);
    assert.deepEqual(parse("\n"), [invalid(null)]);
  });
  test("a line starting with a space has an empty tag", () => {
    assert.deepEqual(parse(" NOOP\r\n"), [line("", "NOOP", [])]);
    assert.deepEqual(parse("  FOO\r\n"), [invalid("")]);
  });
});

describe("command words", () => {
  test("recognised, case-insensitive, several spaces", () => {
    assert.deepEqual(
      parse("a capability\r\nb NoOp\r\nc   LOGOUT\r\nd starttls\r\ne Login\r\nf authenticate\r\n"),
      [
        line("a", "CAPABILITY", []),
        line("b", "NOOP", []),
        line("c", "LOGOUT", []),
        line("d", "STARTTLS", []),
        line("e", "LOGIN", []),
        line("f", "AUTHENTICATE", []),
      ],
    );
  });
  test("unknown words, non-letters and missing commands are invalid with the tag", () => {
    for (
      const cmd of [
        "IDX", // ID itself is known since the ID extension
        "IDLE",
        "ENABLE",
        "SELECT INBOX",
        "UID FETCH 1",
        "NOOP2",
        "NO-OP",
        "CAPABILITYX",
        "AUTHENTICATEX",
        "",
      ]
    ) {
      assert.deepEqual(parse(`t1 ${cmd}\r\n`), [invalid("t1")], cmd);
    }
    assert.deepEqual(parse("t1 \r\n"), [invalid("t1")]);
    assert.deepEqual(parse("t1 1NOOP\r\n"), [invalid("t1")]);
  });
});

describe("arguments", () => {
  test("atoms; quotes and backslashes not at the start are ordinary", () => {
    assert.deepEqual(parse('a LOGIN us"er pa\\ss\r\n'), [line("a", "LOGIN", ['us"er', "pa\\ss"])]);
    assert.deepEqual(parse("a LOGIN a{1} b\r\n"), [line("a", "LOGIN", ["a{1}", "b"])]);
    assert.deepEqual(parse("a LOGIN   x    y   \r\n"), [line("a", "LOGIN", ["x", "y"])]);
  });
  test("at most 3 arguments; a 4th is invalid", () => {
    assert.deepEqual(parse("a NOOP 1 2 3\r\n"), [line("a", "NOOP", ["1", "2", "3"])]);
    assert.deepEqual(parse("a NOOP 1 2 3 4\r\n"), [invalid("a")]);
    assert.deepEqual(parse('a NOOP 1 2 3 "4"\r\n'), [invalid("a")]);
    assert.deepEqual(parse("a NOOP 1 2 3 \r\n"), [line("a", "NOOP", ["1", "2", "3"])]);
  });
  test("quoted strings: escapes and spaces", () => {
    assert.deepEqual(parse('a LOGIN "te\\\\\\"st@example.com" "se\\\\\\"cret"\r\n'), [
      line("a", "LOGIN", ['te\\"st@example.com', 'se\\"cret']),
    ]);
    assert.deepEqual(parse('a LOGIN "a b" "\\x\\y"\r\n'), [line("a", "LOGIN", ["a b", "xy"])]);
    assert.deepEqual(parse('a LOGIN "" ""\r\n'), [line("a", "LOGIN", ["", ""])]);
  });
  test('no space needed after a closing quote: "a""b" is two arguments', () => {
    assert.deepEqual(parse('a LOGIN "a""b"\r\n'), [line("a", "LOGIN", ["a", "b"])]);
    assert.deepEqual(parse('a LOGIN "a"b\r\n'), [line("a", "LOGIN", ["a", "b"])]);
  });
  test("CR/LF before the closing quote ends the argument and the line; no state carried over", () => {
    assert.deepEqual(parse('a1 LOGIN bob "secret\r\na2 LOGIN "x y" z\r\n'), [
      line("a1", "LOGIN", ["bob", "secret"]),
      line("a2", "LOGIN", ["x y", "z"]),
    ]);
    assert.deepEqual(parse('a1 LOGIN bob "sec ret\n'), [line("a1", "LOGIN", ["bob", "sec ret"])]);
  });
  test("CR or LF right after a backslash is invalid", () => {
    assert.deepEqual(parse('a1 LOGIN bob "se\\\r\na2 NOOP\r\n'), [
      invalid("a1"),
      line("a2", "NOOP", []),
    ]);
    assert.deepEqual(parse('a1 LOGIN bob "se\\\na2 NOOP\r\n'), [
      invalid("a1"),
      line("a2", "NOOP", []),
    ]);
  });
});

describe("line ends", () => {
  test("LF or CRLF", () => {
    assert.deepEqual(parse("a NOOP\nb NOOP x\nc NOOP\r\n"), [
      line("a", "NOOP", []),
      line("b", "NOOP", ["x"]),
      line("c", "NOOP", []),
    ]);
  });
  test("a lone CR makes the line invalid; skipping ends at the next LF", () => {
    assert.deepEqual(parse("a NOOP\rb NOOP\r\nc NOOP\r\n"), [invalid("a"), line("c", "NOOP", [])]);
    assert.deepEqual(parse("a NOOP x\r\r\nc NOOP\r\n"), [invalid("a"), line("c", "NOOP", [])]);
    assert.deepEqual(parse("a NO\rOP\r\n"), [invalid("a")]);
  });
});

describe("literals (imap.md §3)", () => {
  test("{n} gets a continuation and takes n raw bytes", () => {
    assert.deepEqual(parse('a LOGIN {18}\r\nte\\"st@example.com {8}\r\nse\\"cret\r\n'), [
      CONT,
      CONT,
      line("a", "LOGIN", ['te\\"st@example.com', 'se\\"cret']),
    ]);
    assert.deepEqual(parse('a LOGIN {5}\n\r\n" \\ {5}\r\nx\ry\nz\r\n'), [
      CONT,
      CONT,
      line("a", "LOGIN", ['\r\n" \\', "x\ry\nz"]),
    ]);
  });
  test("{n+} takes the bytes with no continuation", () => {
    assert.deepEqual(parse("a LOGIN {4+}\r\nuser {6+}\r\nsecret\r\n"), [
      line("a", "LOGIN", ["user", "secret"]),
    ]);
  });
  test("a literal containing a backslash does not disturb a following quoted string", () => {
    assert.deepEqual(parse('a LOGIN {3+}\r\nte\\ "se\\"cret"\r\n'), [
      line("a", "LOGIN", ["te\\", 'se"cret']),
    ]);
  });
  test("{0}, {}, {+}, {0+} are empty strings; {0} and {} still get the continuation", () => {
    assert.deepEqual(parse("a LOGIN {0}\r\n {3}\r\nabc\r\n"), [
      CONT,
      CONT,
      line("a", "LOGIN", ["", "abc"]),
    ]);
    assert.deepEqual(parse("a LOGIN {}\r\n x\r\n"), [CONT, line("a", "LOGIN", ["", "x"])]);
    assert.deepEqual(parse("a LOGIN x {+}\r\n\r\n"), [line("a", "LOGIN", ["x", ""])]);
    assert.deepEqual(parse("a LOGIN x {0+}\n\n"), [line("a", "LOGIN", ["x", ""])]);
    assert.deepEqual(parse("a LOGIN x {0}\r\n\r\n"), [CONT, line("a", "LOGIN", ["x", ""])]);
  });
  test("after literal data a space or the line end is required", () => {
    assert.deepEqual(parse("a LOGIN {1}\r\nxy z\r\nb NOOP\r\n"), [
      CONT,
      invalid("a"),
      line("b", "NOOP", []),
    ]);
    assert.deepEqual(parse("a LOGIN {1+}\r\nxy\r\nb NOOP\r\n"), [
      invalid("a"),
      line("b", "NOOP", []),
    ]);
    // Invalid right after the data, and the line ends in a {n+}: closeAfter.
    assert.deepEqual(parse("a LOGIN {1+}\r\nx{1+}\r\nb NOOP\r\n"), [
      invalid("a", true),
      line("b", "NOOP", []),
    ]);
    assert.deepEqual(parse("a LOGIN {1+}\r\nx\rb\r\nc NOOP\r\n"), [
      invalid("a"),
      line("c", "NOOP", []),
    ]);
  });
  test("{n} must be the last thing on its line; malformed announcements are invalid", () => {
    for (
      const bad of ["{5} x", "{5}x", "{5x}", "{x}", "{5++}", "{+5}", "{5", "{5+", "{-1}", "{5}\rx"]
    ) {
      assert.deepEqual(
        parse(`a LOGIN ${bad}\r\nb NOOP\r\n`),
        [invalid("a"), line("b", "NOOP", [])],
        bad,
      );
    }
  });
  test("a literal as 4th argument is invalid", () => {
    assert.deepEqual(parse("a NOOP 1 2 3 {1}\r\nb NOOP\r\n"), [
      invalid("a"),
      line("b", "NOOP", []),
    ]);
  });
  test("literal lengths are bytes", () => {
    const user = "\xc3\xa9\x00\xff"; // binary string, 4 bytes
    assert.deepEqual(parse(`a LOGIN {4+}\r\n${user} p\r\n`), [line("a", "LOGIN", [user, "p"])]);
  });
});

describe("invalid lines ending in {n+} (imap.md §2.1)", () => {
  test("closeAfter is set only when the skipped line ends in a {n+} announcement", () => {
    assert.deepEqual(parse("a03 FOOBAR {10+}\r\ntest test \r\n"), [
      invalid("a03", true),
      invalid("test"),
    ]);
    assert.deepEqual(parse("a03 FOOBAR {10+}\n"), [invalid("a03", true)]);
    assert.deepEqual(parse("a03 FOOBAR{10+}\r\n"), [invalid("a03", true)]);
    assert.deepEqual(parse("a03 NOOP 1 2 3 {10+}\r\n"), [invalid("a03", true)]);
    assert.deepEqual(parse("a03 FOOBAR {+}\r\n"), [invalid("a03", true)]);
    assert.deepEqual(parse("a03 FOOBAR {10}\r\n"), [invalid("a03")]);
    assert.deepEqual(parse("a03 FOOBAR {10+} x\r\n"), [invalid("a03")]);
    assert.deepEqual(parse("a03 FOOBAR {1x+}\r\n"), [invalid("a03")]);
    assert.deepEqual(parse("* {10+}\r\n"), [invalid(null, true)]);
  });
  test("a valid literal before the invalid spot is skipped by length, not scanned", () => {
    // The literal data ends in "{5+}" but is data; the line ends plainly.
    assert.deepEqual(parse("a LOGIN {4+}\r\n{5+}x\r\n"), [invalid("a")]);
  });
});

describe("too long (imap.md §2.2)", () => {
  test("a command that does not complete within the cap", () => {
    const long = "a1 LOGIN " + "x".repeat(40) + "\r\n";
    assert.deepEqual(parse(long, { cap: 32 }), [{
      kind: "tooLong",
      tag: "a1",
      head: long.slice(0, 32),
    }]);
    assert.deepEqual(parse("x".repeat(40), { cap: 32 }), [{
      kind: "tooLong",
      tag: null,
      head: "x".repeat(32),
    }]);
  });
  test("exactly cap bytes including the LF fits", () => {
    const fits = "a1 LOGIN " + "x".repeat(21) + "\r\n"; // 32 bytes
    assert.equal(fits.length, 32);
    assert.deepEqual(parse(fits, { cap: 32 }), [line("a1", "LOGIN", ["x".repeat(21)])]);
    assert.equal(parse(fits.slice(0, 30) + "x" + "\r\n", { cap: 32 })[0].kind, "tooLong");
  });
  test("an invalid line is also too long once it fills the cap", () => {
    assert.deepEqual(parse("a1 FOO " + "y".repeat(40) + "\r\n", { cap: 32 }).map((r) => r.kind), [
      "tooLong",
    ]);
  });
  test("a literal that cannot fit is too long at once, before any continuation", () => {
    assert.deepEqual(parse("a1 LOGIN {100}\r\n", { cap: 64 }), [{
      kind: "tooLong",
      tag: "a1",
      head: "a1 LOGIN {100}\r\n",
    }]);
    assert.deepEqual(
      parse("a1 LOGIN {99999999999999999999999}\r\n", { cap: 64 }).map((r) => r.kind),
      ["tooLong"],
    );
    // 16 + 47 + 1 = 64: fits exactly.
    assert.deepEqual(parse("a1 LOGIN {47+}\r\n" + "z".repeat(47) + "\n", { cap: 64 }), [
      line("a1", "LOGIN", ["z".repeat(47)]),
    ]);
    assert.deepEqual(parse("a1 LOGIN {48+}\r\n", { cap: 64 }).map((r) => r.kind), ["tooLong"]);
  });
  test("the cap applies per command: consumed commands free their space", () => {
    const many = "a NOOP\r\n".repeat(20); // 160 bytes, each command 8
    assert.equal(parse(many, { cap: 16 }).length, 20);
  });
});

describe("SASL response lines (mode 'response')", () => {
  test("words split like arguments; no tag or command", () => {
    assert.deepEqual(parse("dGVzdA==\r\n", { mode: "response" }), [line(null, null, ["dGVzdA=="])]);
    assert.deepEqual(parse('  "a b" c\r\n', { mode: "response" }), [
      line(null, null, ["a b", "c"]),
    ]);
    assert.deepEqual(parse("{2}\r\nxy\r\n", { mode: "response" }), [
      CONT,
      line(null, null, ["xy"]),
    ]);
    assert.deepEqual(parse("\r\n", { mode: "response" }), [line(null, null, [])]);
  });
  test("more than 3 words is invalid", () => {
    assert.deepEqual(parse("a b c d\r\n", { mode: "response" }), [invalid(null)]);
  });
  test("exactly '*' is flagged", () => {
    assert.deepEqual(parse("*\r\n", { mode: "response" }), [line(null, null, ["*"], true)]);
    assert.deepEqual(parse("*\n", { mode: "response" }), [line(null, null, ["*"], true)]);
    assert.deepEqual(parse(" *\r\n", { mode: "response" }), [line(null, null, ["*"])]);
    assert.deepEqual(parse("* \r\n", { mode: "response" }), [line(null, null, ["*"])]);
    assert.deepEqual(parse('"*"\r\n', { mode: "response" }), [line(null, null, ["*"])]);
    assert.deepEqual(parse("**\r\n", { mode: "response" }), [line(null, null, ["**"])]);
  });
});

describe("resumability", () => {
  const transcript = [
    'a1 LOGIN "te\\\\\\"st" {5}\r\nse cr\r\n',
    "auth AUTHENTICATE PLAIN\r\n",
    "AHRlc3QAc2VjcmV0\r\n",
    'a2 LOGIN {3+}\r\nx\\y "q\\"" \r\n',
    "a3 FOO {4+}\r\n",
    "a4 NOOP 1 2 3 4\r\n",
    "a5 NOOP\ra6 NOOP\n",
    "a7 LOGIN {0}\r\n {2}\r\n\r\n\r\n",
    ' NOOP "unterminated\r\n',
  ].join("");

  test("split at every byte boundary and fed byte by byte gives identical results", () => {
    const whole = parse(transcript);
    assert.equal(whole.length, 12);
    for (let k = 1; k < transcript.length; k++) {
      assert.deepEqual(
        parse(transcript, { pieces: [transcript.slice(0, k), transcript.slice(k)] }),
        whole,
        `split ${k}`,
      );
    }
    const bytes = [...transcript];
    assert.deepEqual(parse(transcript, { pieces: bytes }), whole);
  });

  test("the expected results of that transcript", () => {
    assert.deepEqual(parse(transcript), [
      CONT,
      line("a1", "LOGIN", ['te\\"st', "se cr"]),
      line("auth", "AUTHENTICATE", ["PLAIN"]),
      line(null, null, ["AHRlc3QAc2VjcmV0"]),
      line("a2", "LOGIN", ["x\\y", 'q"']),
      invalid("a3", true),
      invalid("a4"), // (the machine would have closed after a3)
      invalid("a5"),
      CONT,
      CONT,
      line("a7", "LOGIN", ["", "\r\n"]),
      line("", "NOOP", ["unterminated"]),
    ]);
  });
});

describe("ID's parenthesised list (mailgate extension)", () => {
  const id = (args: string[], kinds: number[]) =>
    ({ kind: "line", line: { tag: "a", command: "ID", args, exactlyStar: false, kinds } }) as ParseResult;
  // TOKEN_ATOM 0, TOKEN_STRING 1, TOKEN_OPEN 2, TOKEN_CLOSE 3 (lib/imap/id.ts)
  test("parentheses are tokens; atoms end at ')'; strings keep their kind", () => {
    assert.deepEqual(parse('a ID ("k" NIL)\r\n'), [id(["", "k", "NIL", ""], [2, 1, 0, 3])]);
    assert.deepEqual(parse("a ID NIL\r\n"), [id(["NIL"], [0])]);
    assert.deepEqual(parse('a ID ({1}\r\nk "(v)")\r\n'), [CONT, id(["", "k", "(v)", ""], [2, 1, 1, 3])]);
    assert.deepEqual(parse("a ID ()\r\n"), [id(["", ""], [2, 3])]);
  });
  test("other commands keep '(' and ')' inside atoms", () => {
    assert.deepEqual(parse("a LOGIN (u) p)\r\n"), [line("a", "LOGIN", ["(u)", "p)"])]);
  });
  test("at most 62 tokens (30 pairs and the parentheses); more is an invalid line", () => {
    const pairs = (n: number) => Array.from({ length: n }, () => '"k" "v"').join(" ");
    const [r30] = parse(`a ID (${pairs(30)})\r\n`);
    assert.equal(r30.kind === "line" && r30.line.args.length, 62);
    assert.deepEqual(parse(`a ID (${pairs(30)} "k")\r\nb NOOP\r\n`), [invalid("a"), line("b", "NOOP", [])]);
  });
});
