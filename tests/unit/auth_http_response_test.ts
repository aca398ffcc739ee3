import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  AUTH_LOG,
  type AuthResponseHeaders,
  AuthResponseParser,
  decideAuth,
  MAX_AUTH_RESPONSE_HEADER,
  MAX_AUTH_WAIT_SEC,
  NGX_MAX_INT_T_TEXT,
  parseDecimal,
  type ParseResult,
} from "../../lib/auth/http_response.ts";
import type { AuthRequest } from "../../lib/auth/types.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import type { Credentials } from "../../lib/core/machine.ts";

function parse(text: string, cap?: number): ParseResult {
  return new AuthResponseParser(cap).feed(binaryToBytes(text));
}

/** Feed the transcript in the given pieces; the result of the last feed. */
function parsePieces(pieces: string[], cap?: number): ParseResult {
  const p = new AuthResponseParser(cap);
  let r: ParseResult = { kind: "more" };
  for (const piece of pieces) r = p.feed(binaryToBytes(piece));
  return r;
}

const EMPTY: AuthResponseHeaders = {
  refusal: null,
  wait: false,
  server: null,
  port: null,
  user: null,
  pass: null,
  errorCode: null,
  errorSasl: null,
  waitSec: null,
};

function done(h: Partial<AuthResponseHeaders>): ParseResult {
  return { kind: "done", headers: { ...EMPTY, ...h } };
}

const OK_HEADERS = { server: "198.51.100.1", port: "143" };

// [name, response, expected result]
const CASES: [string, string, ParseResult][] = [
  [
    "status line skipped",
    "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 198.51.100.1\r\nAuth-Port: 143\r\n\r\n",
    done(OK_HEADERS),
  ],
  [
    "no status line: headers from the first byte",
    "Auth-Status: OK\r\nAuth-Server: 198.51.100.1\r\nAuth-Port: 143\r\n\r\n",
    done(OK_HEADERS),
  ],
  [
    "status code ignored (500)",
    "HTTP/1.1 500 Internal Server Error\r\nAuth-Server: 198.51.100.1\r\nAuth-Port: 143\r\n\r\n",
    done(OK_HEADERS),
  ],
  [
    "status line content is never parsed",
    "HTTP/ this: is _not_ a header\r\nAuth-Port: 143\r\n\r\n",
    done({ port: "143" }),
  ],
  [
    "LF-only line ends",
    "HTTP/1.0 200 OK\nAuth-Server: 198.51.100.1\nAuth-Port: 143\n\n",
    done(OK_HEADERS),
  ],
  [
    "mixed CRLF and LF",
    "HTTP/1.0 200 OK\r\nAuth-Server: 198.51.100.1\nAuth-Port: 143\r\n\n",
    done(OK_HEADERS),
  ],
  ["empty response header block", "\r\n", done({})],
  ["only a status line", "HTTP/1.0 204 No Content\r\n\r\n", done({})],
  ["name without colon: empty value", "Auth-Status\r\n\r\n", done({ refusal: "" })],
  ["name without colon, LF", "Auth-Pass\nAuth-Server:\n\n", done({ pass: "", server: "" })],
  [
    "spaces after the colon skipped, trailing spaces trimmed",
    "Auth-Status:    Bad  pass   \r\n\r\n",
    done({ refusal: "Bad  pass" }),
  ],
  ["no space after the colon", "Auth-Port:143\r\n\r\n", done({ port: "143" })],
  ["only spaces as value", "Auth-User:    \r\n\r\n", done({ user: "" })],
  ["tab is not skipped", "Auth-User:\tx\t\r\n\r\n", done({ user: "\tx\t" })],
  [
    "names case-insensitive",
    "auth-STATUS: OK\r\nAUTH-server: 198.51.100.1\r\nauth-port: 143\r\n\r\n",
    done(OK_HEADERS),
  ],
  ["values case-sensitive: ok is a refusal", "Auth-Status: ok\r\n\r\n", done({ refusal: "ok" })],
  ["unknown headers ignored", "X-Foo: bar\r\nContent-Length: 10\r\n9x: y\r\n\r\n", done({})],
  [
    "duplicates: last wins",
    "Auth-Server: 1.1.1.1\r\nAuth-Server: 2.2.2.2\r\nAuth-User: a\r\nAuth-User: b\r\n\r\n",
    done({ server: "2.2.2.2", user: "b" }),
  ],
  [
    "refusal not cancelled by a later OK",
    "Auth-Status: Bad\r\nAuth-Status: OK\r\n\r\n",
    done({ refusal: "Bad" }),
  ],
  [
    "last refusal message wins",
    "Auth-Status: One\r\nAuth-Status: Two\r\n\r\n",
    done({ refusal: "Two" }),
  ],
  ["OK then refusal", "Auth-Status: OK\r\nAuth-Status: No\r\n\r\n", done({ refusal: "No" })],
  [
    "WAIT not cancelled by a later OK",
    "Auth-Status: WAIT\r\nAuth-Status: OK\r\n\r\n",
    done({ wait: true }),
  ],
  ["Auth-Wait numeric", "Auth-Wait: 3\r\n\r\n", done({ waitSec: 3 })],
  [
    "Auth-Wait non-numeric ignored",
    "Auth-Wait: 2\r\nAuth-Wait: soon\r\nAuth-Wait: -1\r\nAuth-Wait: 1.5\r\n\r\n",
    done({ waitSec: 2 }),
  ],
  [
    "Auth-Wait: the largest value ngx_atoi accepts is clamped",
    "Auth-Wait: 9223372036854775807\r\n\r\n",
    done({ waitSec: MAX_AUTH_WAIT_SEC }),
  ],
  [
    "Auth-Wait overflowing ngx_atoi is ignored, not clamped",
    "Auth-Wait: 9223372036854775808\r\n\r\n",
    done({}),
  ],
  [
    "Auth-Error-Code kept",
    "Auth-Status: Mailbox store offline\r\nAuth-Error-Code: 454 4.7.0\r\nAuth-Wait: 5\r\n\r\n",
    done({ refusal: "Mailbox store offline", errorCode: "454 4.7.0", waitSec: 5 }),
  ],
  [
    "values are bytes, used as-is (no unescaping)",
    "Auth-Pass: p%20w\xe9\xff\r\n\r\n",
    done({ pass: "p%20w\xe9\xff" }),
  ],
  [
    "body after the empty line ignored",
    "Auth-Port: 143\r\n\r\n\x00garbage\rwithout LF",
    done({ port: "143" }),
  ],
  ["digits may start a name", "1x: y\r\nAuth-Port: 1\r\n\r\n", done({ port: "1" })],
  ["HTTP without slash is a header name", "HTTPX: y\r\nAuth-Port: 2\r\n\r\n", done({ port: "2" })],
  ["H alone as a header name", "H\r\n\r\n", done({})],
  // errors
  ["underscore in a name", "Auth_Status: OK\r\n\r\n", { kind: "error", reason: "invalid-header" }],
  ["space before the colon", "Auth-Status : OK\r\n\r\n", {
    kind: "error",
    reason: "invalid-header",
  }],
  ["line starting with a space", " Auth-Status: OK\r\n\r\n", {
    kind: "error",
    reason: "invalid-header",
  }],
  ["name starting with -", "-Auth: x\r\n\r\n", { kind: "error", reason: "invalid-header" }],
  ["lower-case http/ is not a status line", "http/1.0 200 OK\r\n\r\n", {
    kind: "error",
    reason: "invalid-header",
  }],
  ["CR not followed by LF in a value", "Auth-Status: OK\rX\n\r\n", {
    kind: "error",
    reason: "invalid-header",
  }],
  ["CR not followed by LF after a name", "Auth-Pass\rX\n\r\n", {
    kind: "error",
    reason: "invalid-header",
  }],
  ["CR not followed by LF in the empty line", "Auth-Port: 1\r\n\rX", {
    kind: "error",
    reason: "invalid-header",
  }],
  ["CR not followed by LF in the status line", "HTTP/1.0 200 OK\rX\n\r\n", {
    kind: "error",
    reason: "invalid-response",
  }],
  ["high byte in a name", "Auth-St\xe4tus: OK\r\n\r\n", {
    kind: "error",
    reason: "invalid-header",
  }],
  // incomplete
  ["no empty line yet", "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n", { kind: "more" }],
  ["a prefix of HTTP/", "HTT", { kind: "more" }],
  ["CR at the end", "Auth-Port: 1\r\n\r", { kind: "more" }],
  ["nothing", "", { kind: "more" }],
];

describe("AuthResponseParser (auth_http.md §3)", () => {
  for (const [name, text, want] of CASES) {
    test(name, () => assert.deepEqual(parse(text), want));
  }

  test("split at every byte boundary (and byte by byte) gives the same result", () => {
    for (const [name, text, want] of CASES) {
      for (let i = 0; i <= text.length; i++) {
        assert.deepEqual(
          parsePieces([text.slice(0, i), text.slice(i)]),
          want,
          `${name} split at ${i}`,
        );
      }
      assert.deepEqual(
        parsePieces(text.split("")),
        text === "" ? { kind: "more" } : want,
        `${name} byte by byte`,
      );
    }
  });

  test("three-way splits of a long response", () => {
    const text =
      "HTTP/1.0 200 OK\r\nAuth-Status: Bad  one \r\nAuth-Wait: 7\r\nAuth-Status: OK\r\nX\n\r\nbody";
    const want = done({ refusal: "Bad  one", waitSec: 7 });
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        assert.deepEqual(parsePieces([text.slice(0, i), text.slice(i, j), text.slice(j)]), want);
      }
    }
  });

  test("after a result, further input changes nothing", () => {
    const p = new AuthResponseParser();
    const r = p.feed(binaryToBytes("Auth-Port: 1\r\n\r\n"));
    assert.equal(r.kind, "done");
    assert.deepEqual(p.feed(binaryToBytes("Auth-Port: 2\r\n\r\n")), r);
    const q = new AuthResponseParser();
    const e = q.feed(binaryToBytes("_\r\n"));
    assert.deepEqual(q.feed(binaryToBytes("\r\n")), e);
  });

  test("the chunk may be a reused buffer: the parser copies", () => {
    const p = new AuthResponseParser();
    const buf = binaryToBytes("Auth-User: alice\r\n");
    assert.equal(p.feed(buf).kind, "more");
    buf.fill(0x21);
    assert.deepEqual(p.feed(binaryToBytes("\r\n")), done({ user: "alice" }));
  });

  test("accepts at least 1024 bytes (status line included)", () => {
    const value = "v".repeat(1024);
    const text = `HTTP/1.0 200 OK\r\nX-Padding: ${value}\r\nAuth-User: u\r\n\r\n`;
    assert.ok(text.length > 1024);
    assert.deepEqual(parse(text), done({ user: "u" }));
  });

  test("default cap is a named constant >= 1024", () => {
    assert.ok(MAX_AUTH_RESPONSE_HEADER >= 1024);
    const line = `X-Padding: ${"v".repeat(MAX_AUTH_RESPONSE_HEADER)}\r\n\r\n`;
    assert.deepEqual(parse(line), { kind: "error", reason: "too-big" });
  });

  test("oversize: exactly at the cap completes, one byte over fails", () => {
    const fits = "Auth-User: u\r\nX: " + "y".repeat(64 - 21) + "\r\n\r\n";
    assert.equal(fits.length, 64);
    assert.deepEqual(parse(fits, 64), done({ user: "u" }));
    // Body bytes beyond the cap after a complete block do not matter.
    assert.deepEqual(parse(fits + "body", 64), done({ user: "u" }));
    const over = "Auth-User: u\r\nX: " + "y".repeat(65 - 21) + "\r\n\r\n";
    assert.deepEqual(parse(over, 64), { kind: "error", reason: "too-big" });
    // Split feeding: the cap is reached with "more"; the next byte fails.
    const p = new AuthResponseParser(64);
    assert.deepEqual(p.feed(binaryToBytes(over.slice(0, 64))), { kind: "more" });
    assert.deepEqual(p.feed(binaryToBytes(over.slice(64))), { kind: "error", reason: "too-big" });
  });
});

function authReq(protocol: AuthRequest["protocol"], creds: Partial<Credentials> = {}): AuthRequest {
  return {
    protocol,
    creds: { method: "plain", user: "alice", pass: "secret", salt: null, ...creds },
    attempt: 1,
    clientIp: "192.0.2.1",
    clientHost: protocol === "smtp" ? "[UNAVAILABLE]" : null,
    proxyProtocol: null,
    tls: null,
    verifyClient: "off",
    passClientCert: false,
  };
}

const A = "127.0.0.1:9000";
const h = (x: Partial<AuthResponseHeaders>): AuthResponseHeaders => ({ ...EMPTY, ...x });

describe("decideAuth (auth_http.md §4)", () => {
  const cases: [string, AuthResponseHeaders, AuthRequest, ReturnType<typeof decideAuth>][] = [
    [
      "OK with server and port: client's user and password",
      h({ server: "198.51.100.1", port: "143" }),
      authReq("imap"),
      {
        kind: "ok",
        addr: "198.51.100.1",
        port: 143,
        user: "alice",
        pass: "secret",
        backendName: "198.51.100.1:143",
      },
    ],
    [
      "Auth-User / Auth-Pass replace the client's",
      h({ server: "198.51.100.1", port: "0143", user: "bob", pass: "pw" }),
      authReq("pop3"),
      {
        kind: "ok",
        addr: "198.51.100.1",
        port: 143,
        user: "bob",
        pass: "pw",
        backendName: "198.51.100.1:0143",
      },
    ],
    [
      "IPv6 server",
      h({ server: "2001:db8::5", port: "993" }),
      authReq("imap"),
      {
        kind: "ok",
        addr: "2001:db8::5",
        port: 993,
        user: "alice",
        pass: "secret",
        backendName: "2001:db8::5:993",
      },
    ],
    [
      "lax IPv4 as nginx reads it is normalised for connecting",
      h({ server: "010.0..1", port: "25" }),
      authReq("smtp"),
      {
        kind: "ok",
        addr: "10.0.0.1",
        port: 25,
        user: "alice",
        pass: "secret",
        backendName: "010.0..1:25",
      },
    ],
    [
      "refusal wins over everything, waitSec and no code for IMAP",
      h({
        refusal: "Bad",
        wait: true,
        waitSec: 2,
        errorCode: "451 4.3.0",
        server: "1.2.3.4",
        port: "1",
      }),
      authReq("imap"),
      { kind: "refused", message: "Bad", waitSec: 2, errorCode: null },
    ],
    [
      "SMTP refusal with Auth-Error-Code",
      h({ refusal: "Mailbox store offline", errorCode: "454 4.7.0", waitSec: 5 }),
      authReq("smtp"),
      { kind: "refused", message: "Mailbox store offline", waitSec: 5, errorCode: "454 4.7.0" },
    ],
    [
      "SMTP refusal with an empty Auth-Error-Code: the default code (as nginx)",
      h({ refusal: "Mailbox store offline", errorCode: "" }),
      authReq("smtp"),
      { kind: "refused", message: "Mailbox store offline", waitSec: 0, errorCode: null },
    ],
    [
      "refusal without Auth-Wait: waitSec 0",
      h({ refusal: "" }),
      authReq("pop3"),
      { kind: "refused", message: "", waitSec: 0, errorCode: null },
    ],
    [
      "WAIT with user/pass and delay",
      h({ wait: true, waitSec: 3, user: "u2", pass: "p2", server: "1.2.3.4", port: "1" }),
      authReq("imap"),
      { kind: "wait", waitSec: 3, user: "u2", pass: "p2" },
    ],
    ["WAIT without delay", h({ wait: true }), authReq("imap"), {
      kind: "wait",
      waitSec: 0,
      user: null,
      pass: null,
    }],
    ["no server", h({ port: "143" }), authReq("imap"), {
      kind: "error",
      log: `auth http server ${A} did not send server or port`,
    }],
    ["empty port", h({ server: "1.2.3.4", port: "" }), authReq("imap"), {
      kind: "error",
      log: `auth http server ${A} did not send server or port`,
    }],
    [
      "server/port checked before the password",
      h({ server: "1.2.3.4" }),
      authReq("imap", { method: "external", pass: "" }),
      { kind: "error", log: `auth http server ${A} did not send server or port` },
    ],
    [
      "IMAP external without Auth-Pass",
      h({ server: "1.2.3.4", port: "143" }),
      authReq("imap", { method: "external", pass: "" }),
      { kind: "error", log: `auth http server ${A} did not send password` },
    ],
    [
      "POP3 apop without Auth-Pass: the digest is not a password",
      h({ server: "1.2.3.4", port: "110" }),
      authReq("pop3", { method: "apop", pass: "d".repeat(32), salt: "<1.2@x>" }),
      { kind: "error", log: `auth http server ${A} did not send password` },
    ],
    [
      "IMAP cram-md5 without Auth-Pass",
      h({ server: "1.2.3.4", port: "143" }),
      authReq("imap", { method: "cram-md5", pass: "d".repeat(32), salt: "<1.2@x>" }),
      { kind: "error", log: `auth http server ${A} did not send password` },
    ],
    [
      "cram-md5 with Auth-Pass",
      h({ server: "1.2.3.4", port: "143", pass: "clear" }),
      authReq("imap", { method: "cram-md5", pass: "d".repeat(32), salt: "<1.2@x>" }),
      {
        kind: "ok",
        addr: "1.2.3.4",
        port: 143,
        user: "alice",
        pass: "clear",
        backendName: "1.2.3.4:143",
      },
    ],
    [
      "empty Auth-Pass counts as a password",
      h({ server: "1.2.3.4", port: "143", pass: "" }),
      authReq("imap", { method: "external", pass: "" }),
      {
        kind: "ok",
        addr: "1.2.3.4",
        port: 143,
        user: "alice",
        pass: "",
        backendName: "1.2.3.4:143",
      },
    ],
    [
      "SMTP without a password is fine (pass null)",
      h({ server: "1.2.3.4", port: "25" }),
      authReq("smtp", { method: "none", user: "", pass: "" }),
      { kind: "ok", addr: "1.2.3.4", port: 25, user: "", pass: null, backendName: "1.2.3.4:25" },
    ],
    [
      "password checked before the address",
      h({ server: "mail.example.com", port: "143" }),
      authReq("imap", { method: "external" }),
      { kind: "error", log: `auth http server ${A} did not send password` },
    ],
    [
      // mailgate extension: kept as a name, resolved when dialing (backend_dial.ts).
      "host name is passed on for the resolver",
      h({ server: "mail.example.com", port: "143" }),
      authReq("imap"),
      {
        kind: "ok",
        addr: "mail.example.com",
        port: 143,
        user: "alice",
        pass: "secret",
        backendName: "mail.example.com:143",
      },
    ],
    [
      "something that is neither an address nor a host name",
      h({ server: "mail_example.com", port: "143" }),
      authReq("imap"),
      {
        kind: "error",
        log: `auth http server ${A} sent invalid server address:"mail_example.com"`,
      },
    ],
    [
      "bracketed IPv6 is invalid",
      h({ server: "[::1]", port: "143" }),
      authReq("imap"),
      { kind: "error", log: `auth http server ${A} sent invalid server address:"[::1]"` },
    ],
    [
      "address checked before the port",
      h({ server: "1.2.3.4:143", port: "x" }),
      authReq("imap"),
      { kind: "error", log: `auth http server ${A} sent invalid server address:"1.2.3.4:143"` },
    ],
    ...["0", "65536", "-1", "14 3", "x", "1e3", "+143"].map((
      p,
    ): [string, AuthResponseHeaders, AuthRequest, ReturnType<typeof decideAuth>] => [
      `invalid port ${JSON.stringify(p)}`,
      h({ server: "1.2.3.4", port: p }),
      authReq("imap"),
      { kind: "error", log: `auth http server ${A} sent invalid server port:"${p}"` },
    ]),
    [
      "port 65535",
      h({ server: "1.2.3.4", port: "65535" }),
      authReq("imap"),
      {
        kind: "ok",
        addr: "1.2.3.4",
        port: 65535,
        user: "alice",
        pass: "secret",
        backendName: "1.2.3.4:65535",
      },
    ],
  ];
  for (const [name, headers, req, want] of cases) {
    test(name, () => assert.deepEqual(decideAuth(headers, req, A), want));
  }

  test("log texts", () => {
    assert.equal(AUTH_LOG.timedOut("unix:/a"), "auth http server unix:/a timed out");
    assert.equal(
      AUTH_LOG.invalidHeader(A),
      `auth http server ${A} sent invalid header in response`,
    );
    assert.equal(AUTH_LOG.invalidResponse(A), `auth http server ${A} sent invalid response`);
  });
});

// ngx_atoi refuses (NGX_ERROR) a value above NGX_MAX_INT_T_VALUE; nginx then
// ignores Auth-Wait (a refusal is answered at once) and logs an invalid
// Auth-Port. Exact boundaries: the largest accepted value, one more, and
// 20+ digits.
const MAX = NGX_MAX_INT_T_TEXT; // 9223372036854775807
const MAX_PLUS_1 = "9223372036854775808";
const DIGITS_23 = "99999999999999999999999";

describe("overflowing numbers (ngx_atoi)", () => {
  test("parseDecimal: the largest accepted value, one more, 20+ digits, leading zeros", () => {
    assert.equal(MAX, String(2n ** 63n - 1n));
    assert.equal(parseDecimal(MAX), 9223372036854775807);
    assert.equal(parseDecimal(MAX_PLUS_1), null);
    assert.equal(parseDecimal("9999999999999999999"), null); // 19 digits, above the max
    assert.equal(parseDecimal("18446744073709551616"), null); // 2^64: wraps to 0 in 64-bit C
    assert.equal(parseDecimal("99999999999999999999"), null); // 20 digits
    assert.equal(parseDecimal(DIGITS_23), null);
    // Leading zeros do not count (ngx_atoi's value stays 0 through them).
    assert.equal(parseDecimal("0000" + MAX), 9223372036854775807);
    assert.equal(parseDecimal("0000" + MAX_PLUS_1), null);
    assert.equal(parseDecimal("0".repeat(25)), 0);
    assert.equal(parseDecimal("0".repeat(22) + "143"), 143);
  });

  const wait = (v: string) => parse(`Auth-Status: Try later\r\nAuth-Wait: ${v}\r\n\r\n`);
  test("Auth-Wait: the largest accepted value is clamped to MAX_AUTH_WAIT_SEC", () => {
    assert.deepEqual(wait(MAX), done({ refusal: "Try later", waitSec: MAX_AUTH_WAIT_SEC }));
    assert.deepEqual(wait(String(MAX_AUTH_WAIT_SEC + 1)), done({ refusal: "Try later", waitSec: MAX_AUTH_WAIT_SEC }));
  });
  for (const v of [MAX_PLUS_1, "99999999999999999999", DIGITS_23, "0000" + MAX_PLUS_1]) {
    test(`Auth-Wait: ${v} is ignored and the refusal is answered at once`, () => {
      const r = wait(v);
      assert.deepEqual(r, done({ refusal: "Try later" }));
      assert.equal(r.kind, "done");
      if (r.kind !== "done") return;
      assert.deepEqual(decideAuth(r.headers, authReq("imap"), A), {
        kind: "refused",
        message: "Try later",
        waitSec: 0,
        errorCode: null,
      });
    });
  }
  test("Auth-Wait: an overflowing value after a valid one leaves the valid one (nginx keeps ctx->sleep)", () => {
    assert.deepEqual(
      parse(`Auth-Status: WAIT\r\nAuth-Wait: 4\r\nAuth-Wait: ${DIGITS_23}\r\n\r\n`),
      done({ wait: true, waitSec: 4 }),
    );
  });

  const port = (v: string) => {
    const r = parse(`Auth-Status: OK\r\nAuth-Server: 192.0.2.9\r\nAuth-Port: ${v}\r\n\r\n`);
    assert.equal(r.kind, "done");
    return r.kind === "done" ? decideAuth(r.headers, authReq("imap"), A) : null;
  };
  test("Auth-Port: 65535 and zero-padded 143 (22 digits) are accepted", () => {
    assert.deepEqual(port("65535"), {
      kind: "ok",
      addr: "192.0.2.9",
      port: 65535,
      user: "alice",
      pass: "secret",
      backendName: "192.0.2.9:65535",
    });
    const padded = "0".repeat(19) + "143";
    assert.deepEqual(port(padded), {
      kind: "ok",
      addr: "192.0.2.9",
      port: 143,
      user: "alice",
      pass: "secret",
      backendName: `192.0.2.9:${padded}`,
    });
  });
  for (const v of ["65536", MAX, MAX_PLUS_1, "99999999999999999999", DIGITS_23, "18446744073709551759"]) {
    test(`Auth-Port: ${v} is an invalid server port (internal error)`, () => {
      assert.deepEqual(port(v), {
        kind: "error",
        log: `auth http server ${A} sent invalid server port:"${v}"`,
      });
    });
  }
});
