// SMTP end to end through the real mailgate process (Deno, Bun, executable),
// with a mock auth service and a recording mock SMTP backend.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, createHmac } from "node:crypto";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { connect as netConnect } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, refuse, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { pattern } from "../helpers/mock_imap.ts";
import { ROOT, startMailgate, targets, tempDir, type Running, type Target } from "../helpers/mailgate.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const CA = readFileSync(join(TLS, "ca.pem"));
const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");

interface Env {
  mg: Running;
  auth: MockAuth;
  backend: MockSmtp;
  plain: MockSmtp;
  port: Record<string, number>;
  /** A unix-socket listener (smtp_auth none, no resolver). */
  sock: { path: string; cleanup(): void };
}

async function setup(target: Target): Promise<Env> {
  const backend = await MockSmtp.start({ users: { "test@example.com": "secret" } });
  const plain = await MockSmtp.start({ xclient: false });
  const auth = await MockAuth.start((req: AuthRequestSeen) => {
    const user = req.get("Auth-User") ?? "";
    const pass = req.get("Auth-Pass") ?? "";
    const method = req.get("Auth-Method");
    const to = req.get("X-Backend") === "plain" ? plain.port : backend.port;
    if (method === "none") {
      return (req.get("Auth-SMTP-To") ?? "").includes("example.com") ? ok("127.0.0.1", to) : refuse("Relay denied", undefined, { "Auth-Error-Code": "550 5.7.1" });
    }
    if (method === "cram-md5") {
      const want = createHmac("md5", "secret").update(req.get("Auth-Salt") ?? "").digest("hex");
      return pass === want ? ok("127.0.0.1", to, { "Auth-Pass": "secret" }) : refuse("Bad digest", 1);
    }
    if (method === "external") return ok("127.0.0.1", to);
    if (user === "offline@example.com") return refuse("Mailbox store offline", 1, { "Auth-Error-Code": "454 4.7.0" });
    if (user === "test@example.com" && pass === "secret") return ok("127.0.0.1", to);
    return refuse("Invalid login or password", 1);
  });
  const names = ["main", "none", "xclient", "proxyauth", "delay", "starttls", "only", "max", "plainbackend"];
  const sockDir = tempDir("mailgate-smtp-sock-");
  const sockPath = join(sockDir.dir, "smtp.sock");
  const port = await namedPorts(names);
  const conf = `
error_log stderr info;
events { }
mail {
  server_name mail.test;
  auth_http 127.0.0.1:${auth.port}/auth;
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  smtp_capabilities PIPELINING "SIZE 10485760" 8BITMIME;
  server { listen 127.0.0.1:${port.main}; protocol smtp; smtp_auth login plain none cram-md5 external; xclient off; proxy_pass_error_message on; }
  server { listen 127.0.0.1:${port.none}; protocol smtp; smtp_auth none; smtp_client_buffer 128; xclient off; }
  server { listen 127.0.0.1:${port.xclient}; protocol smtp; smtp_auth login plain none; }
  server { listen 127.0.0.1:${port.proxyauth}; protocol smtp; smtp_auth login plain external; proxy_smtp_auth on; }
  server { listen 127.0.0.1:${port.delay}; protocol smtp; smtp_greeting_delay 1s; }
  server { listen 127.0.0.1:${port.starttls}; protocol smtp; starttls on; }
  server { listen 127.0.0.1:${port.only}; protocol smtp; starttls only; }
  server { listen 127.0.0.1:${port.max}; protocol smtp; max_errors 2; }
  server { listen 127.0.0.1:${port.plainbackend}; protocol smtp; smtp_auth plain none; auth_http_header X-Backend plain; }
  server { listen unix:${sockPath}; protocol smtp; smtp_auth none; }
}
`;
  const mg = await startMailgate(target, conf);
  return { mg, auth, backend, plain, port, sock: { path: sockPath, cleanup: sockDir.cleanup } };
}

async function client(port: number): Promise<TestClient> {
  const c = await TestClient.open(port);
  assert.equal(await c.line(), "220 mail.test ESMTP ready\r\n");
  return c;
}

for (const target of targets()) {
  describe(`SMTP through mailgate (${target})`, () => {
    let env: Env;
    before(async () => {
      env = await setup(target);
    });
    after(async () => {
      await env.mg.stop();
      await env.auth.stop();
      await env.backend.stop();
      await env.plain.stop();
      env.sock.cleanup();
    });

    it("EHLO lists capabilities and AUTH; HELO, NOOP, RSET, QUIT", async () => {
      const c = await client(env.port.main);
      c.write("EHLO client.example\r\n");
      assert.deepEqual(await c.until(/^250 /), [
        "250-mail.test\r\n", "250-PIPELINING\r\n", "250-SIZE 10485760\r\n", "250-8BITMIME\r\n",
        "250 AUTH PLAIN LOGIN CRAM-MD5 EXTERNAL\r\n",
      ]);
      c.write("HELO client.example\r\nNOOP\r\nRSET\r\nVRFY x\r\nQUIT\r\n");
      assert.equal(await c.line(), "250 mail.test\r\n");
      assert.equal(await c.line(), "250 2.0.0 OK\r\n");
      assert.equal(await c.line(), "250 2.0.0 OK\r\n");
      assert.equal(await c.line(), "500 5.5.1 Invalid command\r\n");
      assert.equal(await c.line(), "221 2.0.0 Bye\r\n");
      assert.ok(await c.waitClose());
    });

    it("AUTH PLAIN: bad password 535 (session continues), good 235; backend sees EHLO/HELO only (xclient off)", async () => {
      const c = await client(env.port.main);
      c.write("EHLO client.example\r\n");
      await c.until(/^250 /);
      c.write(`AUTH PLAIN ${b64("\0test@example.com\0bad")}\r\n`);
      assert.equal(await c.line(3000), "535 5.7.0 Invalid login or password\r\n");
      c.write(`AUTH PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await c.line(), "235 2.0.0 OK\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-Protocol"), "smtp");
      assert.equal(req.get("Client-Host"), "[UNAVAILABLE]");
      assert.equal(req.get("Auth-Login-Attempt"), "2");
      c.write("MAIL FROM:<test@example.com> SIZE=100\r\nRSET\r\nMAIL FROM:<test@xn--e1afmkfd.xn--p1ai>\r\nQUIT\r\n");
      assert.equal(await c.line(), "250 2.1.0 mail ok\r\n");
      assert.equal(await c.line(), "250 2.0.0 ok\r\n");
      assert.equal(await c.line(), "250 2.1.0 mail ok\r\n");
      assert.equal(await c.line(), "221 2.0.0 bye\r\n");
      const bc = env.backend.conns.at(-1)!;
      assert.deepEqual(bc.lines.slice(0, 1), ["EHLO mail.test"]);
      c.close();
    });

    it("Auth-Error-Code replaces 535 5.7.0", async () => {
      const c = await client(env.port.main);
      c.write(`AUTH PLAIN ${b64("\0offline@example.com\0x")}\r\n`);
      assert.equal(await c.line(3000), "454 4.7.0 Mailbox store offline\r\n");
      c.close();
    });

    it("AUTH LOGIN (with and without initial response), CRAM-MD5, EXTERNAL", async () => {
      const c = await client(env.port.main);
      c.write("AUTH LOGIN\r\n");
      assert.equal(await c.line(), "334 VXNlcm5hbWU6\r\n");
      c.write(b64("test@example.com") + "\r\n");
      assert.equal(await c.line(), "334 UGFzc3dvcmQ6\r\n");
      c.write(b64("secret") + "\r\n");
      assert.equal(await c.line(), "235 2.0.0 OK\r\n");
      c.close();
      const d = await client(env.port.main);
      d.write(`AUTH LOGIN ${b64("test@example.com")}\r\n`);
      assert.equal(await d.line(), "334 UGFzc3dvcmQ6\r\n");
      d.write(b64("secret") + "\r\n");
      assert.equal(await d.line(), "235 2.0.0 OK\r\n");
      d.close();
      const e = await client(env.port.main);
      e.write("AUTH CRAM-MD5\r\n");
      const ch = await e.line();
      const salt = Buffer.from(ch.slice(4).trim(), "base64").toString("latin1");
      assert.match(salt, /^<\d+\.\d+@mail\.test>$/);
      e.write(b64(`test@example.com ${createHmac("md5", "secret").update(salt).digest("hex")}`) + "\r\n");
      assert.equal(await e.line(), "235 2.0.0 OK\r\n");
      e.close();
      const f = await client(env.port.main);
      f.write("AUTH EXTERNAL\r\n");
      assert.equal(await f.line(), "334 VXNlcm5hbWU6\r\n");
      f.write(b64("test@example.com") + "\r\n");
      assert.equal(await f.line(), "235 2.0.0 OK\r\n");
      f.close();
    });

    it("pipelining: failing AUTH + MAIL handled by the proxy; good AUTH + MAIL reaches the backend", async () => {
      const c = await client(env.port.main);
      c.write(`AUTH PLAIN ${b64("\0test@example.com\0bad")}\r\nMAIL FROM:<test@example.com> SIZE=100\r\n`);
      assert.equal(await c.line(3000), "535 5.7.0 Invalid login or password\r\n");
      assert.equal(await c.line(), "250 2.0.0 OK\r\n");
      c.close();
      const d = await client(env.port.main);
      d.write(`AUTH PLAIN ${b64("\0test@example.com\0secret")}\r\nMAIL FROM:<test@example.com> SIZE=100\r\n`);
      assert.equal(await d.line(), "235 2.0.0 OK\r\n");
      assert.equal(await d.line(), "250 2.1.0 mail ok\r\n");
      d.close();
    });

    it("smtp_auth none: MAIL (proxy), RCPT (backend's reply to the replay), RSET (backend)", async () => {
      const n = env.auth.requests.length;
      const c = await client(env.port.none);
      c.write("MAIL FROM:<test@example.com>\r\n");
      assert.equal(await c.line(), "250 2.0.0 OK\r\n");
      c.write("RCPT TO:<postmaster@example.com>\r\n");
      assert.equal(await c.line(), "250 2.1.0 rcpt ok\r\n");
      c.write("RSET\r\n");
      assert.equal(await c.line(), "250 2.0.0 ok\r\n");
      const req = env.auth.requests[n];
      assert.equal(req.get("Auth-Method"), "none");
      assert.equal(req.get("Auth-User"), "");
      assert.equal(req.get("Auth-Pass"), "");
      assert.equal(req.get("Auth-SMTP-Helo"), "");
      assert.equal(req.get("Auth-SMTP-From"), "MAIL FROM:<test@example.com>");
      assert.equal(req.get("Auth-SMTP-To"), "RCPT TO:<postmaster@example.com>");
      c.close();
    });

    it("unix-socket listener without resolver: Client-IP unix:, Client-Host [UNAVAILABLE] (smtp.md §2 order)", async () => {
      const n = env.auth.requests.length;
      const sock = netConnect({ path: env.sock.path });
      await new Promise<void>((r, j) => (sock.once("connect", r), sock.once("error", j)));
      const c = TestClient.fromSocket(sock);
      assert.equal(await c.line(), "220 mail.test ESMTP ready\r\n");
      c.write("EHLO unix.example\r\nMAIL FROM:<test@example.com>\r\nRCPT TO:<test@example.com>\r\n");
      await c.until(/^250 /);
      assert.equal(await c.line(), "250 2.0.0 OK\r\n");
      assert.match(await c.line(), /^250 /);
      const req = env.auth.requests[n];
      assert.equal(req.get("Client-IP"), "unix:");
      assert.equal(req.get("Client-Host"), "[UNAVAILABLE]");
      const xclient = env.backend.conns.at(-1)!.lines.find((l) => l.startsWith("XCLIENT"));
      assert.match(xclient ?? "", / NAME=\[UNAVAILABLE\]$/);
      c.close();
    });

    it("smtp_auth none pipelined in one packet, and with RSET split across packets", async () => {
      const c = await client(env.port.none);
      c.write("MAIL FROM:<test@example.com>\r\nRCPT TO:<test@example.com>\r\nRSET\r\n");
      assert.match(await c.line(), /^250 /);
      assert.match(await c.line(), /^250 /);
      assert.match(await c.line(), /^250 /);
      c.close();
      const d = await client(env.port.none);
      d.write("MAIL FROM:<test@example.com>\r\nRCPT TO:<test@example.com>\r\nRS");
      assert.match(await d.line(), /^250 /);
      assert.match(await d.line(), /^250 /);
      await new Promise((r) => setTimeout(r, 50));
      d.write("ET\r\n");
      assert.match(await d.line(), /^250 /);
      d.close();
    });

    it("128-byte client buffer: MAIL, four RCPTs and RSET pipelined get six 2xx replies", async () => {
      const c = await client(env.port.none);
      const rcpts = [1, 2, 3, 4].map((i) => `RCPT TO:<recipient${i}@example.com>\r\n`).join("");
      c.write(`MAIL FROM:<sender@example.com>\r\n${rcpts}RSET\r\n`);
      for (let i = 0; i < 6; i++) assert.match(await c.line(), /^250 /, `reply ${i}`);
      c.close();
    });

    it("a RCPT the backend rejects is shown as 5xx and the session stays open", async () => {
      const c = await client(env.port.none);
      c.write("MAIL FROM:<test@example.com>\r\nRCPT TO:<test@example.com>\r\n");
      assert.match(await c.line(), /^250 /);
      assert.match(await c.line(), /^250 /);
      c.write("RCPT TO:<nobody>\r\n");
      assert.match(await c.line(), /^500 /);
      c.write("RCPT TO:<other@example.com>\r\n");
      assert.match(await c.line(), /^250 /);
      c.close();
    });

    it("commands split across packets; invalid split command, then HELO", async () => {
      const c = await client(env.port.main);
      c.write("HEL");
      await new Promise((r) => setTimeout(r, 50));
      c.write("O example.com\r\n");
      assert.equal(await c.line(), "250 mail.test\r\n");
      c.write("FOO");
      await new Promise((r) => setTimeout(r, 50));
      c.write("BAR\r\n");
      assert.equal(await c.line(), "500 5.5.1 Invalid command\r\n");
      c.write("HELO example.com\r\n");
      assert.equal(await c.line(), "250 mail.test\r\n");
      c.close();
    });

    it("relay refused by the auth service: its code and message", async () => {
      const c = await client(env.port.none);
      c.write("MAIL FROM:<a@b.org>\r\nRCPT TO:<x@elsewhere.org>\r\n");
      assert.match(await c.line(), /^250 /);
      assert.equal(await c.line(), "550 5.7.1 Relay denied\r\n");
      assert.ok(await c.waitClose());
    });

    it("xclient on: EHLO, XCLIENT (ADDR, LOGIN, NAME), client's EHLO replayed", async () => {
      const c = await client(env.port.xclient);
      c.write("EHLO client.example\r\n");
      await c.until(/^250 /);
      c.write(`AUTH PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await c.line(), "235 2.0.0 OK\r\n");
      c.write("QUIT\r\n");
      assert.equal(await c.line(), "221 2.0.0 bye\r\n");
      const bc = env.backend.conns.at(-1)!;
      assert.deepEqual(bc.lines, [
        "EHLO mail.test",
        "XCLIENT ADDR=127.0.0.1 LOGIN=test@example.com NAME=[UNAVAILABLE]",
        "EHLO client.example",
        "QUIT",
      ]);
    });

    it("xclient on, backend without XCLIENT: no XCLIENT sent (mailgate), none session replayed", async () => {
      const c = await client(env.port.plainbackend);
      c.write("HELO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n");
      assert.equal(await c.line(), "250 mail.test\r\n");
      assert.equal(await c.line(), "250 2.0.0 OK\r\n");
      assert.equal(await c.line(), "250 2.1.0 rcpt ok\r\n");
      c.close();
      const bc = env.plain.conns.at(-1)!;
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(bc.lines.slice(0, 3), ["EHLO mail.test", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>"]);
    });

    it("proxy_smtp_auth on: EHLO, XCLIENT without LOGIN=, AUTH PLAIN with the password", async () => {
      const c = await client(env.port.proxyauth);
      c.write(`AUTH PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await c.line(), "235 2.0.0 OK\r\n");
      const bc = env.backend.conns.at(-1)!;
      assert.deepEqual(bc.lines, [
        "EHLO mail.test",
        "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE]",
        `AUTH PLAIN ${b64("\0test@example.com\0secret")}`,
      ]);
      c.close();
      const d = await client(env.port.proxyauth);
      d.write("AUTH EXTERNAL\r\n");
      assert.equal(await d.line(), "334 VXNlcm5hbWU6\r\n");
      d.write(b64("test@example.com") + "\r\n");
      assert.equal(await d.line(), "451 4.3.2 Internal server error\r\n", "no password for AUTH PLAIN");
      assert.ok(await d.waitClose());
    });

    it("a message of several MiB with dot-stuffed lines and 8-bit bytes passes unchanged", async () => {
      const c = await client(env.port.main);
      c.write(`AUTH PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await c.line(), "235 2.0.0 OK\r\n");
      c.write("MAIL FROM:<test@example.com>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n");
      assert.match(await c.line(), /^250 /);
      assert.match(await c.line(), /^250 /);
      assert.equal(await c.line(), "354 go ahead\r\n");
      const lines: string[] = ["Subject: big", ""];
      const raw = pattern(3 << 20, 11);
      for (let i = 0; i < raw.length; i += 100) {
        let l = "";
        for (const b of raw.subarray(i, i + 100)) l += String.fromCharCode(b === 10 || b === 13 ? 0x41 : b);
        lines.push(i % 1000 === 0 ? ".." + l : l); // dot-stuffed lines stay stuffed
      }
      const body = Buffer.from(lines.join("\r\n"), "latin1");
      c.write(body);
      c.write("\r\n.\r\n");
      const want = `250 2.0.0 queued ${body.length} ${createHash("sha256").update(body).digest("hex")}\r\n`;
      assert.equal(await c.line(30000), want);
      c.close();
    });

    it("smtp_greeting_delay: a client talking first gets 503 and is closed", async () => {
      const c = await TestClient.open(env.port.delay);
      c.write("HELO early.example\r\n");
      assert.equal(await c.line(3000), "503 5.5.0 Improper use of SMTP command pipelining\r\n");
      assert.ok(await c.waitClose());
      // smtp.md §3: logged at info with what was read, CR/LF shown as "_".
      await env.mg.waitLog(/\[info\] .*client was rejected before greeting: "HELO early\.example__"/, 3000);
      // t0 before the connect: mailgate's delay starts after it, so load only makes this later.
      const t0 = Date.now();
      const d = await TestClient.open(env.port.delay);
      assert.equal(await d.line(1000 + 5000), "220 mail.test ESMTP ready\r\n");
      assert.ok(Date.now() - t0 >= 990, `greeted after ${Date.now() - t0} ms`);
      d.close();
    });

    it("max_errors 2 and starttls on/only EHLO variants", async () => {
      const c = await client(env.port.max);
      c.write("FOO\r\nBAR\r\nNOOP\r\n");
      assert.equal(await c.line(), "500 5.5.1 Invalid command\r\n");
      assert.equal(await c.line(), "500 5.5.1 Invalid command\r\n");
      assert.ok(await c.waitClose());
      const d = await client(env.port.starttls);
      d.write("EHLO x\r\n");
      assert.equal((await d.until(/^250 /)).at(-1), "250 STARTTLS\r\n");
      d.write("AUTH LOGIN\r\n");
      assert.equal(await d.line(), "334 VXNlcm5hbWU6\r\n");
      d.close();
      const e = await client(env.port.only);
      e.write("EHLO x\r\nAUTH LOGIN\r\n");
      assert.equal((await e.until(/^250 /)).at(-1), "250 STARTTLS\r\n");
      assert.equal(await e.line(), "500 5.5.1 Invalid command\r\n");
      e.close();
    });

    it("STARTTLS: pipelined plaintext discarded, HELO forgotten, AUTH inside TLS", async () => {
      const c = await client(env.port.only);
      const n = env.auth.requests.length;
      c.write(`EHLO x\r\n`);
      await c.until(/^250 /);
      c.write(`STARTTLS\r\nAUTH PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await c.line(), "220 2.0.0 Start TLS\r\n");
      const tls = await new Promise<TLSSocket>((resolve, reject) => {
        const t = tlsConnect({ socket: c.sock, ca: CA, servername: "localhost" }, () => resolve(t));
        t.once("error", reject);
      });
      const tc = TestClient.fromSocket(tls);
      tc.write("EHLO y\r\n");
      assert.deepEqual(await tc.until(/^250 /), ["250-mail.test\r\n", "250-PIPELINING\r\n", "250-SIZE 10485760\r\n", "250-8BITMIME\r\n", "250 AUTH PLAIN LOGIN\r\n"]);
      assert.equal(env.auth.requests.length, n, "the injected AUTH never ran");
      tc.write(`AUTH PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await tc.line(), "235 2.0.0 OK\r\n");
      assert.equal(env.auth.requests.at(-1)!.get("Auth-SSL"), "on");
      tls.destroy();
    });
  });
}
