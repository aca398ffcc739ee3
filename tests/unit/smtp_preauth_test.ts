import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type { Credentials, PreauthMachine } from "../../lib/core/machine.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { refuse } from "../helpers/drive_machine.ts";
import { createSmtpPreauth } from "../../lib/smtp/preauth.ts";
import {
  logRejectedBeforeGreeting,
  SMTP_AUTH_SUCCESS,
  SMTP_CERT_ERROR,
  SMTP_INTERNAL_ERROR,
  SMTP_NO_CERT,
  SMTP_PIPELINING_BEFORE_GREETING,
} from "../../lib/smtp/replies.ts";

// ---- test driver ---------------------------------------------------------

/** Bound on next() calls per run (every loop in a test is bounded). */
const MAX_NEXT = 100_000;

function config(o: Partial<ServerConfig> = {}): ServerConfig {
  return {
    serverName: "mail.example.com",
    smtpAuth: ["plain", "login"],
    smtpCapabilities: [],
    smtpClientBuffer: 4096,
    starttls: "off",
    maxErrors: 5,
    proxyBuffer: 4096,
    proxyPassErrorMessage: false,
    ...o,
  } as ServerConfig;
}

const SALT = "<1234567.1700000000@mail.example.com>";

function machine(o: Partial<ServerConfig> = {}, tls = false) {
  let saltCalls = 0;
  const m = createSmtpPreauth({
    config: config(o),
    tls,
    makeSalt: () => {
      saltCalls++;
      return SALT;
    },
  });
  return { m, saltCalls: () => saltCalls };
}

/** The auth service: a refusal (message, optional code), or null to accept (hand-over). */
type AuthFn = (c: Credentials) => string | [string, string] | null;

interface Run {
  /** Every step, rendered: "S: <bytes>", "CLOSE", "STARTTLS", "AUTH ...", "LOG <level> <msg>". */
  events: string[];
  /** After a hand-over: takeInput() plus the chunks not yet pushed. */
  rest: string | null;
  closed: boolean;
}

function renderCreds(c: Credentials): string {
  const s = c.smtp;
  return `AUTH ${c.method} user=${JSON.stringify(c.user)} pass=${
    JSON.stringify(c.pass)
  } salt=${c.salt}` +
    (s
      ? ` helo=${JSON.stringify(s.helo)} esmtp=${s.esmtp} from=${JSON.stringify(s.from)} to=${
        JSON.stringify(s.to)
      }`
      : " smtp=-");
}

/**
 * Drives a machine like the session driver: push a chunk, call next() until
 * it returns [] (or the machine closes / hands over), then push the next.
 * An auth step is answered at once by `auth`.
 */
function drive(m: PreauthMachine, chunks: string[], auth: AuthFn = () => "denied"): Run {
  const run: Run = { events: [], rest: null, closed: false };
  let calls = 0;
  for (let i = 0; i < chunks.length; i++) {
    m.push(binaryToBytes(chunks[i]));
    for (;;) {
      assert.ok(++calls < MAX_NEXT, "machine did not settle");
      const steps = m.next();
      if (steps.length === 0) break;
      for (const s of steps) {
        switch (s.kind) {
          case "send":
            run.events.push("S: " + bytesToBinary(s.data));
            break;
          case "log":
            run.events.push(`LOG ${s.level} ${s.message}`);
            break;
          case "close":
            run.events.push("CLOSE");
            run.closed = true;
            return run;
          case "starttls":
            run.events.push("STARTTLS");
            m.tlsStarted();
            break;
          case "auth": {
            run.events.push(renderCreds(s.creds));
            const refusal = auth(s.creds);
            if (refusal === null) {
              run.rest = bytesToBinary(m.takeInput()) + chunks.slice(i + 1).join("");
              return run;
            }
            const [msg, code] = typeof refusal === "string" ? [refusal, null] : refusal;
            run.events.push("S: " + bytesToBinary(refuse(m, msg, code)));
            break;
          }
        }
      }
    }
  }
  return run;
}

/** drive() with one chunk per element, returning only the events. */
function events(m: PreauthMachine, ...chunks: string[]): string[] {
  return drive(m, chunks).events;
}

const OK = "S: 250 2.0.0 OK\r\n";
const INVALID = "S: 500 5.5.1 Invalid command\r\n";
const BAD_ARG = "S: 501 5.5.4 Invalid argument\r\n";
const BAD_SEQ = "S: 503 5.5.1 Bad sequence of commands\r\n";
const AUTH_REQUIRED = "S: 530 5.7.1 Authentication required\r\n";
const USERNAME = "S: 334 VXNlcm5hbWU6\r\n";
const PASSWORD = "S: 334 UGFzc3dvcmQ6\r\n";
const TOO_MANY = "LOG info client sent too many invalid commands";
const NONE = { smtpAuth: ["plain", "login", "none"] } as Partial<ServerConfig>;
const b64 = (s: string) => encodeBase64(s);
const plainIr = (user: string, pass: string) => b64(`\0${user}\0${pass}`);
/** Rendered plain credentials without SMTP state set. */
const plainCreds = (user: string, pass: string, helo = "", esmtp = false) =>
  `AUTH plain user=${JSON.stringify(user)} pass=${JSON.stringify(pass)} salt=null helo=${
    JSON.stringify(helo)
  } esmtp=${esmtp} from="" to=""`;
const noneCreds = (from: string, to: string, helo = "", esmtp = false) =>
  `AUTH none user="" pass="" salt=null helo=${JSON.stringify(helo)} esmtp=${esmtp} from=${
    JSON.stringify(from)
  } to=${JSON.stringify(to)}`;

// ---- tests -----------------------------------------------------------------

describe("greeting and fixed replies (smtp.md §1, §5)", () => {
  test("greeting", () => {
    assert.equal(bytesToBinary(machine().m.greeting()), "220 mail.example.com ESMTP ready\r\n");
  });

  test("constants for the driver and the TLS layer", () => {
    assert.equal(
      bytesToBinary(SMTP_PIPELINING_BEFORE_GREETING),
      "503 5.5.0 Improper use of SMTP command pipelining\r\n",
    );
    assert.equal(bytesToBinary(SMTP_INTERNAL_ERROR), "451 4.3.2 Internal server error\r\n");
    assert.equal(bytesToBinary(SMTP_CERT_ERROR), "421 4.7.1 SSL certificate error\r\n");
    assert.equal(bytesToBinary(SMTP_NO_CERT), "421 4.7.1 No required SSL certificate\r\n");
    assert.equal(bytesToBinary(SMTP_AUTH_SUCCESS), "235 2.0.0 OK\r\n");
  });

  test("NOOP, RSET; QUIT says Bye and closes", () => {
    assert.deepEqual(events(machine().m, "NOOP\r\n", "RSET\r\n", "QUIT\r\n", "NOOP\r\n"), [
      OK,
      OK,
      "S: 221 2.0.0 Bye\r\n",
      "CLOSE",
    ]);
  });

  test("command words are case-insensitive", () => {
    assert.deepEqual(events(machine().m, "noop\r\n", "rSeT\r\n", "helo x\r\n", "qUiT\r\n"), [
      OK,
      OK,
      "S: 250 mail.example.com\r\n",
      "S: 221 2.0.0 Bye\r\n",
      "CLOSE",
    ]);
  });

  test("VRFY, EXPN, HELP: 500, not counted", () => {
    const { m } = machine({ maxErrors: 1 });
    assert.deepEqual(events(m, "VRFY a\r\nEXPN b\r\nHELP\r\nhelp me\r\nNOOP\r\n"), [
      INVALID,
      INVALID,
      INVALID,
      INVALID,
      OK,
    ]);
  });

  test("anything else is invalid and counted", () => {
    for (
      const line of [
        "DATA",
        "BDAT 10 LAST",
        "XCLIENT ADDR=1.2.3.4",
        "",
        " NOOP",
        "NOOP1",
        "NO0P",
        "HELO\tx",
        "STARTTLSX",
        "STARTTL",
        "\xc3\x9fNOOP",
      ]
    ) {
      const { m } = machine({ maxErrors: 1 });
      assert.deepEqual(
        events(m, line + "\r\n", "NOOP\r\n"),
        [TOO_MANY, INVALID, "CLOSE"],
        JSON.stringify(line),
      );
    }
  });
});

describe("command syntax (smtp.md §4)", () => {
  test("LF alone ends a line", () => {
    assert.deepEqual(events(machine().m, "NOOP\nHELO a.b\n"), [OK, "S: 250 mail.example.com\r\n"]);
  });

  test("a lone CR makes the line invalid (counted)", () => {
    const { m } = machine({ maxErrors: 2 });
    assert.deepEqual(events(m, "NOOP\rx\r\n", "NOOP\r\r\n", "NOOP\r\n"), [
      INVALID,
      TOO_MANY,
      INVALID,
      "CLOSE",
    ]);
  });

  test("a CR at the end of a chunk waits for the LF", () => {
    assert.deepEqual(events(machine().m, "NOOP\r", "\nNOOP\r", "x\n"), [OK, INVALID]);
  });

  test("11 arguments are fine, 12 make the line invalid", () => {
    const eleven = " a b c d e f g h i j k";
    const { m } = machine({ maxErrors: 1 });
    assert.deepEqual(
      events(m, `NOOP${eleven}\r\n`, `NOOP   ${eleven}  \r\n`, `NOOP${eleven} l\r\n`),
      [
        OK,
        OK,
        TOO_MANY,
        INVALID,
        "CLOSE",
      ],
    );
  });

  test("spaces between and after arguments", () => {
    const r = drive(machine(NONE).m, [
      "HELO   a.b   \r\n",
      "MAIL   FROM:<x@y>    SIZE=1   \r\n",
      "RCPT  TO:<z@y> \r\n",
    ]);
    assert.deepEqual(r.events, [
      "S: 250 mail.example.com\r\n",
      OK,
      noneCreds("MAIL   FROM:<x@y>    SIZE=1", "RCPT  TO:<z@y>", "a.b"),
      "S: 535 5.7.0 denied\r\n",
    ]);
  });

  test("smtp_client_buffer bounds one line: a line of exactly the buffer size fits", () => {
    const { m } = machine({ smtpClientBuffer: 128 });
    const line = "NOOP " + "x".repeat(128 - 5 - 2) + "\r\n"; // 128 bytes with CRLF
    assert.equal(line.length, 128);
    assert.deepEqual(events(m, line), [OK]);
  });

  test("a longer line: 500, redacted log, close, not counted", () => {
    const { m } = machine({ smtpClientBuffer: 128, maxErrors: 100 });
    const line = "AUTH PLAIN " + "A".repeat(200) + "\r\n";
    assert.deepEqual(events(m, "NOOP\r\n", line), [
      OK,
      'LOG info client sent too long command "AUTH..."',
      INVALID,
      "CLOSE",
    ]);
  });

  test("too long is noticed once the buffer is full, without waiting for the LF", () => {
    const { m } = machine({ smtpClientBuffer: 128 });
    assert.deepEqual(events(m, "NOOP ", "y".repeat(100)), []);
    assert.deepEqual(events(m, "y".repeat(23)), [
      'LOG info client sent too long command "NOOP..."',
      INVALID,
      "CLOSE",
    ]);
  });

  test("an invalid line longer than the buffer is too long, not invalid", () => {
    const { m } = machine({ smtpClientBuffer: 64, maxErrors: 1 });
    assert.deepEqual(events(m, "XXXX " + "z".repeat(100) + "\r\n"), [
      'LOG info client sent too long command "XXXX..."',
      INVALID,
      "CLOSE",
    ]);
  });

  test("a too-long AUTH answer logs nothing of it", () => {
    const { m } = machine({ smtpClientBuffer: 64 });
    assert.deepEqual(events(m, "AUTH PLAIN\r\n", "c2VjcmV0".repeat(10) + "\r\n"), [
      "S: 334 \r\n",
      'LOG info client sent too long command "..."',
      INVALID,
      "CLOSE",
    ]);
  });

  test("more input than the buffer may hold at all: too long", () => {
    const { m } = machine({ smtpClientBuffer: 128 });
    m.push(binaryToBytes("NOOP\r\n"));
    m.push(new Uint8Array((1 << 20) + 200).fill(0x41));
    const steps = m.next().map((s) => s.kind === "send" ? bytesToBinary(s.data) : s.kind);
    assert.deepEqual(steps, ["log", "500 5.5.1 Invalid command\r\n", "close"]);
    assert.deepEqual(m.next(), []);
  });
});

describe("max_errors (mail_max_errors.t)", () => {
  test("one at a time: two error replies, then close", () => {
    const r = drive(machine({ maxErrors: 2 }).m, ["a\r\n", "b\r\n", "c\r\n"]);
    assert.deepEqual(r.events, [INVALID, TOO_MANY, INVALID, "CLOSE"]);
  });

  test("pipelined in one packet: the same", () => {
    const r = drive(machine({ maxErrors: 2 }).m, ["a\r\nb\r\nc\r\n"]);
    assert.deepEqual(r.events, [INVALID, TOO_MANY, INVALID, "CLOSE"]);
  });

  test("handler refusals are not counted; the count is never reset", () => {
    const r = drive(machine({ maxErrors: 2 }).m, [
      "x\r\n",
      "HELO\r\n",
      "AUTH\r\n",
      "AUTH FOO\r\n",
      "MAIL FROM:<a@b>\r\n",
      "STARTTLS\r\n",
      "NOOP\r\n",
      "y\r\n",
    ]);
    assert.deepEqual(r.events, [
      INVALID,
      BAD_ARG,
      BAD_ARG,
      INVALID,
      'LOG info client was rejected: "MAIL FROM:<a@b>__"',
      AUTH_REQUIRED,
      INVALID,
      OK,
      TOO_MANY,
      INVALID,
      "CLOSE",
    ]);
  });
});

describe("HELO / EHLO (smtp.md §6, mail_capability.t)", () => {
  test("exactly one argument", () => {
    assert.deepEqual(events(machine().m, "HELO\r\n", "HELO a b\r\n", "EHLO\r\n", "EHLO a b\r\n"), [
      BAD_ARG,
      BAD_ARG,
      BAD_ARG,
      BAD_ARG,
    ]);
  });

  test("default EHLO reply", () => {
    assert.deepEqual(events(machine().m, "EHLO example.com\r\n"), [
      "S: 250-mail.example.com\r\n250 AUTH PLAIN LOGIN\r\n",
    ]);
  });

  test("capabilities, every method in the fixed order, none never shown", () => {
    const { m } = machine({
      smtpCapabilities: ["PIPELINING", "SIZE 52428800", "8BITMIME"],
      smtpAuth: ["none", "external", "cram-md5", "login", "plain"],
    });
    assert.deepEqual(events(m, "EHLO x\r\n"), [
      "S: 250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n" +
      "250 AUTH PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n",
    ]);
  });

  test("no method but none, no capabilities: a single line", () => {
    assert.deepEqual(events(machine({ smtpAuth: ["none"] }).m, "EHLO x\r\n"), [
      "S: 250 mail.example.com\r\n",
    ]);
    assert.deepEqual(
      events(machine({ smtpAuth: ["none"], smtpCapabilities: ["8BITMIME"] }).m, "EHLO x\r\n"),
      [
        "S: 250-mail.example.com\r\n250 8BITMIME\r\n",
      ],
    );
  });

  test("starttls on / only before TLS; no STARTTLS line with TLS active", () => {
    const caps = { smtpCapabilities: ["PIPELINING"] };
    assert.deepEqual(events(machine({ ...caps, starttls: "on" }).m, "EHLO x\r\n"), [
      "S: 250-mail.example.com\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n",
    ]);
    assert.deepEqual(events(machine({ ...caps, starttls: "only" }).m, "EHLO x\r\n"), [
      "S: 250-mail.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
    ]);
    for (const starttls of ["on", "only"] as const) {
      assert.deepEqual(events(machine({ ...caps, starttls }, true).m, "EHLO x\r\n"), [
        "S: 250-mail.example.com\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n",
      ]);
    }
    assert.deepEqual(events(machine({ starttls: "on", smtpAuth: ["none"] }).m, "EHLO x\r\n"), [
      "S: 250-mail.example.com\r\n250 STARTTLS\r\n",
    ]);
  });

  test("HELO replies with the server name; the last HELO/EHLO argument wins; EHLO is remembered", () => {
    const r = drive(machine().m, [
      "EHLO first\r\n",
      "HELO second\r\n",
      `AUTH PLAIN ${plainIr("u", "p")}\r\n`,
    ]);
    assert.deepEqual(r.events, [
      "S: 250-mail.example.com\r\n250 AUTH PLAIN LOGIN\r\n",
      "S: 250 mail.example.com\r\n",
      plainCreds("u", "p", "second", true),
      "S: 535 5.7.0 denied\r\n",
    ]);
  });

  test("HELO / EHLO forget MAIL and RCPT", () => {
    const r = drive(machine(NONE).m, [
      "MAIL FROM:<a@b>\r\n",
      "HELO x\r\n",
      "RCPT TO:<c@d>\r\n",
      "MAIL FROM:<e@f>\r\n",
    ]);
    assert.deepEqual(r.events, [OK, "S: 250 mail.example.com\r\n", BAD_SEQ, OK]);
  });
});

describe("AUTH (smtp.md §6)", () => {
  test("starttls only before TLS: 500 even for a bare AUTH", () => {
    const { m } = machine({ starttls: "only", maxErrors: 1 });
    assert.deepEqual(
      events(m, "AUTH\r\n", "AUTH LOGIN\r\n", `AUTH PLAIN ${plainIr("u", "p")}\r\n`),
      [
        INVALID,
        INVALID,
        INVALID,
      ],
    );
  });

  test("no argument: 501; unknown mechanism or wrong argument count: 500 (not counted)", () => {
    const { m } = machine({ maxErrors: 1 });
    assert.deepEqual(
      events(
        m,
        "AUTH\r\n",
        "AUTH FOO\r\n",
        "AUTH PLAIN a b\r\n",
        "AUTH LOGIN a b\r\n",
        "AUTH X-PLAIN\r\n",
        "NOOP\r\n",
      ),
      [BAD_ARG, INVALID, INVALID, INVALID, INVALID, OK],
    );
  });

  test("PLAIN: 334 and one space, then base64; or initial response", () => {
    const good = plainIr("test@example.com", "secret");
    assert.deepEqual(events(machine().m, "AUTH PLAIN\r\n", good + "\r\n"), [
      "S: 334 \r\n",
      plainCreds("test@example.com", "secret"),
      "S: 535 5.7.0 denied\r\n",
    ]);
    assert.deepEqual(events(machine().m, `auth plain ${good}\r\n`), [
      plainCreds("test@example.com", "secret"),
      "S: 535 5.7.0 denied\r\n",
    ]);
  });

  test("PLAIN and LOGIN work even when not listed in smtp_auth", () => {
    const { m } = machine({ smtpAuth: ["none"] });
    assert.deepEqual(events(m, "AUTH PLAIN\r\n", "AUTH LOGIN\r\n"), [
      "S: 334 \r\n",
      // "AUTH LOGIN" is taken as the PLAIN answer: its first word does not decode to PLAIN data
      "LOG info client sent invalid login in AUTH PLAIN command",
      INVALID,
    ]);
    assert.deepEqual(events(machine({ smtpAuth: ["none"] }).m, "AUTH LOGIN\r\n"), [USERNAME]);
  });

  test("LOGIN (mail_smtp.t): username and password challenges; initial response", () => {
    assert.deepEqual(
      events(
        machine().m,
        "AUTH LOGIN\r\n",
        b64("test@example.com") + "\r\n",
        b64("secret") + "\r\n",
      ),
      [USERNAME, PASSWORD, plainCreds("test@example.com", "secret"), "S: 535 5.7.0 denied\r\n"],
    );
    assert.deepEqual(
      events(machine().m, `AUTH LOGIN ${b64("test@example.com")}\r\n`, b64("secret") + "\r\n"),
      [
        PASSWORD,
        plainCreds("test@example.com", "secret"),
        "S: 535 5.7.0 denied\r\n",
      ],
    );
  });

  test("CRAM-MD5 only when enabled, never with an initial response; salt made once", () => {
    assert.deepEqual(events(machine().m, "AUTH CRAM-MD5\r\n"), [INVALID]);
    const { m, saltCalls } = machine({ smtpAuth: ["cram-md5"] });
    const digest = "0123456789abcdef".repeat(2);
    const answer = b64("test@example.com " + digest) + "\r\n";
    assert.deepEqual(
      events(m, "AUTH CRAM-MD5 abc\r\n", "AUTH CRAM-MD5\r\n", answer, "auth cram-md5\r\n", answer),
      [
        INVALID,
        `S: 334 ${b64(SALT)}\r\n`,
        `AUTH cram-md5 user="test@example.com" pass="${digest}" salt=${SALT} helo="" esmtp=false from="" to=""`,
        "S: 535 5.7.0 denied\r\n",
        `S: 334 ${b64(SALT)}\r\n`,
        `AUTH cram-md5 user="test@example.com" pass="${digest}" salt=${SALT} helo="" esmtp=false from="" to=""`,
        "S: 535 5.7.0 denied\r\n",
      ],
    );
    assert.equal(saltCalls(), 1);
  });

  test("EXTERNAL only when enabled, both forms (product); empty password", () => {
    assert.deepEqual(events(machine().m, "AUTH EXTERNAL\r\n", `AUTH EXTERNAL ${b64("u")}\r\n`), [
      INVALID,
      INVALID,
    ]);
    const ext = { smtpAuth: ["external"] } as Partial<ServerConfig>;
    assert.deepEqual(
      events(machine(ext).m, "AUTH EXTERNAL\r\n", b64("test@example.com") + "\r\n"),
      [
        USERNAME,
        'AUTH external user="test@example.com" pass="" salt=null helo="" esmtp=false from="" to=""',
        "S: 535 5.7.0 denied\r\n",
      ],
    );
    assert.deepEqual(events(machine(ext).m, `AUTH EXTERNAL ${b64("id")}\r\n`), [
      'AUTH external user="id" pass="" salt=null helo="" esmtp=false from="" to=""',
      "S: 535 5.7.0 denied\r\n",
    ]);
  });

  test("decoding errors: info log, 500, exchange abandoned, not counted", () => {
    const { m } = machine({ maxErrors: 1, smtpAuth: ["plain", "cram-md5"] });
    assert.deepEqual(
      events(
        m,
        "AUTH PLAIN !!!\r\n",
        "AUTH PLAIN\r\n",
        b64("nonul") + "\r\n",
        "AUTH LOGIN\r\n",
        "%%%\r\n",
        `AUTH LOGIN ${b64("u")}\r\n`,
        "a\r\n",
        "AUTH CRAM-MD5\r\n",
        b64("user short") + "\r\n",
        "NOOP\r\n",
      ),
      [
        "LOG info client sent invalid base64 encoding in AUTH PLAIN command",
        INVALID,
        "S: 334 \r\n",
        "LOG info client sent invalid login in AUTH PLAIN command",
        INVALID,
        USERNAME,
        "LOG info client sent invalid base64 encoding in AUTH LOGIN command",
        INVALID,
        PASSWORD,
        "LOG info client sent invalid base64 encoding in AUTH LOGIN command",
        INVALID,
        `S: 334 ${b64(SALT)}\r\n`,
        "LOG info client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command",
        INVALID,
        OK,
      ],
    );
  });

  test("product: a response line of exactly * cancels: 501, no auth request, not counted", () => {
    const { m } = machine({ maxErrors: 1 });
    assert.deepEqual(
      events(
        m,
        "AUTH LOGIN\r\n",
        "*\r\n",
        "AUTH PLAIN\r\n",
        "*\n",
        `AUTH LOGIN ${b64("u")}\r\n`,
        "*\r\n",
        "NOOP\r\n",
      ),
      [USERNAME, BAD_ARG, "S: 334 \r\n", BAD_ARG, PASSWORD, BAD_ARG, OK],
    );
  });

  test("' *' or '* x' is not a cancel but a decoding error", () => {
    assert.deepEqual(events(machine().m, "AUTH PLAIN\r\n", " *\r\n", "AUTH PLAIN\r\n", "* x\r\n"), [
      "S: 334 \r\n",
      "LOG info client sent invalid base64 encoding in AUTH PLAIN command",
      INVALID,
      "S: 334 \r\n",
      "LOG info client sent invalid base64 encoding in AUTH PLAIN command",
      INVALID,
    ]);
  });

  test("a response line is split into words; the first is used; 12 words are invalid (counted)", () => {
    const good = plainIr("u", "p");
    assert.deepEqual(events(machine().m, "AUTH PLAIN\r\n", `  ${good} extra words\r\n`), [
      "S: 334 \r\n",
      plainCreds("u", "p"),
      "S: 535 5.7.0 denied\r\n",
    ]);
    const { m } = machine({ maxErrors: 1 });
    assert.deepEqual(events(m, "AUTH PLAIN\r\n", `${good} b c d e f g h i j k l\r\n`), [
      "S: 334 \r\n",
      TOO_MANY,
      INVALID,
      "CLOSE",
    ]);
  });

  test("a response line with a lone CR is invalid (counted) and abandons the exchange", () => {
    const { m } = machine({ maxErrors: 2 });
    assert.deepEqual(events(m, "AUTH LOGIN\r\n", "dXNlcg==\rx\r\n", "NOOP\r\n"), [
      USERNAME,
      INVALID,
      OK,
    ]);
  });

  test("AUTH does not need HELO; credentials carry HELO/EHLO state but never MAIL/RCPT", () => {
    const r = drive(machine(NONE).m, [
      "EHLO c.example\r\n",
      "MAIL FROM:<a@b>\r\n",
      `AUTH PLAIN ${plainIr("u", "p")}\r\n`,
    ]);
    assert.deepEqual(r.events, [
      "S: 250-mail.example.com\r\n250 AUTH PLAIN LOGIN\r\n",
      OK,
      plainCreds("u", "p", "c.example", true),
      "S: 535 5.7.0 denied\r\n",
    ]);
  });

  test("binary user and password bytes survive", () => {
    const r = drive(machine().m, [`AUTH PLAIN ${plainIr("\xff u\x01", "p\x00\x80 q")}\r\n`]);
    assert.deepEqual(r.events, [
      plainCreds("\xff u\x01", "p\x00\x80 q"),
      "S: 535 5.7.0 denied\r\n",
    ]);
  });
});

describe("auth refusal (smtp.md §7)", () => {
  test("default code 535 5.7.0; Auth-Error-Code replaces it; message byte for byte", () => {
    const { m } = machine();
    m.push(binaryToBytes(`AUTH PLAIN ${plainIr("u", "p")}\r\n`));
    assert.equal(m.next()[0].kind, "auth");
    assert.equal(
      bytesToBinary(refuse(m, "Invalid login or password", null)),
      "535 5.7.0 Invalid login or password\r\n",
    );
    m.push(binaryToBytes(`AUTH PLAIN ${plainIr("u", "p")}\r\n`));
    assert.equal(m.next()[0].kind, "auth");
    assert.equal(
      bytesToBinary(refuse(m, "Mailbox store offline", "451 4.3.0")),
      "451 4.3.0 Mailbox store offline\r\n",
    );
    m.push(binaryToBytes(`AUTH PLAIN ${plainIr("u", "p")}\r\n`));
    assert.equal(m.next()[0].kind, "auth");
    assert.deepEqual([...refuse(m, "caf\xc3\xa9", null)].slice(-4), [0xc3, 0xa9, 0x0d, 0x0a]);
  });

  test("the machine is suspended while the auth request runs", () => {
    const { m } = machine();
    m.push(binaryToBytes(`AUTH PLAIN ${plainIr("u", "p")}\r\nNOOP\r\n`));
    assert.equal(m.next()[0].kind, "auth");
    assert.deepEqual(m.next(), []);
    refuse(m, "no", null);
    assert.deepEqual(m.next().map((s) => s.kind === "send" ? bytesToBinary(s.data) : s.kind), [
      "250 2.0.0 OK\r\n",
    ]);
  });

  test("mail_smtp.t: bad password → 535, session continues; good → auth accepted", () => {
    const r = drive(
      machine().m,
      [
        "EHLO example.com\r\n",
        `AUTH PLAIN ${plainIr("test@example.com", "bad")}\r\n`,
        `AUTH PLAIN ${plainIr("test@example.com", "secret")}\r\n`,
      ],
      (c) => (c.pass === "secret" ? null : "Invalid login or password"),
    );
    assert.deepEqual(r.events, [
      "S: 250-mail.example.com\r\n250 AUTH PLAIN LOGIN\r\n",
      plainCreds("test@example.com", "bad", "example.com", true),
      "S: 535 5.7.0 Invalid login or password\r\n",
      plainCreds("test@example.com", "secret", "example.com", true),
    ]);
    assert.equal(r.rest, "");
  });

  test("after a none refusal MAIL/RCPT/HELO stay remembered; a new RCPT asks again", () => {
    const r = drive(machine(NONE).m, [
      "HELO h\r\n",
      "MAIL FROM:<a@b>\r\n",
      "RCPT TO:<x@nowhere>\r\n",
      "MAIL FROM:<c@d>\r\n",
      "RCPT TO:<y@example.com>\r\n",
    ], (c) => (c.smtp?.to.includes("example.com") ? null : ["Relay denied", "550 5.7.1"]));
    assert.deepEqual(r.events, [
      "S: 250 mail.example.com\r\n",
      OK,
      noneCreds("MAIL FROM:<a@b>", "RCPT TO:<x@nowhere>", "h"),
      "S: 550 5.7.1 Relay denied\r\n",
      BAD_SEQ,
      noneCreds("MAIL FROM:<a@b>", "RCPT TO:<y@example.com>", "h"),
    ]);
  });
});

describe("MAIL / RCPT / RSET (smtp.md §6)", () => {
  test("without none: 530 and an info log of the MAIL line", () => {
    assert.deepEqual(events(machine().m, "MAIL FROM:<a@example.com>\r\n", "mail from:<\x01>\n"), [
      'LOG info client was rejected: "MAIL FROM:<a@example.com>__"',
      AUTH_REQUIRED,
      'LOG info client was rejected: "mail from:<\\x01>_"',
      AUTH_REQUIRED,
    ]);
  });

  test("the rejected MAIL log is capped", () => {
    const [log] = events(machine().m, "MAIL FROM:<" + "a".repeat(300) + ">\r\n");
    assert.equal(log, `LOG info client was rejected: "MAIL FROM:<${"a".repeat(256 - 11)}..."`);
  });

  test("order of checks: 503 before 501; RCPT needs MAIL, then an argument", () => {
    assert.deepEqual(
      events(
        machine(NONE).m,
        "RCPT TO:<a@b>\r\n",
        "MAIL\r\n",
        "MAIL FROM:<a@b>\r\n",
        "MAIL\r\n",
        "MAIL FROM:<c@d>\r\n",
        "RCPT\r\n",
      ),
      [BAD_SEQ, BAD_ARG, OK, BAD_SEQ, BAD_SEQ, BAD_ARG],
    );
  });

  test("the command text is kept as typed; RCPT asks the auth service with method none", () => {
    const r = drive(machine(NONE).m, [
      "mail from:<>\r\n",
      "RcPt To:<postmaster@mail.example.com> NOTIFY=NEVER\r\n",
    ], () => null);
    assert.deepEqual(r.events, [
      OK,
      noneCreds("mail from:<>", "RcPt To:<postmaster@mail.example.com> NOTIFY=NEVER"),
    ]);
    assert.equal(r.rest, "");
  });

  test("MAIL clears what a failed AUTH left: the none request has empty user/pass", () => {
    const r = drive(machine(NONE).m, [
      "AUTH LOGIN\r\n",
      b64("user") + "\r\n",
      "*\r\n",
      `AUTH PLAIN ${plainIr("u", "p")}\r\n`,
      "MAIL FROM:<a@b>\r\n",
      "RCPT TO:<c@d>\r\n",
    ]);
    assert.deepEqual(r.events.slice(-2), [
      noneCreds("MAIL FROM:<a@b>", "RCPT TO:<c@d>"),
      "S: 535 5.7.0 denied\r\n",
    ]);
  });

  test("RSET forgets MAIL and RCPT, not HELO", () => {
    const r = drive(machine(NONE).m, [
      "EHLO h.example\r\n",
      "MAIL FROM:<a@b>\r\n",
      "RSET\r\n",
      "RCPT TO:<c@d>\r\n",
      "MAIL FROM:<e@f>\r\n",
      "RCPT TO:<g@h>\r\n",
    ], () => null);
    assert.deepEqual(r.events, [
      "S: 250-mail.example.com\r\n250 AUTH PLAIN LOGIN\r\n",
      OK,
      OK,
      BAD_SEQ,
      OK,
      noneCreds("MAIL FROM:<e@f>", "RCPT TO:<g@h>", "h.example", true),
    ]);
  });

  test("starttls only does not apply to MAIL/RCPT (as nginx)", () => {
    const r = drive(machine({ ...NONE, starttls: "only" }).m, [
      "MAIL FROM:<a@b>\r\n",
      "RCPT TO:<c@d>\r\n",
    ], () => null);
    assert.deepEqual(r.events, [OK, noneCreds("MAIL FROM:<a@b>", "RCPT TO:<c@d>")]);
  });
});

describe("STARTTLS (smtp.md §6, mail_ssl.t)", () => {
  test("starttls on: AUTH LOGIN works before TLS; STARTTLS → 220", () => {
    assert.deepEqual(
      events(machine({ starttls: "on" }).m, "AUTH LOGIN\r\n", "*\r\n", "STARTTLS\r\n"),
      [
        USERNAME,
        BAD_ARG,
        "S: 220 2.0.0 Start TLS\r\n",
        "STARTTLS",
      ],
    );
  });

  test("starttls only: AUTH LOGIN → 500 before TLS, 334 after", () => {
    assert.deepEqual(
      events(machine({ starttls: "only" }).m, "AUTH LOGIN\r\n", "STARTTLS\r\n", "AUTH LOGIN\r\n"),
      [
        INVALID,
        "S: 220 2.0.0 Start TLS\r\n",
        "STARTTLS",
        USERNAME,
      ],
    );
  });

  test("pipelined bytes are dropped, HELO/MAIL/RCPT forgotten, EHLO-ness kept; no STARTTLS line after", () => {
    const r = drive(machine({ ...NONE, starttls: "on" }).m, [
      "EHLO before\r\nMAIL FROM:<a@b>\r\nSTARTTLS\r\nAUTH PLAIN injected\r\n",
      "RCPT TO:<c@d>\r\n",
      "EHLO after\r\n",
      "STARTTLS\r\n",
      `AUTH PLAIN ${plainIr("u", "p")}\r\n`,
    ]);
    assert.deepEqual(r.events, [
      "S: 250-mail.example.com\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n",
      OK,
      "S: 220 2.0.0 Start TLS\r\n",
      "STARTTLS",
      BAD_SEQ,
      "S: 250-mail.example.com\r\n250 AUTH PLAIN LOGIN\r\n",
      INVALID,
      plainCreds("u", "p", "after", true),
      "S: 535 5.7.0 denied\r\n",
    ]);
  });

  test("STARTTLS forgets HELO: later credentials carry none; a partial line is dropped too", () => {
    const r = drive(machine({ starttls: "on" }).m, [
      "HELO h\r\nSTARTTLS\r\nNO",
      "OP\r\n",
      `AUTH PLAIN ${plainIr("u", "p")}\r\n`,
    ]);
    assert.deepEqual(r.events, [
      "S: 250 mail.example.com\r\n",
      "S: 220 2.0.0 Start TLS\r\n",
      "STARTTLS",
      INVALID, // "NO" was dropped with the rest: "OP" is what remains
      plainCreds("u", "p"),
      "S: 535 5.7.0 denied\r\n",
    ]);
  });

  test("suspended until the handshake is done", () => {
    const { m } = machine({ starttls: "on" });
    m.push(binaryToBytes("STARTTLS\r\n"));
    assert.deepEqual(m.next().map((s) => s.kind), ["send", "starttls"]);
    m.push(binaryToBytes("NOOP\r\n"));
    assert.deepEqual(m.next(), []);
    m.tlsStarted();
    assert.deepEqual(m.next(), [], "plaintext pushed before the handshake was discarded");
    m.push(binaryToBytes("NOOP\r\n"));
    assert.deepEqual(m.next().map((s) => s.kind), ["send"]);
  });

  test("starttls off, or TLS already active: 500, not counted", () => {
    assert.deepEqual(events(machine({ maxErrors: 1 }).m, "STARTTLS\r\n", "NOOP\r\n"), [
      INVALID,
      OK,
    ]);
    assert.deepEqual(
      events(machine({ starttls: "on", maxErrors: 1 }, true).m, "starttls\r\n", "NOOP\r\n"),
      [INVALID, OK],
    );
  });
});

describe("mail_smtp.t at machine level", () => {
  const A = { smtpAuth: ["login", "plain", "none", "cram-md5", "external"] } as Partial<
    ServerConfig
  >;
  const B = { smtpAuth: ["none"], smtpClientBuffer: 128 } as Partial<ServerConfig>;
  const accept: AuthFn = (c) =>
    c.method === "none"
      ? (c.smtp?.to.includes("example.com") ? null : "denied")
      : c.pass === "secret" || c.method === "external"
      ? null
      : "Invalid login or password";

  test("EXTERNAL both forms reach the auth service", () => {
    assert.deepEqual(
      drive(machine(A).m, ["AUTH EXTERNAL\r\n", b64("test@example.com") + "\r\n"], accept).events,
      [
        USERNAME,
        'AUTH external user="test@example.com" pass="" salt=null helo="" esmtp=false from="" to=""',
      ],
    );
  });

  test("pipelined invalid command + RSET → an error reply, then 2xx", () => {
    assert.deepEqual(drive(machine(A).m, ["INVALID COMMAND WITH ARGUMENTS\r\nRSET\r\n"]).events, [
      INVALID,
      OK,
    ]);
  });

  test("pipelined failing AUTH PLAIN + MAIL FROM → 535, then the proxy's 250", () => {
    const r = drive(machine(A).m, [
      `AUTH PLAIN ${
        plainIr("test@example.com", "bad")
      }\r\nMAIL FROM:<test@example.com> SIZE=100\r\n`,
    ], accept);
    assert.deepEqual(r.events, [
      plainCreds("test@example.com", "bad"),
      "S: 535 5.7.0 Invalid login or password\r\n",
      OK,
    ]);
  });

  test("pipelined good AUTH PLAIN + MAIL FROM → hand-over; MAIL goes to the backend", () => {
    const r = drive(machine(A).m, [
      `AUTH PLAIN ${
        plainIr("test@example.com", "secret")
      }\r\nMAIL FROM:<test@example.com> SIZE=100\r\n`,
    ], accept);
    assert.deepEqual(r.events, [plainCreds("test@example.com", "secret")]);
    assert.equal(r.rest, "MAIL FROM:<test@example.com> SIZE=100\r\n");
  });

  test("smtp_auth none: MAIL (proxy), RCPT (auth), RSET relayed — one packet, or split RS+ET", () => {
    const mail = "MAIL FROM:<test@example.com> SIZE=100\r\n";
    const rcpt = "RCPT TO:<test@example.com>\r\n";
    const want = [
      OK,
      noneCreds("MAIL FROM:<test@example.com> SIZE=100", "RCPT TO:<test@example.com>"),
    ];
    for (
      const chunks of [[mail, rcpt, "RSET\r\n"], [mail + rcpt + "RSET\r\n"], [
        mail + rcpt + "RS",
        "ET\r\n",
      ]]
    ) {
      const r = drive(machine(B).m, chunks, accept);
      assert.deepEqual(r.events, want, JSON.stringify(chunks));
      assert.equal(r.rest, "RSET\r\n");
    }
  });

  test("128-byte buffer: MAIL, four RCPTs and RSET in one packet — data after the first RCPT is relayed", () => {
    const rcpts = [1, 2, 3, 4].map((i) => `RCPT TO:<test${i}@example.com>\r\n`).join("");
    const packet = "MAIL FROM:<test@example.com> SIZE=100\r\n" + rcpts + "RSET\r\n";
    assert.ok(packet.length > 128);
    const r = drive(machine(B).m, [packet], accept);
    assert.deepEqual(r.events, [
      OK,
      noneCreds("MAIL FROM:<test@example.com> SIZE=100", "RCPT TO:<test1@example.com>"),
    ]);
    assert.equal(r.rest, packet.slice(packet.indexOf("RCPT TO:<test2")));
  });

  test("a command split across packets", () => {
    assert.deepEqual(events(machine(A).m, "HEL", "O example.com\r\n"), [
      "S: 250 mail.example.com\r\n",
    ]);
    assert.deepEqual(events(machine(A).m, "FOO", "BAR\r\n", "HELO example.com\r\n"), [
      INVALID,
      "S: 250 mail.example.com\r\n",
    ]);
  });
});

describe("mail_smtp_xclient.t / mail_proxy_smtp_auth.t: what the backend login gets", () => {
  test("AUTH without HELO, after HELO, after EHLO", () => {
    const auth = `AUTH PLAIN ${plainIr("test@example.com", "secret")}\r\n`;
    assert.deepEqual(drive(machine().m, [auth], () => null).events, [
      plainCreds("test@example.com", "secret"),
    ]);
    assert.deepEqual(
      drive(machine().m, ["HELO example.com\r\n", auth], () => null).events.slice(1),
      [
        plainCreds("test@example.com", "secret", "example.com"),
      ],
    );
    assert.deepEqual(
      drive(machine().m, ["EHLO example.com\r\n", auth], () => null).events.slice(1),
      [
        plainCreds("test@example.com", "secret", "example.com", true),
      ],
    );
  });

  test("MAIL + RCPT without HELO, after HELO, after EHLO", () => {
    const mr = ["MAIL FROM:<test@example.com>\r\n", "RCPT TO:<test@example.com>\r\n"];
    const c = (helo: string, esmtp: boolean) =>
      noneCreds("MAIL FROM:<test@example.com>", "RCPT TO:<test@example.com>", helo, esmtp);
    assert.deepEqual(drive(machine(NONE).m, mr, () => null).events, [OK, c("", false)]);
    assert.deepEqual(
      drive(machine(NONE).m, ["HELO example.com\r\n", ...mr], () => null).events.slice(2),
      [c("example.com", false)],
    );
    assert.deepEqual(
      drive(machine(NONE).m, ["EHLO example.com\r\n", ...mr], () => null).events.slice(2),
      [c("example.com", true)],
    );
  });
});

describe("chunking does not matter", () => {
  const digest = "f".repeat(32);
  const transcript = [
    "EHLO client.example\r\n",
    "noop a b\n",
    "VRFY x\r\n",
    "bogus\r\n",
    "AUTH LOGIN\r\n" + b64("alice") + "\r\n" + b64("wrong") + "\r\n",
    "AUTH PLAIN\r\n" + plainIr("bob", "bad") + "\r\n",
    "auth cram-md5\r\n" + b64("carol " + digest) + "\r\n",
    "AUTH LOGIN " + b64("dave") + "\n*\n",
    "AUTH PLAIN %%\r\n",
    "MAIL FROM:<a@b>  SIZE=10\r\n",
    "HELO again\r\n",
    "MAIL FROM:<c@d>\r\nRSET\r\nMAIL FROM:<e@f>\r\n",
    "RCPT TO:<nobody@nowhere>\r\n",
    "RCPT TO:<someone@example.com>\r\nRSET\r\nQUIT\r\n",
  ].join("");
  const opts = { smtpAuth: ["plain", "login", "cram-md5", "none"], maxErrors: 10 } as Partial<
    ServerConfig
  >;
  const auth: AuthFn = (c) => (c.smtp?.to.includes("example.com") ? null : "bad credentials");
  const run = (chunks: string[]) => drive(machine(opts).m, chunks, auth);

  test("the whole transcript at once", () => {
    const r = run([transcript]);
    assert.deepEqual(r.events, [
      "S: 250-mail.example.com\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n",
      OK,
      INVALID,
      INVALID,
      USERNAME,
      PASSWORD,
      plainCreds("alice", "wrong", "client.example", true),
      "S: 535 5.7.0 bad credentials\r\n",
      "S: 334 \r\n",
      plainCreds("bob", "bad", "client.example", true),
      "S: 535 5.7.0 bad credentials\r\n",
      `S: 334 ${b64(SALT)}\r\n`,
      `AUTH cram-md5 user="carol" pass="${digest}" salt=${SALT} helo="client.example" esmtp=true from="" to=""`,
      "S: 535 5.7.0 bad credentials\r\n",
      PASSWORD,
      BAD_ARG,
      "LOG info client sent invalid base64 encoding in AUTH PLAIN command",
      INVALID,
      OK,
      "S: 250 mail.example.com\r\n",
      OK,
      OK,
      OK,
      noneCreds("MAIL FROM:<e@f>", "RCPT TO:<nobody@nowhere>", "again", true),
      "S: 535 5.7.0 bad credentials\r\n",
      noneCreds("MAIL FROM:<e@f>", "RCPT TO:<someone@example.com>", "again", true),
    ]);
    assert.equal(r.rest, "RSET\r\nQUIT\r\n");
  });

  test("split at every byte boundary: identical steps and leftover input", () => {
    const whole = run([transcript]);
    for (let k = 1; k < transcript.length; k++) {
      const r = run([transcript.slice(0, k), transcript.slice(k)]);
      assert.deepEqual(r.events, whole.events, `split at ${k}`);
      assert.equal(r.rest, whole.rest, `split at ${k}`);
    }
  });

  test("one byte at a time", () => {
    const whole = run([transcript]);
    const r = run([...transcript]);
    assert.deepEqual(r.events, whole.events);
    assert.equal(r.rest, whole.rest);
  });
});

describe("logRejectedBeforeGreeting (smtp.md §3, for the driver)", () => {
  const log = (s: string) => logRejectedBeforeGreeting(binaryToBytes(s));

  test("the first line, CR/LF shown as _", () => {
    assert.equal(
      log("HELO example.com\r\n"),
      'client was rejected before greeting: "HELO example.com__"',
    );
    assert.equal(log("EHLO x\n"), 'client was rejected before greeting: "EHLO x_"');
    assert.equal(log("HEL"), 'client was rejected before greeting: "HEL"');
  });

  test("credentials never reach the log", () => {
    const ir = plainIr("user", "secret");
    assert.equal(
      log(`AUTH PLAIN ${ir}\r\n`),
      'client was rejected before greeting: "AUTH PLAIN...__"',
    );
    assert.equal(
      log(`AUTH LOGIN\r\n${b64("user")}\r\n${b64("secret")}\r\n`),
      'client was rejected before greeting: "AUTH LOGIN__..."',
    );
    assert.equal(
      log(`EHLO x\r\nAUTH PLAIN ${ir}\r\n`),
      'client was rejected before greeting: "EHLO x__..."',
    );
  });

  test("control bytes escaped, capped at 64 bytes", () => {
    assert.equal(
      log('HELO "a\x01"\r\n'),
      'client was rejected before greeting: "HELO \\x22a\\x01\\x22__"',
    );
    const long = log("HELO " + "h".repeat(300));
    assert.equal(long, `client was rejected before greeting: "HELO ${"h".repeat(59)}..."`);
    const bigBurst = logRejectedBeforeGreeting(new Uint8Array(100_000).fill(0x41));
    assert.equal(bigBurst, `client was rejected before greeting: "${"A".repeat(64)}..."`);
  });
});
