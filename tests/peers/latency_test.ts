// Latency of one-command-at-a-time clients through the real mailgate process
// (issue 13): Python's poplib, imaplib and smtplib send a command, wait for
// its whole reply, send the next. Each loop runs against the real server
// directly and through mailgate, on every target, plain and with TLS on the
// client leg (STLS/STARTTLS) and on both legs (plus proxy_starttls to the
// backend).
//
// What it guards against: small writes meeting delayed ACKs. A reply that
// leaves the proxy in two writes (a TLS layer splits a reply into records;
// the backend's reply arrives in pieces) waits for the client's delayed ACK
// (40 ms on Linux) when Nagle is on. With TCP_NODELAY off on the proxy's
// sockets this test measured 14-28 ms per command through mailgate on Deno
// and 17-20 ms on Bun (TLS to the backend), against 0.3-1.3 ms directly;
// with it on, 0.2-2 ms through mailgate.
//
// The bound is generous, so load on a shared machine cannot fail it: the
// better of two runs must stay within 2x the direct time per command plus
// PER_COMMAND_SLACK_MS. A Nagle stall costs tens of ms on many commands and
// is systematic, so it shows in both runs. MAILGATE_LATENCY_LOG=1 prints
// the numbers.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import process from "node:process";
import { ROOT, type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { type Dovecot, peersAvailable, startDovecot } from "../helpers/dovecot.ts";
import { type Postfix, startPostfix } from "../helpers/postfix.ts";
import { freePorts } from "../helpers/ports.ts";
import { runClient } from "../helpers/run_client.ts";

const availDovecot = peersAvailable("dovecot", "python3");
const availPostfix = peersAvailable("postfix", "python3");
const TLS = join(ROOT, "tests", "fixtures", "tls");
const USER = "alice@example.org";
const PASS = "wonderland";
/** Commands per loop (RETR, FETCH, RCPT TO), each waited for. */
const COMMANDS = 200;
/** Added to 2x the direct time per command: far below a delayed ACK (40 ms). */
const PER_COMMAND_SLACK_MS = 4;
/** Bound on each client process. */
const CLIENT_TIMEOUT_MS = 60000;
/** Messages in the mailbox: sizes from one to several TCP segments' worth of writes. */
const MESSAGE_SIZES = [600, 2000, 5000, 12000, 30000, 70000];

type Proto = "pop3" | "imap" | "smtp";
/** none: plain; starttls: the client upgrades (STLS / STARTTLS) before logging in. */
type ClientTls = "none" | "starttls";

/**
 * One-command-at-a-time loop; prints the milliseconds per command. The
 * certificate is the test CA's; its name is not checked (127.0.0.1).
 */
const CLIENT_PY = `
import sys, time, ssl, poplib, imaplib, smtplib
proto, port, tls, n, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=sys.argv[7])
ctx.check_hostname = False
host = "127.0.0.1"
if proto == "pop3":
    p = poplib.POP3(host, port, timeout=20)
    if tls == "starttls": p.stls(context=ctx)
    p.user(user); p.pass_(pw)
    count = p.stat()[0]
    t0 = time.perf_counter()
    for i in range(n): p.retr(1 + i % count)
    t = time.perf_counter() - t0
    p.quit()
elif proto == "imap":
    m = imaplib.IMAP4(host, port, timeout=20)
    if tls == "starttls": m.starttls(ssl_context=ctx)
    m.login(user, pw)
    count = int(m.select("INBOX", readonly=True)[1][0])
    t0 = time.perf_counter()
    for i in range(n):
        typ, _ = m.fetch(str(1 + i % count), "(BODY.PEEK[])")
        assert typ == "OK", typ
    t = time.perf_counter() - t0
    m.logout()
else:
    s = smtplib.SMTP(host, port, timeout=20)
    s.ehlo("client.test")
    if tls == "starttls":
        s.starttls(context=ctx)
        s.ehlo("client.test")
    if user != "-": s.login(user, pw)
    code, _ = s.mail("<sender@example.org>")
    assert code == 250, code
    t0 = time.perf_counter()
    for i in range(n):
        code, _ = s.rcpt("<alice@example.org>")
        assert code == 250, code
    t = time.perf_counter() - t0
    s.rset(); s.quit()
sys.stdout.write("%.4f" % (t * 1000 / n))
`;

/** Milliseconds per command of one loop (user "-": no login, for Postfix directly). */
async function perCommand(proto: Proto, port: number, tls: ClientTls, user = USER): Promise<number> {
  const r = await runClient(
    "python3",
    ["-c", CLIENT_PY, proto, String(port), tls, String(COMMANDS), user, PASS, join(TLS, "ca.pem")],
    { timeoutMs: CLIENT_TIMEOUT_MS },
  );
  assert.equal(r.status, 0, `python ${proto} ${tls} on port ${port}: ${r.stderr.slice(-600)}`);
  const ms = Number(r.stdout.toString("latin1"));
  assert.ok(Number.isFinite(ms) && ms > 0, `no timing from the client: ${r.stdout.toString("latin1")}`);
  return ms;
}

/** The better of two loops: load adds noise to one run, a Nagle stall is in both. */
async function best(proto: Proto, port: number, tls: ClientTls, user = USER): Promise<number> {
  const a = await perCommand(proto, port, tls, user);
  return Math.min(a, await perCommand(proto, port, tls, user));
}

function assertClose(through: number, direct: number, what: string): void {
  const bound = 2 * direct + PER_COMMAND_SLACK_MS;
  if (process.env.MAILGATE_LATENCY_LOG === "1") {
    console.log(`  ${what}: ${through.toFixed(2)} ms per command through mailgate, ${direct.toFixed(2)} directly`);
  }
  assert.ok(
    through <= bound,
    `${what}: ${through.toFixed(2)} ms per command through mailgate, ${direct.toFixed(2)} ms directly ` +
      `(bound ${bound.toFixed(2)} ms): a reply waits for something (Nagle and delayed ACKs?)`,
  );
}

/** A message of about `size` bytes: CRLF text lines, some starting with "." (stuffed on the wire). */
function message(i: number, size: number): Buffer {
  const lines = [`From: sender@example.org`, `To: ${USER}`, `Subject: latency ${i}`, ``];
  for (let n = 0; lines.join("\r\n").length < size; n++) {
    lines.push((n % 9 === 0 ? "." : "") + `line ${n} `.padEnd(72, "x"));
  }
  return Buffer.from(lines.join("\r\n") + "\r\n", "latin1");
}

describe("latency of one-command-at-a-time clients: Dovecot POP3 and IMAP", {
  skip: availDovecot.ok ? false : availDovecot.why,
}, () => {
  let dovecot: Dovecot;
  /** Direct milliseconds per command, by "proto tls". */
  const direct = new Map<string, number>();
  const directOf = async (proto: Proto, port: number, tls: ClientTls) => {
    const key = `${proto} ${tls}`;
    if (!direct.has(key)) direct.set(key, await best(proto, port, tls));
    return direct.get(key)!;
  };

  before(async () => {
    dovecot = await startDovecot({ [USER]: PASS }, {
      ssl: { cert: join(TLS, "server.pem"), key: join(TLS, "server.key") },
    });
    MESSAGE_SIZES.forEach((size, i) => dovecot.deliver(USER, `${i}.latency`, message(i, size)));
  });
  after(async () => {
    await dovecot?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      const port = { pop3: 0, imap: 0, pop3Tls: 0, imapTls: 0 };
      before(async () => {
        [port.pop3, port.imap, port.pop3Tls, port.imapTls] = await freePorts(4);
        mg = await startMailgate(target, `
error_log stderr notice;
events { }
mail {
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  proxy_ssl_verify on;
  proxy_ssl_trusted_certificate ${join(TLS, "ca.pem")};
  proxy_ssl_name localhost;
  server { listen 127.0.0.1:${port.pop3}; protocol pop3; starttls on; auth_table pop3.table; }
  server { listen 127.0.0.1:${port.imap}; protocol imap; starttls on; auth_table imap.table; }
  server { listen 127.0.0.1:${port.pop3Tls}; protocol pop3; starttls on; proxy_starttls on; auth_table pop3.table; }
  server { listen 127.0.0.1:${port.imapTls}; protocol imap; starttls on; proxy_starttls on; auth_table imap.table; }
}
`, {
          "pop3.table": `@example.org ${dovecot.host}:${dovecot.pop3Port}\n`,
          "imap.table": `@example.org ${dovecot.host}:${dovecot.imapPort}\n`,
        });
      });
      after(async () => {
        await mg?.stop();
      });

      for (const proto of ["pop3", "imap"] as const) {
        const cmd = proto === "pop3" ? "RETR" : "FETCH BODY.PEEK[]";
        it(`${proto}: ${COMMANDS} × ${cmd}, plain on both legs`, async () => {
          const d = await directOf(proto, proto === "pop3" ? dovecot.pop3Port : dovecot.imapPort, "none");
          assertClose(await best(proto, port[proto], "none"), d, `${proto} plain`);
        });
        it(`${proto}: ${COMMANDS} × ${cmd}, client leg TLS (STARTTLS), backend leg plain`, async () => {
          const d = await directOf(proto, proto === "pop3" ? dovecot.pop3Port : dovecot.imapPort, "starttls");
          assertClose(await best(proto, port[proto], "starttls"), d, `${proto} client STARTTLS`);
        });
        it(`${proto}: ${COMMANDS} × ${cmd}, TLS on both legs (STARTTLS, proxy_starttls)`, async () => {
          const d = await directOf(proto, proto === "pop3" ? dovecot.pop3Port : dovecot.imapPort, "starttls");
          const tlsPort = proto === "pop3" ? port.pop3Tls : port.imapTls;
          assertClose(await best(proto, tlsPort, "starttls"), d, `${proto} TLS on both legs`);
        });
      }
    });
  }
});

describe("latency of one-command-at-a-time clients: Postfix SMTP", {
  skip: availPostfix.ok ? false : availPostfix.why,
}, () => {
  let postfix: Postfix;
  let directMs = 0;
  before(async () => {
    postfix = await startPostfix({ domain: "example.org", users: [USER] });
    // Postfix here has no TLS: the client-TLS case is compared with the plain direct time.
    directMs = await best("smtp", postfix.port, "none", "-");
  });
  after(async () => {
    await postfix?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      let port = 0;
      before(async () => {
        [port] = await freePorts(1);
        mg = await startMailgate(target, `
error_log stderr notice;
events { }
mail {
  server_name mail.test;
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  server { listen 127.0.0.1:${port}; protocol smtp; starttls on; smtp_auth plain login; auth_table users.table; }
}
`, { "users.table": `${USER} 127.0.0.1:${postfix.port} plain:${PASS}\n` });
      });
      after(async () => {
        await mg?.stop();
      });

      for (const tls of ["none", "starttls"] as const) {
        it(`smtp: ${COMMANDS} × RCPT TO after AUTH, client leg ${tls === "none" ? "plain" : "STARTTLS"}`, async () => {
          assertClose(await best("smtp", port, tls), directMs, `smtp ${tls}`);
        });
      }
    });
  }
});
