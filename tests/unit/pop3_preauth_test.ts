import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { createPop3Preauth } from "../../lib/pop3/preauth.ts";
import { POP3_INTERNAL_ERROR } from "../../lib/pop3/replies.ts";
import { type AuthFn, drive, events, refuse } from "../helpers/drive_machine.ts";

function config(o: Partial<ServerConfig> = {}): ServerConfig {
  return {
    pop3Auth: ["plain"],
    pop3Capabilities: ["TOP", "USER", "UIDL"],
    starttls: "off",
    maxErrors: 5,
    proxyBuffer: 4096,
    proxyPassErrorMessage: false,
    serverName: "localhost",
    ...o,
  } as ServerConfig;
}

const SALT = "<1896345274.1714561234@localhost>";

function machine(o: Partial<ServerConfig> = {}, tls = false) {
  let saltCalls = 0;
  const m = createPop3Preauth({
    config: config(o),
    tls,
    makeSalt: () => {
      saltCalls++;
      return SALT;
    },
  });
  return { m, saltCalls: () => saltCalls };
}

/** A fresh machine with `o`, driven with one chunk per argument. */
function ev(o: Partial<ServerConfig>, ...chunks: string[]): string[] {
  return events(machine(o).m, ...chunks);
}

const OK = "S: +OK\r\n";
const ERR = "S: -ERR invalid command\r\n";
const TOO_MANY = "LOG info client sent too many invalid commands";
const ALL = { pop3Auth: ["plain", "apop", "cram-md5", "external"] } as Partial<ServerConfig>;
const CAPA_FULL = "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n.\r\n";
const CAPA_STLS =
  "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n";
const CAPA_ONLY = "+OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n";
const PLAIN_IR = encodeBase64("\0test@example.com\0secret");
const auth = (user: string, pass: string, method = "plain", salt: string | null = null) =>
  `AUTH ${method} user=${JSON.stringify(user)} pass=${JSON.stringify(pass)} salt=${salt}`;

// ---- §1 ------------------------------------------------------------------

describe("greeting (pop3.md §1)", () => {
  test("plain: no salt, none made", () => {
    const { m, saltCalls } = machine();
    assert.equal(bytesToBinary(m.greeting()), "+OK POP3 ready\r\n");
    assert.equal(saltCalls(), 0);
  });
  test("apop or cram-md5 enabled: the salt after one space, made once", () => {
    for (const pop3Auth of [["plain", "apop"], ["cram-md5"], ["apop", "cram-md5"]]) {
      const { m, saltCalls } = machine({ pop3Auth } as Partial<ServerConfig>);
      assert.equal(bytesToBinary(m.greeting()), `+OK POP3 ready ${SALT}\r\n`, String(pop3Auth));
      assert.equal(saltCalls(), 1);
    }
  });
  test("external alone needs no salt", () => {
    const { m, saltCalls } = machine({ pop3Auth: ["external"] });
    assert.equal(bytesToBinary(m.greeting()), "+OK POP3 ready\r\n");
    assert.equal(saltCalls(), 0);
  });
  test("the greeting salt is reused for APOP and CRAM-MD5", () => {
    const { m, saltCalls } = machine(ALL);
    m.greeting();
    const r = drive(m, [
      "APOP bob " + "0".repeat(32) + "\r\n",
      "AUTH CRAM-MD5\r\n",
      encodeBase64("bob " + "1".repeat(32)) + "\r\n",
    ]);
    assert.deepEqual(r.events, [
      auth("bob", "0".repeat(32), "apop", SALT),
      "S: -ERR denied\r\n",
      `S: + ${encodeBase64(SALT)}\r\n`,
      auth("bob", "1".repeat(32), "cram-md5", SALT),
      "S: -ERR denied\r\n",
    ]);
    assert.equal(saltCalls(), 1);
  });
});

// ---- §2, §3 ------------------------------------------------------------------

describe("command syntax (pop3.md §2)", () => {
  test("the command word is case-insensitive; LF or CRLF", () => {
    assert.deepEqual(ev({}, "noop\r\n", "NoOp\n", "NOOP\r\n"), [OK, OK, OK]);
  });
  test("invalid lines: -ERR each, counted", () => {
    const lines = [
      "STAT",
      "LIST",
      "RETR 1",
      "TOP 1 2",
      "UIDL",
      "RSET",
      "DELE 1",
      "NOOPS",
      "NOO",
      "",
      " NOOP",
      "NO1P",
      "NOOP\tx",
      "N\u00e9OP",
    ];
    const { m } = machine({ maxErrors: 100 });
    assert.deepEqual(events(m, ...lines.map((l) => l + "\r\n")), lines.map(() => ERR));
    const counted = machine({ maxErrors: lines.length }).m;
    const r = drive(counted, [...lines.map((l) => l + "\r\n"), "NOOP\r\n"]);
    assert.deepEqual(r.events.slice(-3), [TOO_MANY, ERR, "CLOSE"]);
  });
  test("a CR not followed by LF makes the line invalid", () => {
    const { m } = machine({ maxErrors: 3 });
    assert.deepEqual(events(m, "NOOP\rx\r\n", "USER a\rb\r\n", "\r\r\n", "NOOP\r\n"), [
      ERR,
      ERR,
      TOO_MANY,
      ERR,
      "CLOSE",
    ]);
  });
  test("up to 3 arguments; a fourth is an invalid line (counted)", () => {
    const { m } = machine({ maxErrors: 1 });
    assert.deepEqual(events(m, "NOOP a b c\r\n", "NOOP a  b   c   \r\n", "NOOP a b c d\r\n"), [
      OK,
      OK,
      TOO_MANY,
      ERR,
      "CLOSE",
    ]);
  });
  test("USER/PASS: one argument from the first non-space to the end, spaces kept", () => {
    assert.deepEqual(ev({}, "USER  john  smith \r\n", "PASS   my pass a b c d \r\n"), [
      OK,
      auth("john  smith ", "my pass a b c d "),
      "S: -ERR denied\r\n",
    ]);
  });
  test("arguments are bytes: binary values survive", () => {
    assert.deepEqual(ev({}, "USER \xc3\xa9\x00\xff\r\n", "PASS \t\x01\n"), [
      OK,
      auth("\xc3\xa9\x00\xff", "\t\x01"),
      "S: -ERR denied\r\n",
    ]);
  });
  test("one command per next(), strictly in order", () => {
    const { m } = machine();
    m.push(binaryToBytes("NOOP\r\nFOO\r\nNOOP\r\n"));
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("+OK\r\n") }]);
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("-ERR invalid command\r\n") }]);
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("+OK\r\n") }]);
    assert.deepEqual(m.next(), []);
  });
});

// ---- §4 ----------------------------------------------------------------------

describe("initial state (pop3.md §4)", () => {
  test("NOOP, then QUIT: +OK and close; nothing after close", () => {
    const { m } = machine();
    assert.deepEqual(events(m, "NOOP\r\n", "QUIT\r\nNOOP\r\n"), [OK, OK, "CLOSE"]);
    assert.deepEqual(m.next(), []);
  });
  test("USER needs an argument; refusal not counted", () => {
    assert.deepEqual(ev({ maxErrors: 1 }, "USER\r\n", "USER    \r\n", "NOOP\r\n"), [ERR, ERR, OK]);
  });
  test("PASS is not allowed here; not counted", () => {
    assert.deepEqual(ev({ maxErrors: 1 }, "PASS secret\r\n", "NOOP\r\n"), [ERR, OK]);
  });
  test("APOP: exactly two arguments, apop enabled; sends method apop with the salt", () => {
    const digest = "0".repeat(32);
    assert.deepEqual(
      ev(
        { ...ALL, maxErrors: 1 },
        "APOP\r\n",
        "APOP bob\r\n",
        `APOP bob ${digest} x\r\n`,
        `apop test@example.com ${digest}\r\n`,
      ),
      [ERR, ERR, ERR, auth("test@example.com", digest, "apop", SALT), "S: -ERR denied\r\n"],
    );
  });
  test("APOP not enabled: refused, not counted, no salt made", () => {
    const { m, saltCalls } = machine({ maxErrors: 1 });
    assert.deepEqual(events(m, "APOP bob 0123\r\n", "NOOP\r\n"), [ERR, OK]);
    assert.equal(saltCalls(), 0);
  });
});

describe("user state (pop3.md §4)", () => {
  test("USER then PASS sends the auth request (method plain, no salt)", () => {
    const r = drive(machine(ALL).m, ["USER test@example.com\r\n", "PASS secret\r\n"], () => null);
    assert.deepEqual(r.events, [OK, auth("test@example.com", "secret")]);
    assert.equal(r.rest, "");
  });
  test("NOOP keeps the user state", () => {
    assert.deepEqual(ev({}, "USER bob\r\n", "NOOP\r\n", "PASS pw\r\n"), [
      OK,
      OK,
      auth("bob", "pw"),
      "S: -ERR denied\r\n",
    ]);
  });
  test("CAPA: the TLS-active list whatever the TLS state, user state kept", () => {
    assert.deepEqual(
      ev({ starttls: "on" }, "CAPA\r\n", "USER bob\r\n", "CAPA\r\n", "PASS pw\r\n"),
      [
        "S: " + CAPA_STLS,
        OK,
        "S: " + CAPA_FULL,
        auth("bob", "pw"),
        "S: -ERR denied\r\n",
      ],
    );
  });
  test("PASS without argument: -ERR, back to the initial state, not counted", () => {
    assert.deepEqual(
      ev({ maxErrors: 1 }, "USER bob\r\n", "PASS\r\n", "PASS pw\r\n", "NOOP\r\n"),
      [OK, ERR, ERR, OK],
    );
  });
  test("anything else: -ERR, USER forgotten, not counted", () => {
    for (const cmd of ["USER other", "APOP a b", "AUTH", "AUTH PLAIN", "STLS"]) {
      assert.deepEqual(
        ev(
          { ...ALL, starttls: "on", maxErrors: 1 },
          "USER bob\r\n",
          cmd + "\r\n",
          "PASS pw\r\n",
          "NOOP\r\n",
        ),
        [OK, ERR, ERR, OK],
        cmd,
      );
    }
  });
  test("an invalid line in the user state is counted and forgets USER", () => {
    assert.deepEqual(
      ev({ maxErrors: 2 }, "USER bob\r\n", "RETR 1\r\n", "PASS pw\r\n", "XXXX\r\n"),
      [
        OK,
        ERR,
        ERR,
        TOO_MANY,
        ERR,
        "CLOSE",
      ],
    );
  });
  test("QUIT: +OK, close", () => {
    assert.deepEqual(ev({}, "USER bob\r\n", "QUIT\r\n", "PASS pw\r\n"), [OK, OK, "CLOSE"]);
  });
});

// ---- §5, §6 ------------------------------------------------------------------

describe("CAPA (pop3.md §5)", () => {
  const capa = (o: Partial<ServerConfig>, tls = false) =>
    drive(machine(o, tls).m, ["CAPA\r\n"]).out;
  test("defaults", () => {
    assert.equal(capa({}), CAPA_FULL);
  });
  test("custom capabilities in order; SASL names in fixed order; APOP never listed", () => {
    assert.equal(
      capa({
        pop3Capabilities: ["X-ONE", "PIPELINING"],
        pop3Auth: ["external", "apop", "cram-md5", "plain"],
      }),
      "+OK Capability list follows\r\nX-ONE\r\nPIPELINING\r\nSASL PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n.\r\n",
    );
    assert.equal(
      capa({ pop3Capabilities: [], pop3Auth: ["apop"] }),
      "+OK Capability list follows\r\nSASL\r\n.\r\n",
    );
    assert.equal(
      capa({ pop3Auth: ["cram-md5"] }),
      "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL CRAM-MD5\r\n.\r\n",
    );
  });
  test("mail_capability.t: pop3_auth plain apop cram-md5, by starttls mode", () => {
    const pop3Auth = ["plain", "apop", "cram-md5"] as ServerConfig["pop3Auth"];
    const sasl = "SASL PLAIN LOGIN CRAM-MD5";
    const off = capa({ pop3Auth }).split("\r\n");
    assert.equal(off[0], "+OK Capability list follows");
    assert.ok(off.includes("USER") && off.includes(sasl) && !off.includes("STLS"));
    const on = capa({ pop3Auth, starttls: "on" }).split("\r\n");
    assert.ok(on.includes("USER") && on.includes(sasl) && on.includes("STLS"));
    const only = capa({ pop3Auth, starttls: "only" }).split("\r\n");
    assert.ok(!only.includes("USER") && !only.some((l) => l.startsWith("SASL")));
    assert.ok(only.includes("STLS"));
  });
  test("exact lists by starttls mode and TLS state", () => {
    assert.equal(capa({ starttls: "on" }), CAPA_STLS);
    assert.equal(capa({ starttls: "only" }), CAPA_ONLY);
    assert.equal(capa({ starttls: "on" }, true), CAPA_FULL);
    assert.equal(capa({ starttls: "only" }, true), CAPA_FULL);
  });
  test("starttls only drops USER compared case-insensitively", () => {
    assert.equal(
      capa({ starttls: "only", pop3Capabilities: ["user", "TOP", "User"] }),
      "+OK Capability list follows\r\nTOP\r\nSTLS\r\n.\r\n",
    );
  });
});

describe("AUTH without arguments (pop3.md §6)", () => {
  test("default: PLAIN and LOGIN", () => {
    assert.deepEqual(ev({}, "AUTH\r\n"), ["S: +OK methods supported:\r\nPLAIN\r\nLOGIN\r\n.\r\n"]);
  });
  test("mail_pop3.t: every method, in order", () => {
    assert.deepEqual(ev(ALL, "auth\r\n"), [
      "S: +OK methods supported:\r\nPLAIN\r\nLOGIN\r\nCRAM-MD5\r\nEXTERNAL\r\n.\r\n",
    ]);
  });
  test("none enabled: first line and '.'", () => {
    assert.deepEqual(ev({ pop3Auth: ["apop"] }, "AUTH\r\n", "NOOP\r\n"), [
      "S: +OK methods supported:\r\n.\r\n",
      OK,
    ]);
  });
});

// ---- §7 ----------------------------------------------------------------------

describe("SASL (pop3.md §7)", () => {
  test("PLAIN with initial response; mechanism case-insensitive", () => {
    assert.deepEqual(ev({}, `AUTH plain ${PLAIN_IR}\r\n`), [
      auth("test@example.com", "secret"),
      "S: -ERR denied\r\n",
    ]);
  });
  test("PLAIN without initial response: '+ ' then the response line", () => {
    assert.deepEqual(ev({}, "AUTH PLAIN\r\n", PLAIN_IR + "\r\n"), [
      "S: + \r\n",
      auth("test@example.com", "secret"),
      "S: -ERR denied\r\n",
    ]);
  });
  test("mail_pop3.t: AUTH PLAIN wrong, then right on the same connection", () => {
    const wrong = encodeBase64("\0test@example.com\0bad");
    const r = drive(
      machine(ALL).m,
      [`AUTH PLAIN ${wrong}\r\n`, `AUTH PLAIN ${PLAIN_IR}\r\n`],
      (c) => (c.pass === "secret" ? null : "authentication failed"),
    );
    assert.deepEqual(r.events, [
      auth("test@example.com", "bad"),
      "S: -ERR authentication failed\r\n",
      auth("test@example.com", "secret"),
    ]);
  });
  test("LOGIN: user-name and password challenges; reported as plain", () => {
    assert.deepEqual(ev({}, "AUTH LOGIN\r\n", "dGVzdEBleGFtcGxlLmNvbQ==\r\n", "c2VjcmV0\r\n"), [
      "S: + VXNlcm5hbWU6\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      auth("test@example.com", "secret"),
      "S: -ERR denied\r\n",
    ]);
  });
  test("LOGIN with initial response goes straight to the password", () => {
    assert.deepEqual(ev({}, "AUTH LOGIN dGVzdEBleGFtcGxlLmNvbQ==\r\n", "c2VjcmV0\r\n"), [
      "S: + UGFzc3dvcmQ6\r\n",
      auth("test@example.com", "secret"),
      "S: -ERR denied\r\n",
    ]);
  });
  test("CRAM-MD5: base64 of the greeting salt; response is user SP digest", () => {
    const { m } = machine(ALL);
    assert.equal(bytesToBinary(m.greeting()), `+OK POP3 ready ${SALT}\r\n`);
    const digest = "0".repeat(32);
    assert.deepEqual(
      events(m, "AUTH CRAM-MD5\r\n", encodeBase64(`test@example.com ${digest}`) + "\r\n"),
      [
        `S: + ${encodeBase64(SALT)}\r\n`,
        auth("test@example.com", digest, "cram-md5", SALT),
        "S: -ERR denied\r\n",
      ],
    );
  });
  test("CRAM-MD5: no initial response allowed; not enabled: refused, no salt", () => {
    assert.deepEqual(ev({ ...ALL, maxErrors: 1 }, "AUTH CRAM-MD5 abc\r\n", "NOOP\r\n"), [ERR, OK]);
    const { m, saltCalls } = machine({ pop3Auth: ["plain", "external"] });
    assert.deepEqual(events(m, "AUTH CRAM-MD5\r\n"), [ERR]);
    assert.equal(saltCalls(), 0);
  });
  test("EXTERNAL: user-name challenge, identity may be empty, Auth-Pass empty", () => {
    assert.deepEqual(ev(ALL, "AUTH EXTERNAL\r\n", "dGVzdEBleGFtcGxlLmNvbQ==\r\n"), [
      "S: + VXNlcm5hbWU6\r\n",
      auth("test@example.com", "", "external"),
      "S: -ERR denied\r\n",
    ]);
    assert.deepEqual(ev(ALL, "AUTH EXTERNAL\r\n", "\r\n"), [
      "S: + VXNlcm5hbWU6\r\n",
      auth("", "", "external"),
      "S: -ERR denied\r\n",
    ]);
  });
  test("EXTERNAL with initial response: no challenge", () => {
    assert.deepEqual(ev(ALL, "AUTH EXTERNAL dGVzdEBleGFtcGxlLmNvbQ==\r\n"), [
      auth("test@example.com", "", "external"),
      "S: -ERR denied\r\n",
    ]);
  });
  test("product: EXTERNAL not enabled is refused with and without initial response", () => {
    assert.deepEqual(
      ev({ maxErrors: 1 }, "AUTH EXTERNAL\r\n", "AUTH EXTERNAL dGVzdA==\r\n", "NOOP\r\n"),
      [ERR, ERR, OK],
    );
  });
  test("unknown mechanism or wrong argument count: -ERR, not counted", () => {
    assert.deepEqual(
      ev(
        { ...ALL, maxErrors: 1 },
        "AUTH DIGEST-MD5\r\n",
        "AUTH PLAIN a b\r\n",
        "AUTH LOGIN a b\r\n",
        "AUTH EXTERNAL a b\r\n",
        "AUTH APOP\r\n",
        "NOOP\r\n",
      ),
      [ERR, ERR, ERR, ERR, ERR, OK],
    );
  });
  test("decoding errors: info log, -ERR, back to the initial state, not counted", () => {
    assert.deepEqual(
      ev(
        { ...ALL, maxErrors: 1 },
        "AUTH PLAIN %%%\r\n",
        "AUTH PLAIN\r\n",
        "dGVzdA==\r\n",
        "AUTH LOGIN\r\n",
        "!!\r\n",
        "AUTH LOGIN dXNlcg==\r\n",
        "x\r\n",
        "AUTH LOGIN ***\r\n",
        "AUTH CRAM-MD5\r\n",
        encodeBase64("u 00") + "\r\n",
        "AUTH EXTERNAL\r\n",
        "* \r\n",
        "NOOP\r\n",
      ),
      [
        "LOG info client sent invalid base64 encoding in AUTH PLAIN command",
        ERR,
        "S: + \r\n",
        "LOG info client sent invalid login in AUTH PLAIN command",
        ERR,
        "S: + VXNlcm5hbWU6\r\n",
        "LOG info client sent invalid base64 encoding in AUTH LOGIN command",
        ERR,
        "S: + UGFzc3dvcmQ6\r\n",
        "LOG info client sent invalid base64 encoding in AUTH LOGIN command",
        ERR,
        "LOG info client sent invalid base64 encoding in AUTH LOGIN command",
        ERR,
        `S: + ${encodeBase64(SALT)}\r\n`,
        "LOG info client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command",
        ERR,
        "S: + VXNlcm5hbWU6\r\n",
        "LOG info client sent invalid base64 encoding in AUTH EXTERNAL command",
        ERR,
        OK,
      ],
    );
  });
  test("a SASL line is not a command: 'NOOP' answering a challenge is bad base64", () => {
    assert.deepEqual(ev({}, "AUTH LOGIN\r\n", "NOOP\r\n", "NOOP\r\n"), [
      "S: + VXNlcm5hbWU6\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      auth("4\xe3\x8f", "4\xe3\x8f"), // base64 "NOOP" decodes to 34 e3 8f
      "S: -ERR denied\r\n",
    ]);
  });
  test("product: '*' cancels at every step; no auth request, not counted", () => {
    assert.deepEqual(
      ev(
        { ...ALL, maxErrors: 1 },
        "AUTH PLAIN\r\n",
        "*\r\n",
        "AUTH LOGIN\r\n",
        "*\n",
        "AUTH LOGIN dXNlcg==\r\n",
        "*\r\n",
        "AUTH CRAM-MD5\r\n",
        "*\r\n",
        "AUTH EXTERNAL\r\n",
        "*\r\n",
        "NOOP\r\n",
      ),
      [
        "S: + \r\n",
        ERR,
        "S: + VXNlcm5hbWU6\r\n",
        ERR,
        "S: + UGFzc3dvcmQ6\r\n",
        ERR,
        `S: + ${encodeBase64(SALT)}\r\n`,
        ERR,
        "S: + VXNlcm5hbWU6\r\n",
        ERR,
        OK,
      ],
    );
  });
  test("response line: first word used; more than 3 words is an invalid line (counted)", () => {
    assert.deepEqual(ev({}, "AUTH LOGIN\r\n", "dXNlcg== x y\r\n", "cGFzcw==\r\n"), [
      "S: + VXNlcm5hbWU6\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      auth("user", "pass"),
      "S: -ERR denied\r\n",
    ]);
    assert.deepEqual(
      ev(
        { maxErrors: 2 },
        "AUTH PLAIN\r\n",
        "w x y z\r\n",
        "NOOP\r\n",
        "AUTH PLAIN\r\n",
        "a\rb\r\n",
      ),
      ["S: + \r\n", ERR, OK, "S: + \r\n", TOO_MANY, ERR, "CLOSE"],
    );
  });
});

// ---- §8 ------------------------------------------------------------------------

describe("after the auth server answers (pop3.md §8)", () => {
  test("refusal: -ERR <message>, then the initial state (USER forgotten)", () => {
    const { m } = machine({ maxErrors: 1 });
    m.push(binaryToBytes("USER bob\r\nPASS wrong\r\nPASS again\r\nNOOP\r\n"));
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("+OK\r\n") }]);
    const steps = m.next();
    assert.deepEqual(steps, [{
      kind: "auth",
      creds: { method: "plain", user: "bob", pass: "wrong", salt: null },
    }]);
    assert.deepEqual(m.next(), [], "suspended while the auth request runs");
    assert.equal(
      bytesToBinary(refuse(m, "Invalid login or password", null)),
      "-ERR Invalid login or password\r\n",
    );
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("-ERR invalid command\r\n") }]);
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("+OK\r\n") }]);
  });
  test("the refusal message is sent byte for byte", () => {
    const { m } = machine();
    drive(m, ["USER a\r\nPASS b\r\n"], () => null);
    assert.deepEqual([...refuse(m, "\xc3\xa9 \x80", "535 5.7.8")], [
      ...binaryToBytes("-ERR \xc3\xa9 \x80\r\n"),
    ]);
  });
  test("a refusal abandons a SASL exchange state too", () => {
    assert.deepEqual(ev({}, "AUTH LOGIN\r\n", "dXNlcg==\r\n", "cGFzcw==\r\n", "NOOP\r\n"), [
      "S: + VXNlcm5hbWU6\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      auth("user", "pass"),
      "S: -ERR denied\r\n",
      OK,
    ]);
  });
  test("internal error reply", () => {
    assert.equal(bytesToBinary(POP3_INTERNAL_ERROR), "-ERR internal server error\r\n");
  });
  test("takeInput empties the buffer", () => {
    const { m } = machine();
    m.push(binaryToBytes("USER u\r\nPASS p\r\nLIST"));
    m.next();
    assert.equal(m.next()[0].kind, "auth");
    assert.equal(bytesToBinary(m.takeInput()), "LIST");
    assert.equal(m.takeInput().length, 0);
  });
});

// ---- STLS ----------------------------------------------------------------------

describe("STLS (pop3.md §4, tls_and_proxy_protocol.md §3)", () => {
  test("on: +OK, pipelined bytes dropped, starttls step, then the TLS list", () => {
    assert.deepEqual(ev({ starttls: "on" }, "STLS\r\nUSER injected\r\nPA", "CAPA\r\n"), [
      OK,
      "STARTTLS",
      "S: " + CAPA_FULL,
    ]);
  });
  test("the machine waits for the handshake", () => {
    const { m } = machine({ starttls: "on" });
    m.push(binaryToBytes("STLS\r\n"));
    assert.deepEqual(m.next().map((s) => s.kind), ["send", "starttls"]);
    m.push(binaryToBytes("NOOP\r\n"));
    assert.deepEqual(m.next(), [], "no command before tlsStarted()");
    m.tlsStarted();
    assert.deepEqual(m.next(), [], "plaintext pushed before the handshake was discarded");
    m.push(binaryToBytes("NOOP\r\n"));
    assert.deepEqual(m.next(), [{ kind: "send", data: binaryToBytes("+OK\r\n") }]);
  });
  test("off, or TLS already active: -ERR, not counted", () => {
    assert.deepEqual(ev({ maxErrors: 1 }, "STLS\r\n", "NOOP\r\n"), [ERR, OK]);
    assert.deepEqual(
      events(machine({ starttls: "on", maxErrors: 1 }, true).m, "STLS\r\n", "NOOP\r\n"),
      [
        ERR,
        OK,
      ],
    );
    assert.deepEqual(ev({ starttls: "on", maxErrors: 1 }, "STLS\r\n", "stls\r\n", "NOOP\r\n"), [
      OK,
      "STARTTLS",
      ERR,
      OK,
    ]);
  });
  test("mail_ssl.t: starttls on: AUTH LOGIN challenges before TLS; STLS +OK", () => {
    assert.deepEqual(ev({ starttls: "on" }, "AUTH LOGIN\r\n"), ["S: + VXNlcm5hbWU6\r\n"]);
    assert.deepEqual(ev({ starttls: "on" }, "STLS\r\n"), [OK, "STARTTLS"]);
  });
  test("mail_ssl.t: starttls only: AUTH LOGIN -ERR; STLS +OK", () => {
    assert.deepEqual(ev({ starttls: "only" }, "AUTH LOGIN\r\n"), [ERR]);
    assert.deepEqual(ev({ starttls: "only" }, "STLS\r\n"), [OK, "STARTTLS"]);
  });
  test("starttls only: USER, APOP, AUTH refused before TLS (not counted), allowed after", () => {
    assert.deepEqual(
      ev(
        { ...ALL, starttls: "only", maxErrors: 1 },
        "USER bob\r\n",
        "APOP bob 0123\r\n",
        "AUTH\r\n",
        `AUTH PLAIN ${PLAIN_IR}\r\n`,
        "CAPA\r\n",
        "NOOP\r\n",
        "STLS\r\n",
        "USER bob\r\n",
        "PASS pw\r\n",
      ),
      [
        ERR,
        ERR,
        ERR,
        ERR,
        "S: +OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n",
        OK,
        OK,
        "STARTTLS",
        OK,
        auth("bob", "pw"),
        "S: -ERR denied\r\n",
      ],
    );
  });
  test("implicit TLS with starttls only: USER allowed, STLS refused", () => {
    assert.deepEqual(
      events(machine({ starttls: "only" }, true).m, "STLS\r\n", "USER bob\r\n", "QUIT\r\n"),
      [ERR, OK, OK, "CLOSE"],
    );
  });
});

// ---- max_errors, too long -----------------------------------------------------------

describe("invalid lines and max_errors (mail_max_errors.t)", () => {
  test("one at a time: two replies, then close", () => {
    assert.deepEqual(ev({ maxErrors: 2 }, "FOOB\r\n", "FOOB\r\n", "FOOB\r\n"), [
      ERR,
      TOO_MANY,
      ERR,
      "CLOSE",
    ]);
  });
  test("pipelined in one packet: two replies, then close", () => {
    const r = drive(machine({ maxErrors: 2 }).m, ["FOOBAR\r\nFOOBAR\r\nFOOBAR\r\n"]);
    assert.equal(r.out, "-ERR invalid command\r\n-ERR invalid command\r\n");
    assert.equal(r.closed, true);
  });
  test("mail_pop3.t: pipelined invalid command and NOOP", () => {
    assert.equal(
      drive(machine().m, ["INVALID COMMAND WITH ARGUMENTS\r\nNOOP\r\n"]).out,
      "-ERR invalid command\r\n+OK\r\n",
    );
  });
  test("handler refusals and decoding errors do not count toward the limit", () => {
    const refusals = [
      "PASS x\r\n",
      "USER\r\n",
      "APOP a b\r\n",
      "AUTH FOO\r\n",
      "AUTH PLAIN %\r\n",
      "STLS\r\n",
      "AUTH PLAIN\r\n*\r\n",
    ];
    const r = drive(machine({ maxErrors: 2 }).m, [...refusals, "BAD1\r\n", "NOOP\r\n", "BAD2\r\n"]);
    assert.deepEqual(r.events.filter((e) => !e.startsWith("LOG info client sent invalid")), [
      ERR,
      ERR,
      ERR,
      ERR,
      ERR,
      ERR,
      "S: + \r\n",
      ERR,
      ERR,
      OK,
      TOO_MANY,
      ERR,
      "CLOSE",
    ]);
  });
  test("errors persist across auth attempts", () => {
    assert.deepEqual(
      ev({ maxErrors: 3 }, "X\r\n", "USER u\r\nPASS p\r\n", "Y\r\n", "NOOP\r\n", "Z\r\n"),
      [
        ERR,
        OK,
        auth("u", "p"),
        "S: -ERR denied\r\n",
        ERR,
        OK,
        TOO_MANY,
        ERR,
        "CLOSE",
      ],
    );
  });
});

describe("the 128-byte command buffer (pop3.md §2)", () => {
  test("a line of 128 bytes including CRLF fits; 129 does not", () => {
    const fits = "NOOP " + "x".repeat(121) + "\r\n";
    assert.equal(fits.length, 128);
    assert.deepEqual(ev({}, fits), [OK]);
    assert.deepEqual(ev({}, "NOOP " + "x".repeat(122) + "\n"), [OK]);
    assert.deepEqual(ev({ maxErrors: 1 }, "NOOP " + "x".repeat(122) + "\r\n", "NOOP\r\n"), [
      'LOG info client sent too long command "NOOP..."',
      ERR,
      "CLOSE",
    ]);
  });
  test("the log never shows a password", () => {
    assert.deepEqual(ev({}, "USER bob\r\n", "PASS " + "s".repeat(200)), [
      OK,
      'LOG info client sent too long command "PASS..."',
      ERR,
      "CLOSE",
    ]);
  });
  test("inside a SASL exchange nothing of the line is logged", () => {
    assert.deepEqual(ev({}, "AUTH PLAIN\r\n", "A".repeat(64), "A".repeat(64), "\r\n"), [
      "S: + \r\n",
      'LOG info client sent too long command "..."',
      ERR,
      "CLOSE",
    ]);
  });
  test("a long AUTH PLAIN initial response ends the session (README known limits)", () => {
    const ir = encodeBase64("\0" + "u".repeat(50) + "\0" + "p".repeat(50));
    assert.deepEqual(ev({}, `AUTH PLAIN ${ir}\r\n`), [
      'LOG info client sent too long command "AUTH..."',
      ERR,
      "CLOSE",
    ]);
  });
  test("an invalid line too long for the buffer is 'too long'", () => {
    assert.deepEqual(ev({ maxErrors: 1 }, "X\r".repeat(100)), [
      'LOG info client sent too long command "X..."',
      ERR,
      "CLOSE",
    ]);
  });
  test("many short pipelined commands are fine (consumed bytes are discarded)", () => {
    const r = drive(machine().m, ["NOOP\r\n".repeat(100)]);
    assert.equal(r.out, "+OK\r\n".repeat(100));
    assert.equal(r.closed, false);
  });
  test("input beyond the held-bytes bound closes the session", () => {
    const { m } = machine();
    m.push(binaryToBytes("NOOP\r\n"));
    m.push(new Uint8Array((1 << 20) + 128)); // more than the bound allows in total
    assert.deepEqual(m.next().map((s) => s.kind), ["log", "send", "close"]);
    assert.deepEqual(m.next(), []);
  });
});

// ---- pipelining and the §10 examples ----------------------------------------------

describe("pop3.md §10 examples and mail_pop3.t pipelining", () => {
  test("USER/PASS transcript", () => {
    const { m } = machine();
    assert.equal(bytesToBinary(m.greeting()), "+OK POP3 ready\r\n");
    const r = drive(m, ["USER test@example.com\r\n", "PASS secret\r\n"], () => null);
    assert.deepEqual(r.events, [OK, auth("test@example.com", "secret")]);
    assert.equal(r.rest, "");
  });
  test("pipelined USER, PASS, QUIT: the QUIT is left for the backend", () => {
    const r = drive(machine().m, ["USER x\r\nPASS y\r\nQUIT\r\n"], () => null);
    assert.deepEqual(r.events, [OK, auth("x", "y")]);
    assert.equal(r.rest, "QUIT\r\n");
  });
  test("pipelined AUTH LOGIN, user, password: both challenges, then the auth request", () => {
    const r = drive(
      machine().m,
      ["AUTH LOGIN\r\ndGVzdEBleGFtcGxlLmNvbQ==\r\nc2VjcmV0\r\n"],
      () => null,
    );
    assert.deepEqual(r.events, [
      "S: + VXNlcm5hbWU6\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      auth("test@example.com", "secret"),
    ]);
    assert.equal(r.rest, "");
  });
  test("mail_pop3.t: APOP wrong digest -ERR and the session continues, then right", () => {
    const good = "0".repeat(32);
    const r = drive(
      machine(ALL).m,
      ["APOP test@example.com " + "1".repeat(32) + "\r\n", `APOP test@example.com ${good}\r\n`],
      (c) => (c.pass === good ? null : "authentication failed"),
    );
    assert.deepEqual(r.events, [
      auth("test@example.com", "1".repeat(32), "apop", SALT),
      "S: -ERR authentication failed\r\n",
      auth("test@example.com", good, "apop", SALT),
    ]);
  });
});

// ---- chunking ----------------------------------------------------------------------

describe("chunking does not matter", () => {
  const cram = encodeBase64("user " + "0".repeat(32));
  const transcript = [
    "CAPA\r\n",
    "noop extra args\n",
    "AUTH\r\n",
    "BOGUS\r\n",
    "USER  spaced user \r\nNOOP\r\nPASS pass word\r\n",
    "AUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\n",
    "AUTH PLAIN\r\nAHVzZXIAcGFzcw==\r\n",
    `auth cram-md5\r\n${cram}\r\n`,
    "APOP user " + "1".repeat(32) + "\r\n",
    "AUTH LOGIN dXNlcg\n*\n",
    "USER bob\r\nRETR 1\r\nPASS x\r\n",
    "USER bob\r\nPASS pw\r\nLIST\r\nQUIT\r\n",
  ].join("");
  const opts = { ...ALL, maxErrors: 10 };
  const accept: AuthFn = (c) => (c.user === "bob" ? null : "bad credentials");
  const run = (chunks: string[]) => drive(machine(opts).m, chunks, accept);
  const DENIED = "S: -ERR bad credentials\r\n";

  test("the whole transcript at once", () => {
    const r = run([transcript]);
    assert.deepEqual(r.events, [
      "S: +OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n.\r\n",
      OK,
      "S: +OK methods supported:\r\nPLAIN\r\nLOGIN\r\nCRAM-MD5\r\nEXTERNAL\r\n.\r\n",
      ERR,
      OK,
      OK,
      auth("spaced user ", "pass word"),
      DENIED,
      "S: + VXNlcm5hbWU6\r\n",
      "S: + UGFzc3dvcmQ6\r\n",
      auth("user", "pass"),
      DENIED,
      "S: + \r\n",
      auth("user", "pass"),
      DENIED,
      `S: + ${encodeBase64(SALT)}\r\n`,
      auth("user", "0".repeat(32), "cram-md5", SALT),
      DENIED,
      auth("user", "1".repeat(32), "apop", SALT),
      DENIED,
      "S: + UGFzc3dvcmQ6\r\n",
      ERR,
      OK,
      ERR,
      ERR,
      OK,
      auth("bob", "pw"),
    ]);
    assert.equal(r.rest, "LIST\r\nQUIT\r\n");
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
