// proxy_oauth_passthrough (mailgate extension, issue 15): the backend
// logins of the three protocols sign in with the client's XOAUTH2 /
// OAUTHBEARER mechanism and token, rebuilt from Auth-User / Auth-Pass.
// Transcripts as in imap_backend_test.ts, split at every byte.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import type { BackendContext, BackendLogin, Credentials } from "../../lib/core/machine.ts";
import { encodeBase64 } from "../../lib/core/sasl.ts";
import { AuthResponseParser, decideAuth } from "../../lib/auth/http_response.ts";
import { createImapBackendLogin } from "../../lib/imap/backend_login.ts";
import { createPop3BackendLogin } from "../../lib/pop3/backend_login.ts";
import { createSmtpBackendLogin } from "../../lib/smtp/backend_login.ts";
import { renderBackendStep } from "../helpers/drive_machine.ts";

/** The client's token; the auth answer's Auth-Pass is AUTH_PASS (it may rewrite it). */
const CLIENT_TOKEN = "client-token-1";
const AUTH_USER = "alice@example.org";
const AUTH_PASS = "ya29.tok=en,2";

interface Opts {
  on?: boolean;
  method?: Credentials["method"];
  user?: string;
  pass?: string | null;
  passError?: boolean;
  backendTls?: BackendContext["backendTls"];
  proxySmtpAuth?: boolean;
  forward?: boolean;
}

function ctx(o: Opts): BackendContext {
  const method = o.method ?? "xoauth2";
  return {
    config: {
      proxyBuffer: 4096,
      proxyPassErrorMessage: o.passError ?? false,
      proxyOauthPassthrough: o.on ?? true,
      proxyPop3Xclient: o.forward ?? false,
      proxySmtpAuth: o.proxySmtpAuth ?? true,
      xclient: false,
      serverName: "mx.example",
    } as ServerConfig,
    creds: {
      method,
      user: "client@example.org",
      pass: CLIENT_TOKEN,
      salt: null,
      saslPayload: "user=client@example.org\x01auth=Bearer " + CLIENT_TOKEN + "\x01\x01",
      tag: "a2",
      smtp: { helo: "c.example", esmtp: true, from: "", to: "" },
    },
    user: o.user ?? AUTH_USER,
    pass: o.pass === undefined ? AUTH_PASS : o.pass,
    clientAddr: "203.0.113.7",
    clientHost: "[UNAVAILABLE]",
    backendTls: o.backendTls,
    forward: o.forward
      ? {
        clientIp: "203.0.113.7",
        clientPort: 40000,
        localIp: "127.0.0.1",
        localPort: 110,
        sessionId: "*3",
      }
      : undefined,
  };
}

/** Pushes each chunk ("<tls>": the handshake completes); rendered steps. */
function feed(m: BackendLogin, chunks: string[]): string[] {
  const out: string[] = [];
  for (const c of chunks) {
    const steps = c === "<tls>" ? m.tlsStarted() : m.push(binaryToBytes(c));
    for (const s of steps) out.push(renderBackendStep(s));
  }
  return out;
}

/** The transcript with the backend's bytes in one chunk, then split in two at every byte. */
function everySplit(make: () => BackendLogin, script: string, expected: string[]): void {
  assert.deepEqual(feed(make(), [script]), expected);
  for (let k = 1; k < script.length; k++) {
    assert.deepEqual(
      feed(make(), [script.slice(0, k), script.slice(k)]),
      expected,
      `split at ${k}`,
    );
  }
}

const XOAUTH2 = encodeBase64(`user=${AUTH_USER}\x01auth=Bearer ${AUTH_PASS}\x01\x01`);
/** OAUTHBEARER's a= escapes ',' and '=' (RFC 5801). */
const OAUTHBEARER = encodeBase64(`n,a=a=3Db=2Cc@example.org,\x01auth=Bearer ${AUTH_PASS}\x01\x01`);
/** An RFC 7628 error challenge as Dovecot sends it. */
const ERROR_CHALLENGE = encodeBase64(
  '{"status":"invalid_token","schemes":"bearer","scope":"mail"}',
);

function assertNoSecrets(out: string[]): void {
  for (const line of out) {
    const log = line.split("| ")[1] ?? "";
    for (const secret of [AUTH_PASS, CLIENT_TOKEN, XOAUTH2, OAUTHBEARER]) {
      assert.ok(!log.includes(secret), `secret in log: ${log}`);
    }
  }
}

describe("proxy_oauth_passthrough: IMAP", () => {
  const imap = (o: Opts = {}) => createImapBackendLogin(ctx(o));

  test("SASL-IR offered: AUTHENTICATE XOAUTH2 with Auth-User/Auth-Pass as the initial response", () => {
    everySplit(
      imap,
      "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2] Dovecot ready.\r\n" +
        "* CAPABILITY IMAP4rev1 IDLE\r\na2 OK Logged in\r\n",
      [
        `B: a2 AUTHENTICATE XOAUTH2 ${XOAUTH2}\r\n`,
        "DONE * CAPABILITY IMAP4rev1 IDLE\r\na2 OK Logged in\r\n",
      ],
    );
  });

  test("no SASL-IR: the payload follows the continuation; OAUTHBEARER escapes a=", () => {
    everySplit(
      () => imap({ method: "oauthbearer", user: "a=b,c@example.org" }),
      "* OK [CAPABILITY IMAP4rev1 auth=oauthbearer] hi\r\n+ \r\na2 OK in\r\n",
      ["B: a2 AUTHENTICATE OAUTHBEARER\r\n", `B: ${OAUTHBEARER}\r\n`, "DONE a2 OK in\r\n"],
    );
  });

  test("a greeting without capabilities: CAPABILITY first", () => {
    everySplit(
      imap,
      "* OK hi\r\n* CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2\r\nmgs2 OK\r\na2 OK in\r\n",
      ["B: mgs2 CAPABILITY\r\n", `B: a2 AUTHENTICATE XOAUTH2 ${XOAUTH2}\r\n`, "DONE a2 OK in\r\n"],
    );
  });

  test("the mechanism not offered: internal error with a clear log line, never LOGIN", () => {
    for (
      const greeting of ["* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=OAUTHBEARER] hi\r\n"]
    ) {
      const out = feed(imap(), [greeting]);
      assert.deepEqual(out, [
        "FAIL * BAD internal server error\r\n| error upstream does not offer AUTH XOAUTH2, " +
        "which proxy_oauth_passthrough needs",
      ]);
    }
    const out = feed(imap(), ["* OK hi\r\n", "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nmgs2 OK\r\n"]);
    assert.equal(out.length, 2);
    assert.match(
      out[1],
      /^FAIL \* BAD internal server error\r\n\| error upstream does not offer AUTH XOAUTH2/,
    );
  });

  test("an error challenge gets AQ==; the NO that follows fails the login (token never logged)", () => {
    const script = `* OK [CAPABILITY SASL-IR AUTH=XOAUTH2] hi\r\n+ ${ERROR_CHALLENGE}\r\n` +
      "a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
    const expected = [
      `B: a2 AUTHENTICATE XOAUTH2 ${XOAUTH2}\r\n`,
      "B: AQ==\r\n",
      "FAIL * BAD internal server error\r\n| error upstream sent invalid response: " +
      '"a2 NO [AUTHENTICATIONFAILED] Authentication failed."',
    ];
    everySplit(imap, script, expected);
    assertNoSecrets(feed(imap(), [script]));
    // proxy_pass_error_message on: the NO alone reaches the client, not the challenge.
    const passed = feed(imap({ passError: true }), [script]);
    assert.equal(
      passed[2].split("| ")[0],
      "FAIL a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
    );
  });

  test("a second challenge after the dummy is invalid", () => {
    const out = feed(imap(), [`* OK [CAPABILITY SASL-IR AUTH=XOAUTH2] hi\r\n+ x\r\n+ y\r\n`]);
    assert.deepEqual(out.slice(1), [
      "B: AQ==\r\n",
      'FAIL * BAD internal server error\r\n| error upstream sent invalid response: "+ y"',
    ]);
  });

  test("after STARTTLS only the capabilities read over TLS count", () => {
    const out = feed(imap({ backendTls: "starttls" }), [
      "* OK [CAPABILITY IMAP4rev1 STARTTLS SASL-IR AUTH=XOAUTH2] hi\r\n",
      "mgs1 OK go\r\n",
      "<tls>",
      "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nmgs2 OK\r\n",
    ]);
    assert.deepEqual(out.slice(0, 3), [
      "B: mgs1 STARTTLS\r\n",
      "STARTTLS",
      "B: mgs2 CAPABILITY\r\n",
    ]);
    assert.match(out[3], /^FAIL .*does not offer AUTH XOAUTH2/s);
  });

  test("off, or a password login with it on: LOGIN with Auth-User/Auth-Pass as before", () => {
    const login = [
      `B: a2 LOGIN {${AUTH_USER.length}}\r\n`,
      `B: ${AUTH_USER} {${AUTH_PASS.length}}\r\n`,
      `B: ${AUTH_PASS}\r\n`,
      "DONE a2 OK in\r\n",
    ];
    for (const o of [{ on: false }, { method: "plain" as const }]) {
      assert.deepEqual(
        feed(imap(o), [
          "* OK [CAPABILITY SASL-IR AUTH=XOAUTH2] hi\r\n",
          "+ \r\n",
          "+ \r\n",
          "a2 OK in\r\n",
        ]),
        login,
      );
    }
  });

  test("no Auth-Pass: the client's own token", () => {
    const out = feed(imap({ pass: null }), ["* OK [CAPABILITY SASL-IR AUTH=XOAUTH2] hi\r\n"]);
    const b64 = encodeBase64(`user=${AUTH_USER}\x01auth=Bearer ${CLIENT_TOKEN}\x01\x01`);
    assert.deepEqual(out, [`B: a2 AUTHENTICATE XOAUTH2 ${b64}\r\n`]);
  });
});

describe("proxy_oauth_passthrough: POP3", () => {
  const pop3 = (o: Opts = {}) => createPop3BackendLogin(ctx(o));
  const CAPA = "+OK\r\nUSER\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n";

  test("CAPA lists the mechanism: AUTH XOAUTH2 <initial response>", () => {
    everySplit(
      pop3,
      "+OK Dovecot ready.\r\n" + CAPA + "+OK Logged in.\r\n",
      ["B: CAPA\r\n", `B: AUTH XOAUTH2 ${XOAUTH2}\r\n`, "DONE +OK Logged in.\r\n"],
    );
  });

  test("OAUTHBEARER, mechanism matched in any case", () => {
    everySplit(
      () => pop3({ method: "oauthbearer", user: "a=b,c@example.org" }),
      "+OK hi\r\n+OK\r\nsasl plain oauthbearer\r\n.\r\n+OK in\r\n",
      ["B: CAPA\r\n", `B: AUTH OAUTHBEARER ${OAUTHBEARER}\r\n`, "DONE +OK in\r\n"],
    );
  });

  test("the mechanism not offered, or CAPA refused: internal error, never USER/PASS", () => {
    for (
      const capa of ["+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n", "+OK\r\nXOAUTH2\r\n.\r\n", "-ERR no\r\n"]
    ) {
      const out = feed(pop3(), ["+OK hi\r\n", capa]);
      assert.deepEqual(out, [
        "B: CAPA\r\n",
        "FAIL -ERR internal server error\r\n| error upstream does not offer AUTH XOAUTH2, " +
        "which proxy_oauth_passthrough needs",
      ], capa);
    }
  });

  test("an error challenge gets AQ==; the -ERR that follows fails the login", () => {
    const script = "+OK hi\r\n" + CAPA +
      `+ ${ERROR_CHALLENGE}\r\n-ERR [AUTH] Authentication failed.\r\n`;
    const expected = [
      "B: CAPA\r\n",
      `B: AUTH XOAUTH2 ${XOAUTH2}\r\n`,
      "B: AQ==\r\n",
      'FAIL -ERR internal server error\r\n| error upstream sent invalid response: "-ERR [AUTH] Authentication failed."',
    ];
    everySplit(pop3, script, expected);
    assertNoSecrets(feed(pop3(), [script]));
    const passed = feed(pop3({ passError: true }), [script]);
    assert.equal(passed[3].split("| ")[0], "FAIL -ERR [AUTH] Authentication failed.\r\n");
  });

  test("with proxy_pop3_xclient: XCLIENT, then AUTH", () => {
    const out = feed(pop3({ forward: true }), [
      "+OK [XCLIENT] hi\r\n" + CAPA + "+OK\r\n+OK in\r\n",
    ]);
    assert.deepEqual(out, [
      "B: CAPA\r\n",
      "B: XCLIENT ADDR=203.0.113.7 PORT=40000 SESSION=*3 TTL=4\r\n",
      `B: AUTH XOAUTH2 ${XOAUTH2}\r\n`,
      "DONE +OK in\r\n",
    ]);
  });

  test("after STLS only the CAPA read over TLS counts", () => {
    const out = feed(pop3({ backendTls: "starttls" }), [
      "+OK hi\r\n",
      "+OK go\r\n",
      "<tls>",
      "+OK\r\nSASL PLAIN\r\n.\r\n",
    ]);
    assert.deepEqual(out.slice(0, 3), ["B: STLS\r\n", "STARTTLS", "B: CAPA\r\n"]);
    assert.match(out[3], /^FAIL .*does not offer AUTH XOAUTH2/s);
  });

  test("off: USER/PASS with Auth-User/Auth-Pass, no CAPA", () => {
    assert.deepEqual(feed(pop3({ on: false }), ["+OK hi\r\n", "+OK\r\n", "+OK in\r\n"]), [
      `B: USER ${AUTH_USER}\r\n`,
      `B: PASS ${AUTH_PASS}\r\n`,
      "DONE +OK in\r\n",
    ]);
  });
});

describe("proxy_oauth_passthrough: SMTP", () => {
  const smtp = (o: Opts = {}) => createSmtpBackendLogin(ctx(o));
  const EHLO =
    "250-mx.example\r\n250-PIPELINING\r\n250-AUTH PLAIN XOAUTH2 OAUTHBEARER\r\n250 8BITMIME\r\n";

  test("EHLO lists the mechanism: AUTH XOAUTH2 <initial response>, then 235 to the client", () => {
    everySplit(
      smtp,
      "220 mx ESMTP\r\n" + EHLO + "235 2.7.0 Authentication successful\r\n",
      ["B: EHLO mx.example\r\n", `B: AUTH XOAUTH2 ${XOAUTH2}\r\n`, "DONE 235 2.0.0 OK\r\n"],
    );
  });

  test("OAUTHBEARER; the old AUTH= line counts too", () => {
    everySplit(
      () => smtp({ method: "oauthbearer", user: "a=b,c@example.org" }),
      "220 mx\r\n250-mx\r\n250 AUTH=PLAIN OAUTHBEARER\r\n235 ok\r\n",
      ["B: EHLO mx.example\r\n", `B: AUTH OAUTHBEARER ${OAUTHBEARER}\r\n`, "DONE 235 2.0.0 OK\r\n"],
    );
  });

  test("the mechanism not offered: internal error, never AUTH PLAIN", () => {
    for (const ehlo of ["250-mx\r\n250 AUTH PLAIN LOGIN\r\n", "250 mx\r\n"]) {
      assert.deepEqual(feed(smtp(), ["220 mx\r\n", ehlo]), [
        "B: EHLO mx.example\r\n",
        "FAIL 451 4.3.2 Internal server error\r\n| error upstream does not offer AUTH XOAUTH2, " +
        "which proxy_oauth_passthrough needs",
      ]);
    }
  });

  test("an error challenge (334) gets AQ==; the 535 that follows fails the login", () => {
    const script = "220 mx\r\n" + EHLO +
      `334 ${ERROR_CHALLENGE}\r\n535 5.7.8 Authentication failed\r\n`;
    const expected = [
      "B: EHLO mx.example\r\n",
      `B: AUTH XOAUTH2 ${XOAUTH2}\r\n`,
      "B: AQ==\r\n",
      'FAIL 451 4.3.2 Internal server error\r\n| error upstream sent invalid response: "535 5.7.8 Authentication failed"',
    ];
    everySplit(smtp, script, expected);
    assertNoSecrets(feed(smtp(), [script]));
    const passed = feed(smtp({ passError: true }), [script]);
    assert.equal(passed[3].split("| ")[0], "FAIL 535 5.7.8 Authentication failed\r\n");
  });

  test("off: AUTH PLAIN with Auth-User/Auth-Pass; proxy_smtp_auth off: no AUTH at all", () => {
    assert.deepEqual(feed(smtp({ on: false }), ["220 mx\r\n", EHLO, "235 ok\r\n"]), [
      "B: EHLO mx.example\r\n",
      `B: AUTH PLAIN ${encodeBase64(`\0${AUTH_USER}\0${AUTH_PASS}`)}\r\n`,
      "DONE 235 2.0.0 OK\r\n",
    ]);
    assert.deepEqual(feed(smtp({ proxySmtpAuth: false }), ["220 mx\r\n", EHLO]), [
      "B: EHLO mx.example\r\n",
      "DONE 235 2.0.0 OK\r\n",
    ]);
  });
});

describe("proxy_oauth_passthrough: an auth_http answer without Auth-Pass", () => {
  const answer = binaryToBytes(
    "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 192.0.2.9\r\nAuth-Port: 143\r\n\r\n",
  );
  function decide(method: Credentials["method"], oauthPassthrough: boolean | undefined) {
    const parser = new AuthResponseParser();
    const r = parser.feed(answer);
    assert.equal(r.kind, "done");
    if (r.kind !== "done") throw new Error("unreachable");
    return decideAuth(r.headers, {
      protocol: "imap",
      creds: { method, user: USER_IN_PAYLOAD, pass: CLIENT_TOKEN, salt: null },
      attempt: 1,
      clientIp: "192.0.2.1",
      clientHost: null,
      proxyProtocol: null,
      tls: null,
      verifyClient: "off",
      passClientCert: false,
      oauthPassthrough,
    }, "127.0.0.1:8080");
  }
  const USER_IN_PAYLOAD = "client@example.org";

  for (const method of ["xoauth2", "oauthbearer"] as const) {
    test(`${method}, passthrough on: the client's token goes to the backend login`, () => {
      assert.deepEqual(decide(method, true), {
        kind: "ok",
        addr: "192.0.2.9",
        port: 143,
        user: USER_IN_PAYLOAD,
        pass: CLIENT_TOKEN,
        backendName: "192.0.2.9:143",
      });
    });
    test(`${method}, passthrough off: the token is no password (internal error, as freenginx)`, () => {
      for (const on of [false, undefined]) {
        assert.deepEqual(decide(method, on), {
          kind: "error",
          log: "auth http server 127.0.0.1:8080 did not send password",
        });
      }
    });
  }
  test("other methods are unchanged by passthrough", () => {
    assert.equal(decide("cram-md5", true).kind, "error");
    assert.equal(decide("plain", true).kind, "ok");
  });
});

describe("proxy_oauth_passthrough directive", () => {
  /** The servers of a mail block (auth_http at mail level), as loaded. */
  async function load(mailBody: string): Promise<ServerConfig[]> {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-oauthpt-"));
    try {
      writeFileSync(
        join(dir, "nginx.conf"),
        `events {}\nmail {\nauth_http 127.0.0.1:9000;\n${mailBody}\n}\n`,
      );
      const cfg = await loadConfig({
        file: join(dir, "nginx.conf"),
        prefix: dir,
        lookup: () => Promise.reject(new Error("no DNS")),
        hostname: "host.test",
      });
      return cfg.mail!.servers;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const server = (port: number, body = "") =>
    `server { listen 127.0.0.1:${port}; protocol imap; ${body} }`;

  test("default off; on at mail level is inherited; a server may turn it off", async () => {
    assert.equal((await load(server(10143)))[0].proxyOauthPassthrough, false);
    const s = await load(
      `proxy_oauth_passthrough on;\n${server(10143)}\n${
        server(10144, "proxy_oauth_passthrough off;")
      }`,
    );
    assert.deepEqual(s.map((x) => x.proxyOauthPassthrough), [true, false]);
  });

  test("not a flag, or no argument: nginx's errors", async () => {
    await assert.rejects(
      load(server(10143, "proxy_oauth_passthrough yes;")),
      /invalid value "yes" in "proxy_oauth_passthrough" directive, it must be "on" or "off"/,
    );
    await assert.rejects(
      load(`${server(10143)}\nproxy_oauth_passthrough;`),
      /invalid number of arguments in "proxy_oauth_passthrough" directive/,
    );
  });
});
