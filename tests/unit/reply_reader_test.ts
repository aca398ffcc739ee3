import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import { ReplyReader } from "../../lib/core/reply_reader.ts";

/** The next line as text ("<more>", "<tooLong:...>"). */
function next(r: ReplyReader): string {
  const l = r.nextLine();
  if (l.kind === "more") return "<more>";
  if (l.kind === "tooLong") return `<tooLong:${l.text}>`;
  return bytesToBinary(r.data().subarray(l.start, l.cr));
}

function reader(limit: number, ...chunks: string[]): ReplyReader {
  const r = new ReplyReader(limit);
  for (const c of chunks) r.push(binaryToBytes(c));
  return r;
}

describe("ReplyReader", () => {
  test("lines end at CRLF only", () => {
    const r = reader(100, "a\nb\rc");
    assert.equal(next(r), "<more>");
    r.push(binaryToBytes("\r"));
    assert.equal(next(r), "<more>");
    r.push(binaryToBytes("\n"));
    assert.equal(next(r), "a\nb\rc");
    assert.equal(next(r), "<more>");
  });

  test("one reply per endReply(); the next reply starts after it", () => {
    const r = reader(100, "one\r\ntwo\r\nthr");
    assert.equal(next(r), "one");
    r.endReply();
    assert.equal(next(r), "two");
    r.endReply();
    assert.equal(next(r), "<more>");
    assert.equal(bytesToBinary(r.take()), "thr");
    assert.equal(r.take().length, 0);
  });

  test("a multi-line reply: lines are handed out in order; take() starts at the reply", () => {
    const r = reader(100, "x\r\n", "250-a\r\n250 b\r\nextra");
    assert.equal(next(r), "x");
    r.endReply();
    assert.equal(next(r), "250-a");
    assert.equal(next(r), "250 b");
    assert.equal(bytesToBinary(r.take()), "250-a\r\n250 b\r\nextra");
  });

  test("the bound covers the whole reply, not each line", () => {
    const r = reader(12, "1234\r\n5678\r\n9");
    assert.equal(next(r), "1234");
    assert.equal(next(r), "5678"); // ends exactly at 12
    assert.equal(next(r), "<tooLong:1234\r\n5678\r>");
    const s = reader(12, "1234\r\n567890\r\n");
    assert.equal(next(s), "1234");
    assert.equal(next(s), "<tooLong:1234\r\n56789>");
  });

  test("each reply gets a fresh bound after endReply()", () => {
    const r = reader(8, "123456\r\n", "abcdef\r\n");
    assert.equal(next(r), "123456");
    r.endReply();
    assert.equal(next(r), "abcdef");
  });

  test("too long: the held bytes up to the bound, minus the last (as nginx logs)", () => {
    const r = reader(8, "abcdefg");
    assert.equal(next(r), "<more>");
    r.push(binaryToBytes("hij"));
    assert.equal(next(r), "<tooLong:abcdefg>");
  });

  test("more than the bound plus one read chunk: too long at once", () => {
    const r = reader(8, "ok\r\n");
    r.push(new Uint8Array(2 << 20));
    assert.equal(next(r), "<tooLong:ok\r>"); // the refused chunk is not held
  });

  test("split at every byte boundary gives the same lines", () => {
    const text = "+OK a\r\n+OK bb\r\n\r\n+OK ccc\r\n";
    const lines = (r: ReplyReader) => {
      const out: string[] = [];
      for (let i = 0; i < 10; i++) {
        const l = next(r);
        if (l === "<more>") break;
        out.push(l);
        r.endReply();
      }
      return out;
    };
    const whole = lines(reader(100, text));
    assert.deepEqual(whole, ["+OK a", "+OK bb", "", "+OK ccc"]);
    for (let k = 1; k < text.length; k++) {
      const r = reader(100, text.slice(0, k));
      const got = lines(r);
      r.push(binaryToBytes(text.slice(k)));
      assert.deepEqual([...got, ...lines(r)], whole, `split at ${k}`);
    }
  });
});
