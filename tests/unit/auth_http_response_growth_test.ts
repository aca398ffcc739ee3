// The auth_http response parser starts with a small buffer and grows it up
// to its cap: answers that cross the initial size, fed whole or in pieces of
// every size, parse exactly as with one big buffer, and the cap still holds.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  AUTH_RESPONSE_BUF_INITIAL,
  AuthResponseParser,
  MAX_AUTH_RESPONSE_HEADER,
  type ParseResult,
} from "../../lib/auth/http_response.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";

/** Feeds `text` in pieces of `step` bytes (the last may be shorter). */
function feedInSteps(text: string, step: number, cap?: number): ParseResult {
  const p = new AuthResponseParser(cap);
  const bytes = binaryToBytes(text);
  let r: ParseResult = { kind: "more" };
  for (let off = 0; off < bytes.length && r.kind === "more"; off += step) {
    r = p.feed(bytes.subarray(off, off + step));
  }
  return r;
}

/** A response whose Auth-Pass value straddles the initial buffer size. */
function straddling(): { text: string; pass: string } {
  const head = "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 192.0.2.7\r\nAuth-Port: 143\r\n";
  const pad = `X-Pad: ${"p".repeat(AUTH_RESPONSE_BUF_INITIAL - head.length - 40)}\r\n`;
  const pass = "s3cr3t-".repeat(20);
  const text = `${head}${pad}Auth-Pass: ${pass}\r\nAuth-User: alice\r\n\r\n`;
  return { text, pass };
}

describe("auth_http response parser buffer growth", () => {
  test("the initial buffer is smaller than the cap (else there is nothing to grow)", () => {
    assert.ok(AUTH_RESPONSE_BUF_INITIAL < MAX_AUTH_RESPONSE_HEADER);
  });

  test("a value across the initial size: same headers whole and in every piece size", () => {
    const { text, pass } = straddling();
    const passStart = text.indexOf("Auth-Pass: ") + 11;
    assert.ok(
      passStart < AUTH_RESPONSE_BUF_INITIAL && passStart + pass.length > AUTH_RESPONSE_BUF_INITIAL,
    );
    const whole = feedInSteps(text, text.length);
    assert.equal(whole.kind, "done");
    if (whole.kind !== "done") return;
    assert.equal(whole.headers.pass, pass);
    assert.equal(whole.headers.user, "alice");
    assert.equal(whole.headers.server, "192.0.2.7");
    assert.equal(whole.headers.port, "143");
    for (const step of [1, 2, 3, 7, 64, 100, 511, 512, 513, 1000]) {
      assert.deepEqual(feedInSteps(text, step), whole, `pieces of ${step}`);
    }
  });

  test("grows to the full cap: a block of exactly MAX_AUTH_RESPONSE_HEADER bytes completes", () => {
    const tail = "Auth-User: u\r\n\r\n";
    const padLen = MAX_AUTH_RESPONSE_HEADER - tail.length - "X: \r\n".length;
    const text = `X: ${"y".repeat(padLen)}\r\n${tail}`;
    assert.equal(text.length, MAX_AUTH_RESPONSE_HEADER);
    for (const step of [text.length, 300, 4096]) {
      const r = feedInSteps(text, step);
      assert.equal(r.kind, "done", `pieces of ${step}`);
      if (r.kind === "done") assert.equal(r.headers.user, "u");
    }
    assert.deepEqual(feedInSteps("z" + text, 300), { kind: "error", reason: "too-big" });
  });

  test("a cap that is not a power-of-two multiple of the initial size is reached exactly", () => {
    const cap = AUTH_RESPONSE_BUF_INITIAL * 3 + 5;
    const tail = "Auth-User: u\r\n\r\n";
    const text = `X: ${"y".repeat(cap - tail.length - 5)}\r\n${tail}`;
    assert.equal(text.length, cap);
    const r = feedInSteps(text, 97, cap);
    assert.equal(r.kind, "done");
    assert.deepEqual(feedInSteps(text + "", 97, cap - 1), { kind: "error", reason: "too-big" });
  });

  test("bytes kept across feeds are copies: reusing the caller's buffer changes nothing", () => {
    const { text, pass } = straddling();
    const p = new AuthResponseParser();
    const scratch = new Uint8Array(200);
    const bytes = binaryToBytes(text);
    let r: ParseResult = { kind: "more" };
    for (let off = 0; off < bytes.length && r.kind === "more"; off += scratch.length) {
      const piece = bytes.subarray(off, off + scratch.length);
      scratch.set(piece);
      r = p.feed(scratch.subarray(0, piece.length));
      scratch.fill(0x21); // the caller reuses its buffer
    }
    assert.equal(r.kind, "done");
    if (r.kind === "done") assert.equal(r.headers.pass, pass);
  });
});
