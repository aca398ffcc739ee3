// Real peer: Dovecot with TLS as the backend of mailgate's TLS-to-backend
// extension (README "TLS to backends"): `proxy_ssl on` to its imaps/pop3s
// listeners and `proxy_starttls on` to its plain ones, with
// `proxy_ssl_verify on`, `proxy_ssl_trusted_certificate` and
// `proxy_ssl_name`. Dovecot runs with `ssl = required` on 127.0.0.2, so
// mailgate (from 127.0.0.1) is not a "secured" same-address client and a
// plaintext login is refused: a fetch that works proves the login went over
// TLS, and Dovecot's own login line says so (", TLS,").

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { ROOT, type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";
import { runClient } from "../helpers/run_client.ts";

const avail = peersAvailable("dovecot", "curl", "python3");
const TLS = join(ROOT, "tests", "fixtures", "tls");
const USER = "alice@example.org";
const PASS = "wonderland";
/** Dovecot's address: loopback, but not the one mailgate connects from. */
const DOVECOT_HOST = "127.0.0.2";
/** Bound on every client process. */
const CLIENT_TIMEOUT_MS = 20000;
/** Bound on waiting for Dovecot to write a log line. */
const LOG_WAIT_MS = 3000;

/** 8-bit bytes, lines starting with '.', CRLF endings, ~200 KiB. */
function message(): Buffer {
  const head = "From: sender@example.org\r\nTo: alice@example.org\r\nSubject: over TLS\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n";
  const lines: string[] = [".leading dot", "..", "."];
  for (let i = 0; i < 2600; i++) {
    let l = i % 10 === 0 ? "." : "";
    for (let j = 0; j < 76; j++) l += String.fromCharCode(0x21 + ((i * 31 + j * 7) % 0xde));
    lines.push(l);
  }
  return Buffer.from(head + lines.join("\r\n") + "\r\n", "latin1");
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Dovecot's "Login:" lines (imap-login and pop3-login). */
const loginLines = (d: Dovecot) => d.log().split("\n").filter((l) => /-login: Info: Login: /.test(l));

/** Waits (bounded) until Dovecot has logged more than `before` login lines; returns the new ones. */
async function newLogins(d: Dovecot, before: number): Promise<string[]> {
  const deadline = Date.now() + LOG_WAIT_MS;
  while (loginLines(d).length <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return loginLines(d).slice(before);
}

describe("real peers: Dovecot with TLS as mailgate's TLS backend", { skip: avail.ok ? false : avail.why }, () => {
  let dovecot: Dovecot;
  const msg = message();
  before(async () => {
    dovecot = await startDovecot({ [USER]: PASS }, {
      host: DOVECOT_HOST,
      ssl: { cert: join(TLS, "server.pem"), key: join(TLS, "server.key"), required: true },
    });
    dovecot.deliver(USER, "1.tls", msg);
  });
  after(async () => {
    await dovecot?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      let port: Record<string, number>;
      before(async () => {
        const names = ["imaps", "imapStarttls", "pop3s", "pop3Starttls", "imapPlain", "badName", "defaultName"];
        port = await namedPorts(names);
        const verify = `proxy_ssl_verify on; proxy_ssl_trusted_certificate ${join(TLS, "ca.pem")};`;
        const d = dovecot;
        mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  proxy_pass_error_message on;
  server { listen 127.0.0.1:${port.imaps}; protocol imap; auth_table imaps.table;
           proxy_ssl on; ${verify} proxy_ssl_name localhost; }
  server { listen 127.0.0.1:${port.imapStarttls}; protocol imap; auth_table imap.table;
           proxy_starttls on; ${verify} proxy_ssl_name localhost; }
  server { listen 127.0.0.1:${port.pop3s}; protocol pop3; auth_table pop3s.table;
           proxy_ssl on; ${verify} proxy_ssl_name localhost; }
  server { listen 127.0.0.1:${port.pop3Starttls}; protocol pop3; auth_table pop3.table;
           proxy_starttls on; ${verify} proxy_ssl_name localhost; }
  server { listen 127.0.0.1:${port.imapPlain}; protocol imap; auth_table imap.table; }
  server { listen 127.0.0.1:${port.badName}; protocol imap; auth_table imaps.table;
           proxy_ssl on; ${verify} proxy_ssl_name wrong.example; }
  server { listen 127.0.0.1:${port.defaultName}; protocol imap; auth_table imaps.table;
           proxy_ssl on; ${verify} }
}
`, {
          "imaps.table": `@example.org ${d.host}:${d.imapsPort}\n`,
          "imap.table": `@example.org ${d.host}:${d.imapPort}\n`,
          "pop3s.table": `@example.org ${d.host}:${d.pop3sPort}\n`,
          "pop3.table": `@example.org ${d.host}:${d.pop3Port}\n`,
        });
      });
      after(async () => {
        await mg?.stop();
      });

      /** curl imap:// through mailgate (plain on the client side). */
      async function curlFetch(p: number) {
        return await runClient("curl", ["-s", "--max-time", String(CLIENT_TIMEOUT_MS / 1000), "--user", `${USER}:${PASS}`,
          `imap://127.0.0.1:${p}/INBOX;UID=1`], { timeoutMs: CLIENT_TIMEOUT_MS + 5000 });
      }

      /** Python poplib through mailgate: RETR 1, with the dot-stuffing undone. */
      async function poplibRetr(p: number) {
        const py = `
import poplib, hashlib, sys
p = poplib.POP3("127.0.0.1", ${p}, timeout=15)
p.user("${USER}")
p.pass_("${PASS}")
resp, lines, octets = p.retr(1)
body = b"\\r\\n".join(lines) + b"\\r\\n"
sys.stdout.write("%d %s" % (len(body), hashlib.sha256(body).hexdigest()))
p.quit()
`;
        return await runClient("python3", ["-c", py], { timeoutMs: CLIENT_TIMEOUT_MS });
      }

      for (const [name, mode] of [["imaps", "proxy_ssl"], ["imapStarttls", "proxy_starttls"]] as const) {
        it(`IMAP, ${mode} on: curl fetches the message byte for byte; Dovecot logged the login over TLS`, async () => {
          const n = loginLines(dovecot).length;
          const r = await curlFetch(port[name]);
          assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}\n${mg.stderr()}`);
          assert.ok(r.stdout.equals(msg), `message differs (${r.stdout.length} vs ${msg.length} bytes)`);
          const logins = await newLogins(dovecot, n);
          assert.equal(logins.length, 1, logins.join("\n"));
          assert.match(logins[0], new RegExp(`imap-login: Info: Login: user=<${USER}>, method=PLAIN, rip=127\\.0\\.0\\.1, lip=127\\.0\\.0\\.2, .*, TLS, `));
        });
      }

      for (const [name, mode] of [["pop3s", "proxy_ssl"], ["pop3Starttls", "proxy_starttls"]] as const) {
        it(`POP3, ${mode} on: poplib retrieves the message byte for byte; Dovecot logged the login over TLS`, async () => {
          const n = loginLines(dovecot).length;
          const r = await poplibRetr(port[name]);
          assert.equal(r.status, 0, `${r.stderr}\n${mg.stderr()}`);
          assert.equal(r.stdout.toString(), `${msg.length} ${sha256(msg)}`);
          const logins = await newLogins(dovecot, n);
          assert.equal(logins.length, 1, logins.join("\n"));
          assert.match(logins[0], new RegExp(`pop3-login: Info: Login: user=<${USER}>, method=PLAIN, rip=127\\.0\\.0\\.1, lip=127\\.0\\.0\\.2, .*, TLS, `));
        });
      }

      /** LOGIN through mailgate by hand; the line the client gets back. */
      async function login(p: number): Promise<TestClient> {
        const c = await TestClient.open(p);
        assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
        c.write(`a1 LOGIN ${USER} ${PASS}\r\n`);
        return c;
      }

      it("control: without backend TLS Dovecot refuses the plaintext login (so the fetches above needed TLS)", async () => {
        const n = loginLines(dovecot).length;
        const c = await login(port.imapPlain);
        // proxy_pass_error_message on: Dovecot's own refusal (after its
        // untagged [ALERT]) reaches the client.
        const lines = await c.until(/^a1 /);
        assert.match(lines.at(-1)!, /^a1 NO \[PRIVACYREQUIRED\] Plaintext authentication disallowed/, lines.join(""));
        c.close();
        const r = await curlFetch(port.imapPlain);
        assert.notEqual(r.status, 0, "a plaintext login to Dovecot must fail here");
        assert.equal(r.stdout.length, 0);
        assert.equal(loginLines(dovecot).length, n);
      });

      it("backend certificate fails verification (proxy_ssl_name wrong.example): internal error, Dovecot saw no login", async () => {
        const n = loginLines(dovecot).length;
        const c = await login(port.badName);
        assert.equal(await c.line(), "* BAD internal server error\r\n");
        assert.ok(await c.waitClose());
        await new Promise((res) => setTimeout(res, 300));
        assert.equal(loginLines(dovecot).length, n, "no login reached Dovecot");
      });

      it("without proxy_ssl_name the Auth-Server address (127.0.0.2, not in the certificate) is verified: internal error", async () => {
        const n = loginLines(dovecot).length;
        const c = await login(port.defaultName);
        assert.equal(await c.line(), "* BAD internal server error\r\n");
        assert.ok(await c.waitClose());
        await new Promise((res) => setTimeout(res, 300));
        assert.equal(loginLines(dovecot).length, n, "no login reached Dovecot");
      });
    });
  }
});
