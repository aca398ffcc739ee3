import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { xtextEncode } from "../../lib/smtp/xtext.ts";

describe("xtext (smtp.md §8.1 XCLIENT LOGIN=)", () => {
  test("spec examples", () => {
    assert.equal(xtextEncode("a b"), "a+20b");
    assert.equal(xtextEncode("x=y"), "x+3Dy");
  });

  test("plain user names are unchanged", () => {
    assert.equal(xtextEncode("test@example.com"), "test@example.com");
    assert.equal(xtextEncode(""), "");
  });

  test("+ and = are encoded; every other printable ASCII byte is kept", () => {
    for (let c = 0x21; c <= 0x7e; c++) {
      const ch = String.fromCharCode(c);
      const want = ch === "+" ? "+2B" : ch === "=" ? "+3D" : ch;
      assert.equal(xtextEncode(ch), want, `byte ${c}`);
    }
  });

  test("bytes below 0x21 and above 0x7E become +XX with upper-case hex", () => {
    assert.equal(xtextEncode("\x00"), "+00");
    assert.equal(xtextEncode("\x20"), "+20");
    assert.equal(xtextEncode("\r\n"), "+0D+0A");
    assert.equal(xtextEncode("\x7f"), "+7F");
    assert.equal(xtextEncode("\xab\xff"), "+AB+FF");
    // UTF-8 "é" as a binary string
    assert.equal(xtextEncode("caf\xc3\xa9"), "caf+C3+A9");
  });

  test("an attribute cannot be smuggled in", () => {
    assert.equal(xtextEncode("u NAME=evil"), "u+20NAME+3Devil");
  });

  test("mixed runs", () => {
    assert.equal(xtextEncode("a+b c=d\te"), "a+2Bb+20c+3Dd+09e");
    assert.equal(xtextEncode(" x "), "+20x+20");
  });
});
