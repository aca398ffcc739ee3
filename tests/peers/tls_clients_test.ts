// Real TLS clients against mailgate's TLS listeners, through the real
// process on every target:
// * openssl s_client -starttls imap|pop3|smtp, and against implicit TLS
//   listeners, driving a capability listing and a login to mock backends
//   (each command is sent once the previous reply has arrived);
//   Auth-SSL-Protocol/Cipher compared with what s_client negotiated,
//   including forced TLS 1.2 and TLS 1.3 suites;
// * curl --ssl-reqd imap:// (STARTTLS) and imaps:// fetching a message from
//   Dovecot through mailgate;
// * Python's imaplib starttls()/IMAP4_SSL, poplib stls(), smtplib
//   starttls();
// * STARTTLS command injection with a raw socket (`-starttls` cannot
//   inject): a command pipelined behind STARTTLS/STLS is never answered,
//   neither in plaintext nor after the handshake.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { readFileSync } from "node:fs";
import { TestClient } from "../helpers/client.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { toolsAvailable } from "../helpers/haproxy.ts";
import { MockAuth, ok, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { MockPop3 } from "../helpers/mock_pop3.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { ROOT, type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";
import { runClient } from "../helpers/run_client.ts";

const opensslAvail = toolsAvailable("openssl");
const doveAvail = peersAvailable("dovecot", "curl", "python3");
const TLS = join(ROOT, "tests", "fixtures", "tls");
const CA_FILE = join(TLS, "ca.pem");
const USER = "alice@example.org";
const PASS = "wonderland";
/** Bound on every client process. */
const CLIENT_TIMEOUT_MS = 20000;
/** Bound on each expected reply from s_client. */
const REPLY_MS = 5000;
/** How long a never-to-be-answered command is given to show up anyway. */
const QUIET_MS = 300;

const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Lines needing POP3 dot-stuffing, 8-bit bytes, CRLF endings. */
const MESSAGE = Buffer.from(
  "From: sender@example.org\r\nTo: alice@example.org\r\nSubject: tls clients\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n" +
    "Hello over TLS.\r\n.\r\n..\r\n.leading dot\r\nlatin-1: \xe9\xe8\xfc\xff\r\nend\r\n",
  "latin1",
);

/**
 * An interactive client process (openssl s_client) driven expect-style:
 * send a command, wait (bounded) for its reply on stdout. Killed by pid at
 * the end if it is still running.
 */
class Interactive {
  readonly proc: ChildProcess;
  out = "";
  err = "";
  #exit: Promise<number | null>;
  #wake: (() => void)[] = [];
  #cursor = 0;

  constructor(cmd: string, args: string[]) {
    this.proc = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stdout!.on("data", (d: Buffer) => {
      this.out += d.toString("latin1");
      this.#notify();
    });
    this.proc.stderr!.on("data", (d: Buffer) => {
      this.err += d.toString("latin1");
      this.#notify();
    });
    this.proc.stdin!.on("error", () => {});
    this.#exit = new Promise((r) =>
      this.proc.on("close", (code) => {
        this.#notify();
        r(code);
      })
    );
  }

  #notify() {
    for (const w of this.#wake.splice(0)) w();
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  async #until(test: () => boolean, what: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!test()) {
      const left = deadline - Date.now();
      if (left <= 0 || this.exited) {
        throw new Error(`${what} did not arrive (exited: ${this.exited});\nstdout: ${JSON.stringify(this.out)}\nstderr: ${this.err}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#wake.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Waits for stderr to match. */
  async stderrMatch(re: RegExp, ms = REPLY_MS): Promise<RegExpExecArray> {
    await this.#until(() => re.test(this.err), String(re), ms);
    return re.exec(this.err)!;
  }

  /** Sends `line` (if any), then waits until stdout after the previous reply ends with `reply`; returns that new output. */
  async says(line: string | null, reply: RegExp | string, ms = REPLY_MS): Promise<string> {
    if (line !== null) this.proc.stdin!.write(line);
    const done = () => {
      const fresh = this.out.slice(this.#cursor);
      return typeof reply === "string" ? fresh.endsWith(reply) : reply.test(fresh);
    };
    await this.#until(done, String(reply), ms);
    const fresh = this.out.slice(this.#cursor);
    this.#cursor = this.out.length;
    return fresh;
  }

  /** Waits (bounded) for the process to exit; kills it otherwise. */
  async finish(ms = REPLY_MS): Promise<number | null> {
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill("SIGKILL"), ms);
    const code = await this.#exit;
    clearTimeout(t);
    return code;
  }

  kill() {
    if (!this.exited) this.proc.kill("SIGKILL");
  }
}

/** s_client with -brief (negotiated version and suite on stderr), -quiet (no session dump, EOF on stdin ignored) and -nocommands (a line starting with Q or R is data, not a command). */
function sClient(port: number, extra: string[]): Interactive {
  return new Interactive("openssl", [
    "s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", CA_FILE, "-verify_return_error", "-verify_hostname", "localhost",
    "-quiet", "-brief", "-nocommands", ...extra,
  ]);
}

/** What s_client -brief reports: [version, suite]. */
async function negotiated(s: Interactive): Promise<[string, string]> {
  await s.stderrMatch(/CONNECTION ESTABLISHED/);
  const v = await s.stderrMatch(/Protocol version: (\S+)/);
  const c = await s.stderrMatch(/Ciphersuite: (\S+)/);
  return [v[1], c[1]];
}

describe("real TLS clients through mailgate", () => {
  let auth: MockAuth;
  let imap: MockImap;
  let pop3: MockPop3;
  let smtp: MockSmtp;
  let dovecot: Dovecot | undefined;
  before(async () => {
    imap = await MockImap.start();
    pop3 = await MockPop3.start();
    smtp = await MockSmtp.start();
    if (doveAvail.ok) {
      dovecot = await startDovecot({ [USER]: PASS });
      dovecot.deliver(USER, "1.msg", MESSAGE);
    }
    auth = await MockAuth.start((req: AuthRequestSeen) => {
      const proto = req.get("Auth-Protocol");
      if (req.get("X-Backend") === "dovecot") return ok("127.0.0.1", proto === "pop3" ? dovecot!.pop3Port : dovecot!.imapPort);
      return ok("127.0.0.1", proto === "pop3" ? pop3.port : proto === "smtp" ? smtp.port : imap.port);
    });
  });
  after(async () => {
    await auth?.stop();
    await imap?.stop();
    await pop3?.stop();
    await smtp?.stop();
    await dovecot?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      let port: Record<string, number>;
      before(async () => {
        const names = ["imapStarttls", "pop3Starttls", "smtpStarttls", "imaps", "pop3s", "smtps", "imapDove", "imapsDove", "pop3Dove"];
        port = await namedPorts(names);
        const dove = "auth_http_header X-Backend dovecot; proxy_pass_error_message on;";
        mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  server_name mail.test;
  auth_http 127.0.0.1:${auth.port}/auth;
  smtp_auth login plain;
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  server { listen 127.0.0.1:${port.imapStarttls}; protocol imap; starttls on; }
  server { listen 127.0.0.1:${port.pop3Starttls}; protocol pop3; starttls on; }
  server { listen 127.0.0.1:${port.smtpStarttls}; protocol smtp; starttls on; }
  server { listen 127.0.0.1:${port.imaps} ssl; protocol imap; }
  server { listen 127.0.0.1:${port.pop3s} ssl; protocol pop3; }
  server { listen 127.0.0.1:${port.smtps} ssl; protocol smtp; }
  server { listen 127.0.0.1:${port.imapDove}; protocol imap; starttls only; ${dove} }
  server { listen 127.0.0.1:${port.imapsDove} ssl; protocol imap; ${dove} }
  server { listen 127.0.0.1:${port.pop3Dove}; protocol pop3; starttls only; ${dove} }
}
`);
      });
      after(async () => {
        await mg?.stop();
      });

      /** The auth request made since `n`, with the TLS headers matching what the client negotiated. */
      function assertTlsAuth(n: number, [version, suite]: [string, string]): AuthRequestSeen {
        assert.equal(auth.requests.length, n + 1, "one auth request");
        const req = auth.requests[n];
        assert.equal(req.get("Auth-SSL"), "on");
        assert.equal(req.get("Auth-SSL-Protocol"), version);
        assert.equal(req.get("Auth-SSL-Cipher"), suite);
        assert.equal(req.get("Auth-User"), USER);
        return req;
      }

      /** IMAP after TLS is up (no greeting expected here). */
      async function imapSession(s: Interactive) {
        const caps = await s.says("a1 CAPABILITY\r\n", "a1 OK completed\r\n");
        assert.equal(caps, "* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\na1 OK completed\r\n", "no STARTTLS inside TLS");
        assert.equal(await s.says(`a2 LOGIN ${USER} secret\r\n`, "\r\n"), "a2 OK mock login ok\r\n");
        assert.equal(await s.says("a3 WHOAMI\r\n", "\r\n"), `a3 OK ${USER}\r\n`);
        assert.equal(await s.says("a4 LOGOUT\r\n", "a4 OK logout\r\n"), "* BYE\r\na4 OK logout\r\n");
      }

      async function pop3Session(s: Interactive) {
        const capa = await s.says("CAPA\r\n", "\r\n.\r\n");
        assert.equal(capa, "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n.\r\n", "no STLS inside TLS");
        assert.equal(await s.says(`USER ${USER}\r\n`, "\r\n"), "+OK\r\n");
        assert.equal(await s.says("PASS secret\r\n", "\r\n"), "+OK mock logged in\r\n");
        assert.equal(await s.says("WHOAMI\r\n", "\r\n"), `+OK ${USER}\r\n`);
        assert.equal(await s.says("QUIT\r\n", "\r\n"), "+OK bye\r\n");
      }

      async function smtpSession(s: Interactive) {
        const ehlo = await s.says("EHLO client.example.org\r\n", /^250 [^\r\n]*\r\n$/m);
        assert.equal(ehlo, "250-mail.test\r\n250 AUTH PLAIN LOGIN\r\n", "no STARTTLS inside TLS");
        assert.equal(await s.says(`AUTH PLAIN ${b64(`\0${USER}\0secret`)}\r\n`, "\r\n"), "235 2.0.0 OK\r\n");
        assert.equal(await s.says(`MAIL FROM:<${USER}>\r\n`, "\r\n"), "250 2.1.0 mail ok\r\n");
        assert.equal(await s.says("QUIT\r\n", "\r\n"), "221 2.0.0 bye\r\n");
      }

      const sessions = { imap: imapSession, pop3: pop3Session, smtp: smtpSession };
      const greetings = { imap: "* OK IMAP4 ready\r\n", pop3: "+OK POP3 ready\r\n", smtp: "220 mail.test ESMTP ready\r\n" };

      for (const proto of ["imap", "pop3", "smtp"] as const) {
        it(`openssl s_client -starttls ${proto}: capabilities and login inside TLS`, { skip: opensslAvail.ok ? false : opensslAvail.why }, async () => {
          const n = auth.requests.length;
          const s = sClient(port[`${proto}Starttls`], ["-starttls", proto]);
          try {
            const tls = await negotiated(s);
            await sessions[proto](s);
            assert.equal(await s.finish(), 0, s.err);
            assertTlsAuth(n, tls);
          } finally {
            s.kill();
          }
        });

        it(`openssl s_client on the implicit TLS ${proto} listener: greeting inside TLS, login`, { skip: opensslAvail.ok ? false : opensslAvail.why }, async () => {
          const n = auth.requests.length;
          const s = sClient(port[`${proto}s`], ["-alpn", proto]);
          try {
            const tls = await negotiated(s);
            assert.equal(await s.says(null, "\r\n"), greetings[proto]);
            await sessions[proto](s);
            assert.equal(await s.finish(), 0, s.err);
            assertTlsAuth(n, tls);
          } finally {
            s.kill();
          }
        });
      }

      // Forced suites: Auth-SSL-Cipher is OpenSSL's name of what was negotiated.
      const FORCED: [string, string[], string][] = [
        ["TLSv1.2", ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], "ECDHE-RSA-CHACHA20-POLY1305"],
        ["TLSv1.2", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "ECDHE-RSA-AES128-GCM-SHA256"],
        ["TLSv1.3", ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], "TLS_CHACHA20_POLY1305_SHA256"],
        ["TLSv1.3", ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"], "TLS_AES_128_GCM_SHA256"],
      ];
      for (const [version, args, suite] of FORCED) {
        it(`openssl s_client ${args.join(" ")}: Auth-SSL-Protocol ${version}, Auth-SSL-Cipher ${suite}`, { skip: opensslAvail.ok ? false : opensslAvail.why }, async () => {
          const n = auth.requests.length;
          const s = sClient(port.imaps, args);
          try {
            const tls = await negotiated(s);
            assert.deepEqual(tls, [version, suite]);
            assert.equal(await s.says(null, "\r\n"), greetings.imap);
            assert.equal(await s.says(`a1 LOGIN ${USER} secret\r\n`, "\r\n"), "a1 OK mock login ok\r\n");
            assert.equal(await s.says("a2 LOGOUT\r\n", "a2 OK logout\r\n"), "* BYE\r\na2 OK logout\r\n");
            assert.equal(await s.finish(), 0, s.err);
            assertTlsAuth(n, tls);
          } finally {
            s.kill();
          }
        });
      }

      const curl = (args: string[]) =>
        runClient("curl", ["-s", "--max-time", String(CLIENT_TIMEOUT_MS / 1000), "--cacert", CA_FILE, "--user", `${USER}:${PASS}`, ...args], {
          timeoutMs: CLIENT_TIMEOUT_MS + 5000,
        });

      it("curl --ssl-reqd imap:// (STARTTLS) and imaps:// fetch a message from Dovecot byte for byte", { skip: doveAvail.ok ? false : doveAvail.why }, async () => {
        const n = auth.requests.length;
        const a = await curl(["--ssl-reqd", `imap://127.0.0.1:${port.imapDove}/INBOX;UID=1`]);
        assert.equal(a.status, 0, `curl exit ${a.status}: ${a.stderr}`);
        assert.ok(a.stdout.equals(MESSAGE), `STARTTLS: message differs (${a.stdout.length} vs ${MESSAGE.length} bytes)`);
        const b = await curl([`imaps://127.0.0.1:${port.imapsDove}/INBOX;UID=1`]);
        assert.equal(b.status, 0, `curl exit ${b.status}: ${b.stderr}`);
        assert.ok(b.stdout.equals(MESSAGE), `imaps: message differs (${b.stdout.length} vs ${MESSAGE.length} bytes)`);
        const reqs = auth.requests.slice(n);
        assert.equal(reqs.length, 2);
        for (const r of reqs) assert.equal(r.get("Auth-SSL"), "on");
      });

      it("Python: imaplib starttls() and IMAP4_SSL, poplib stls(), smtplib starttls()", { skip: doveAvail.ok ? false : doveAvail.why }, async () => {
        const n = auth.requests.length;
        const smtpBefore = smtp.conns.length;
        const py = `
import imaplib, poplib, smtplib, ssl, json, hashlib, sys
ctx = ssl.create_default_context(cafile=${JSON.stringify(CA_FILE)})
out = {}
def digest(b): return "%d %s" % (len(b), hashlib.sha256(b).hexdigest())

m = imaplib.IMAP4("127.0.0.1", ${port.imapDove}, timeout=15)
out["imap_before"] = sorted(m.capabilities)
m.starttls(ssl_context=ctx)
out["imap_after"] = sorted(m.capabilities)
out["imap_tls"] = [m.sock.version(), m.sock.cipher()[0]]
m.login("${USER}", "${PASS}")
m.select("INBOX", readonly=True)
typ, data = m.fetch("1", "(BODY.PEEK[])")
out["imap_msg"] = digest(data[0][1])
m.logout()

m = imaplib.IMAP4_SSL("127.0.0.1", ${port.imapsDove}, ssl_context=ctx, timeout=15)
out["imaps_tls"] = [m.sock.version(), m.sock.cipher()[0]]
m.login("${USER}", "${PASS}")
m.select("INBOX", readonly=True)
typ, data = m.fetch("1", "(BODY.PEEK[])")
out["imaps_msg"] = digest(data[0][1])
m.logout()

p = poplib.POP3("127.0.0.1", ${port.pop3Dove}, timeout=15)
out["pop3_capa_before"] = sorted(p.capa().keys())
p.stls(context=ctx)
out["pop3_capa_after"] = sorted(p.capa().keys())
out["pop3_tls"] = [p.sock.version(), p.sock.cipher()[0]]
p.user("${USER}")
p.pass_("${PASS}")
resp, lines, octets = p.retr(1)
out["pop3_msg"] = digest(b"\\r\\n".join(lines) + b"\\r\\n")
p.quit()

s = smtplib.SMTP("127.0.0.1", ${port.smtpStarttls}, timeout=15)
s.ehlo("client.example.org")
out["smtp_before"] = s.has_extn("starttls")
s.starttls(context=ctx)
s.ehlo("client.example.org")
out["smtp_after"] = s.has_extn("starttls")
out["smtp_tls"] = [s.sock.version(), s.sock.cipher()[0]]
s.login("${USER}", "secret")
s.sendmail("${USER}", ["bob@example.org"], b"Subject: hi\\r\\n\\r\\nhello over TLS\\r\\n")
s.quit()
sys.stdout.write(json.dumps(out))
`;
        const r = await runClient("python3", ["-c", py], { timeoutMs: CLIENT_TIMEOUT_MS });
        assert.equal(r.status, 0, `${r.stderr}\n${mg.stderr()}`);
        const out = JSON.parse(r.stdout.toString());
        const want = `${MESSAGE.length} ${sha256(MESSAGE)}`;
        assert.ok(out.imap_before.includes("STARTTLS") && out.imap_before.includes("LOGINDISABLED"), out.imap_before.join(" "));
        assert.ok(!out.imap_after.includes("STARTTLS") && out.imap_after.includes("AUTH=PLAIN"), out.imap_after.join(" "));
        assert.equal(out.imap_msg, want);
        assert.equal(out.imaps_msg, want);
        assert.ok(out.pop3_capa_before.includes("STLS") && !out.pop3_capa_before.includes("USER"), out.pop3_capa_before.join(" "));
        assert.ok(!out.pop3_capa_after.includes("STLS") && out.pop3_capa_after.includes("USER"), out.pop3_capa_after.join(" "));
        assert.equal(out.pop3_msg, want);
        assert.equal(out.smtp_before, true);
        assert.equal(out.smtp_after, false);
        // One auth request per client, each carrying the TLS the client negotiated.
        const reqs = auth.requests.slice(n);
        assert.deepEqual(reqs.map((q) => q.get("Auth-Protocol")), ["imap", "imap", "pop3", "smtp"]);
        const tls = [out.imap_tls, out.imaps_tls, out.pop3_tls, out.smtp_tls];
        reqs.forEach((q, i) => {
          assert.equal(q.get("Auth-SSL"), "on");
          assert.deepEqual([q.get("Auth-SSL-Protocol"), q.get("Auth-SSL-Cipher")], tls[i]);
        });
        const sc = smtp.conns.slice(smtpBefore).find((c) => c.messages.length > 0);
        assert.ok(sc, "the message reached the SMTP backend");
        assert.equal(sc.messages[0].toString("latin1"), "Subject: hi\r\n\r\nhello over TLS");
      });

      /** Upgrades a plain test connection to TLS (the server is checked as localhost). */
      function upgrade(c: TestClient): Promise<TestClient> {
        return new Promise((resolve, reject) => {
          const s: TLSSocket = tlsConnect({ socket: c.sock, ca: readFileSync(CA_FILE), servername: "localhost" });
          const tc = TestClient.fromSocket(s);
          const t = setTimeout(() => reject(new Error("TLS handshake did not complete")), REPLY_MS);
          s.once("secureConnect", () => {
            clearTimeout(t);
            resolve(tc);
          });
          s.once("error", (e) => {
            clearTimeout(t);
            reject(e);
          });
        });
      }

      const INJECT = {
        imap: { greeting: greetings.imap, write: "a STARTTLS\r\na CAPABILITY\r\n", ok: "a OK completed\r\n", probe: "b NOOP\r\n", probeOk: "b OK completed\r\n" },
        pop3: { greeting: greetings.pop3, write: "STLS\r\nCAPA\r\n", ok: "+OK\r\n", probe: "NOOP\r\n", probeOk: "+OK\r\n" },
        smtp: { greeting: greetings.smtp, write: "STARTTLS\r\nEHLO injected.example\r\n", ok: "220 2.0.0 Start TLS\r\n", probe: "NOOP\r\n", probeOk: "250 2.0.0 OK\r\n" },
      } as const;
      for (const proto of ["imap", "pop3", "smtp"] as const) {
        it(`STARTTLS injection (${proto}): a command in the same write as the upgrade is never answered`, async () => {
          const x = INJECT[proto];
          const c = await TestClient.open(port[`${proto}Starttls`]);
          assert.equal(await c.line(), x.greeting);
          c.write(x.write); // one write: the upgrade and the injected command
          assert.equal(await c.line(), x.ok);
          await new Promise((r) => setTimeout(r, QUIET_MS));
          assert.equal(c.pending(), "", "nothing after the upgrade reply in plaintext");
          const tc = await upgrade(c);
          await new Promise((r) => setTimeout(r, QUIET_MS));
          assert.equal(tc.received.length, 0, `nothing sent inside TLS before the client spoke: ${JSON.stringify(tc.pending())}`);
          tc.write(x.probe);
          assert.equal(await tc.line(), x.probeOk, "the first reply inside TLS answers the first command sent inside TLS");
          tc.close();
        });
      }
    });
  }
});
