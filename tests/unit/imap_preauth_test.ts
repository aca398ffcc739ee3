import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type { Credentials, PreauthMachine } from "../../lib/core/machine.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { refuse } from "../helpers/drive_machine.ts";
import { createImapPreauth } from "../../lib/imap/preauth.ts";

// ---- test driver ---------------------------------------------------------

/** Bound on next() calls per run (every loop in a test is bounded). */
const MAX_NEXT = 100_000;

function config(o: Partial<ServerConfig> = {}): ServerConfig {
  return {
    imapAuth: ["plain"],
    imapCapabilities: ["IMAP4", "IMAP4rev1", "UIDPLUS"],
    imapClientBuffer: 4096,
    starttls: "off",
    maxErrors: 5,
    proxyBuffer: 4096,
    proxyPassErrorMessage: false,
    serverName: "localhost",
    ...o,
  } as ServerConfig;
}

const SALT = "<1234567.1700000000@localhost>";

function machine(o: Partial<ServerConfig> = {}, tls = false) {
  let saltCalls = 0;
  const m = createImapPreauth({
    config: config(o),
    tls,
    makeSalt: () => {
      saltCalls++;
      return SALT;
    },
  });
  return { m, saltCalls: () => saltCalls };
}

/** The auth service: a refusal message, or null to accept (hand-over). */
type AuthFn = (c: Credentials) => string | null;

interface Run {
  /** Every step, rendered: "S: <bytes>", "CLOSE", "STARTTLS", "AUTH ...", "LOG <level> <msg>". */
  events: string[];
  /** All bytes sent to the client. */
  out: string;
  /** After a hand-over: takeInput() plus the chunks not yet pushed. */
  rest: string | null;
  closed: boolean;
}

function renderCreds(c: Credentials): string {
  return `AUTH ${c.method} user=${JSON.stringify(c.user)} pass=${
    JSON.stringify(c.pass)
  } salt=${c.salt} tag=${c.tag}`;
}

/**
 * Drives a machine like the session driver: push a chunk, call next() until
 * it returns [] (or the machine closes / hands over), then push the next.
 * An auth step is answered at once by `auth`.
 */
function drive(m: PreauthMachine, chunks: string[], auth: AuthFn = () => "denied"): Run {
  const run: Run = { events: [], out: "", rest: null, closed: false };
  let calls = 0;
  for (let i = 0; i < chunks.length; i++) {
    m.push(binaryToBytes(chunks[i]));
    for (;;) {
      assert.ok(++calls < MAX_NEXT, "machine did not settle");
      const steps = m.next();
      if (steps.length === 0) break;
      for (const s of steps) {
        switch (s.kind) {
          case "send": {
            const text = bytesToBinary(s.data);
            run.events.push("S: " + text);
            run.out += text;
            break;
          }
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
            const line = bytesToBinary(refuse(m, refusal, null));
            run.events.push("S: " + line);
            run.out += line;
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

const ok = (tag: string) => `S: ${tag} OK completed\r\n`;
const bad = (tag: string) => `S: ${tag} BAD invalid command\r\n`;
const CAP_DEFAULT = "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n";

// ---- tests -----------------------------------------------------------------

describe("greeting and simple commands", () => {
  test("greeting is '* OK IMAP4 ready'", () => {
    assert.equal(bytesToBinary(machine().m.greeting()), "* OK IMAP4 ready\r\n");
  });

  test("NOOP, CAPABILITY, LOGOUT; arguments ignored", () => {
    const { m } = machine();
    assert.deepEqual(
      events(m, "a1 NOOP\r\n", "a2 CAPABILITY x y\r\n", "a3 logout please\r\n", "a4 NOOP\r\n"),
      [
        ok("a1"),
        "S: " + CAP_DEFAULT + "a2 OK completed\r\n",
        "S: * BYE\r\na3 OK completed\r\n",
        "CLOSE",
      ],
    );
    assert.deepEqual(m.next(), [], "nothing after close");
  });

  test("empty tag: the reply starts with the space", () => {
    assert.deepEqual(events(machine().m, " NOOP\r\n", " FOO\r\n"), [ok(""), bad("")]);
  });

  test("no tag parsed: '* BAD invalid command'", () => {
    assert.deepEqual(events(machine().m, "\r\n", "*\r\n", "x".repeat(33) + " NOOP\r\n"), [
      bad("*"),
      bad("*"),
      bad("*"),
    ]);
  });

  test("one command per next(), strictly in order", () => {
    const { m } = machine();
    m.push(binaryToBytes("a NOOP\r\nb FOO\r\nc NOOP\r\n"));
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("a OK completed\r\n") }]);
    assert.deepEqual(m.next(), [{
      kind: "send",
      data: binaryToBytes("b BAD invalid command\r\n"),
    }]);
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("c OK completed\r\n") }]);
    assert.deepEqual(m.next(), []);
  });
});

describe("CAPABILITY lists (imap.md §5)", () => {
  const cap = (o: Partial<ServerConfig>, tls = false) => {
    const r = drive(machine(o, tls).m, ["a CAPABILITY\r\n"]);
    return r.out.split("\r\n")[0];
  };
  test("defaults, custom capabilities", () => {
    assert.equal(cap({}), "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN");
    assert.equal(cap({ imapCapabilities: ["SEE-THIS"] }), "* CAPABILITY SEE-THIS AUTH=PLAIN");
    assert.equal(cap({ imapCapabilities: [], imapAuth: [] }), "* CAPABILITY");
  });
  test("AUTH= words in fixed order", () => {
    assert.equal(
      cap({ imapAuth: ["external", "cram-md5", "login", "plain"] }),
      "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=EXTERNAL",
    );
    assert.equal(
      cap({ imapAuth: ["cram-md5"] }),
      "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=CRAM-MD5",
    );
  });
  test("by starttls mode and TLS state", () => {
    assert.equal(
      cap({ starttls: "on" }),
      "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN STARTTLS",
    );
    assert.equal(
      cap({ starttls: "only" }),
      "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS STARTTLS LOGINDISABLED",
    );
    assert.equal(cap({ starttls: "on" }, true), "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN");
    assert.equal(
      cap({ starttls: "only" }, true),
      "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN",
    );
    assert.equal(cap({ starttls: "off" }, true), "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN");
  });
});

describe("STARTTLS", () => {
  test("on: OK, pipelined input dropped, starttls step, then the TLS capability list", () => {
    const { m } = machine({ starttls: "on" });
    assert.deepEqual(events(m, "a STARTTLS\r\nb LOGIN injected x\r\n", "c CAPABILITY\r\n"), [
      ok("a"),
      "STARTTLS",
      "S: " + CAP_DEFAULT + "c OK completed\r\n",
    ]);
  });
  test("a partial line after STARTTLS is dropped too", () => {
    const { m } = machine({ starttls: "only" });
    assert.deepEqual(events(m, "a STARTTLS\r\nb LOG", "c NOOP\r\n"), [
      ok("a"),
      "STARTTLS",
      ok("c"),
    ]);
  });
  test("off or already TLS: BAD, not counted", () => {
    assert.deepEqual(events(machine({ maxErrors: 1 }).m, "a STARTTLS\r\n", "b NOOP\r\n"), [
      bad("a"),
      ok("b"),
    ]);
    assert.deepEqual(
      events(machine({ starttls: "on", maxErrors: 1 }, true).m, "a STARTTLS\r\n", "b NOOP\r\n"),
      [bad("a"), ok("b")],
    );
    const { m } = machine({ starttls: "on", maxErrors: 1 });
    assert.deepEqual(events(m, "a STARTTLS\r\n", "b STARTTLS\r\n", "c NOOP\r\n"), [
      ok("a"),
      "STARTTLS",
      bad("b"),
      ok("c"),
    ]);
  });
  test("starttls only refuses LOGIN and AUTHENTICATE without TLS, allows them after", () => {
    const { m } = machine({ starttls: "only", maxErrors: 1 });
    assert.deepEqual(
      events(
        m,
        "a LOGIN u p\r\n",
        "b AUTHENTICATE LOGIN\r\n",
        "c AUTHENTICATE PLAIN AHUAcA==\r\n",
        "d STARTTLS\r\n",
        "e LOGIN u p\r\n",
      ),
      [
        bad("a"),
        bad("b"),
        bad("c"),
        ok("d"),
        "STARTTLS",
        'AUTH plain user="u" pass="p" salt=null tag=e',
        "S: e NO denied\r\n",
      ],
    );
  });
});

describe("LOGIN", () => {
  test("exactly two arguments and a non-empty user; BAD not counted", () => {
    const { m } = machine({ maxErrors: 1 });
    assert.deepEqual(
      events(
        m,
        "a01 LOGIN\r\n",
        "a LOGIN u\r\n",
        "b LOGIN u p x\r\n",
        'c LOGIN "" p\r\n',
        "d LOGIN {0}\r\n p\r\n",
        "e NOOP\r\n",
      ),
      [
        bad("a01"),
        bad("a"),
        bad("b"),
        bad("c"),
        "S: + OK\r\n",
        bad("d"),
        ok("e"),
      ],
    );
  });
  test("credentials go to auth as method plain, empty password allowed", () => {
    assert.deepEqual(events(machine().m, 'a LOGIN bob ""\r\n'), [
      'AUTH plain user="bob" pass="" salt=null tag=a',
      "S: a NO denied\r\n",
    ]);
  });
  test("quoted, literal and binary values", () => {
    const r = drive(machine().m, ['a LOGIN {4+}\r\n\xc3\xa9\x00\xff "p\\\\w"\r\n']);
    assert.deepEqual(
      r.events[0],
      `AUTH plain user=${JSON.stringify("\xc3\xa9\x00\xff")} pass="p\\\\w" salt=null tag=a`,
    );
  });
});

describe("authRefused and hand-over", () => {
  test("NO with the message, then the session continues in the initial state", () => {
    const { m } = machine();
    m.push(binaryToBytes("a02 LOGIN test@example.com wrong\r\na03 NOOP\r\n"));
    const steps = m.next();
    assert.equal(steps.length, 1);
    assert.equal(steps[0].kind, "auth");
    assert.deepEqual(m.next(), [], "suspended while the auth request runs");
    assert.equal(
      bytesToBinary(refuse(m, "Invalid login or password", null)),
      "a02 NO Invalid login or password\r\n",
    );
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("a03 OK completed\r\n") }]);
  });
  test("the refusal message (a binary string from the auth server) goes out byte for byte", () => {
    const { m } = machine();
    drive(m, ["t LOGIN a b\r\n"], () => null);
    assert.deepEqual([...refuse(m, "\xc3\xa9", null)], [
      0x74,
      0x20,
      0x4e,
      0x4f,
      0x20,
      0xc3,
      0xa9,
      0x0d,
      0x0a,
    ]);
  });
  test("pipelined commands after the credentials are kept for the backend", () => {
    const r = drive(
      machine().m,
      ["a01 LOGIN test@example.com secret\r\na02 LOGOUT\r\n"],
      () => null,
    );
    assert.deepEqual(r.events, [
      'AUTH plain user="test@example.com" pass="secret" salt=null tag=a01',
    ]);
    assert.equal(r.rest, "a02 LOGOUT\r\n");
  });
  test("takeInput empties the buffer", () => {
    const { m } = machine();
    m.push(binaryToBytes("a LOGIN u p\r\nb NOOP"));
    assert.equal(m.next()[0].kind, "auth");
    assert.equal(bytesToBinary(m.takeInput()), "b NOOP");
    assert.equal(m.takeInput().length, 0);
  });
});

describe("AUTHENTICATE (imap.md §5 table)", () => {
  const all = { imapAuth: ["plain", "login", "cram-md5", "external"] } as Partial<ServerConfig>;
  const plain = encodeBase64("\0test@example.com\0secret");

  test("no mechanism, unknown mechanism, wrong argument counts: BAD, not counted", () => {
    const { m } = machine({ ...all, maxErrors: 1 });
    assert.deepEqual(
      events(
        m,
        "1 AUTHENTICATE\r\n",
        "2 AUTHENTICATE DIGEST-MD5\r\n",
        "3 AUTHENTICATE PLAIN a b\r\n",
        "4 AUTHENTICATE LOGIN a b\r\n",
        "5 AUTHENTICATE CRAM-MD5 x\r\n",
        "6 AUTHENTICATE EXTERNAL a b\r\n",
        "7 NOOP\r\n",
      ),
      [bad("1"), bad("2"), bad("3"), bad("4"), bad("5"), bad("6"), ok("7")],
    );
  });

  test("PLAIN with initial response, case-insensitive mechanism", () => {
    assert.deepEqual(events(machine().m, `a AUTHENTICATE plain ${plain}\r\n`), [
      'AUTH plain user="test@example.com" pass="secret" salt=null tag=a',
      "S: a NO denied\r\n",
    ]);
  });

  test("PLAIN without initial response: '+ ' then the response line", () => {
    assert.deepEqual(events(machine().m, "a AUTHENTICATE PLAIN\r\n", `${plain}\r\n`), [
      "S: + \r\n",
      'AUTH plain user="test@example.com" pass="secret" salt=null tag=a',
      "S: a NO denied\r\n",
    ]);
  });

  test("PLAIN wrong then right on the same connection", () => {
    const wrong = encodeBase64("\0test@example.com\0bad");
    const r = drive(machine().m, [
      `a1 AUTHENTICATE PLAIN ${wrong}\r\n`,
      `a2 AUTHENTICATE PLAIN ${plain}\r\n`,
    ], (c) => (c.pass === "secret" ? null : "wrong"));
    assert.deepEqual(r.events, [
      'AUTH plain user="test@example.com" pass="bad" salt=null tag=a1',
      "S: a1 NO wrong\r\n",
      'AUTH plain user="test@example.com" pass="secret" salt=null tag=a2',
    ]);
  });

  test("LOGIN: username and password challenges; reported as plain", () => {
    assert.deepEqual(
      events(
        machine().m,
        "a AUTHENTICATE LOGIN\r\n",
        "dGVzdEBleGFtcGxlLmNvbQ==\r\n",
        "c2VjcmV0\r\n",
      ),
      [
        "S: + VXNlcm5hbWU6\r\n",
        "S: + UGFzc3dvcmQ6\r\n",
        'AUTH plain user="test@example.com" pass="secret" salt=null tag=a',
        "S: a NO denied\r\n",
      ],
    );
  });

  test("LOGIN with initial response goes straight to the password", () => {
    assert.deepEqual(
      events(machine().m, "a AUTHENTICATE LOGIN dGVzdEBleGFtcGxlLmNvbQ==\r\n", "c2VjcmV0\r\n"),
      [
        "S: + UGFzc3dvcmQ6\r\n",
        'AUTH plain user="test@example.com" pass="secret" salt=null tag=a',
        "S: a NO denied\r\n",
      ],
    );
  });

  test("LOGIN exchange pipelined in one packet", () => {
    assert.deepEqual(events(machine().m, "a AUTHENTICATE LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\n"), [
      "S: + VXNlcm5hbWU6\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      'AUTH plain user="user" pass="pass" salt=null tag=a',
      "S: a NO denied\r\n",
    ]);
  });

  test("CRAM-MD5: challenge is base64 of the salt; salt made once per session", () => {
    const { m, saltCalls } = machine(all);
    const resp = encodeBase64("test@example.com " + "0".repeat(32));
    const challenge = `S: + ${encodeBase64(SALT)}\r\n`;
    assert.deepEqual(
      events(
        m,
        "a AUTHENTICATE CRAM-MD5\r\n",
        resp + "\r\n",
        "b AUTHENTICATE CRAM-MD5\r\n",
        "*\r\n",
      ),
      [
        challenge,
        `AUTH cram-md5 user="test@example.com" pass="${"0".repeat(32)}" salt=${SALT} tag=a`,
        "S: a NO denied\r\n",
        challenge,
        bad("b"),
      ],
    );
    assert.equal(saltCalls(), 1);
  });

  test("CRAM-MD5 not enabled: BAD, no salt made", () => {
    const { m, saltCalls } = machine();
    assert.deepEqual(events(m, "a AUTHENTICATE CRAM-MD5\r\n"), [bad("a")]);
    assert.equal(saltCalls(), 0);
  });

  test("CRAM-MD5 bad digest length: BAD with log", () => {
    assert.deepEqual(
      events(machine(all).m, "a AUTHENTICATE CRAM-MD5\r\n", encodeBase64("u 00") + "\r\n"),
      [
        `S: + ${encodeBase64(SALT)}\r\n`,
        "LOG info client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command",
        bad("a"),
      ],
    );
  });

  test("EXTERNAL: username challenge; identity may be empty; Auth-Pass empty", () => {
    assert.deepEqual(
      events(machine(all).m, "a AUTHENTICATE EXTERNAL\r\n", "dGVzdEBleGFtcGxlLmNvbQ==\r\n"),
      [
        "S: + VXNlcm5hbWU6\r\n",
        'AUTH external user="test@example.com" pass="" salt=null tag=a',
        "S: a NO denied\r\n",
      ],
    );
    assert.deepEqual(events(machine(all).m, "a AUTHENTICATE EXTERNAL\r\n", "\r\n"), [
      "S: + VXNlcm5hbWU6\r\n",
      'AUTH external user="" pass="" salt=null tag=a',
      "S: a NO denied\r\n",
    ]);
  });

  test("EXTERNAL with initial response: no challenge", () => {
    assert.deepEqual(
      events(machine(all).m, "a AUTHENTICATE EXTERNAL dGVzdEBleGFtcGxlLmNvbQ==\r\n"),
      [
        'AUTH external user="test@example.com" pass="" salt=null tag=a',
        "S: a NO denied\r\n",
      ],
    );
  });

  test("EXTERNAL not enabled: refused with and without initial response", () => {
    assert.deepEqual(
      events(machine().m, "a AUTHENTICATE EXTERNAL\r\n", "b AUTHENTICATE EXTERNAL dGVzdA==\r\n"),
      [bad("a"), bad("b")],
    );
  });

  test("decoding errors: tagged BAD with log, back to initial state, not counted", () => {
    const { m } = machine({ maxErrors: 1 });
    assert.deepEqual(
      events(
        m,
        "a AUTHENTICATE PLAIN %%%\r\n",
        "b AUTHENTICATE PLAIN\r\n",
        "dGVzdA==\r\n",
        "c AUTHENTICATE LOGIN\r\n",
        "!!\r\n",
        "d AUTHENTICATE LOGIN dXNlcg==\r\n",
        "x\r\n",
        "e NOOP\r\n",
      ),
      [
        "LOG info client sent invalid base64 encoding in AUTH PLAIN command",
        bad("a"),
        "S: + \r\n",
        "LOG info client sent invalid login in AUTH PLAIN command",
        bad("b"),
        "S: + VXNlcm5hbWU6\r\n",
        "LOG info client sent invalid base64 encoding in AUTH LOGIN command",
        bad("c"), // product: tagged, also in the user-name step
        "S: + UGFzc3dvcmQ6\r\n",
        "LOG info client sent invalid base64 encoding in AUTH LOGIN command",
        bad("d"),
        ok("e"),
      ],
    );
  });

  test("'*' cancels at every step: tagged BAD, no auth, not counted", () => {
    const { m } = machine({ ...all, maxErrors: 1 });
    assert.deepEqual(
      events(
        m,
        "a AUTHENTICATE PLAIN\r\n",
        "*\r\n",
        "b AUTHENTICATE LOGIN\r\n",
        "*\n",
        "c AUTHENTICATE LOGIN dXNlcg==\r\n",
        "*\r\n",
        "d AUTHENTICATE EXTERNAL\r\n",
        "*\r\n",
        "e NOOP\r\n",
      ),
      [
        "S: + \r\n",
        bad("a"),
        "S: + VXNlcm5hbWU6\r\n",
        bad("b"),
        "S: + UGFzc3dvcmQ6\r\n",
        bad("c"),
        "S: + VXNlcm5hbWU6\r\n",
        bad("d"),
        ok("e"),
      ],
    );
  });

  test('a quoted "*" is not a cancel but a decoding error', () => {
    assert.deepEqual(events(machine().m, "a AUTHENTICATE PLAIN\r\n", '"*"\r\n'), [
      "S: + \r\n",
      "LOG info client sent invalid base64 encoding in AUTH PLAIN command",
      bad("a"),
    ]);
  });

  test("response line: first word used; more than 3 words is invalid and counted", () => {
    assert.deepEqual(
      events(machine().m, "a AUTHENTICATE LOGIN\r\n", "dXNlcg== x y\r\n", "cGFzcw==\r\n"),
      [
        "S: + VXNlcm5hbWU6\r\n",
        "S: + UGFzc3dvcmQ6\r\n",
        'AUTH plain user="user" pass="pass" salt=null tag=a',
        "S: a NO denied\r\n",
      ],
    );
    const { m } = machine({ maxErrors: 2 });
    assert.deepEqual(
      events(m, "a AUTHENTICATE PLAIN\r\n", "w x y z\r\n", "b NOOP\r\n", "c FOO\r\n", "d NOOP\r\n"),
      [
        "S: + \r\n",
        bad("a"),
        ok("b"),
        "LOG info client sent too many invalid commands",
        bad("c"),
        "CLOSE",
      ],
    );
  });

  test("a response line may be a literal", () => {
    assert.deepEqual(
      events(machine().m, "a AUTHENTICATE PLAIN\r\n", `{${plain.length}}\r\n`, plain + "\r\n"),
      [
        "S: + \r\n",
        "S: + OK\r\n",
        'AUTH plain user="test@example.com" pass="secret" salt=null tag=a',
        "S: a NO denied\r\n",
      ],
    );
  });
});

describe("invalid lines and max_errors (imap.md §2.1, mail_max_errors.t)", () => {
  test("unknown commands one at a time: two replies, then close", () => {
    const { m } = machine({ maxErrors: 2 });
    const r = drive(m, ["a01 FOOBAR\r\n", "a02 FOOBAR\r\n", "a03 FOOBAR\r\n"]);
    assert.deepEqual(r.events, [
      bad("a01"),
      "LOG info client sent too many invalid commands",
      bad("a02"),
      "CLOSE",
    ]);
  });
  test("the same pipelined in one packet", () => {
    const r = drive(machine({ maxErrors: 2 }).m, ["a01 FOOBAR\r\na02 FOOBAR\r\na03 FOOBAR\r\n"]);
    assert.equal(r.out, "a01 BAD invalid command\r\na02 BAD invalid command\r\n");
    assert.equal(r.closed, true);
  });
  test("pipelined invalid command with arguments, then NOOP (mail_imap.t)", () => {
    assert.equal(
      drive(machine().m, ["a01 INVALID COMMAND WITH ARGUMENTS\r\na02 NOOP\r\n"]).out,
      "a01 BAD invalid command\r\na02 OK completed\r\n",
    );
  });
  test("invalid line ending in {n+}: BAD then close; the literal is never executed", () => {
    const r = drive(machine().m, ["a03 FOOBAR {10+}\r\ntest test \r\na04 NOOP\r\n"]);
    assert.deepEqual(r.events, [bad("a03"), "CLOSE"]);
  });
  test("errors persist across commands and auth attempts", () => {
    const r = drive(machine({ maxErrors: 3 }).m, [
      "a X\r\n",
      "b LOGIN u p\r\n",
      "c X\r\n",
      "d NOOP\r\n",
      "e X\r\n",
    ]);
    assert.deepEqual(r.events, [
      bad("a"),
      'AUTH plain user="u" pass="p" salt=null tag=b',
      "S: b NO denied\r\n",
      bad("c"),
      ok("d"),
      "LOG info client sent too many invalid commands",
      bad("e"),
      "CLOSE",
    ]);
  });
});

describe("too long (imap.md §2.2)", () => {
  test("BAD with the tag, info log, close; not counted", () => {
    const long = "a1 LOGIN " + "x".repeat(100);
    const r = drive(machine({ imapClientBuffer: 64, maxErrors: 1 }).m, [long]);
    assert.deepEqual(r.events, [
      // the password never reaches the log: tag and command word only
      `LOG info client sent too long command "a1 LOGIN..."`,
      bad("a1"),
      "CLOSE",
    ]);
  });
  test("no tag yet: '*'", () => {
    const r = drive(machine({ imapClientBuffer: 64 }).m, ["y".repeat(70)]);
    assert.deepEqual(r.events.slice(1), [bad("*"), "CLOSE"]);
  });
  test("literal too large: no continuation", () => {
    const r = drive(machine({ imapClientBuffer: 64 }).m, ["a LOGIN {100}\r\n"]);
    assert.deepEqual(r.events, [
      'LOG info client sent too long command "a LOGIN..."',
      bad("a"),
      "CLOSE",
    ]);
  });
  test("too long inside a SASL exchange uses the AUTHENTICATE tag", () => {
    const r = drive(machine({ imapClientBuffer: 64 }).m, [
      "t AUTHENTICATE PLAIN\r\n",
      "A".repeat(80),
    ]);
    assert.deepEqual(r.events.slice(0, 1), ["S: + \r\n"]);
    assert.deepEqual(r.events.slice(2), [bad("t"), "CLOSE"]);
  });
  test("many short pipelined commands are fine (consumed bytes are discarded)", () => {
    const r = drive(machine({ imapClientBuffer: 64 }).m, ["a NOOP\r\n".repeat(100)]);
    assert.equal(r.out, "a OK completed\r\n".repeat(100));
  });
  test("input beyond the held-bytes bound closes the session", () => {
    const { m } = machine({ imapClientBuffer: 64 });
    m.push(new Uint8Array((1 << 20) + 64)); // fills cap + slack exactly
    m.push(new Uint8Array(1));
    const steps = m.next();
    assert.deepEqual(steps.map((s) => s.kind), ["log", "send", "close"]);
  });
});

describe("mail_imap.t items", () => {
  test("LOGIN with unescaped quoted strings", () => {
    const r = drive(
      machine().m,
      ['a01 LOGIN "te\\\\\\"st@example.com" "se\\\\\\"cret"\r\n'],
      () => null,
    );
    assert.deepEqual(r.events, [
      'AUTH plain user="te\\\\\\"st@example.com" pass="se\\\\\\"cret" salt=null tag=a01',
    ]);
  });
  test("synchronising literals: continuation for each, bytes verbatim", () => {
    const r = drive(machine().m, [
      "a01 LOGIN {18}\r\n",
      'te\\"st@example.com {8}\r\n',
      'se\\"cret\r\n',
    ], () => null);
    assert.deepEqual(r.events, [
      "S: + OK\r\n",
      "S: + OK\r\n",
      'AUTH plain user="te\\\\\\"st@example.com" pass="se\\\\\\"cret" salt=null tag=a01',
    ]);
  });
  test("non-synchronising literals in one packet: no continuations", () => {
    const r = drive(
      machine().m,
      ['a01 LOGIN {18+}\r\nte\\"st@example.com {8+}\r\nse\\"cret\r\n'],
      () => null,
    );
    assert.deepEqual(r.events, [
      'AUTH plain user="te\\\\\\"st@example.com" pass="se\\\\\\"cret" salt=null tag=a01',
    ]);
  });
  test("a literal with a backslash, then a quoted string", () => {
    const r = drive(
      machine().m,
      ['a01 LOGIN {18+}\r\nte\\"st@example.com "se\\\\\\"cret"\r\n'],
      () => null,
    );
    assert.deepEqual(r.events, [
      'AUTH plain user="te\\\\\\"st@example.com" pass="se\\\\\\"cret" salt=null tag=a01',
    ]);
  });
  test("LOGIN wrong, then right, on the same connection", () => {
    const r = drive(machine().m, [
      "a01 LOGIN\r\n",
      "a02 LOGIN test@example.com bad\r\n",
      "a03 LOGIN test@example.com secret\r\n",
    ], (c) => (c.pass === "secret" ? null : "auth failed"));
    assert.deepEqual(r.events, [
      bad("a01"),
      'AUTH plain user="test@example.com" pass="bad" salt=null tag=a02',
      "S: a02 NO auth failed\r\n",
      'AUTH plain user="test@example.com" pass="secret" salt=null tag=a03',
    ]);
  });
});

describe("imap.md §9 example", () => {
  test("transcript", () => {
    const { m } = machine();
    assert.equal(bytesToBinary(m.greeting()), "* OK IMAP4 ready\r\n");
    const r = drive(m, [
      "a1 CAPABILITY\r\n",
      "a2 LOGIN {16}\r\n",
      "test@example.com {6}\r\n",
      "secret\r\n",
    ], () => null);
    assert.deepEqual(r.events, [
      "S: * CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\na1 OK completed\r\n",
      "S: + OK\r\n",
      "S: + OK\r\n",
      'AUTH plain user="test@example.com" pass="secret" salt=null tag=a2',
    ]);
    assert.equal(r.rest, "");
  });
});

describe("chunking does not matter", () => {
  const cramResp = encodeBase64("user " + "0".repeat(32));
  const transcript = [
    "a1 CAPABILITY\r\n",
    'a2 noop extra "args"\r\n',
    'a3 LOGIN {4}\r\nuser "pa\\"ss"\r\n',
    'a4 LOGIN "qu ote" {5+}\r\nse\r\nt\r\n',
    "a5 AUTHENTICATE LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\n",
    "a6 AUTHENTICATE PLAIN\r\n{16}\r\nAHVzZXIAcGFzcw==\r\n",
    `a7 authenticate cram-md5\r\n${cramResp}\r\n`,
    "a8 AUTHENTICATE LOGIN dXNlcg\n*\n",
    "a9 LOGIN {0}\r\n {3}\r\nabc\r\n",
    " NOOP\r\n",
    "a10 LOGIN bob {2+}\r\npw\r\nb1 NOOP\r\nb2 LOGOUT\r\n",
  ].join("");
  const opts = { imapAuth: ["plain", "login", "cram-md5"] } as Partial<ServerConfig>;
  const auth: AuthFn = (c) => (c.user === "bob" ? null : "bad credentials");
  const run = (chunks: string[]) => drive(machine(opts).m, chunks, auth);

  test("the whole transcript at once", () => {
    const r = run([transcript]);
    assert.deepEqual(r.events, [
      "S: * CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5\r\na1 OK completed\r\n",
      ok("a2"),
      "S: + OK\r\n",
      'AUTH plain user="user" pass="pa\\"ss" salt=null tag=a3',
      "S: a3 NO bad credentials\r\n",
      'AUTH plain user="qu ote" pass="se\\r\\nt" salt=null tag=a4',
      "S: a4 NO bad credentials\r\n",
      "S: + VXNlcm5hbWU6\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      'AUTH plain user="user" pass="pass" salt=null tag=a5',
      "S: a5 NO bad credentials\r\n",
      "S: + \r\n",
      "S: + OK\r\n",
      'AUTH plain user="user" pass="pass" salt=null tag=a6',
      "S: a6 NO bad credentials\r\n",
      `S: + ${encodeBase64(SALT)}\r\n`,
      `AUTH cram-md5 user="user" pass="${"0".repeat(32)}" salt=${SALT} tag=a7`,
      "S: a7 NO bad credentials\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      bad("a8"),
      "S: + OK\r\n",
      "S: + OK\r\n",
      bad("a9"),
      ok(""),
      'AUTH plain user="bob" pass="pw" salt=null tag=a10',
    ]);
    assert.equal(r.rest, "b1 NOOP\r\nb2 LOGOUT\r\n");
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
