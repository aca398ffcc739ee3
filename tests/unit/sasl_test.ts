import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeBase64,
  decodeCramMd5,
  decodeExternal,
  decodeLoginValue,
  decodePlain,
  encodeBase64,
  SASL_PASSWORD_CHALLENGE,
  SASL_USERNAME_CHALLENGE,
  saslResponseOfLine,
  saslResponseOfWords,
} from "../../lib/core/sasl.ts";

describe("lenient base64 decoding (imap.md §5)", () => {
  test("standard padded input", () => {
    assert.equal(decodeBase64("dGVzdA=="), "test");
    assert.equal(decodeBase64("dGVzdDE="), "test1");
    assert.equal(decodeBase64("dGVzdDEy"), "test12");
  });
  test("missing padding is fine", () => {
    assert.equal(decodeBase64("dGVzdA"), "test");
    assert.equal(decodeBase64("dGVzdDE"), "test1");
  });
  test("decoding stops at the first '='", () => {
    assert.equal(decodeBase64("dGVzdA==!!garbage"), "test");
    assert.equal(decodeBase64("dGVz=dA"), "tes");
    assert.equal(decodeBase64("="), "");
  });
  test("empty decodes to empty", () => {
    assert.equal(decodeBase64(""), "");
  });
  test("a character outside the alphabet before '=' is an error", () => {
    assert.equal(decodeBase64("dGV*dA=="), null);
    assert.equal(decodeBase64("*"), null);
    assert.equal(decodeBase64("dGVz dA"), null);
    assert.equal(decodeBase64("dGVz-A"), null); // base64url is not accepted
    assert.equal(decodeBase64("dGVz\u0100"), null);
  });
  test("a single dangling character is an error", () => {
    assert.equal(decodeBase64("d"), null);
    assert.equal(decodeBase64("dGVzd"), null);
    assert.equal(decodeBase64("dGVzd==="), null);
  });
  test("binary output is a binary string", () => {
    assert.equal(decodeBase64("AP8A/w=="), "\x00\xff\x00\xff");
    assert.equal(decodeBase64("w6k="), "\xc3\xa9"); // UTF-8 é stays two bytes
  });
});

describe("base64 encoding", () => {
  test("padding for every remainder", () => {
    assert.equal(encodeBase64(""), "");
    assert.equal(encodeBase64("t"), "dA==");
    assert.equal(encodeBase64("te"), "dGU=");
    assert.equal(encodeBase64("tes"), "dGVz");
    assert.equal(encodeBase64("test"), "dGVzdA==");
  });
  test("binary strings and the challenge constants", () => {
    assert.equal(encodeBase64("\x00\xff\x00\xff"), "AP8A/w==");
    assert.equal(encodeBase64("Username:"), SASL_USERNAME_CHALLENGE);
    assert.equal(encodeBase64("Password:"), SASL_PASSWORD_CHALLENGE);
    assert.equal(
      encodeBase64("<1896.697170952@postoffice.example.net>"),
      "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UuZXhhbXBsZS5uZXQ+",
    );
  });
  test("round trip of every byte value", () => {
    let all = "";
    for (let i = 0; i < 256; i++) all += String.fromCharCode(i);
    for (let n = 0; n <= 5; n++) {
      assert.equal(decodeBase64(encodeBase64(all.slice(n))), all.slice(n));
    }
  });
});

describe("PLAIN", () => {
  const b64 = (s: string) => encodeBase64(s);
  test("authzid NUL authcid NUL passwd; authzid ignored", () => {
    assert.deepEqual(decodePlain(b64("\0test@example.com\0secret")), {
      ok: true,
      user: "test@example.com",
      pass: "secret",
    });
    assert.deepEqual(decodePlain(b64("admin\0bob\0pw")), { ok: true, user: "bob", pass: "pw" });
  });
  test("empty parts and NULs inside the password", () => {
    assert.deepEqual(decodePlain(b64("\0\0")), { ok: true, user: "", pass: "" });
    assert.deepEqual(decodePlain(b64("a\0b\0")), { ok: true, user: "b", pass: "" });
    assert.deepEqual(decodePlain(b64("\0u\0p\0q")), { ok: true, user: "u", pass: "p\0q" });
  });
  test("fewer than two NULs is an error", () => {
    assert.deepEqual(decodePlain(b64("user")), {
      ok: false,
      log: "client sent invalid login in AUTH PLAIN command",
    });
    assert.deepEqual(decodePlain(b64("user\0")), {
      ok: false,
      log: "client sent invalid login in AUTH PLAIN command",
    });
    assert.deepEqual(decodePlain(b64("\0user")), {
      ok: false,
      log: "client sent invalid password in AUTH PLAIN command",
    });
    assert.deepEqual(decodePlain(""), {
      ok: false,
      log: "client sent invalid login in AUTH PLAIN command",
    });
  });
  test("bad base64", () => {
    assert.deepEqual(decodePlain("%%%"), {
      ok: false,
      log: "client sent invalid base64 encoding in AUTH PLAIN command",
    });
  });
});

describe("CRAM-MD5", () => {
  const digest = "0".repeat(32);
  test("user SP 32-character digest", () => {
    assert.deepEqual(decodeCramMd5(encodeBase64("test@example.com " + digest)), {
      ok: true,
      user: "test@example.com",
      pass: digest,
    });
  });
  test("the digest is everything after the first space", () => {
    const d = "a b" + "c".repeat(29);
    assert.deepEqual(decodeCramMd5(encodeBase64("u " + d)), { ok: true, user: "u", pass: d });
    assert.deepEqual(decodeCramMd5(encodeBase64(" " + digest)), {
      ok: true,
      user: "",
      pass: digest,
    });
  });
  test("wrong digest length or no space is an error", () => {
    const bad = { ok: false, log: "client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command" };
    assert.deepEqual(decodeCramMd5(encodeBase64("u " + "0".repeat(31))), bad);
    assert.deepEqual(decodeCramMd5(encodeBase64("u " + "0".repeat(33))), bad);
    assert.deepEqual(decodeCramMd5(encodeBase64("u" + digest)), bad);
    assert.deepEqual(decodeCramMd5(""), bad);
  });
  test("bad base64", () => {
    assert.deepEqual(decodeCramMd5("a"), {
      ok: false,
      log: "client sent invalid base64 encoding in AUTH CRAM-MD5 command",
    });
  });
});

describe("LOGIN and EXTERNAL values", () => {
  test("decode, empty allowed", () => {
    assert.deepEqual(decodeLoginValue("dGVzdA=="), { ok: true, value: "test" });
    assert.deepEqual(decodeLoginValue(""), { ok: true, value: "" });
    assert.deepEqual(decodeExternal("dGVzdA"), { ok: true, value: "test" });
    assert.deepEqual(decodeExternal(""), { ok: true, value: "" });
  });
  test("errors name the mechanism", () => {
    assert.deepEqual(decodeLoginValue("*"), {
      ok: false,
      log: "client sent invalid base64 encoding in AUTH LOGIN command",
    });
    assert.deepEqual(decodeExternal("x"), {
      ok: false,
      log: "client sent invalid base64 encoding in AUTH EXTERNAL command",
    });
  });
});

describe("response lines", () => {
  test("first word is used", () => {
    assert.deepEqual(saslResponseOfLine("dGVzdA==", 3), { kind: "value", value: "dGVzdA==" });
    assert.deepEqual(saslResponseOfLine("  dGVzdA==  x", 3), { kind: "value", value: "dGVzdA==" });
    assert.deepEqual(saslResponseOfLine("a b c", 3), { kind: "value", value: "a" });
    assert.deepEqual(saslResponseOfLine("", 3), { kind: "value", value: "" });
    assert.deepEqual(saslResponseOfLine("   ", 3), { kind: "value", value: "" });
  });
  test("more words than allowed is an invalid line", () => {
    assert.deepEqual(saslResponseOfLine("a b c d", 3), { kind: "invalid" });
    assert.deepEqual(saslResponseOfLine("a b c d", 11), { kind: "value", value: "a" });
  });
  test("exactly '*' cancels; anything else with a star does not", () => {
    assert.deepEqual(saslResponseOfLine("*", 3), { kind: "cancel" });
    assert.deepEqual(saslResponseOfLine(" *", 3), { kind: "value", value: "*" });
    assert.deepEqual(saslResponseOfLine("* x", 3), { kind: "value", value: "*" });
    assert.deepEqual(saslResponseOfWords(["*"], true), { kind: "cancel" });
    assert.deepEqual(saslResponseOfWords(["*"], false), { kind: "value", value: "*" });
    assert.deepEqual(saslResponseOfWords([], false), { kind: "value", value: "" });
    assert.deepEqual(saslResponseOfWords(["a", "b"], false), { kind: "value", value: "a" });
  });
});
