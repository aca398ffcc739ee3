// XOAUTH2 and OAUTHBEARER (issue 15): the payload parsers, the exchange,
// capabilities per protocol and STARTTLS policy, the auth_http request and
// Auth-Error-SASL, the error challenge through each protocol's machine, and
// that a token never reaches a log line.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { buildAuthRequest } from "../../lib/auth/http_request.ts";
import { AuthResponseParser, decideAuth } from "../../lib/auth/http_response.ts";
import type { AuthRequest } from "../../lib/auth/types.ts";
import type { AuthHttpUrl, ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type { ClientStep, Credentials, PreauthMachine } from "../../lib/core/machine.ts";
import {
  decodeOauthBearer,
  decodeXoauth2,
  encodeBase64,
  isStrictBase64,
  unescapeSaslName,
} from "../../lib/core/sasl.ts";
import { SASL_MECHANISMS, SaslExchange } from "../../lib/core/sasl_exchange.ts";
import { createImapPreauth } from "../../lib/imap/preauth.ts";
import { createPop3Preauth } from "../../lib/pop3/preauth.ts";
import { createSmtpPreauth } from "../../lib/smtp/preauth.ts";
import { authRequest } from "../helpers/auth_fixtures.ts";
import { imapConfig, pop3Config, smtpConfig } from "../helpers/property.ts";

const TOKEN = "ya29.a0AfB_byC-token_value.with~chars+/=";
const xo = (user: string, token: string) => `user=${user}\x01auth=Bearer ${token}\x01\x01`;
const ob = (gs2: string, kv: string) => `${gs2}\x01${kv}\x01\x01`;
const b64 = encodeBase64;

describe("decodeXoauth2", () => {
  test("good payload: user, bare token, decoded payload kept", () => {
    const p = xo("alice@example.com", TOKEN);
    assert.deepEqual(decodeXoauth2(b64(p)), {
      ok: true,
      user: "alice@example.com",
      token: TOKEN,
      payload: p,
    });
  });
  test("the scheme is case-insensitive", () => {
    const r = decodeXoauth2(b64("user=u\x01auth=bearer t\x01\x01"));
    assert.ok(r.ok && r.token === "t");
  });
  const bad: [string, string][] = [
    ["truncated (one ^A at the end)", "user=u\x01auth=Bearer t\x01"],
    ["truncated (no auth)", "user=u\x01"],
    ["empty", ""],
    ["no user=", "u\x01auth=Bearer t\x01\x01"],
    ["empty user", "user=\x01auth=Bearer t\x01\x01"],
    ["not Bearer", "user=u\x01auth=Basic dTpw\x01\x01"],
    ["empty token", "user=u\x01auth=Bearer \x01\x01"],
    ["CR in token", "user=u\x01auth=Bearer a\rb\x01\x01"],
    ["LF in token", "user=u\x01auth=Bearer a\nb\x01\x01"],
    ["NUL in token", "user=u\x01auth=Bearer a\0b\x01\x01"],
    ["space in token", "user=u\x01auth=Bearer a b\x01\x01"],
    ["CR in user", "user=u\rx\x01auth=Bearer t\x01\x01"],
    ["trailing bytes", "user=u\x01auth=Bearer t\x01\x01x"],
    ["extra pair", "user=u\x01auth=Bearer t\x01x=y\x01\x01"],
    ["OAUTHBEARER payload", ob("n,a=u,", "auth=Bearer t")],
  ];
  for (const [name, payload] of bad) {
    test(`malformed: ${name}`, () => {
      const r = decodeXoauth2(b64(payload));
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.log.includes("AUTH XOAUTH2"));
    });
  }
  test("bad base64", () => {
    assert.deepEqual(decodeXoauth2("!!!"), {
      ok: false,
      log: "client sent invalid base64 encoding in AUTH XOAUTH2 command",
    });
  });
});

describe("decodeOauthBearer", () => {
  test("RFC 7628 §4.1 example: host, port, auth", () => {
    const p = ob(
      "n,a=user@example.com,",
      "host=server.example.com\x01port=143\x01auth=Bearer " + TOKEN,
    );
    assert.deepEqual(decodeOauthBearer(b64(p)), {
      ok: true,
      user: "user@example.com",
      token: TOKEN,
      payload: p,
    });
  });
  test("a= is unescaped (=2C, =3D; as freenginx's test test=3D=2C@example.com)", () => {
    const r = decodeOauthBearer(b64(ob("n,a=test=3D=2C@example.com,", "auth=Bearer t")));
    assert.ok(r.ok);
    assert.equal(r.ok && r.user, "test=,@example.com");
    assert.equal(unescapeSaslName("a=2cb"), "a,b");
    assert.equal(unescapeSaslName("a=4Fb"), null);
    assert.equal(unescapeSaslName("a="), null);
  });
  test("no authzid: user is empty; the y flag is accepted", () => {
    const r = decodeOauthBearer(b64(ob("n,,", "auth=Bearer t")));
    assert.ok(r.ok && r.user === "" && r.token === "t");
    assert.ok(decodeOauthBearer(b64(ob("y,a=u,", "auth=Bearer t"))).ok);
  });
  const bad: [string, string][] = [
    ["wrong GS2 flag (channel binding)", ob("p=tls-unique,a=u,", "auth=Bearer t")],
    ["wrong GS2 header (no comma)", ob("n", "auth=Bearer t")],
    ["wrong GS2 header (not a=)", ob("n,u=x,", "auth=Bearer t")],
    ["bad escape in a=", ob("n,a=x=41,", "auth=Bearer t")],
    ["empty a=", ob("n,a=,", "auth=Bearer t")],
    ["truncated (one ^A)", "n,a=u,\x01auth=Bearer t\x01"],
    ["truncated (GS2 only)", "n,a=u,"],
    ["no auth pair", ob("n,a=u,", "host=h\x01port=1")],
    ["two auth pairs", ob("n,a=u,", "auth=Bearer t\x01auth=Bearer s")],
    ["pair without =", ob("n,a=u,", "host\x01auth=Bearer t")],
    ["non-alpha key", ob("n,a=u,", "h0st=h\x01auth=Bearer t")],
    ["CR in token", ob("n,a=u,", "auth=Bearer a\rb")],
    ["LF in token", ob("n,a=u,", "auth=Bearer a\nb")],
    ["NUL in token", ob("n,a=u,", "auth=Bearer a\0b")],
    ["XOAUTH2 payload", xo("u", "t")],
  ];
  for (const [name, payload] of bad) {
    test(`malformed: ${name}`, () => {
      const r = decodeOauthBearer(b64(payload));
      assert.equal(r.ok, false, JSON.stringify(payload));
      if (!r.ok) assert.ok(r.log.includes("AUTH OAUTHBEARER"));
    });
  }
  test("bad base64", () => {
    assert.equal(decodeOauthBearer("a").ok, false);
  });
  test("a 16 KB token decodes (no length limit here: the protocols' line bounds apply)", () => {
    const big = "A".repeat(16384);
    const r = decodeOauthBearer(b64(ob("n,a=u,", "auth=Bearer " + big)));
    assert.ok(r.ok && r.token === big);
  });
});

describe("isStrictBase64 (Auth-Error-SASL)", () => {
  test("padded base64 only", () => {
    assert.ok(isStrictBase64("eyJzY2hlbWVzIjoiQmVhcmVyIiwic3RhdHVzIjoiNDAwIn0="));
    assert.ok(isStrictBase64("AQ=="));
    for (const v of ["", "AQ", "AQ=", "A===", "not base64!", "AQ==AQ==x", '{"status":"400"}']) {
      assert.equal(isStrictBase64(v), false, v);
    }
  });
});

describe("the exchange", () => {
  const ex = (enabled: string[]) => new SaslExchange({ enabled, salt: () => "<s>" });
  test("off unless the directive value is set", () => {
    assert.deepEqual(ex([]).start(["XOAUTH2"]), { kind: "unsupported" });
    assert.deepEqual(ex(["xoauth2"]).start(["OAUTHBEARER"]), { kind: "unsupported" });
  });
  test("empty first challenge, or the initial response", () => {
    const x = ex(["xoauth2", "oauthbearer"]);
    assert.deepEqual(x.start(["xoauth2"]), { kind: "challenge", payload: "" });
    assert.deepEqual(x.answer({ kind: "value", value: b64(xo("u", "t")) }), {
      kind: "credentials",
      creds: { method: "xoauth2", user: "u", pass: "t", salt: null, saslPayload: xo("u", "t") },
    });
    assert.deepEqual(x.start(["OAUTHBEARER", b64(ob("n,a=u,", "auth=Bearer t"))]), {
      kind: "credentials",
      creds: {
        method: "oauthbearer",
        user: "u",
        pass: "t",
        salt: null,
        saslPayload: ob("n,a=u,", "auth=Bearer t"),
      },
    });
  });
  test("malformed is its own step (counted by the protocols)", () => {
    const x = ex(["xoauth2"]);
    assert.equal(x.start(["XOAUTH2", b64("user=u\x01")]).kind, "malformed");
  });
  test("error challenge: the auth service's base64 as it is; ^A or empty answer, then the refusal", () => {
    const refusal = { message: "no", errorCode: null, saslError: "eyJ9", close: false };
    for (const dummy of ["AQ==", ""]) {
      const x = ex(["xoauth2"]);
      x.start(["XOAUTH2", b64(xo("u", "t"))]);
      assert.deepEqual(x.refuse(refusal), { kind: "challenge", payload: "eyJ9" });
      assert.deepEqual(x.answer({ kind: "value", value: dummy }), { kind: "refused", refusal });
    }
  });
  test("any other answer to the error challenge is an invalid line, the refusal dropped (freenginx)", () => {
    const x = ex(["oauthbearer"]);
    x.start(["OAUTHBEARER", b64(ob("n,,", "auth=Bearer t"))]);
    x.refuse({ message: "no", errorCode: null, saslError: "eyJ9", close: false });
    assert.equal(x.answer({ kind: "value", value: "foo" }).kind, "malformed");
  });
  test("table: both listed after EXTERNAL", () => {
    assert.deepEqual(SASL_MECHANISMS.slice(-2).map((m) => m.name), ["OAUTHBEARER", "XOAUTH2"]);
  });
});

// ---- through each protocol's machine ------------------------------------

interface Proto {
  name: string;
  make: typeof createImapPreauth;
  config(o: Partial<ServerConfig>): ServerConfig;
  /** Command prefix before the mechanism; the line after a tag. */
  auth: string;
  capa: string;
  challenge: string;
  refusal: string;
  invalid: string;
}

const OAUTH = { imapAuth: ["plain", "xoauth2", "oauthbearer"] } as Partial<ServerConfig>;

const PROTOS: Proto[] = [
  {
    name: "IMAP",
    make: createImapPreauth,
    config: (o) => imapConfig({ ...OAUTH, ...o }),
    auth: "a1 AUTHENTICATE ",
    capa: "a0 CAPABILITY\r\n",
    challenge: "+ ",
    refusal: "a1 NO denied\r\n",
    invalid: "a1 BAD invalid command\r\n",
  },
  {
    name: "POP3",
    make: createPop3Preauth,
    config: (o) =>
      pop3Config(
        { pop3Auth: ["plain", "xoauth2", "oauthbearer"], pop3ClientBuffer: 4096, ...o } as Partial<
          ServerConfig
        >,
      ),
    auth: "AUTH ",
    capa: "CAPA\r\n",
    challenge: "+ ",
    refusal: "-ERR denied\r\n",
    invalid: "-ERR invalid command\r\n",
  },
  {
    name: "SMTP",
    make: createSmtpPreauth,
    config: (o) =>
      smtpConfig({ smtpAuth: ["plain", "xoauth2", "oauthbearer"], ...o } as Partial<ServerConfig>),
    auth: "AUTH ",
    capa: "EHLO x\r\n",
    challenge: "334 ",
    refusal: "535 5.7.0 denied\r\n",
    invalid: "500 5.5.1 Invalid command\r\n",
  },
];

function render(steps: ClientStep[]): string[] {
  return steps.map((s) =>
    s.kind === "send" ? bytesToBinary(s.data) : s.kind === "close" ? "CLOSE" : s.kind
  );
}

function machine(p: Proto, o: Partial<ServerConfig> = {}, tls = false): PreauthMachine {
  const m = p.make({ config: p.config(o), tls, makeSalt: () => "<1.2@x>" });
  m.greeting();
  return m;
}

function run(m: PreauthMachine, input: string): ClientStep[] {
  m.push(binaryToBytes(input));
  const out: ClientStep[] = [];
  for (let i = 0; i < 20; i++) {
    const s = m.next();
    if (s.length === 0) break;
    out.push(...s);
    if (s.some((x) => x.kind === "auth" || x.kind === "close")) break;
  }
  return out;
}

const text = (steps: ClientStep[]) => render(steps.filter((s) => s.kind === "send")).join("");
const logs = (steps: ClientStep[]) =>
  steps.filter((s) => s.kind === "log").map((s) => (s as { message: string }).message);

for (const p of PROTOS) {
  describe(`${p.name}: XOAUTH2 / OAUTHBEARER`, () => {
    test("capabilities: listed with starttls off and on, and over TLS; not on plaintext with starttls only", () => {
      for (
        const [starttls, tls, shown] of [
          ["off", false, true],
          ["on", false, true],
          ["only", false, false],
          ["only", true, true],
        ] as const
      ) {
        const out = text(run(machine(p, { starttls } as Partial<ServerConfig>, tls), p.capa));
        const want = p.name === "IMAP"
          ? ["AUTH=XOAUTH2", "AUTH=OAUTHBEARER"]
          : p.name === "POP3"
          ? ["OAUTHBEARER XOAUTH2"]
          : ["OAUTHBEARER XOAUTH2"];
        for (const w of want) {
          assert.equal(out.includes(w), shown, `${starttls} tls=${tls}: ${JSON.stringify(out)}`);
        }
      }
    });
    test("not offered and refused when the directive value is absent", () => {
      const m = machine(
        p,
        { imapAuth: ["plain"], pop3Auth: ["plain"], smtpAuth: ["plain"] } as Partial<ServerConfig>,
      );
      const out = text(run(m, (p.name === "SMTP" ? "EHLO x\r\n" : "") + p.auth + "XOAUTH2\r\n"));
      assert.ok(!out.includes("XOAUTH2"));
      assert.ok(!out.includes(p.challenge + "\r\n"), out);
    });
    for (
      const [mech, payload, method, user] of [
        ["XOAUTH2", xo("u@x", TOKEN), "xoauth2", "u@x"],
        [
          "OAUTHBEARER",
          ob("n,a=u=2C@x,", "host=h\x01port=1\x01auth=Bearer " + TOKEN),
          "oauthbearer",
          "u,@x",
        ],
      ] as const
    ) {
      test(`${mech} with an initial response, and after an empty challenge`, () => {
        const pre = p.name === "SMTP" ? "EHLO x\r\n" : "";
        const a = run(machine(p), pre + p.auth + `${mech} ${b64(payload)}\r\n`);
        const creds = (a.at(-1) as { kind: "auth"; creds: Credentials }).creds;
        assert.equal(creds.method, method);
        assert.equal(creds.user, user);
        assert.equal(creds.pass, TOKEN);
        assert.equal(creds.saslPayload, payload);
        const m = machine(p);
        assert.ok(text(run(m, pre + p.auth + mech + "\r\n")).endsWith(p.challenge + "\r\n"));
        const b = run(m, b64(payload) + "\r\n");
        assert.equal(b.at(-1)?.kind, "auth");
      });
    }
    test("a 4 KB token fits the default buffers (initial response)", () => {
      const token = "A".repeat(4096);
      const line = p.auth + "XOAUTH2 " + b64(xo("u", token)) + "\r\n";
      // The line is longer than 4 KB (base64): the challenge form is what a 4 KB buffer must carry.
      const m = machine(
        p,
        { imapClientBuffer: 8192, smtpClientBuffer: 8192, pop3ClientBuffer: 8192 } as Partial<
          ServerConfig
        >,
      );
      const out = run(m, (p.name === "SMTP" ? "EHLO x\r\n" : "") + line);
      const creds = (out.at(-1) as { kind: "auth"; creds: Credentials }).creds;
      assert.equal(creds.pass, token);
    });
    test("malformed payloads: the protocol's error, counted toward max_errors, token not logged", () => {
      const m = machine(p, { maxErrors: 2 } as Partial<ServerConfig>);
      const pre = p.name === "SMTP" ? run(m, "EHLO x\r\n") : [];
      void pre;
      const bad = b64("user=u\x01auth=Bearer " + TOKEN + "\x01");
      const first = run(m, p.auth + "XOAUTH2 " + bad + "\r\n");
      assert.ok(text(first).startsWith(p.invalid.slice(0, 4)), text(first));
      assert.ok(!logs(first).some((l) => l.includes(TOKEN) || l.includes(bad)));
      const second = run(m, p.auth + "OAUTHBEARER " + b64(ob("x,,", "auth=Bearer t")) + "\r\n");
      assert.equal(second.at(-1)?.kind, "close", "the second error reaches max_errors 2");
    });
    test("Auth-Error-SASL: error challenge, dummy answer, final refusal; then the dialogue goes on", () => {
      const m = machine(p);
      if (p.name === "SMTP") run(m, "EHLO x\r\n");
      assert.equal(run(m, p.auth + "XOAUTH2 " + b64(xo("u", "t")) + "\r\n").at(-1)?.kind, "auth");
      const refusal = {
        message: "denied",
        errorCode: null,
        saslError: "eyJzIjoiNDAwIn0=",
        close: false,
      };
      assert.deepEqual(render(m.authRefused(refusal)), [p.challenge + "eyJzIjoiNDAwIn0=\r\n"]);
      assert.deepEqual(render(run(m, "AQ==\r\n")), [p.refusal]);
      // freenginx: a non-dummy answer is an invalid line, no refusal line.
      run(m, p.auth + "OAUTHBEARER " + b64(ob("n,,", "auth=Bearer t")) + "\r\n");
      m.authRefused(refusal);
      assert.equal(text(run(m, "foo\r\n")), p.invalid);
    });
  });
}

describe("POP3: pop3_client_buffer", () => {
  const p = PROTOS[1];
  test("the bound follows the directive; without it, nginx's 128", () => {
    const line = "USER " + "x".repeat(200) + "\r\n";
    assert.equal(
      text(run(machine(p, { pop3ClientBuffer: 4096 } as Partial<ServerConfig>), line)),
      "+OK\r\n",
    );
    const small = createPop3Preauth({ config: pop3Config(), tls: false, makeSalt: () => "<1@x>" });
    small.greeting();
    assert.ok(text(run(small, line)).startsWith("-ERR"));
  });
  test("an oversized payload (beyond the buffer) is refused as too long", () => {
    const m = machine(p);
    const out = run(m, "AUTH XOAUTH2 " + b64(xo("u", "A".repeat(5000))) + "\r\n");
    assert.ok(text(out).startsWith("-ERR"), text(out));
    assert.equal(out.filter((s) => s.kind === "auth").length, 0);
  });
});

// ---- auth_http ------------------------------------------------------------

const URL_: AuthHttpUrl = {
  raw: "http://127.0.0.1:9000/auth",
  target: { kind: "tcp", host: "127.0.0.1", port: 9000 },
  hostHeader: "127.0.0.1",
  uri: "/auth",
};

describe("auth_http request (freenginx 1.27.1)", () => {
  for (const method of ["xoauth2", "oauthbearer"] as const) {
    test(`Auth-Method: ${method}, the user in Auth-User, the bare token in Auth-Pass; no Auth-Salt`, () => {
      const r: AuthRequest = authRequest({
        attempt: 1,
        clientIp: "192.0.2.42",
        creds: {
          method,
          user: "test=,@example.com",
          pass: TOKEN,
          salt: null,
          saslPayload: "whatever",
        },
      });
      assert.equal(
        bytesToBinary(buildAuthRequest(URL_, r, [])),
        [
          "GET /auth HTTP/1.0",
          "Host: 127.0.0.1",
          `Auth-Method: ${method}`,
          "Auth-User: test=,@example.com",
          `Auth-Pass: ${TOKEN}`,
          "Auth-Protocol: imap",
          "Auth-Login-Attempt: 1",
          "Client-IP: 192.0.2.42",
        ].join("\r\n") + "\r\n\r\n",
      );
    });
  }
});

function decide(headers: string, method: Credentials["method"] = "xoauth2") {
  const p = new AuthResponseParser();
  const r = p.feed(binaryToBytes("HTTP/1.0 200 OK\r\n" + headers + "\r\n"));
  assert.equal(r.kind, "done");
  if (r.kind !== "done") throw new Error("unreachable");
  return decideAuth(
    r.headers,
    authRequest({ creds: { method, user: "u", pass: TOKEN, salt: null } }),
    "127.0.0.1:9000",
  );
}

describe("auth_http response: Auth-Error-SASL", () => {
  test("carried with the refusal (name case-insensitive, last one wins)", () => {
    const r = decide(
      "Auth-Status: no\r\nAuth-Error-SASL: AQ==\r\nauth-error-sasl: eyJ9\r\nAuth-Wait: 1\r\n",
    );
    assert.deepEqual(r, {
      kind: "refused",
      message: "no",
      waitSec: 1,
      errorCode: null,
      saslError: "eyJ9",
    });
  });
  test("not base64: ignored with a log line that does not quote it; the refusal is plain", () => {
    const r = decide('Auth-Status: no\r\nAuth-Error-SASL: {"status":"400"}\r\n');
    assert.equal(r.kind, "refused");
    if (r.kind !== "refused") return;
    assert.equal(r.saslError, undefined);
    assert.ok(r.log?.includes("Auth-Error-SASL") && !r.log.includes("status"), r.log);
  });
  test("empty: absent", () => {
    assert.deepEqual(decide("Auth-Status: no\r\nAuth-Error-SASL: \r\n"), {
      kind: "refused",
      message: "no",
      waitSec: 0,
      errorCode: null,
    });
  });
  test("Auth-Pass is what the backend gets; without it, an internal error (the token is not a password)", () => {
    const ok = decide(
      "Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\nAuth-Pass: master\r\n",
    );
    assert.equal(ok.kind === "ok" && ok.pass, "master");
    const none = decide("Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n");
    assert.equal(none.kind, "error");
    assert.ok(none.kind === "error" && !none.log.includes(TOKEN));
  });
});

// ---- tokens never logged ----------------------------------------------------

describe("a random token never appears in a log step", () => {
  const token = fc.stringMatching(/^[A-Za-z0-9._~+\/-]{16,64}$/);
  for (const p of PROTOS) {
    test(`${p.name}: good, malformed, too long and refused payloads`, () => {
      fc.assert(
        fc.property(token, fc.integer({ min: 0, max: 4 }), (t, shape) => {
          const payloads = [
            xo("u", t),
            "user=u\x01auth=Bearer " + t + "\x01",
            ob("q,,", "auth=Bearer " + t),
            ob("n,,", "auth=Bearer " + t + "\r"),
            xo("u", t + " " + t),
          ];
          const m = machine(p, { maxErrors: 100 } as Partial<ServerConfig>);
          const pre = p.name === "SMTP" ? "EHLO x\r\n" : "";
          const encoded = b64(payloads[shape]);
          const steps = [...run(m, pre + p.auth + "XOAUTH2 " + encoded + "\r\n")];
          if (steps.at(-1)?.kind === "auth") {
            steps.push(
              ...m.authRefused({ message: "no", errorCode: null, saslError: "AQ==", close: false }),
            );
            steps.push(...run(m, "bad\r\n"));
          }
          // and one far too long line with the token in it
          steps.push(...run(m, p.auth + "XOAUTH2 " + encoded.repeat(200) + "\r\n"));
          for (const l of logs(steps)) {
            if (l.includes(t) || l.includes(encoded.slice(0, 16))) return false;
          }
          return true;
        }),
        { numRuns: 50 },
      );
    });
  }
});

// ---- configuration ----------------------------------------------------------

describe("configuration: xoauth2 / oauthbearer values, pop3_client_buffer", () => {
  async function loadText(conf: string) {
    const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { loadConfig } = await import("../../lib/config/load.ts");
    const dir = mkdtempSync(join(tmpdir(), "mailgate-oauth-"));
    try {
      writeFileSync(join(dir, "nginx.conf"), conf);
      return await loadConfig({
        file: join(dir, "nginx.conf"),
        prefix: dir,
        lookup: () => Promise.resolve([]),
        hostname: "host.test",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  test("accepted in each *_auth (case-insensitively); client buffers 16k by default where OAuth is offered, else 4096; set values win", async () => {
    const cfg = await loadText(
      "events {}\nmail {\nauth_http 127.0.0.1:1;\n" +
        "server { listen 127.0.0.1:10143; protocol imap; imap_auth XOAUTH2 oauthbearer; }\n" +
        "server { listen 127.0.0.1:10110; protocol pop3; pop3_auth xoauth2 oauthbearer; pop3_client_buffer 16k; }\n" +
        "server { listen 127.0.0.1:10025; protocol smtp; smtp_auth oauthbearer; }\n" +
        "server { listen 127.0.0.1:10026; protocol smtp; smtp_auth plain oauthbearer; smtp_client_buffer 2k; }\n" +
        "server { listen 127.0.0.1:10111; protocol pop3; }\n}\n",
    );
    const [i, p, s, s2, plain] = cfg.mail!.servers;
    assert.deepEqual(i.imapAuth, ["xoauth2", "oauthbearer"]);
    assert.deepEqual(p.pop3Auth, ["xoauth2", "oauthbearer"]);
    assert.deepEqual(s.smtpAuth, ["oauthbearer"]);
    assert.equal(p.pop3ClientBuffer, 16384);
    assert.equal(i.imapClientBuffer, 16384, "imap_auth offers OAuth: 16k");
    assert.equal(i.pop3ClientBuffer, 4096, "pop3_auth is the default (no OAuth): 4096");
    assert.equal(s.smtpClientBuffer, 16384);
    assert.equal(s2.smtpClientBuffer, 2048, "an explicit smtp_client_buffer wins");
    assert.equal(plain.pop3ClientBuffer, 4096);
    assert.equal(plain.imapClientBuffer, 4096);
  });
  test("an unknown value is still an error", async () => {
    await assert.rejects(
      loadText(
        "events {}\nmail {\nauth_http 127.0.0.1:1;\n" +
          "server { listen 127.0.0.1:10143; protocol imap; imap_auth xoauth3; }\n}\n",
      ),
    );
  });
});

describe("token sizes with 4096-byte buffers (README 'Token sizes')", () => {
  for (const p of PROTOS) {
    test(`${p.name}: the largest XOAUTH2 token an initial response carries is about 3000 bytes`, () => {
      const cfg = {
        imapClientBuffer: 4096,
        smtpClientBuffer: 4096,
        pop3ClientBuffer: 4096,
      } as Partial<ServerConfig>;
      const fits = (n: number) => {
        const m = machine(p, cfg);
        if (p.name === "SMTP") run(m, "EHLO x\r\n");
        const out = run(
          m,
          p.auth + "XOAUTH2 " + b64(xo("test@example.com", "A".repeat(n))) + "\r\n",
        );
        return out.at(-1)?.kind === "auth";
      };
      let lo = 100; // fits
      let hi = 4096; // does not
      assert.ok(fits(lo) && !fits(hi));
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (fits(mid)) lo = mid;
        else hi = mid;
      }
      assert.ok(lo >= 2990 && lo <= 3040, `largest token ${lo}`);
    });
  }
});
