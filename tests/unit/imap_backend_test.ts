import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { renderBackendStep } from "../helpers/drive_machine.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import type { BackendLogin, BackendStep } from "../../lib/core/machine.ts";
import { createImapBackendLogin } from "../../lib/imap/backend_login.ts";

function login(
  o: { tag?: string; user?: string; pass?: string; proxyBuffer?: number; passError?: boolean } = {},
) {
  const config = {
    proxyBuffer: o.proxyBuffer ?? 4096,
    proxyPassErrorMessage: o.passError ?? false,
    imapClientBuffer: 4096,
  } as ServerConfig;
  return createImapBackendLogin({
    config,
    creds: { method: "plain", user: "client", pass: "clientpw", salt: null, tag: o.tag ?? "a2" },
    user: o.user ?? "test@example.com",
    pass: o.pass ?? "secret",
    clientAddr: "127.0.0.1",
    clientHost: "[UNAVAILABLE]",
  });
}

const render = (s: BackendStep) => renderBackendStep(s, "B: ");

/** Pushes each chunk; collects rendered steps (bounded by the chunk count). */
function feed(m: BackendLogin, chunks: string[]): string[] {
  const out: string[] = [];
  for (const c of chunks) for (const s of m.push(binaryToBytes(c))) out.push(render(s));
  return out;
}

const GREETING = "* OK IMAP4rev1 ready\r\n";
const HAPPY = [
  "B: a2 LOGIN {16}\r\n",
  "B: test@example.com {6}\r\n",
  "B: secret\r\n",
];

describe("backend login (imap.md §8)", () => {
  test("greeting, two continuations, tagged OK: everything after the password goes to the client", () => {
    assert.deepEqual(feed(login(), [GREETING, "+ go ahead\r\n", "+ \r\n", "a2 OK login ok\r\n"]), [
      ...HAPPY,
      "DONE a2 OK login ok\r\n",
    ]);
  });

  test("one untagged line before the tagged OK is passed on (mail_imap.t)", () => {
    assert.deepEqual(
      feed(login(), [GREETING, "+\r\n", "+\r\n", "* CAPABILITY IMAP4rev1\r\na2 OK done\r\n"]),
      [
        ...HAPPY,
        "DONE * CAPABILITY IMAP4rev1\r\na2 OK done\r\n",
      ],
    );
  });

  test("product: any number of untagged lines, arriving separately", () => {
    assert.deepEqual(
      feed(login(), [
        GREETING,
        "+\r\n",
        "+\r\n",
        "* CAPABILITY IMAP4rev1\r\n",
        "* OK [ALERT] hi\r\n* 3 EXISTS\r\n",
        "a2 OK x\r\n",
      ]),
      [...HAPPY, "DONE * CAPABILITY IMAP4rev1\r\n* OK [ALERT] hi\r\n* 3 EXISTS\r\na2 OK x\r\n"],
    );
  });

  test("bytes after the tagged OK in the same chunk go to the client too", () => {
    assert.deepEqual(feed(login(), [GREETING, "+\r\n", "+\r\n", "a2 OK x\r\n* 1 EXISTS\r\n"]), [
      ...HAPPY,
      "DONE a2 OK x\r\n* 1 EXISTS\r\n",
    ]);
  });

  test("lengths are bytes; user and password are sent raw", () => {
    const user = '\xc3\xa9"u \\'; // 5 bytes incl. a quote, space, backslash
    const pass = "p\x00w";
    assert.deepEqual(
      feed(login({ user, pass, tag: "t1" }), [GREETING, "+\r\n", "+\r\n", "t1 OK\r\n"]),
      [
        "B: t1 LOGIN {6}\r\n",
        `B: ${user} {3}\r\n`,
        `B: ${pass}\r\n`,
        "DONE t1 OK\r\n",
      ],
    );
  });

  test("empty tag: the LOGIN and the OK carry the space", () => {
    assert.deepEqual(feed(login({ tag: "" }), [GREETING, "+\r\n", "+\r\n", " OK\r\n"]), [
      "B:  LOGIN {16}\r\n",
      HAPPY[1],
      HAPPY[2],
      "DONE  OK\r\n",
    ]);
  });

  test("a reply is complete only at CRLF", () => {
    const m = login();
    assert.deepEqual(feed(m, ["* OK hi\n", "still the greeting"]), []);
    assert.deepEqual(feed(m, ["\r", "\n"]), [HAPPY[0]]);
  });

  test("after done or fail nothing more happens", () => {
    const m = login();
    feed(m, [GREETING, "+\r\n", "+\r\n", "a2 OK\r\n"]);
    assert.deepEqual(m.push(binaryToBytes("more\r\n")), []);
    const f = login();
    feed(f, ["-ERR\r\n"]);
    assert.deepEqual(f.push(binaryToBytes(GREETING)), []);
  });
});

describe("backend replies that do not match", () => {
  const INTERNAL = "* BAD internal server error\r\n";
  test("proxy_pass_error_message off: internal error, error log", () => {
    assert.deepEqual(feed(login(), ["+OK POP3\r\n"]), [
      `FAIL ${INTERNAL}| error upstream sent invalid response: "+OK POP3"`,
    ]);
    assert.deepEqual(feed(login(), [GREETING, "a2 NO go away\r\n"]), [
      HAPPY[0],
      `FAIL ${INTERNAL}| error upstream sent invalid response: "a2 NO go away"`,
    ]);
    assert.deepEqual(feed(login(), [GREETING, "+\r\n", "* BYE\r\n"]), [
      HAPPY[0],
      HAPPY[1],
      `FAIL ${INTERNAL}| error upstream sent invalid response: "* BYE"`,
    ]);
    assert.deepEqual(
      feed(login(), [
        GREETING,
        "+\r\n",
        "+\r\n",
        "* CAPABILITY X\r\na2 NO [AUTHENTICATIONFAILED] bad\r\n",
      ]),
      [
        ...HAPPY,
        `FAIL ${INTERNAL}| error upstream sent invalid response: "a2 NO [AUTHENTICATIONFAILED] bad"`,
      ],
    );
  });

  test("the tag must match exactly, followed by OK", () => {
    for (const reply of ["a3 OK x\r\n", "A2 OK x\r\n", "a2 ok x\r\n", "a2  OK\r\n", "a2OK\r\n"]) {
      const r = feed(login(), [GREETING, "+\r\n", "+\r\n", reply]);
      assert.match(r[3], /^FAIL \* BAD internal server error/, reply);
    }
  });

  test("proxy_pass_error_message on: the backend's reply as received, info log", () => {
    assert.deepEqual(
      feed(login({ passError: true }), [
        GREETING,
        "+\r\n",
        "+\r\n",
        "* CAPABILITY X\r\n",
        "a2 NO bad\r\n",
      ]),
      [
        ...HAPPY,
        'FAIL * CAPABILITY X\r\na2 NO bad\r\n| info upstream sent invalid response: "a2 NO bad"',
      ],
    );
    assert.deepEqual(feed(login({ passError: true }), ["* BYE busy\r\n"]), [
      'FAIL * BYE busy\r\n| info upstream sent invalid response: "* BYE busy"',
    ]);
  });
});

describe("proxy_buffer bound", () => {
  test("a reply that fills proxy_buffer without CRLF fails", () => {
    const r = feed(login({ proxyBuffer: 32 }), ["* OK " + "x".repeat(40)]);
    assert.deepEqual(r, [
      `FAIL * BAD internal server error\r\n| error upstream sent too long response line: "* OK ${
        "x".repeat(26)
      }"`,
    ]);
  });
  test("a line ending exactly at proxy_buffer fits", () => {
    const greeting = "* OK " + "x".repeat(25) + "\r\n"; // 32 bytes
    assert.deepEqual(feed(login({ proxyBuffer: 32 }), [greeting]), [HAPPY[0]]);
    assert.match(
      feed(login({ proxyBuffer: 32 }), ["* OK " + "x".repeat(26) + "\r\n"])[0],
      /^FAIL .*too long response line/s,
    );
  });
  test("untagged lines count toward the bound of the final reply", () => {
    const m = login({ proxyBuffer: 32 });
    const r = feed(m, [
      GREETING,
      "+\r\n",
      "+\r\n",
      "* 1 EXISTS\r\n",
      "* 2 EXISTS\r\n",
      "* 3 EXISTS\r\n",
    ]);
    assert.deepEqual(r.slice(0, 3), HAPPY);
    assert.match(
      r[3],
      /^FAIL \* BAD internal server error\r\n\| error upstream sent too long response line: "\* 1 EXISTS/,
    );
  });
  test("each earlier reply has its own budget", () => {
    const line = (s: string) => s + "x".repeat(30 - s.length) + "\r\n"; // 32 bytes each
    assert.deepEqual(
      feed(login({ proxyBuffer: 32 }), [line("* OK "), line("+ "), line("+ "), "a2 OK\r\n"]),
      [...HAPPY, "DONE a2 OK\r\n"],
    );
  });
});

describe("chunking does not matter", () => {
  const script = GREETING + "+ Ready for literal\r\n" + "+ \r\n" +
    "* CAPABILITY IMAP4rev1 IDLE\r\n* OK hi\r\na2 OK Logged in\r\n";
  const expected = [...HAPPY, "DONE * CAPABILITY IMAP4rev1 IDLE\r\n* OK hi\r\na2 OK Logged in\r\n"];

  test("whole script in one chunk", () => {
    assert.deepEqual(feed(login(), [script]), expected);
  });

  test("split at every byte boundary", () => {
    for (let k = 1; k < script.length; k++) {
      const r = feed(login(), [script.slice(0, k), script.slice(k)]);
      assert.deepEqual(r, expected, `split at ${k}`);
    }
  });

  test("one byte at a time", () => {
    assert.deepEqual(feed(login(), [...script]), expected);
  });

  test("failure split at every byte boundary", () => {
    const bad = GREETING + "+\r\n" + "+\r\n" + "* X\r\na2 NO no\r\n";
    const whole = feed(login(), [bad]);
    assert.equal(whole.length, 4);
    for (let k = 1; k < bad.length; k++) {
      assert.deepEqual(feed(login(), [bad.slice(0, k), bad.slice(k)]), whole, `split at ${k}`);
    }
  });
});
