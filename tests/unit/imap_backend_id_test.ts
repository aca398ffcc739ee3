// proxy_imap_id (mailgate extension): the backend login tells a backend
// that offers ID who the client is before LOGIN, as Dovecot's proxy does.
// Transcripts as in imap_backend_test.ts, split at every byte.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";
import type { BackendContext, BackendLogin, Credentials, ForwardInfo } from "../../lib/core/machine.ts";
import { createImapBackendLogin } from "../../lib/imap/backend_login.ts";
import { renderBackendStep } from "../helpers/drive_machine.ts";

const FORWARD: ForwardInfo = {
  clientIp: "203.0.113.7",
  clientPort: 40000,
  localIp: "127.0.0.1",
  localPort: 1143,
  sessionId: "*17",
};

function login(
  o: { on?: boolean; imapId?: Credentials["imapId"]; backendTls?: BackendContext["backendTls"]; forward?: ForwardInfo } =
    {},
) {
  return createImapBackendLogin({
    config: { proxyBuffer: 4096, proxyPassErrorMessage: false, proxyImapId: o.on ?? true } as ServerConfig,
    creds: { method: "plain", user: "client", pass: "pw", salt: null, tag: "a2", imapId: o.imapId },
    user: "test@example.com",
    pass: "secret",
    clientAddr: "203.0.113.7",
    clientHost: "[UNAVAILABLE]",
    backendTls: o.backendTls,
    forward: o.forward ?? FORWARD,
  });
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

const OWN = '"x-originating-ip" "203.0.113.7" "x-originating-port" "40000" "x-connected-ip" "127.0.0.1" ' +
  '"x-connected-port" "1143" "x-session-id" "*17" "x-proxy-ttl" "4"';
const ID = `B: mgs3 ID (${OWN})\r\n`;
const LOGIN = ["B: a2 LOGIN {16}\r\n", "B: test@example.com {6}\r\n", "B: secret\r\n"];
const TAIL = ["+ \r\n", "+ \r\n", "a2 OK Logged in\r\n"];
const DONE = "DONE a2 OK Logged in\r\n";

describe("proxy_imap_id: ID before LOGIN", () => {
  test("greeting offers ID in its CAPABILITY code: ID, its answer skipped, then LOGIN", () => {
    assert.deepEqual(
      feed(login(), [
        "* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE] Dovecot ready.\r\n",
        '* ID ("name" "Dovecot")\r\nmgs3 OK ID completed.\r\n',
        ...TAIL,
      ]),
      [ID, ...LOGIN, DONE],
    );
  });

  test("a greeting without capabilities: CAPABILITY first; ID found in the untagged list", () => {
    assert.deepEqual(
      feed(login(), [
        "* OK ready\r\n",
        "* CAPABILITY IMAP4rev1 id\r\nmgs2 OK done\r\n",
        "mgs3 OK\r\n",
        ...TAIL,
      ]),
      ["B: mgs2 CAPABILITY\r\n", ID, ...LOGIN, DONE],
    );
  });

  test("a backend without ID is logged in to as today; IDLE is not ID", () => {
    assert.deepEqual(
      feed(login(), ["* OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n", ...TAIL]),
      [...LOGIN, DONE],
    );
    assert.deepEqual(
      feed(login(), ["* OK hi\r\n", "* CAPABILITY IMAP4rev1 IDLE\r\nmgs2 OK\r\n", ...TAIL]),
      ["B: mgs2 CAPABILITY\r\n", ...LOGIN, DONE],
    );
  });

  test("off, or no forward info: exactly the plain login, even to a backend offering ID", () => {
    for (const m of [login({ on: false }), createImapBackendLogin({
      config: { proxyBuffer: 4096, proxyPassErrorMessage: false, proxyImapId: true } as ServerConfig,
      creds: { method: "plain", user: "c", pass: "p", salt: null, tag: "a2" },
      user: "test@example.com",
      pass: "secret",
      clientAddr: "",
      clientHost: "",
    })]) {
      assert.deepEqual(feed(m, ["* OK [CAPABILITY IMAP4rev1 ID] hi\r\n", ...TAIL]), [...LOGIN, DONE]);
    }
  });

  test("a refused ID does not stop the login (Dovecot: 'don't care if it failed')", () => {
    assert.deepEqual(
      feed(login(), ["* OK [CAPABILITY ID] hi\r\n", "mgs3 BAD no\r\n", ...TAIL]),
      [ID, ...LOGIN, DONE],
    );
  });

  test("anything but an untagged line or mgs3's answer fails: internal error", () => {
    const r = feed(login(), ["* OK [CAPABILITY ID] hi\r\n", "+ what\r\n"]);
    assert.equal(r[0], ID);
    assert.match(r[1], /^FAIL \* BAD internal server error\r\n\| error upstream sent invalid response: "\+ what"/);
  });

  test("the client's retained fields follow mailgate's; reserved keys are dropped", () => {
    const r = feed(login({ imapId: [["name", "imaplib"], ["x-originating-ip", "10.0.0.1"], ["os", null]] }), [
      "* OK [CAPABILITY ID] hi\r\n",
    ]);
    assert.deepEqual(r, [`B: mgs3 ID (${OWN} "name" "imaplib" "os" NIL)\r\n`]);
  });

  test("after STARTTLS the capabilities read over TLS decide", () => {
    assert.deepEqual(
      feed(login({ backendTls: "starttls" }), [
        "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n",
        "mgs1 OK go\r\n",
        "<tls>",
        "* CAPABILITY IMAP4rev1 ID AUTH=PLAIN\r\nmgs2 OK\r\n",
        "mgs3 OK\r\n",
        ...TAIL,
      ]),
      ["B: mgs1 STARTTLS\r\n", "STARTTLS", "B: mgs2 CAPABILITY\r\n", ID, ...LOGIN, DONE],
    );
  });

  test("split at every byte boundary", () => {
    const script = "* OK hi\r\n* CAPABILITY IMAP4rev1 ID\r\nmgs2 OK\r\n* ID NIL\r\nmgs3 OK\r\n+ \r\n+ \r\n" +
      "* 1 EXISTS\r\na2 OK in\r\n";
    const expected = ["B: mgs2 CAPABILITY\r\n", ID, ...LOGIN, "DONE * 1 EXISTS\r\na2 OK in\r\n"];
    assert.deepEqual(feed(login(), [script]), expected);
    for (let k = 1; k < script.length; k++) {
      assert.deepEqual(feed(login(), [script.slice(0, k), script.slice(k)]), expected, `split at ${k}`);
    }
  });
});
