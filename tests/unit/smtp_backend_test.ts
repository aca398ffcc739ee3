import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { renderBackendStep } from "../helpers/drive_machine.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import type {
  BackendContext,
  BackendLogin,
  BackendStep,
  Credentials,
  SmtpState,
} from "../../lib/core/machine.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { createSmtpBackendLogin } from "../../lib/smtp/backend_login.ts";

interface Opts {
  xclient?: boolean;
  proxySmtpAuth?: boolean;
  passError?: boolean;
  proxyBuffer?: number;
  method?: Credentials["method"];
  smtp?: Partial<SmtpState>;
  user?: string;
  pass?: string | null;
  clientAddr?: string;
  clientHost?: string;
  backendTls?: BackendContext["backendTls"];
}

function login(o: Opts = {}): BackendLogin {
  const config = {
    serverName: "mail.example.com",
    xclient: o.xclient ?? true,
    proxySmtpAuth: o.proxySmtpAuth ?? false,
    proxyPassErrorMessage: o.passError ?? false,
    proxyBuffer: o.proxyBuffer ?? 4096,
  } as ServerConfig;
  const method = o.method ?? "plain";
  return createSmtpBackendLogin({
    config,
    creds: {
      method,
      user: method === "none" ? "" : "client-user",
      pass: method === "none" ? "" : "client-pass",
      salt: null,
      smtp: { helo: "", esmtp: false, from: "", to: "", ...o.smtp },
    },
    user: o.user ?? (method === "none" ? "" : "test@example.com"),
    pass: o.pass === undefined ? "secret" : o.pass,
    clientAddr: o.clientAddr ?? "192.0.2.7",
    clientHost: o.clientHost ?? "[UNAVAILABLE]",
    backendTls: o.backendTls,
  });
}

const render = (s: BackendStep) => renderBackendStep(s, "P: ");

/** Pushes each chunk; collects rendered steps (bounded by the chunk count). */
function feed(m: BackendLogin, chunks: string[]): string[] {
  const out: string[] = [];
  for (const c of chunks) for (const s of m.push(binaryToBytes(c))) out.push(render(s));
  return out;
}

const AUTH_OK = "DONE 235 2.0.0 OK\r\n";
/** A backend EHLO reply that offers XCLIENT (stages 2 and 3 run only then). */
const XC_EHLO = "250-mx.example.com\r\n250 XCLIENT ADDR LOGIN NAME HELO\r\n";
const INTERNAL = "FAIL 451 4.3.2 Internal server error\r\n";
const NONE_MAIL = { from: "MAIL FROM:<a@example.com>", to: "RCPT TO:<b@example.com>" };

describe("§8.4 transcripts, byte for byte", () => {
  test("xclient on, client EHLO example.com + AUTH PLAIN", () => {
    const m = login({ smtp: { helo: "example.com", esmtp: true } });
    assert.deepEqual(feed(m, ["220 mx ready\r\n", XC_EHLO, "220 ...\r\n", "250 ...\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
      "P: EHLO example.com\r\n",
      AUTH_OK,
    ]);
  });

  test("xclient off, proxy_smtp_auth on, no HELO", () => {
    const m = login({ xclient: false, proxySmtpAuth: true });
    assert.deepEqual(feed(m, ["220 ...\r\n", "250 ...\r\n", "235 ...\r\n"]), [
      "P: HELO mail.example.com\r\n",
      "P: AUTH PLAIN AHRlc3RAZXhhbXBsZS5jb20Ac2VjcmV0\r\n",
      AUTH_OK,
    ]);
  });

  test("smtp_auth none, xclient on, MAIL + RCPT without HELO", () => {
    const m = login({ method: "none", smtp: NONE_MAIL });
    assert.deepEqual(
      feed(m, ["220 ...\r\n", XC_EHLO, "220 ...\r\n", "250 ...\r\n", "250 rcpt to ok\r\n"]),
      [
        "P: EHLO mail.example.com\r\n",
        "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
        "P: MAIL FROM:<a@example.com>\r\n",
        "P: RCPT TO:<b@example.com>\r\n",
        "DONE 250 rcpt to ok\r\n",
      ],
    );
  });
});

describe("mail_proxy_smtp_auth.t sequences (proxy_smtp_auth on)", () => {
  const AUTH = "P: AUTH PLAIN " + encodeBase64("\0test@example.com\0secret") + "\r\n";

  test("xclient on, no HELO: EHLO, XCLIENT (no LOGIN=), AUTH PLAIN", () => {
    const m = login({ proxySmtpAuth: true });
    assert.deepEqual(feed(m, ["220 hi\r\n", XC_EHLO, "220 xclient ok\r\n", "235 ok\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
      AUTH,
      AUTH_OK,
    ]);
  });

  test("xclient on, HELO: EHLO, XCLIENT, HELO, AUTH PLAIN", () => {
    const m = login({ proxySmtpAuth: true, smtp: { helo: "example.com" } });
    assert.deepEqual(
      feed(m, ["220 hi\r\n", XC_EHLO, "220 ok\r\n", "250 ok\r\n", "235 ok\r\n"]),
      [
        "P: EHLO mail.example.com\r\n",
        "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
        "P: HELO example.com\r\n",
        AUTH,
        AUTH_OK,
      ],
    );
  });

  test("xclient on, EHLO: EHLO, XCLIENT, EHLO, AUTH PLAIN", () => {
    const m = login({ proxySmtpAuth: true, smtp: { helo: "example.com", esmtp: true } });
    assert.deepEqual(
      feed(m, ["220 hi\r\n", XC_EHLO, "250 ok\r\n", "250 ok\r\n", "235 ok\r\n"]),
      [
        "P: EHLO mail.example.com\r\n",
        "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
        "P: EHLO example.com\r\n",
        AUTH,
        AUTH_OK,
      ],
    );
  });

  test("xclient off, no HELO: HELO, AUTH PLAIN", () => {
    const m = login({ xclient: false, proxySmtpAuth: true });
    assert.deepEqual(feed(m, ["220 hi\r\n", "250 ok\r\n", "235 ok\r\n"]), [
      "P: HELO mail.example.com\r\n",
      AUTH,
      AUTH_OK,
    ]);
  });

  test("xclient off, EHLO: EHLO <server_name>, AUTH PLAIN (the client's HELO is not replayed)", () => {
    const m = login({
      xclient: false,
      proxySmtpAuth: true,
      smtp: { helo: "example.com", esmtp: true },
    });
    assert.deepEqual(feed(m, ["220 hi\r\n", "250 ok\r\n", "235 ok\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      AUTH,
      AUTH_OK,
    ]);
  });

  test("no password (AUTH EXTERNAL, no Auth-Pass): error log, 451, where AUTH PLAIN would go", () => {
    const m = login({ method: "external", proxySmtpAuth: true, pass: null });
    assert.deepEqual(feed(m, ["220 hi\r\n", XC_EHLO, "220 ok\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
      INTERNAL + "| error no password available",
    ]);
    assert.deepEqual(feed(m, ["235 late\r\n"]), []);
  });

  test("AUTH PLAIN carries the auth server's user and password bytes", () => {
    const m = login({ xclient: false, proxySmtpAuth: true, user: "\xffu", pass: "p w\x00" });
    assert.deepEqual(feed(m, ["220 hi\r\n", "250 ok\r\n"]), [
      "P: HELO mail.example.com\r\n",
      "P: AUTH PLAIN " + encodeBase64("\0\xffu\0p w\x00") + "\r\n",
    ]);
  });

  test("without proxy_smtp_auth and without XCLIENT, the login ends after HELO", () => {
    assert.deepEqual(feed(login({ xclient: false }), ["220 hi\r\n", "250 ok\r\n"]), [
      "P: HELO mail.example.com\r\n",
      AUTH_OK,
    ]);
  });

  test("no password does not matter when no AUTH PLAIN is sent", () => {
    assert.deepEqual(feed(login({ pass: null }), ["220 hi\r\n", XC_EHLO, "250 ok\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
      AUTH_OK,
    ]);
  });
});

describe("mail_smtp_xclient.t sequences (xclient on, backend answers XCLIENT with 220)", () => {
  const XC = "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n";

  test("AUTH without HELO", () => {
    assert.deepEqual(feed(login(), ["220 hi\r\n", XC_EHLO, "220 xclient ok\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      XC,
      AUTH_OK,
    ]);
  });

  test("HELO then AUTH", () => {
    const m = login({ smtp: { helo: "example.com" } });
    assert.deepEqual(feed(m, ["220 hi\r\n", XC_EHLO, "220 xclient ok\r\n", "250 ok\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      XC,
      "P: HELO example.com\r\n",
      AUTH_OK,
    ]);
  });

  test("EHLO then AUTH", () => {
    const m = login({ smtp: { helo: "example.com", esmtp: true } });
    assert.deepEqual(feed(m, ["220 hi\r\n", XC_EHLO, "220 xclient ok\r\n", "250 ok\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      XC,
      "P: EHLO example.com\r\n",
      AUTH_OK,
    ]);
  });

  for (
    const [name, smtp, helo] of [
      ["MAIL + RCPT without HELO", {}, null],
      ["HELO, MAIL, RCPT", { helo: "example.com" }, "P: HELO example.com\r\n"],
      ["EHLO, MAIL, RCPT", { helo: "example.com", esmtp: true }, "P: EHLO example.com\r\n"],
    ] as const
  ) {
    test(name, () => {
      const m = login({ method: "none", smtp: { ...NONE_MAIL, ...smtp } });
      const replies = [
        "220 hi\r\n",
        XC_EHLO,
        "220 xclient ok\r\n",
        ...(helo ? ["250 ok\r\n"] : []),
        "250 ok\r\n",
        "250 2.1.5 ok\r\n",
      ];
      assert.deepEqual(feed(m, replies), [
        "P: EHLO mail.example.com\r\n",
        "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
        ...(helo ? [helo] : []),
        "P: MAIL FROM:<a@example.com>\r\n",
        "P: RCPT TO:<b@example.com>\r\n",
        "DONE 250 2.1.5 ok\r\n",
      ]);
    });
  }
});

describe("smtp_auth none without XCLIENT (mail_smtp.t)", () => {
  test("HELO <server_name> unless the client used EHLO; MAIL and RCPT replayed as typed", () => {
    const m = login({
      xclient: false,
      method: "none",
      smtp: { from: "mail from:<>  SIZE=100", to: "RCPT TO:<x@example.com>" },
    });
    assert.deepEqual(feed(m, ["220 hi\r\n", "250 ok\r\n", "250 ok\r\n", "250 rcpt ok\r\n"]), [
      "P: HELO mail.example.com\r\n",
      "P: mail from:<>  SIZE=100\r\n",
      "P: RCPT TO:<x@example.com>\r\n",
      "DONE 250 rcpt ok\r\n",
    ]);
    const e = login({
      xclient: false,
      method: "none",
      smtp: { ...NONE_MAIL, helo: "h", esmtp: true },
    });
    assert.deepEqual(feed(e, ["220 hi\r\n"]), ["P: EHLO mail.example.com\r\n"]);
  });

  test("proxy_smtp_auth on is never used for none sessions", () => {
    const m = login({
      xclient: false,
      proxySmtpAuth: true,
      method: "none",
      smtp: NONE_MAIL,
      pass: null,
    });
    assert.deepEqual(feed(m, ["220 hi\r\n", "250 ok\r\n", "250 ok\r\n", "250 ok\r\n"]), [
      "P: HELO mail.example.com\r\n",
      "P: MAIL FROM:<a@example.com>\r\n",
      "P: RCPT TO:<b@example.com>\r\n",
      "DONE 250 ok\r\n",
    ]);
  });

  test("a rejected RCPT is passed to the client unchanged (any code), multi-line too", () => {
    const m = login({ xclient: false, method: "none", smtp: NONE_MAIL });
    assert.deepEqual(
      feed(m, ["220 hi\r\n", "250 ok\r\n", "250 ok\r\n", "500 5.1.3 bad recipient\r\n"]).at(-1),
      "DONE 500 5.1.3 bad recipient\r\n",
    );
    const ml = login({ xclient: false, method: "none", smtp: NONE_MAIL });
    assert.deepEqual(
      feed(ml, [
        "220 hi\r\n",
        "250 ok\r\n",
        "250 ok\r\n",
        "550-5.7.1 no\r\n550-relaying\r\n",
        "550 denied\r\n",
      ]).at(-1),
      "DONE 550-5.7.1 no\r\n550-relaying\r\n550 denied\r\n",
    );
  });

  test("a rejected MAIL fails the login", () => {
    const m = login({ xclient: false, method: "none", smtp: NONE_MAIL });
    assert.deepEqual(
      feed(m, ["220 hi\r\n", "250 ok\r\n", "501 5.1.7 bad sender\r\n"]).at(-1),
      INTERNAL + '| error upstream sent invalid response: "501 5.1.7 bad sender"',
    );
  });
});

describe("XCLIENT only when the backend offers it (mailgate; nginx always sends it)", () => {
  test("no XCLIENT in the EHLO reply: neither XCLIENT nor the client's HELO is sent", () => {
    const m = login({ smtp: { helo: "example.com", esmtp: true } });
    assert.deepEqual(feed(m, ["220 hi\r\n", "250-mx\r\n250 PIPELINING\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      AUTH_OK,
    ]);
  });
  test("smtp_auth none without XCLIENT: MAIL and RCPT replayed after EHLO", () => {
    const m = login({ method: "none", smtp: NONE_MAIL });
    assert.deepEqual(feed(m, ["220 hi\r\n", "250 mx\r\n", "250 ok\r\n", "250 rcpt ok\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      "P: MAIL FROM:<a@example.com>\r\n",
      "P: RCPT TO:<b@example.com>\r\n",
      "DONE 250 rcpt ok\r\n",
    ]);
  });
  test("the keyword must be a whole EHLO keyword", () => {
    const m = login({});
    assert.deepEqual(feed(m, ["220 hi\r\n", "250-mx\r\n250 XCLIENTX\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      AUTH_OK,
    ]);
  });
});

describe("XCLIENT attributes (§8.1)", () => {
  const xclient = (o: Opts) => feed(login(o), ["220 hi\r\n", XC_EHLO])[1];

  test("IPv6 addresses get IPV6:; UNIX clients are sent as they are", () => {
    assert.equal(
      xclient({ clientAddr: "2001:db8::1" }),
      "P: XCLIENT ADDR=IPV6:2001:db8::1 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
    );
    assert.equal(
      xclient({ clientAddr: "unix:" }),
      "P: XCLIENT ADDR=unix: LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
    );
  });

  test("LOGIN= is xtext, taken from the auth server's user; left out when empty or with proxy_smtp_auth", () => {
    assert.equal(
      xclient({ user: "a b=c+\xe9" }),
      "P: XCLIENT ADDR=192.0.2.7 LOGIN=a+20b+3Dc+2B+E9 NAME=[UNAVAILABLE]\r\n",
    );
    assert.equal(xclient({ user: "" }), "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n");
    assert.equal(
      xclient({ proxySmtpAuth: true }),
      "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
    );
  });

  test("NAME= is the host value", () => {
    assert.equal(
      xclient({ clientHost: "client.example.org" }),
      "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=client.example.org\r\n",
    );
    assert.equal(
      xclient({ clientHost: "[TEMPUNAVAIL]" }),
      "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[TEMPUNAVAIL]\r\n",
    );
  });

  test("XCLIENT accepts 220 and 250, nothing else", () => {
    assert.deepEqual(feed(login(), ["220 a\r\n", XC_EHLO, "250 c\r\n"]).at(-1), AUTH_OK);
    assert.deepEqual(
      feed(login(), ["220 a\r\n", XC_EHLO, "235 c\r\n"]).at(-1),
      INTERNAL + '| error upstream sent invalid response: "235 c"',
    );
  });
});

describe("reply reading (§8.1) and failures (§8.3)", () => {
  test("multi-line replies are read to their last line; only the first three characters count", () => {
    const m = login({ xclient: false });
    assert.deepEqual(
      feed(m, [
        "220-mx.example ESMTP\r\n220-more\r\n",
        "220 end\r\n",
        "250-mx\r\n250-PIPELINING\r\n250 XCLIENT ADDR NAME\r\n",
      ]),
      [
        "P: HELO mail.example.com\r\n",
        AUTH_OK,
      ],
    );
    assert.deepEqual(feed(login({ xclient: false }), ["2209\r\n", "250x\r\n"]), [
      "P: HELO mail.example.com\r\n",
      AUTH_OK,
    ]);
    assert.deepEqual(feed(login({ xclient: false }), ["220\r\n", "250\r\n"]), [
      "P: HELO mail.example.com\r\n",
      AUTH_OK,
    ]);
  });

  test("a short or wrong greeting fails", () => {
    assert.deepEqual(feed(login(), ["22\r\n"]), [
      INTERNAL + '| error upstream sent invalid response: "22"',
    ]);
    assert.deepEqual(feed(login(), ["554 go away\r\n"]), [
      INTERNAL + '| error upstream sent invalid response: "554 go away"',
    ]);
  });

  test("proxy_pass_error_message on: the backend's reply bytes unchanged, info log", () => {
    const m = login({ passError: true });
    assert.deepEqual(feed(m, ["220 hi\r\n", XC_EHLO, "550 5.7.1 XCLIENT denied\r\n"]), [
      "P: EHLO mail.example.com\r\n",
      "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
      'FAIL 550 5.7.1 XCLIENT denied\r\n| info upstream sent invalid response: "550 5.7.1 XCLIENT denied"',
    ]);
    const ml = login({ passError: true });
    assert.deepEqual(feed(ml, ['554-no\r\n554 "really"\r\n']), [
      'FAIL 554-no\r\n554 "really"\r\n| info upstream sent invalid response: "554-no\\x0d\\x0a554 \\x22really\\x22"',
    ]);
  });

  test("proxy_smtp_auth: a refused AUTH PLAIN", () => {
    const m = login({ xclient: false, proxySmtpAuth: true });
    assert.deepEqual(
      feed(m, ["220 hi\r\n", "250 ok\r\n", "535 5.7.8 no\r\n"]).at(-1),
      INTERNAL + '| error upstream sent invalid response: "535 5.7.8 no"',
    );
  });

  test("a reply longer than proxy_buffer: error log with the buffer minus its last byte", () => {
    const m = login({ proxyBuffer: 16 });
    assert.deepEqual(feed(m, ["220 0123456789", "ABCDEF\r\n"]), [
      INTERNAL + '| error upstream sent too long response line: "220 0123456789A"',
    ]);
    assert.deepEqual(feed(m, ["250 ok\r\n"]), []);
  });

  test("a reply of exactly proxy_buffer bytes fits; the bound covers all lines of a multi-line reply", () => {
    assert.deepEqual(
      feed(login({ proxyBuffer: 16, xclient: false }), ["220 0123456789\r\n", "250 ok\r\n"]),
      [
        "P: HELO mail.example.com\r\n",
        AUTH_OK,
      ],
    );
    assert.deepEqual(feed(login({ proxyBuffer: 16 }), ["220-abcdef\r\n220 x", "yz\r\n"]), [
      INTERNAL + '| error upstream sent too long response line: "220-abcdef\\x0d\\x0a220"',
    ]);
  });

  test("nothing happens after the login finished", () => {
    const m = login({ xclient: false });
    assert.deepEqual(feed(m, ["220 hi\r\n250 ok\r\n250 extra\r\n"]), [
      "P: HELO mail.example.com\r\n",
      AUTH_OK,
    ]);
    assert.deepEqual(feed(m, ["250 more\r\n"]), []);
  });

  test("bytes after the RCPT reply go to the client with it", () => {
    const m = login({ xclient: false, method: "none", smtp: NONE_MAIL });
    assert.deepEqual(
      feed(m, ["220 hi\r\n", "250 ok\r\n", "250 ok\r\n", "250 rcpt\r\n421 bye\r\n"]).at(-1),
      "DONE 250 rcpt\r\n421 bye\r\n",
    );
  });
});

describe("chunking does not matter", () => {
  const cases: [string, Opts, string][] = [
    [
      "xclient + EHLO + AUTH PLAIN, multi-line replies",
      { proxySmtpAuth: true, smtp: { helo: "client.example", esmtp: true } },
      "220-mx.example ESMTP\r\n220 ready\r\n250-mx.example\r\n250-XCLIENT ADDR LOGIN NAME\r\n250 8BITMIME\r\n" +
      "220 xclient ok\r\n250-mx.example\r\n250 PIPELINING\r\n235 2.7.0 ok\r\n",
    ],
    [
      "none, xclient, HELO, multi-line RCPT reply",
      { method: "none", smtp: { ...NONE_MAIL, helo: "h" } },
      "220 hi\r\n250-ok\r\n250 XCLIENT ADDR NAME\r\n250 xclient ok\r\n250 h ok\r\n250 2.1.0 ok\r\n550-5.1.1 no such user\r\n550 5.1.1 really\r\n",
    ],
    [
      "an invalid reply passed through",
      { passError: true, xclient: false, proxySmtpAuth: true },
      "220 hi\r\n250-a\r\n250 b\r\n535-5.7.8 bad\r\n535 5.7.8 credentials\r\n",
    ],
  ];

  for (const [name, opts, stream] of cases) {
    test(`${name}: split at every byte boundary and one byte at a time`, () => {
      // The login sends its next command only after a reply, so a backend
      // stream fed in any pieces must give the same steps as fed reply by reply.
      const whole = feed(login(opts), [stream]);
      assert.ok(whole.length >= 3, name);
      assert.ok(/^(DONE|FAIL)/.test(whole.at(-1)!), name);
      for (let k = 1; k < stream.length; k++) {
        assert.deepEqual(
          feed(login(opts), [stream.slice(0, k), stream.slice(k)]),
          whole,
          `split at ${k}`,
        );
      }
      assert.deepEqual(feed(login(opts), [...stream]), whole);
    });
  }
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

const starttls = (o: Opts = {}) => login({ ...o, backendTls: "starttls" });
/** The plaintext EHLO, STARTTLS and the upgrade. */
const UPGRADE = ["P: EHLO mail.example.com\r\n", "P: STARTTLS\r\n", "STARTTLS"];
/** A plaintext EHLO reply offering STARTTLS (and not XCLIENT). */
const TLS_EHLO = "250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n";

describe("backend STARTTLS (mailgate extension)", () => {
  test("full transcript: EHLO, STARTTLS, TLS, then §8.1 from step 1", () => {
    const m = starttls({ smtp: { helo: "example.com", esmtp: true } });
    assert.deepEqual(
      feedTls(m, [
        "220 mx ready\r\n",
        TLS_EHLO,
        "220 2.0.0 Ready to start TLS\r\n",
        TLS,
        XC_EHLO,
        "220 xclient ok\r\n",
        "250 ok\r\n",
      ]),
      [
        ...UPGRADE,
        "TLS",
        "P: EHLO mail.example.com\r\n",
        "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
        "P: EHLO example.com\r\n",
        AUTH_OK,
      ],
    );
  });

  test("the upgrade always uses EHLO; after TLS step 1 is HELO or EHLO as the table says", () => {
    const m = starttls({ xclient: false, proxySmtpAuth: true });
    assert.deepEqual(
      feedTls(m, ["220 hi\r\n", "250 STARTTLS\r\n", "220 go\r\n", TLS, "250 ok\r\n", "235 ok\r\n"]),
      [
        ...UPGRADE,
        "TLS",
        "P: HELO mail.example.com\r\n",
        "P: AUTH PLAIN AHRlc3RAZXhhbXBsZS5jb20Ac2VjcmV0\r\n",
        AUTH_OK,
      ],
    );
  });

  test("smtp_auth none: MAIL and RCPT are replayed over TLS", () => {
    const m = starttls({ method: "none", smtp: NONE_MAIL });
    assert.deepEqual(
      feedTls(m, [
        "220 hi\r\n",
        TLS_EHLO,
        "220 go\r\n",
        TLS,
        "250 mx\r\n",
        "250 ok\r\n",
        "250 rcpt ok\r\n",
      ]),
      [
        ...UPGRADE,
        "TLS",
        "P: EHLO mail.example.com\r\n",
        "P: MAIL FROM:<a@example.com>\r\n",
        "P: RCPT TO:<b@example.com>\r\n",
        "DONE 250 rcpt ok\r\n",
      ],
    );
  });

  test("XCLIENT is decided by the EHLO reply over TLS, never the plaintext one", () => {
    // Offered before TLS only: not used.
    const before = starttls();
    assert.deepEqual(
      feedTls(before, [
        "220 hi\r\n",
        "250-mx\r\n250-XCLIENT ADDR LOGIN NAME\r\n250 STARTTLS\r\n",
        "220 go\r\n",
        TLS,
        "250-mx\r\n250 PIPELINING\r\n",
      ]),
      [...UPGRADE, "TLS", "P: EHLO mail.example.com\r\n", AUTH_OK],
    );
    // Offered after TLS only: used.
    const after = starttls();
    assert.deepEqual(
      feedTls(after, ["220 hi\r\n", TLS_EHLO, "220 go\r\n", TLS, XC_EHLO, "250 ok\r\n"]),
      [
        ...UPGRADE,
        "TLS",
        "P: EHLO mail.example.com\r\n",
        "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
        AUTH_OK,
      ],
    );
  });

  test("STARTTLS not advertised: internal error, error log, whatever proxy_pass_error_message", () => {
    for (const passError of [false, true]) {
      for (
        const [reply, shown] of [
          ["250-mx\r\n250 PIPELINING\r\n", "250-mx\\x0d\\x0a250 PIPELINING"],
          ["250 STARTTLSX\r\n", "250 STARTTLSX"],
          ["250-mx\r\n250 X-STARTTLS\r\n", "250-mx\\x0d\\x0a250 X-STARTTLS"],
          ["502 5.5.2 EHLO not supported\r\n", "502 5.5.2 EHLO not supported"],
          ["550-STARTTLS\r\n550 no\r\n", "550-STARTTLS\\x0d\\x0a550 no"],
        ]
      ) {
        assert.deepEqual(
          feedTls(starttls({ passError }), ["220 hi\r\n", reply]),
          [UPGRADE[0], INTERNAL + `| error upstream does not support STARTTLS: "${shown}"`],
          reply,
        );
      }
    }
  });

  test("the STARTTLS keyword is case-insensitive and may carry parameters", () => {
    for (const line of ["250 starttls\r\n", "250-StartTLS\r\n250 X\r\n", "250 STARTTLS x\r\n"]) {
      assert.deepEqual(feedTls(starttls(), ["220 hi\r\n", line, "220 go\r\n"]), UPGRADE, line);
    }
  });

  test("a refused STARTTLS fails: internal error, error log, never a plaintext login", () => {
    for (const passError of [false, true]) {
      assert.deepEqual(
        feedTls(starttls({ passError }), [
          "220 hi\r\n",
          TLS_EHLO,
          "454 4.7.0 TLS not available\r\n",
        ]),
        [
          UPGRADE[0],
          UPGRADE[1],
          INTERNAL + '| error upstream does not support STARTTLS: "454 4.7.0 TLS not available"',
        ],
      );
    }
  });

  test("bytes after the 220 are dropped unread: forged replies cannot complete the login", () => {
    const m = starttls({ proxySmtpAuth: true, xclient: false });
    // A plaintext attacker appends the rest of a login to the go-ahead.
    assert.deepEqual(
      feedTls(m, ["220 hi\r\n", TLS_EHLO, "220 go\r\n250 forged\r\n235 forged\r\n"]),
      UPGRADE,
    );
    // Still plaintext (raced the upgrade): dropped too.
    assert.deepEqual(feedTls(m, ["250 forged again\r\n"]), []);
    // Over TLS the EHLO/HELO reply is awaited; nothing was kept.
    assert.deepEqual(feedTls(m, [TLS]), ["TLS", "P: HELO mail.example.com\r\n"]);
    assert.deepEqual(feedTls(m, ["235 wrong\r\n"]), [
      INTERNAL + '| error upstream sent invalid response: "235 wrong"',
    ]);
  });

  test("the login's own replies after TLS keep proxy_pass_error_message", () => {
    const m = starttls({ passError: true });
    assert.deepEqual(
      feedTls(m, ["220 hi\r\n", TLS_EHLO, "220 go\r\n", TLS, XC_EHLO, "550 5.7.1 denied\r\n"]),
      [
        ...UPGRADE,
        "TLS",
        "P: EHLO mail.example.com\r\n",
        "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
        'FAIL 550 5.7.1 denied\r\n| info upstream sent invalid response: "550 5.7.1 denied"',
      ],
    );
  });

  test("a bad greeting fails as without TLS", () => {
    assert.deepEqual(feedTls(starttls(), ["554 go away\r\n"]), [
      INTERNAL + '| error upstream sent invalid response: "554 go away"',
    ]);
  });

  test("tlsStarted() does nothing unless an upgrade is under way", () => {
    const m = starttls({ xclient: false });
    assert.deepEqual(m.tlsStarted(), []);
    assert.deepEqual(feedTls(m, ["220 hi\r\n", TLS, TLS_EHLO, TLS]), [
      UPGRADE[0],
      "TLS",
      UPGRADE[1],
      "TLS",
    ]);
    assert.deepEqual(feedTls(m, ["220 go\r\n", TLS, TLS]), [
      "STARTTLS",
      "TLS",
      "P: HELO mail.example.com\r\n",
      "TLS",
    ]);
  });

  test("proxy_buffer bounds the EHLO and STARTTLS replies", () => {
    assert.deepEqual(
      feedTls(starttls({ proxyBuffer: 16 }), [
        "220 hi\r\n",
        "250-mx.example.com\r\n250 STARTTLS\r\n",
      ]),
      [UPGRADE[0], INTERNAL + '| error upstream sent too long response line: "250-mx.example."'],
    );
    assert.deepEqual(
      feedTls(starttls({ proxyBuffer: 16 }), [
        "220 hi\r\n",
        "250 STARTTLS\r\n",
        "220 " + "z".repeat(20),
      ]),
      [
        UPGRADE[0],
        UPGRADE[1],
        INTERNAL + `| error upstream sent too long response line: "220 ${"z".repeat(11)}"`,
      ],
    );
  });

  test("off, ssl and unset give exactly the plain login", () => {
    const opts: Opts = { smtp: { helo: "example.com", esmtp: true } };
    const script = "220 hi\r\n" + XC_EHLO + "220 ok\r\n250 ok\r\n";
    const plain = feed(login(opts), [script]);
    assert.deepEqual(plain, [
      "P: EHLO mail.example.com\r\n",
      "P: XCLIENT ADDR=192.0.2.7 LOGIN=test@example.com NAME=[UNAVAILABLE]\r\n",
      "P: EHLO example.com\r\n",
      AUTH_OK,
    ]);
    for (const backendTls of ["off", "ssl", undefined] as const) {
      const m = login({ ...opts, backendTls });
      assert.deepEqual(feed(m, [script]), plain, String(backendTls));
      assert.deepEqual(m.tlsStarted(), [], String(backendTls));
    }
  });
});

describe("backend STARTTLS: chunking does not matter", () => {
  const opts: Opts = { proxySmtpAuth: true, smtp: { helo: "client.example", esmtp: true } };
  const before = "220-mx.example ESMTP\r\n220 ready\r\n" + TLS_EHLO + "220 2.0.0 go ahead\r\n";
  const after = "250-mx.example\r\n250-XCLIENT ADDR LOGIN NAME\r\n250 STARTTLS\r\n" +
    "220 xclient ok\r\n250-mx.example\r\n250 PIPELINING\r\n235 2.7.0 ok\r\n";
  const expected = [
    ...UPGRADE,
    "TLS",
    "P: EHLO mail.example.com\r\n",
    "P: XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
    "P: EHLO client.example\r\n",
    "P: AUTH PLAIN " + encodeBase64("\0test@example.com\0secret") + "\r\n",
    AUTH_OK,
  ];

  test("whole, and one byte at a time", () => {
    assert.deepEqual(feedTls(starttls(opts), [before, TLS, after]), expected);
    assert.deepEqual(feedTls(starttls(opts), [...before, TLS, ...after]), expected);
  });

  test("split at every byte boundary, before and after the upgrade", () => {
    for (let k = 1; k < before.length; k++) {
      const r = feedTls(starttls(opts), [before.slice(0, k), before.slice(k), TLS, after]);
      assert.deepEqual(r, expected, `before, split at ${k}`);
    }
    for (let k = 1; k < after.length; k++) {
      const r = feedTls(starttls(opts), [before, TLS, after.slice(0, k), after.slice(k)]);
      assert.deepEqual(r, expected, `after, split at ${k}`);
    }
  });

  test("injected bytes after the 220 are dropped at every split", () => {
    const injected = before + "250 XCLIENT\r\n250 ok\r\n250 ok\r\n235 forged\r\n";
    for (let k = 1; k < injected.length; k++) {
      const r = feedTls(starttls(opts), [injected.slice(0, k), injected.slice(k), TLS, after]);
      assert.deepEqual(r, expected, `split at ${k}`);
    }
  });

  test("no STARTTLS, and a refusal, split at every byte boundary", () => {
    for (
      const [stream, shown] of [
        ["220 hi\r\n250-mx\r\n250 AUTH PLAIN\r\n", "250-mx\\x0d\\x0a250 AUTH PLAIN"],
        ["220 hi\r\n" + TLS_EHLO + "454 4.7.0 no TLS\r\n", "454 4.7.0 no TLS"],
      ]
    ) {
      const whole = feedTls(starttls(opts), [stream]);
      assert.equal(
        whole.at(-1),
        INTERNAL + `| error upstream does not support STARTTLS: "${shown}"`,
      );
      for (let k = 1; k < stream.length; k++) {
        assert.deepEqual(
          feedTls(starttls(opts), [stream.slice(0, k), stream.slice(k)]),
          whole,
          `split at ${k}`,
        );
      }
    }
  });
});
