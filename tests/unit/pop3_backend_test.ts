import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { escapeForLog } from "../../lib/core/redact.ts";
import { renderBackendStep } from "../helpers/drive_machine.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import type {
  BackendContext,
  BackendLogin,
  BackendStep,
  Credentials,
} from "../../lib/core/machine.ts";
import { createPop3BackendLogin } from "../../lib/pop3/backend_login.ts";

function login(
  o: {
    user?: string;
    pass?: string;
    proxyBuffer?: number;
    passError?: boolean;
    creds?: Credentials;
    backendTls?: BackendContext["backendTls"];
  } = {},
) {
  const config = {
    proxyBuffer: o.proxyBuffer ?? 4096,
    proxyPassErrorMessage: o.passError ?? false,
  } as ServerConfig;
  return createPop3BackendLogin({
    config,
    creds: o.creds ?? { method: "plain", user: "client", pass: "clientpw", salt: null },
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

const GREETING = "+OK ready\r\n";
const USER = "B: USER test@example.com\r\n";
const PASS = "B: PASS secret\r\n";
const INTERNAL = "-ERR internal server error\r\n";

describe("backend login (pop3.md §9)", () => {
  test("§10 example: greeting, USER, PASS; the final +OK goes to the client", () => {
    assert.deepEqual(feed(login(), [GREETING, "+OK\r\n", "+OK pass ok\r\n"]), [
      USER,
      PASS,
      "DONE +OK pass ok\r\n",
    ]);
  });

  test("always USER/PASS with the given credentials, whatever the client used", () => {
    const m = login({
      user: "auth-user",
      pass: "auth-pass",
      creds: { method: "cram-md5", user: "c", pass: "0".repeat(32), salt: "<1.2@x>" },
    });
    assert.deepEqual(feed(m, [GREETING, "+OK\r\n", "+OK\r\n"]), [
      "B: USER auth-user\r\n",
      "B: PASS auth-pass\r\n",
      "DONE +OK\r\n",
    ]);
  });

  test("user and password are sent raw (spaces, binary bytes)", () => {
    const user = "john smith \xc3\xa9";
    const pass = "p w\x00\xff";
    assert.deepEqual(feed(login({ user, pass }), [GREETING, "+OK\r\n", "+OK\r\n"]), [
      `B: USER ${user}\r\n`,
      `B: PASS ${pass}\r\n`,
      "DONE +OK\r\n",
    ]);
  });

  test("bytes after the final +OK in the same chunk go to the client too (pipelined QUIT)", () => {
    assert.deepEqual(feed(login(), [GREETING, "+OK\r\n", "+OK logged in\r\n+OK bye\r\n"]), [
      USER,
      PASS,
      "DONE +OK logged in\r\n+OK bye\r\n",
    ]);
  });

  test("the whole exchange may arrive at once (a backend that does not wait)", () => {
    assert.deepEqual(feed(login(), [GREETING + "+OK\r\n+OK x\r\n"]), [
      USER,
      PASS,
      "DONE +OK x\r\n",
    ]);
  });

  test("a reply is complete only at CRLF; a bare LF does not end it", () => {
    const m = login();
    assert.deepEqual(feed(m, ["+OK hi\n", "still the greeting"]), []);
    assert.deepEqual(feed(m, ["\r"]), []);
    assert.deepEqual(feed(m, ["\n"]), [USER]);
  });

  test("'+OK' is checked byte for byte (case matters)", () => {
    assert.deepEqual(feed(login(), ["+ok ready\r\n"]), [
      `FAIL ${INTERNAL}| error upstream sent invalid response: "+ok ready"`,
    ]);
    assert.deepEqual(feed(login(), ["+O\r\n"]), [
      `FAIL ${INTERNAL}| error upstream sent invalid response: "+O"`,
    ]);
  });

  test("after done or fail nothing more happens", () => {
    const m = login();
    feed(m, [GREETING, "+OK\r\n", "+OK\r\n"]);
    assert.deepEqual(m.push(binaryToBytes("+OK more\r\n")), []);
    const f = login();
    feed(f, ["-ERR\r\n"]);
    assert.deepEqual(f.push(binaryToBytes(GREETING)), []);
  });
});

describe("backend replies that do not start with +OK", () => {
  test("proxy_pass_error_message off: internal error, error log, at every stage", () => {
    assert.deepEqual(feed(login(), ["* OK IMAP4 ready\r\n"]), [
      `FAIL ${INTERNAL}| error upstream sent invalid response: "* OK IMAP4 ready"`,
    ]);
    assert.deepEqual(feed(login(), [GREETING, "-ERR no such user\r\n"]), [
      USER,
      `FAIL ${INTERNAL}| error upstream sent invalid response: "-ERR no such user"`,
    ]);
    assert.deepEqual(feed(login(), [GREETING, "+OK\r\n", "-ERR [IN-USE] mailbox locked\r\n"]), [
      USER,
      PASS,
      `FAIL ${INTERNAL}| error upstream sent invalid response: "-ERR [IN-USE] mailbox locked"`,
    ]);
  });

  test("proxy_pass_error_message on: the backend's reply bytes as received, info log", () => {
    assert.deepEqual(
      feed(login({ passError: true }), [GREETING, "+OK\r\n", "-ERR [IN-USE] mailbox locked\r\n"]),
      [
        USER,
        PASS,
        'FAIL -ERR [IN-USE] mailbox locked\r\n| info upstream sent invalid response: "-ERR [IN-USE] mailbox locked"',
      ],
    );
    assert.deepEqual(feed(login({ passError: true }), ["-ERR busy\r\nmore\r\n"]), [
      'FAIL -ERR busy\r\nmore\r\n| info upstream sent invalid response: "-ERR busy"',
    ]);
  });

  test("an empty reply line is invalid", () => {
    assert.deepEqual(feed(login(), ["\r\n"]), [
      `FAIL ${INTERNAL}| error upstream sent invalid response: ""`,
    ]);
  });
});

describe("proxy_buffer bounds each reply", () => {
  test("a reply of exactly proxy_buffer bytes fits; one more byte does not", () => {
    const line = (n: number) => "+OK " + "x".repeat(n - 6) + "\r\n";
    assert.equal(line(32).length, 32);
    assert.deepEqual(feed(login({ proxyBuffer: 32 }), [line(32), line(32), line(32)]), [
      USER,
      PASS,
      `DONE ${line(32)}`,
    ]);
    assert.deepEqual(feed(login({ proxyBuffer: 32 }), [line(33)]), [
      `FAIL ${INTERNAL}| error upstream sent too long response line: "+OK ${"x".repeat(27)}"`,
    ]);
  });

  test("too long is noticed as soon as the buffer is full, without a line end", () => {
    const m = login({ proxyBuffer: 16 });
    assert.deepEqual(feed(m, ["+OK 0123456789"]), []);
    assert.deepEqual(feed(m, ["a"]), []);
    assert.deepEqual(feed(m, ["b"]), [
      `FAIL ${INTERNAL}| error upstream sent too long response line: "+OK 0123456789a"`,
    ]);
  });

  test("each reply has its own budget", () => {
    const line = "+OK " + "y".repeat(26) + "\r\n"; // 32 bytes
    assert.deepEqual(feed(login({ proxyBuffer: 32 }), [line + line + line]), [
      USER,
      PASS,
      `DONE ${line}`,
    ]);
  });

  test("a too-long reply is an internal error even with proxy_pass_error_message on", () => {
    assert.match(
      feed(login({ proxyBuffer: 16, passError: true }), ["-ERR " + "z".repeat(40)])[0],
      /^FAIL -ERR internal server error\r\n\| error upstream sent too long response line/,
    );
  });
});

describe("chunking does not matter", () => {
  const script =
    "+OK POP3 server ready <123@host>\r\n+OK send PASS\r\n+OK Logged in.\r\n+OK 2 messages\r\n";
  const expected = [USER, PASS, "DONE +OK Logged in.\r\n+OK 2 messages\r\n"];

  test("whole script in one chunk", () => {
    assert.deepEqual(feed(login(), [script]), expected);
  });

  test("split at every byte boundary", () => {
    const last = script.indexOf("+OK Logged");
    const end = script.indexOf("\r\n", last) + 2;
    for (let k = 1; k < script.length; k++) {
      const r = feed(login(), [script.slice(0, k), script.slice(k)]);
      // DONE carries the final reply and whatever had arrived with it; the
      // rest is relayed later.
      const done = "DONE " + (k < end ? script.slice(last) : script.slice(last, k));
      assert.deepEqual(r, [USER, PASS, done], `split at ${k}`);
    }
  });

  test("one byte at a time", () => {
    assert.deepEqual(feed(login(), [...script]), [USER, PASS, "DONE +OK Logged in.\r\n"]);
  });

  test("failure split at every byte boundary", () => {
    const bad = GREETING + "+OK\r\n" + "-ERR [AUTH] Authentication failed.\r\n";
    const whole = feed(login({ passError: true }), [bad]);
    assert.deepEqual(whole, [
      USER,
      PASS,
      'FAIL -ERR [AUTH] Authentication failed.\r\n| info upstream sent invalid response: "-ERR [AUTH] Authentication failed."',
    ]);
    for (let k = 1; k < bad.length; k++) {
      assert.deepEqual(
        feed(login({ passError: true }), [bad.slice(0, k), bad.slice(k)]),
        whole,
        `split at ${k}`,
      );
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
const STLS = ["B: STLS\r\n", "STARTTLS"];
const CAPA = ["TLS", "B: CAPA\r\n"];
const CAPA_LIST = "+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN\r\n.\r\n";

describe("backend STLS (mailgate extension)", () => {
  test("full transcript: STLS, TLS, CAPA, then USER/PASS of §9", () => {
    assert.deepEqual(
      feedTls(starttls(), [
        "+OK Dovecot ready.\r\n",
        "+OK Begin TLS negotiation\r\n",
        TLS,
        CAPA_LIST,
        "+OK\r\n",
        "+OK Logged in.\r\n",
      ]),
      [...STLS, ...CAPA, USER, PASS, "DONE +OK Logged in.\r\n"],
    );
  });

  test("CAPA refused with -ERR: the login goes on", () => {
    assert.deepEqual(
      feedTls(starttls(), [
        GREETING,
        "+OK\r\n",
        TLS,
        "-ERR unknown command\r\n",
        "+OK\r\n+OK in\r\n",
      ]),
      [...STLS, ...CAPA, USER, PASS, "DONE +OK in\r\n"],
    );
  });

  test("the CAPA list ends only at a line that is exactly '.'", () => {
    const m = starttls();
    assert.deepEqual(feedTls(m, [GREETING, "+OK\r\n", TLS]), [...STLS, ...CAPA]);
    // "..", ". x" and "+OK" inside the list are list lines, not the end or a reply.
    assert.deepEqual(feedTls(m, ["+OK\r\nTOP\r\n..\r\n. x\r\n+OK\r\n.x\r\n"]), []);
    assert.deepEqual(feedTls(m, [".\r\n"]), [USER]);
    assert.deepEqual(feedTls(m, ["+OK\r\n+OK done\r\n"]), [PASS, "DONE +OK done\r\n"]);
  });

  test("bytes after the STLS +OK are dropped unread: a forged reply cannot complete the login", () => {
    const m = starttls();
    // A plaintext attacker appends the whole rest of a login to the +OK.
    assert.deepEqual(feedTls(m, [GREETING + "+OK\r\n-ERR\r\n+OK\r\n+OK forged\r\n"]), STLS);
    // Still plaintext (raced the upgrade): dropped too.
    assert.deepEqual(feedTls(m, ["+OK forged again\r\n"]), []);
    // Over TLS the CAPA reply is awaited; nothing was kept.
    assert.deepEqual(feedTls(m, [TLS]), CAPA);
    assert.deepEqual(feedTls(m, ["-ERR no\r\n"]), [USER]);
    assert.deepEqual(feedTls(m, ["+OK\r\n+OK real\r\n"]), [PASS, "DONE +OK real\r\n"]);
  });

  test("a refused STLS fails: internal error, error log, never a plaintext login", () => {
    for (const passError of [false, true]) {
      for (const reply of ["-ERR not available", "-ERR", "+ok", "* OK"]) {
        assert.deepEqual(
          feedTls(starttls({ passError }), [GREETING + reply + "\r\n"]),
          [STLS[0], `FAIL ${INTERNAL}| error upstream does not support STARTTLS: "${reply}"`],
          reply,
        );
      }
    }
  });

  test("a CAPA reply that is neither +OK nor -ERR is an internal error, whatever proxy_pass_error_message", () => {
    assert.deepEqual(
      feedTls(starttls({ passError: true }), [GREETING, "+OK\r\n", TLS, "* what\r\n"]),
      [...STLS, ...CAPA, `FAIL ${INTERNAL}| error upstream sent invalid response: "* what"`],
    );
  });

  test("the login's own replies after TLS keep proxy_pass_error_message", () => {
    assert.deepEqual(
      feedTls(starttls({ passError: true }), [
        GREETING,
        "+OK\r\n",
        TLS,
        CAPA_LIST + "+OK\r\n-ERR [AUTH] failed\r\n",
      ]),
      [
        ...STLS,
        ...CAPA,
        USER,
        PASS,
        'FAIL -ERR [AUTH] failed\r\n| info upstream sent invalid response: "-ERR [AUTH] failed"',
      ],
    );
  });

  test("a bad greeting fails as without TLS", () => {
    assert.deepEqual(feedTls(starttls(), ["-ERR busy\r\n"]), [
      `FAIL ${INTERNAL}| error upstream sent invalid response: "-ERR busy"`,
    ]);
  });

  test("tlsStarted() does nothing unless an upgrade is under way", () => {
    const m = starttls();
    assert.deepEqual(m.tlsStarted(), []);
    assert.deepEqual(feedTls(m, [GREETING, TLS]), [STLS[0], "TLS"]);
    assert.deepEqual(feedTls(m, ["+OK\r\n", TLS, TLS]), [STLS[1], ...CAPA, "TLS"]);
  });

  test("proxy_buffer bounds the STLS reply and the whole CAPA list", () => {
    assert.deepEqual(feedTls(starttls({ proxyBuffer: 16 }), ["+OK\r\n", "+OK " + "y".repeat(20)]), [
      STLS[0],
      `FAIL ${INTERNAL}| error upstream sent too long response line: "+OK ${"y".repeat(11)}"`,
    ]);
    const list = "+OK\r\nTOP\r\nUSER\r\nUIDL\r\n"; // 22 bytes, no end yet
    assert.deepEqual(
      feedTls(starttls({ proxyBuffer: 20 }), ["+OK\r\n", "+OK\r\n", TLS, list + ".\r\n"]),
      [
        ...STLS,
        ...CAPA,
        `FAIL ${INTERNAL}| error upstream sent too long response line: "${escapeForLog(list.slice(0, 19))}"`,
      ],
    );
    // A list that fits, and each reply its own budget.
    assert.deepEqual(
      feedTls(starttls({ proxyBuffer: 20 }), [
        "+OK\r\n",
        "+OK\r\n",
        TLS,
        "+OK\r\nTOP\r\nUSER\r\n.\r\n",
        "+OK\r\n+OK\r\n",
      ]),
      [...STLS, ...CAPA, USER, PASS, "DONE +OK\r\n"],
    );
  });

  test("off, ssl and unset give exactly the plain login", () => {
    const script = GREETING + "+OK\r\n+OK x\r\n";
    const plain = feed(login(), [script]);
    assert.deepEqual(plain, [USER, PASS, "DONE +OK x\r\n"]);
    for (const backendTls of ["off", "ssl", undefined] as const) {
      const m = login({ backendTls });
      assert.deepEqual(feed(m, [script]), plain, String(backendTls));
      assert.deepEqual(m.tlsStarted(), [], String(backendTls));
    }
  });
});

describe("backend STLS: chunking does not matter", () => {
  const before = "+OK POP3 ready <1.2@host>\r\n+OK Begin TLS\r\n";
  const after = CAPA_LIST + "+OK send PASS\r\n+OK Logged in.\r\n";
  const expected = [...STLS, ...CAPA, USER, PASS, "DONE +OK Logged in.\r\n"];

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

  test("injected bytes after the +OK are dropped at every split", () => {
    const injected = before + "-ERR\r\n+OK\r\n+OK forged\r\n";
    for (let k = 1; k < injected.length; k++) {
      const r = feedTls(starttls(), [injected.slice(0, k), injected.slice(k), TLS, after]);
      assert.deepEqual(r, expected, `split at ${k}`);
    }
  });

  test("a refusal split at every byte boundary", () => {
    const refused = GREETING + "-ERR TLS not available\r\n";
    const whole = [
      STLS[0],
      `FAIL ${INTERNAL}| error upstream does not support STARTTLS: "-ERR TLS not available"`,
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

// ---- proxy_pop3_xclient (mailgate extension) -------------------------------

describe("proxy_pop3_xclient: XCLIENT before USER", () => {
  const forward = { clientIp: "203.0.113.7", clientPort: 40000, localIp: "127.0.0.1", localPort: 1110, sessionId: "*9" };
  const xlogin = (o: { on?: boolean; backendTls?: BackendContext["backendTls"] } = {}) =>
    createPop3BackendLogin({
      config: { proxyBuffer: 4096, proxyPassErrorMessage: false, proxyPop3Xclient: o.on ?? true } as ServerConfig,
      creds: { method: "plain", user: "client", pass: "clientpw", salt: null },
      user: "test@example.com",
      pass: "secret",
      clientAddr: "203.0.113.7",
      clientHost: "[UNAVAILABLE]",
      backendTls: o.backendTls,
      forward,
    });
  const feedTls = (m: BackendLogin, chunks: string[]) => {
    const out: string[] = [];
    for (const c of chunks) {
      for (const s of c === "<tls>" ? m.tlsStarted() : m.push(binaryToBytes(c))) out.push(render(s));
    }
    return out;
  };
  const XCLIENT = "B: XCLIENT ADDR=203.0.113.7 PORT=40000 SESSION=*9 TTL=4\r\n";

  test("CAPA lists XCLIENT: XCLIENT, +OK, then USER/PASS", () => {
    assert.deepEqual(
      feed(xlogin(), [GREETING, "+OK\r\nTOP\r\nxclient\r\nUSER\r\n.\r\n", "+OK\r\n", "+OK\r\n", "+OK in\r\n"]),
      ["B: CAPA\r\n", XCLIENT, USER, PASS, "DONE +OK in\r\n"],
    );
  });

  test("Dovecot's '+OK [XCLIENT]' greeting: XCLIENT without a CAPA", () => {
    assert.deepEqual(
      feed(xlogin(), ["+OK [XCLIENT] Dovecot ready.\r\n", "+OK\r\n", "+OK\r\n", "+OK in\r\n"]),
      [XCLIENT, USER, PASS, "DONE +OK in\r\n"],
    );
  });

  test("no XCLIENT in CAPA, or CAPA refused: USER as today; off: no CAPA at all", () => {
    assert.deepEqual(
      feed(xlogin(), [GREETING, "+OK\r\nTOP\r\nXCLIENTS\r\n.\r\n", "+OK\r\n", "+OK in\r\n"]),
      ["B: CAPA\r\n", USER, PASS, "DONE +OK in\r\n"],
    );
    assert.deepEqual(
      feed(xlogin(), [GREETING, "-ERR no\r\n", "+OK\r\n", "+OK in\r\n"]),
      ["B: CAPA\r\n", USER, PASS, "DONE +OK in\r\n"],
    );
    assert.deepEqual(
      feed(xlogin({ on: false }), ["+OK [XCLIENT] hi\r\n", "+OK\r\n", "+OK in\r\n"]),
      [USER, PASS, "DONE +OK in\r\n"],
    );
  });

  test("a refused XCLIENT fails the login, as in Dovecot's proxy", () => {
    assert.deepEqual(feed(xlogin(), ["+OK [XCLIENT] hi\r\n", "-ERR not trusted\r\n"]), [
      XCLIENT,
      `FAIL ${INTERNAL}| error upstream sent invalid response: "-ERR not trusted"`,
    ]);
  });

  test("after STLS: the CAPA read over TLS, or the greeting's [XCLIENT]", () => {
    assert.deepEqual(
      feedTls(xlogin({ backendTls: "starttls" }), [
        "+OK [XCLIENT] hi\r\n",
        "+OK go\r\n",
        "<tls>",
        "+OK\r\nXCLIENT\r\n.\r\n",
        "+OK\r\n",
        "+OK\r\n",
        "+OK in\r\n",
      ]),
      ["B: STLS\r\n", "STARTTLS", "B: CAPA\r\n", XCLIENT, USER, PASS, "DONE +OK in\r\n"],
    );
    // Dovecot: [XCLIENT] in the greeting only, never in CAPA; kept through STLS.
    assert.deepEqual(
      feedTls(xlogin({ backendTls: "starttls" }), [
        "+OK [XCLIENT] Dovecot ready.\r\n",
        "+OK go\r\n",
        "<tls>",
        "+OK\r\nTOP\r\nUSER\r\n.\r\n",
        "+OK\r\n",
        "+OK\r\n",
        "+OK in\r\n",
      ]),
      ["B: STLS\r\n", "STARTTLS", "B: CAPA\r\n", XCLIENT, USER, PASS, "DONE +OK in\r\n"],
    );
  });

  test("split at every byte boundary", () => {
    const script = GREETING + "+OK\r\nXCLIENT\r\n.\r\n+OK\r\n+OK\r\n+OK in\r\n";
    const expected = ["B: CAPA\r\n", XCLIENT, USER, PASS, "DONE +OK in\r\n"];
    assert.deepEqual(feed(xlogin(), [script]), expected);
    for (let k = 1; k < script.length; k++) {
      assert.deepEqual(feed(xlogin(), [script.slice(0, k), script.slice(k)]), expected, `split at ${k}`);
    }
  });
});
