// lib/store/resp.ts: exact command bytes, every reply type, the same replies
// whatever the chunking (split at every byte, and random splits), and the
// caps: an oversized bulk string, array, line or nesting is a protocol
// error, not a buffer.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeCommand,
  MAX_ARRAY,
  MAX_BULK,
  MAX_DEPTH,
  MAX_LINE,
  type Reply,
  RespError,
  RespParser,
  RespProtocolError,
} from "../../lib/store/resp.ts";
import { check } from "../helpers/property.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function parseAll(chunks: Uint8Array[]): Reply[] {
  const p = new RespParser();
  const out: Reply[] = [];
  for (const c of chunks) out.push(...p.push(c));
  assert.equal(p.buffered, 0);
  return out;
}

const TRANSCRIPT = "+OK\r\n-ERR wrong number\r\n:42\r\n:-7\r\n$5\r\nhé\r\n\r\n$-1\r\n$0\r\n\r\n" +
  "*3\r\n:1\r\n$3\r\nabc\r\n*1\r\n+x\r\n*-1\r\n*0\r\n";
const EXPECTED: Reply[] = [
  "OK",
  new RespError("ERR wrong number"),
  42,
  -7,
  "hé\r\n",
  null,
  "",
  [1, "abc", ["x"]],
  null,
  [],
];

describe("RESP encoder", () => {
  test("a command is an array of bulk strings, lengths in bytes", () => {
    assert.equal(
      dec.decode(encodeCommand(["SET", "k", "hé", 100])),
      "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nhé\r\n$3\r\n100\r\n",
    );
    assert.equal(dec.decode(encodeCommand(["PING"])), "*1\r\n$4\r\nPING\r\n");
    assert.equal(dec.decode(encodeCommand(["GET", ""])), "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
  });

  test("the parser reads back what the encoder writes", () => {
    check(
      fc.property(
        fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 8 }),
        (args) => {
          assert.deepEqual(parseAll([encodeCommand(args)]), [args]);
        },
      ),
    );
  });
});

describe("RESP parser", () => {
  test("every reply type, in one chunk", () => {
    assert.deepEqual(parseAll([enc.encode(TRANSCRIPT)]), EXPECTED);
  });

  test("split at every byte: the same replies", () => {
    const bytes = enc.encode(TRANSCRIPT);
    for (let i = 1; i < bytes.length; i++) {
      assert.deepEqual(parseAll([bytes.slice(0, i), bytes.slice(i)]), EXPECTED, `split at ${i}`);
    }
    assert.deepEqual(parseAll([...bytes].map((b) => Uint8Array.of(b))), EXPECTED);
  });

  test("random splits: the same replies, chunks reused by the caller", () => {
    const bytes = enc.encode(TRANSCRIPT);
    check(
      fc.property(
        fc.array(fc.integer({ min: 1, max: bytes.length }), { maxLength: 12 }),
        (cuts) => {
          const points = [...new Set(cuts)].sort((a, b) => a - b);
          const p = new RespParser();
          const out: Reply[] = [];
          let at = 0;
          const scratch = new Uint8Array(bytes.length);
          for (const end of [...points, bytes.length]) {
            if (end <= at) continue;
            const view = scratch.subarray(0, end - at);
            view.set(bytes.subarray(at, end));
            out.push(...p.push(view));
            view.fill(0x21); // the adapter reuses its buffer: a parser that kept a view sees garbage
            at = end;
          }
          assert.deepEqual(out, EXPECTED);
        },
      ),
    );
  });

  test("generated replies: any tree of replies, any chunking, parses back the same", () => {
    const simple = fc.string({ maxLength: 12 }).map((t) => t.replace(/[\r\n]/g, "_"));
    const { reply } = fc.letrec<{ reply: Reply }>((tie) => ({
      reply: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        simple,
        simple.map((t) => new RespError(t)),
        fc.integer(),
        fc.constant(null),
        fc.string({ maxLength: 30 }).map((t) => ({ bulk: t }) as unknown as Reply),
        fc.array(tie("reply"), { maxLength: 4 }),
      ),
    }));
    const wire = (r: Reply): string => {
      if (r === null) return "$-1\r\n";
      if (r instanceof RespError) return `-${r.message}\r\n`;
      if (typeof r === "number") return `:${r}\r\n`;
      if (typeof r === "string") return `+${r}\r\n`;
      if (Array.isArray(r)) return `*${r.length}\r\n${r.map(wire).join("")}`;
      const t = (r as unknown as { bulk: string }).bulk;
      return `$${enc.encode(t).length}\r\n${t}\r\n`;
    };
    const plain = (r: Reply): Reply =>
      Array.isArray(r)
        ? r.map(plain)
        : r !== null && typeof r === "object" && !(r instanceof RespError)
        ? (r as unknown as { bulk: string }).bulk
        : r;
    check(fc.property(
      fc.array(reply, { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (replies, cutSeeds) => {
        const bytes = enc.encode(replies.map(wire).join(""));
        const cuts = [...new Set(cutSeeds.map((c) => c % (bytes.length + 1)))].sort((a, b) =>
          a - b
        );
        const chunks: Uint8Array[] = [];
        let at = 0;
        for (const c of [...cuts, bytes.length]) {
          if (c > at) chunks.push(bytes.slice(at, c));
          at = Math.max(at, c);
        }
        assert.deepEqual(parseAll(chunks), replies.map(plain));
      },
    ));
  });

  test("an incomplete reply is held, not returned", () => {
    const p = new RespParser();
    assert.deepEqual(p.push(enc.encode("$10\r\nabc")), []);
    assert.equal(p.buffered, 8);
    assert.deepEqual(p.push(enc.encode("defghij\r\n+OK")), ["abcdefghij"]);
    assert.deepEqual(p.push(enc.encode("\r\n")), ["OK"]);
  });

  const bad: [string, string][] = [
    ["unknown type byte", "!oops\r\n"],
    ["LF without CR", "+OK\n"],
    ["bad integer", ":12a\r\n"],
    ["negative bulk length", "$-2\r\n"],
    ["bulk without CRLF after it", "$3\r\nabcde\r\n"],
    ["bulk over the cap", `$${MAX_BULK + 1}\r\n`],
    ["array over the cap", `*${MAX_ARRAY + 1}\r\n`],
    ["nesting over the cap", "*1\r\n".repeat(MAX_DEPTH + 1)],
    ["huge length text", "$99999999999999999999\r\n"],
  ];
  for (const [what, text] of bad) {
    test(`protocol error: ${what}`, () => {
      const p = new RespParser();
      assert.throws(() => p.push(enc.encode(text)), RespProtocolError);
      assert.throws(() => p.push(enc.encode("+OK\r\n")), RespProtocolError, "dead after an error");
    });
  }

  test("a line with no end is an error once it passes the cap, not a growing buffer", () => {
    const p = new RespParser();
    const chunk = enc.encode("+" + "a".repeat(1000));
    assert.deepEqual(p.push(chunk), []);
    assert.throws(() => {
      for (let i = 0; i < MAX_LINE / 1000 + 2; i++) p.push(enc.encode("a".repeat(1000)));
    }, RespProtocolError);
  });

  test("a bulk string at the cap is accepted, in many chunks, without quadratic re-scans", () => {
    const p = new RespParser();
    const head = enc.encode(`$${MAX_BULK}\r\n`);
    assert.deepEqual(p.push(head), []);
    const piece = new Uint8Array(4096).fill(0x61);
    const started = performance.now();
    let got: Reply[] = [];
    for (let sent = 0; sent < MAX_BULK; sent += piece.length) got = p.push(piece);
    assert.deepEqual(got, []);
    got = p.push(enc.encode("\r\n"));
    assert.equal(got.length, 1);
    assert.equal((got[0] as string).length, MAX_BULK);
    assert.ok(performance.now() - started < 5000);
  });
});
