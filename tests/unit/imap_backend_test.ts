import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { escapeForLog } from "../../lib/core/redact.ts";
import { renderBackendStep } from "../helpers/drive_machine.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import type { BackendContext, BackendLogin, BackendStep } from "../../lib/core/machine.ts";
import { createImapBackendLogin } from "../../lib/imap/backend_login.ts";

function login(
  o: {
    tag?: string;
    user?: string;
    pass?: string;
    proxyBuffer?: number;
    passError?: boolean;
    backendTls?: BackendContext["backendTls"];
  } = {},
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
    backendTls: o.backendTls,
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

// ---- backend TLS by STARTTLS (mailgate extension) ----------------------------

/** In a feedTls() script: the TLS handshake completes here (tlsStarted()). */
const TLS = "<tls>";

/** As feed(), with TLS marking where the driver calls tlsStarted(). */
function feedTls(m: BackendLogin, chunks: string[]): string[] {
  const out: string[] = [];
  for (const c of chunks) {
    const steps = c === TLS ? m.tlsStarted() : m.push(binaryToBytes(c));
    if (c === TLS) out.push("TLS");
    for (const s of steps) out.push(render(s));
  }
  return out;
}

const starttls = (o: Parameters<typeof login>[0] = {}) => login({ ...o, backendTls: "starttls" });
const INTERNAL_ERROR = "* BAD internal server error\r\n";
const STLS = ["B: mgs1 STARTTLS\r\n", "STARTTLS"];
const CAPA = ["TLS", "B: mgs2 CAPABILITY\r\n"];

describe("backend STARTTLS (mailgate extension)", () => {
  test("full transcript: STARTTLS, TLS, CAPABILITY, then the LOGIN of §8", () => {
    assert.deepEqual(
      feedTls(starttls(), [
        "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n",
        "mgs1 OK Begin TLS negotiation now\r\n",
        TLS,
        "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nmgs2 OK Capability completed\r\n",
        "+ \r\n",
        "+ \r\n",
        "* CAPABILITY IMAP4rev1 IDLE\r\na2 OK Logged in\r\n",
      ]),
      [
        ...STLS,
        ...CAPA,
        ...HAPPY,
        "DONE * CAPABILITY IMAP4rev1 IDLE\r\na2 OK Logged in\r\n",
      ],
    );
  });

  test("untagged lines before either tagged OK are skipped and never reach the client", () => {
    assert.deepEqual(
      feedTls(starttls(), [
        GREETING,
        "* OK [ALERT] one\r\n* OK two\r\n",
        "mgs1 OK go\r\n",
        TLS,
        "* CAPABILITY IMAP4rev1\r\n",
        "* OK x\r\nmgs2 OK\r\n",
        "+\r\n+\r\na2 OK\r\n",
      ]),
      [...STLS, ...CAPA, ...HAPPY, "DONE a2 OK\r\n"],
    );
  });

  test("the client's tag is used for LOGIN only; a client tag equal to ours does not matter", () => {
    assert.deepEqual(
      feedTls(starttls({ tag: "mgs1" }), [
        GREETING,
        "mgs1 OK\r\n",
        TLS,
        "mgs2 OK\r\n",
        "+\r\n+\r\nmgs1 OK in\r\n",
      ]),
      [...STLS, ...CAPA, "B: mgs1 LOGIN {16}\r\n", HAPPY[1], HAPPY[2], "DONE mgs1 OK in\r\n"],
    );
  });

  test("bytes after the STARTTLS OK are dropped unread: a forged reply cannot complete the login", () => {
    const m = starttls();
    // A plaintext attacker appends the whole rest of a login to the OK.
    assert.deepEqual(
      feedTls(m, [GREETING, "mgs1 OK\r\nmgs2 OK\r\n+\r\n+\r\na2 OK forged\r\n"]),
      STLS,
    );
    // Still plaintext (raced the upgrade): dropped too.
    assert.deepEqual(feedTls(m, ["a2 OK forged again\r\n"]), []);
    // Over TLS the CAPABILITY reply is awaited, nothing was kept.
    assert.deepEqual(feedTls(m, [TLS]), CAPA);
    assert.deepEqual(feedTls(m, ["+\r\n"]), [
      `FAIL ${INTERNAL_ERROR}| error upstream sent invalid response: "+"`,
    ]);
  });

  test("after the drop, the real TLS replies drive the login", () => {
    const m = starttls();
    assert.deepEqual(
      feedTls(m, [
        GREETING + "mgs1 OK\r\n* BYE injected\r\na2 OK injected\r\n",
        TLS,
        "mgs2 OK\r\n+\r\n+\r\na2 OK real\r\n",
      ]),
      [...STLS, ...CAPA, ...HAPPY, "DONE a2 OK real\r\n"],
    );
  });

  test("a refused STARTTLS fails: internal error, error log, never a plaintext login", () => {
    for (const passError of [false, true]) {
      for (const reply of ["mgs1 NO not now", "mgs1 BAD unknown command", "+ go", "mgs2 OK"]) {
        assert.deepEqual(
          feedTls(starttls({ passError }), [GREETING, "* OK hi\r\n" + reply + "\r\n"]),
          [
            STLS[0],
            `FAIL ${INTERNAL_ERROR}| error upstream does not support STARTTLS: "${reply}"`,
          ],
          reply,
        );
      }
    }
  });

  test("a failed CAPABILITY is an internal error even with proxy_pass_error_message on", () => {
    assert.deepEqual(
      feedTls(starttls({ passError: true }), [GREETING, "mgs1 OK\r\n", TLS, "mgs2 BAD no\r\n"]),
      [
        ...STLS,
        ...CAPA,
        `FAIL ${INTERNAL_ERROR}| error upstream sent invalid response: "mgs2 BAD no"`,
      ],
    );
  });

  test("the login's own replies after TLS keep proxy_pass_error_message", () => {
    assert.deepEqual(
      feedTls(starttls({ passError: true }), [
        GREETING,
        "mgs1 OK\r\n",
        TLS,
        "mgs2 OK\r\n+\r\n+\r\n",
        "a2 NO [AUTHENTICATIONFAILED] bad\r\n",
      ]),
      [
        ...STLS,
        ...CAPA,
        ...HAPPY,
        'FAIL a2 NO [AUTHENTICATIONFAILED] bad\r\n| info upstream sent invalid response: "a2 NO [AUTHENTICATIONFAILED] bad"',
      ],
    );
  });

  test("a bad greeting fails as without TLS", () => {
    assert.deepEqual(feedTls(starttls(), ["* BYE busy\r\n"]), [
      `FAIL ${INTERNAL_ERROR}| error upstream sent invalid response: "* BYE busy"`,
    ]);
  });

  test("tlsStarted() does nothing unless an upgrade is under way", () => {
    const m = starttls();
    assert.deepEqual(m.tlsStarted(), []);
    assert.deepEqual(feedTls(m, [GREETING, TLS]), [STLS[0], "TLS"]);
    assert.deepEqual(feedTls(m, ["mgs1 OK\r\n", TLS, TLS]), [STLS[1], ...CAPA, "TLS"]);
  });

  test("proxy_buffer bounds the STARTTLS and the CAPABILITY replies, untagged lines included", () => {
    const m = starttls({ proxyBuffer: 32 });
    const untagged = "* 1234567890\r\n".repeat(3); // 42 bytes, no tagged line
    assert.deepEqual(feedTls(m, ["* OK\r\n", untagged]), [
      STLS[0],
      `FAIL ${INTERNAL_ERROR}| error upstream sent too long response line: "${
        escapeForLog(untagged.slice(0, 31))
      }"`,
    ]);
    const c = starttls({ proxyBuffer: 32 });
    assert.deepEqual(
      feedTls(c, ["* OK\r\n", "mgs1 OK\r\n", TLS, "* CAPABILITY " + "X".repeat(30) + "\r\n"]),
      [
        ...STLS,
        ...CAPA,
        `FAIL ${INTERNAL_ERROR}| error upstream sent too long response line: "* CAPABILITY ${
          "X".repeat(18)
        }"`,
      ],
    );
    // Each reply has its own budget: 32-byte replies all fit.
    const line = (s: string) => s + "x".repeat(30 - s.length) + "\r\n";
    assert.deepEqual(
      feedTls(starttls({ proxyBuffer: 32 }), [
        line("* OK "),
        line("mgs1 OK "),
        TLS,
        line("mgs2 OK "),
        line("+ "),
        line("+ "),
        "a2 OK\r\n",
      ]),
      [...STLS, ...CAPA, ...HAPPY, "DONE a2 OK\r\n"],
    );
  });

  test("off, ssl and unset give exactly the plain login", () => {
    const script = GREETING + "+\r\n+\r\n* X\r\na2 OK\r\n";
    const plain = feed(login(), [script]);
    assert.deepEqual(plain, [...HAPPY, "DONE * X\r\na2 OK\r\n"]);
    for (const backendTls of ["off", "ssl", undefined] as const) {
      const m = login({ backendTls });
      assert.deepEqual(feed(m, [script]), plain, String(backendTls));
      assert.deepEqual(m.tlsStarted(), [], String(backendTls));
    }
  });
});

describe("backend STARTTLS: chunking does not matter", () => {
  const before = "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n* OK x\r\nmgs1 OK go\r\n";
  const after = "* CAPABILITY IMAP4rev1\r\nmgs2 OK done\r\n+ \r\n+ \r\n* 1 EXISTS\r\na2 OK in\r\n";
  const expected = [...STLS, ...CAPA, ...HAPPY, "DONE * 1 EXISTS\r\na2 OK in\r\n"];

  test("whole, and one byte at a time", () => {
    assert.deepEqual(feedTls(starttls(), [before, TLS, after]), expected);
    assert.deepEqual(feedTls(starttls(), [...before, TLS, ...after]), expected);
  });

  test("split at every byte boundary, before and after the upgrade", () => {
    for (let k = 1; k < before.length; k++) {
      const r = feedTls(starttls(), [before.slice(0, k), before.slice(k), TLS, after]);
      assert.deepEqual(r, expected, `before, split at ${k}`);
    }
    for (let k = 1; k < after.length; k++) {
      const r = feedTls(starttls(), [before, TLS, after.slice(0, k), after.slice(k)]);
      assert.deepEqual(r, expected, `after, split at ${k}`);
    }
  });

  test("injected bytes after the OK are dropped at every split", () => {
    const injected = before + "mgs2 OK\r\n+\r\n+\r\na2 OK forged\r\n";
    for (let k = 1; k < injected.length; k++) {
      const r = feedTls(starttls(), [injected.slice(0, k), injected.slice(k), TLS, after]);
      assert.deepEqual(r, expected, `split at ${k}`);
    }
  });

  test("a refusal split at every byte boundary", () => {
    const refused = "* OK hi\r\n* OK x\r\nmgs1 NO [ALERT] no TLS here\r\n";
    const whole = [
      STLS[0],
      `FAIL ${INTERNAL_ERROR}| error upstream does not support STARTTLS: "mgs1 NO [ALERT] no TLS here"`,
    ];
    assert.deepEqual(feedTls(starttls(), [refused]), whole);
    for (let k = 1; k < refused.length; k++) {
      assert.deepEqual(
        feedTls(starttls(), [refused.slice(0, k), refused.slice(k)]),
        whole,
        `split at ${k}`,
      );
    }
  });
});
