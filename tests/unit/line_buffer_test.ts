import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LineBuffer } from "../../lib/core/line_buffer.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe("LineBuffer", () => {
  test("push, view, consume", () => {
    const b = new LineBuffer(100, 4);
    assert.equal(b.push(enc("abc")), true);
    assert.equal(b.push(enc("defgh")), true); // grows
    assert.equal(dec(b.view()), "abcdefgh");
    b.consume(3);
    assert.equal(b.length, 5);
    assert.equal(dec(b.view()), "defgh");
    assert.equal(b.indexOf(0x67), 3);
    assert.equal(b.indexOf(0x61), -1);
  });

  test("a long stream passes through a small buffer (consumed bytes are discarded)", () => {
    const b = new LineBuffer(64, 16);
    for (let i = 0; i < 1000; i++) {
      assert.equal(b.push(enc(`line ${i % 10}\r\n`)), true);
      assert.equal(dec(b.view()), `line ${i % 10}\r\n`);
      b.consume(b.length);
    }
    // Offsets survive compaction: a partial line keeps its bytes.
    b.push(enc("0123456789"));
    b.consume(8);
    b.push(enc("abcdefghijkl"));
    assert.equal(dec(b.view()), "89abcdefghijkl");
  });

  test("writes through view() persist across growth", () => {
    const b = new LineBuffer(1000, 4);
    b.push(enc("abcd"));
    b.view()[0] = 0x41;
    b.push(enc("efghijkl"));
    assert.equal(dec(b.view()), "Abcdefghijkl");
  });

  test("refuses to hold more than maxHeld", () => {
    const b = new LineBuffer(10, 4);
    assert.equal(b.push(enc("0123456789")), true);
    assert.equal(b.push(enc("x")), false);
    assert.equal(dec(b.view()), "0123456789");
    b.consume(5);
    assert.equal(b.push(enc("abcde")), true);
    assert.equal(dec(b.view()), "56789abcde");
  });

  test("take copies and empties; clear empties", () => {
    const b = new LineBuffer(100);
    b.push(enc("hello"));
    b.consume(1);
    const t = b.take();
    assert.equal(dec(t), "ello");
    assert.equal(b.length, 0);
    b.push(enc("zz"));
    assert.equal(dec(t), "ello"); // a copy, not a view
    b.clear();
    assert.equal(b.length, 0);
    assert.equal(b.view().length, 0);
  });
});
