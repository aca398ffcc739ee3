import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type {
  AuthRefusal,
  ClientStep,
  PreauthContext,
  PreauthMachine,
} from "../../lib/core/machine.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import {
  type AuthRefusal as Refusal,
  offeredMechanisms,
  SASL_MECHANISMS,
  SaslExchange,
  type SaslMechanism,
} from "../../lib/core/sasl_exchange.ts";
import { createImapPreauth } from "../../lib/imap/preauth.ts";
import { createPop3Preauth } from "../../lib/pop3/preauth.ts";
import { createSmtpPreauth } from "../../lib/smtp/preauth.ts";
import { imapConfig, pop3Config, smtpConfig } from "../helpers/property.ts";

const SALT = "<1.2@example.com>";

function exchange(enabled: string[] = [], mechanisms?: readonly SaslMechanism[]) {
  let salts = 0;
  const x = new SaslExchange({ enabled, salt: () => (salts++, SALT) }, mechanisms);
  return { x, salts: () => salts };
}

const value = (v: string) => ({ kind: "value", value: v }) as const;

describe("SaslExchange.start", () => {
  test("mechanism names are matched case-insensitively", () => {
    const { x } = exchange(["cram-md5", "external"]);
    assert.deepEqual(x.start(["pLaIn"]), { kind: "challenge", payload: "" });
    assert.deepEqual(x.start(["login"]), { kind: "challenge", payload: "VXNlcm5hbWU6" });
    assert.deepEqual(x.start(["Cram-Md5"]), { kind: "challenge", payload: encodeBase64(SALT) });
    assert.deepEqual(x.start(["external"]), { kind: "challenge", payload: "VXNlcm5hbWU6" });
  });
  test("unknown, disabled, too many arguments, or an initial response CRAM-MD5 does not take", () => {
    const { x } = exchange([]);
    for (
      const args of [["DIGEST-MD5"], [""], ["CRAM-MD5"], ["EXTERNAL", "dXNlcg=="], [
        "PLAIN",
        "a",
        "b",
      ]]
    ) {
      assert.deepEqual(x.start(args), { kind: "unsupported" }, args.join(" "));
    }
    assert.deepEqual(exchange(["cram-md5"]).x.start(["CRAM-MD5", "eA=="]), { kind: "unsupported" });
  });
  test("PLAIN and LOGIN need no directive value (as nginx)", () => {
    const { x } = exchange([]);
    assert.equal(x.start(["PLAIN"]).kind, "challenge");
    assert.equal(x.start(["LOGIN"]).kind, "challenge");
  });
  test("an initial response is the first answer", () => {
    const { x } = exchange(["external"]);
    assert.deepEqual(x.start(["PLAIN", encodeBase64("\0u\0p")]), {
      kind: "credentials",
      creds: { method: "plain", user: "u", pass: "p", salt: null },
    });
    assert.deepEqual(x.start(["EXTERNAL", encodeBase64("id")]), {
      kind: "credentials",
      creds: { method: "external", user: "id", pass: "", salt: null },
    });
    assert.deepEqual(x.start(["LOGIN", encodeBase64("u")]), {
      kind: "challenge",
      payload: "UGFzc3dvcmQ6",
    });
    assert.deepEqual(x.answer(value(encodeBase64("p"))), {
      kind: "credentials",
      creds: { method: "plain", user: "u", pass: "p", salt: null },
    });
  });
});

describe("SaslExchange.answer", () => {
  test("LOGIN: user name, then password; a new exchange forgets the user", () => {
    const { x } = exchange();
    x.start(["LOGIN"]);
    assert.deepEqual(x.answer(value(encodeBase64("u"))), {
      kind: "challenge",
      payload: "UGFzc3dvcmQ6",
    });
    assert.deepEqual(x.answer(value(encodeBase64("p"))).kind, "credentials");
    x.start(["LOGIN"]);
    assert.deepEqual(x.answer(value(encodeBase64("v"))), {
      kind: "challenge",
      payload: "UGFzc3dvcmQ6",
    });
    assert.deepEqual(x.answer(value("")), {
      kind: "credentials",
      creds: { method: "plain", user: "v", pass: "", salt: null },
    });
  });
  test("CRAM-MD5 carries the session salt; the salt is asked for, not made here", () => {
    const { x, salts } = exchange(["cram-md5"]);
    x.start(["CRAM-MD5"]);
    const digest = "0123456789abcdef0123456789abcdef";
    assert.deepEqual(x.answer(value(encodeBase64("bob " + digest))), {
      kind: "credentials",
      creds: { method: "cram-md5", user: "bob", pass: digest, salt: SALT },
    });
    assert.equal(salts(), 2);
  });
  test("decode errors, cancel and invalid lines end the exchange", () => {
    const { x } = exchange();
    x.start(["PLAIN"]);
    assert.deepEqual(x.answer(value("!")), {
      kind: "decodeError",
      log: "client sent invalid base64 encoding in AUTH PLAIN command",
    });
    x.start(["LOGIN"]);
    assert.deepEqual(x.answer({ kind: "cancel" }), { kind: "cancel" });
    assert.deepEqual(
      x.answer(value(encodeBase64("u"))),
      { kind: "cancel" },
      "no exchange: nothing to answer",
    );
    x.start(["LOGIN"]);
    assert.deepEqual(x.answer({ kind: "invalid" }), { kind: "invalid" });
  });
});

describe("the mechanism table", () => {
  test("capability order is table order; POP3's plain offers LOGIN", () => {
    assert.deepEqual(SASL_MECHANISMS.map((m) => m.name), [
      "PLAIN",
      "LOGIN",
      "CRAM-MD5",
      "EXTERNAL",
      "OAUTHBEARER",
      "XOAUTH2",
    ]);
    assert.deepEqual(offeredMechanisms(["external", "plain", "login"]), [
      "PLAIN",
      "LOGIN",
      "EXTERNAL",
    ]);
  });
});

// ---- refusals through each protocol's machine ---------------------------

/** A mechanism that refuses with an error challenge (RFC 7628 §3.2.2 shape), added by one table entry. */
const X_TEST: SaslMechanism = {
  name: "X-TEST",
  directive: "x-test",
  alwaysAccepted: true,
  initialResponse: true,
  challenge: () => "",
  respond: (v) => ({
    kind: "credentials",
    creds: { method: "plain", user: v, pass: "", salt: null },
  }),
  errorChallenge: (error) => encodeBase64(error),
};
const MECHANISMS = [...SASL_MECHANISMS, X_TEST];
const ERROR_JSON = '{"status":"invalid_token"}';

interface Proto {
  name: string;
  make(ctx: PreauthContext): PreauthMachine;
  config: ServerConfig;
  /** The command starting X-TEST with an initial response. */
  start: string;
  challenge: string;
  refusal: string;
  noop: string;
  noopReply: string;
}

const PROTOCOLS: Proto[] = [
  {
    name: "IMAP",
    make: createImapPreauth,
    config: imapConfig(),
    start: "a1 AUTHENTICATE X-TEST dXNlcg==\r\n",
    challenge: "+ ",
    refusal: "a1 NO denied\r\n",
    noop: "a2 NOOP\r\n",
    noopReply: "a2 OK completed\r\n",
  },
  {
    name: "POP3",
    make: createPop3Preauth,
    config: pop3Config(),
    start: "AUTH X-TEST dXNlcg==\r\n",
    challenge: "+ ",
    refusal: "-ERR denied\r\n",
    noop: "NOOP\r\n",
    noopReply: "+OK\r\n",
  },
  {
    name: "SMTP",
    make: createSmtpPreauth,
    config: smtpConfig(),
    start: "AUTH X-TEST dXNlcg==\r\n",
    challenge: "334 ",
    refusal: "535 5.7.0 denied\r\n",
    noop: "NOOP\r\n",
    noopReply: "250 2.0.0 OK\r\n",
  },
];

function render(steps: ClientStep[]): string[] {
  return steps.map((s) =>
    s.kind === "send"
      ? bytesToBinary(s.data)
      : s.kind === "close"
      ? `CLOSE ${s.reason ?? ""}`
      : s.kind
  );
}

function refusalOf(o: Partial<Refusal> = {}): AuthRefusal {
  return { message: "denied", errorCode: null, saslError: ERROR_JSON, close: false, ...o };
}

/** A machine of `p` suspended on the auth request of `command`. */
function suspended(p: Proto, command: string): PreauthMachine {
  const m = p.make({
    config: p.config,
    tls: false,
    makeSalt: () => SALT,
    saslMechanisms: MECHANISMS,
  });
  m.greeting();
  m.push(binaryToBytes(command));
  const steps = m.next();
  assert.equal(steps.length, 1);
  assert.equal(steps[0].kind, "auth", `${p.name}: ${render(steps)}`);
  return m;
}

for (const p of PROTOCOLS) {
  describe(`${p.name}: authRefused() returns the refusal as steps`, () => {
    test("error challenge, the client's answer, then the final refusal; the dialogue goes on", () => {
      const m = suspended(p, p.start);
      assert.deepEqual(render(m.authRefused(refusalOf())), [
        p.challenge + encodeBase64(ERROR_JSON) + "\r\n",
      ]);
      assert.deepEqual(m.next(), [], "waits for the client's answer");
      m.push(binaryToBytes("AQ==\r\n" + p.noop));
      assert.deepEqual(render(m.next()), [p.refusal]);
      assert.deepEqual(render(m.next()), [p.noopReply]);
    });
    test("without Auth-Wait the final refusal is followed by a close (outcome refused)", () => {
      const m = suspended(p, p.start);
      assert.equal(m.authRefused(refusalOf({ close: true })).length, 1);
      m.push(binaryToBytes("*\r\n" + p.noop));
      assert.deepEqual(render(m.next()), [p.refusal, "CLOSE refused"]);
      assert.deepEqual(m.next(), [], "nothing after the close");
    });
    test("no error from the auth service: one line at once", () => {
      const m = suspended(p, p.start);
      assert.deepEqual(render(m.authRefused(refusalOf({ saslError: null }))), [p.refusal]);
    });
    test("a mechanism without an error challenge refuses in one line, with or without close", () => {
      const plain = p.start.replace("X-TEST dXNlcg==", "PLAIN " + encodeBase64("\0u\0p"));
      assert.deepEqual(render(suspended(p, plain).authRefused(refusalOf())), [p.refusal]);
      assert.deepEqual(render(suspended(p, plain).authRefused(refusalOf({ close: true }))), [
        p.refusal,
        "CLOSE refused",
      ]);
    });
    test("the error challenge belongs to that attempt only: a later one-line refusal stays one line", () => {
      const m = suspended(p, p.start);
      m.authRefused(refusalOf());
      m.push(
        binaryToBytes(
          "AQ==\r\n" + p.start.replace("X-TEST dXNlcg==", "PLAIN " + encodeBase64("\0u\0p")),
        ),
      );
      assert.deepEqual(render(m.next()), [p.refusal]);
      assert.equal(m.next()[0].kind, "auth");
      assert.deepEqual(render(m.authRefused(refusalOf())), [p.refusal]);
    });
  });
}
