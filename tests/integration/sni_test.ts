// SNI (README, "SNI"): several server blocks on one listen address, told
// apart by the name the TLS client asks for. Through the real mailgate
// process on every target, with `openssl s_client -servername`: implicit TLS
// and STARTTLS for IMAP, POP3 and SMTP serve each name its block's
// certificate (exact name, wildcard name, unknown and missing name → the
// default block); on implicit TLS the block's other settings apply too
// (imap_capabilities); a ClientHello behind a PROXY header still chooses;
// a reload swaps a certificate for new connections.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Buffer } from "node:buffer";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { MockAuth, ok } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { ROOT, type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts } from "../helpers/ports.ts";
import { toolsAvailable } from "../helpers/haproxy.ts";
import { runClient } from "../helpers/run_client.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const opensslAvail = toolsAvailable("openssl");

/** Bound on one s_client run. */
const CLIENT_MS = 10000;

type Kind = "imaps" | "pop3s" | "smtps" | "imap" | "pop3" | "smtp";
const KINDS: Kind[] = ["imaps", "pop3s", "smtps", "imap", "pop3", "smtp"];

function conf(auth: number, port: Record<Kind, number>, mailCert: string, ppPort: number): string {
  const pair = (name: string) =>
    `ssl_certificate ${join(TLS, name + ".pem")}; ssl_certificate_key ${join(TLS, name + ".key")};`;
  const blocks = (k: Kind) => {
    const proto = k.replace(/s$/, "");
    const implicit = k.endsWith("s");
    const listen = `listen 127.0.0.1:${port[k]}${implicit ? " ssl" : ""}; protocol ${proto};${
      implicit ? "" : " starttls on;"
    }`;
    const caps = (tag: string) => (proto === "imap" ? ` imap_capabilities IMAP4rev1 ${tag};` : "");
    return `
  server { ${listen} server_name default.test;${caps("XDEFAULT")} }
  server { ${listen} server_name mail.example.org;${caps("XMAIL")} ${pair(mailCert)} }
  server { ${listen} server_name other.test *.example.net;${caps("XWILD")} ${pair("sni_wild")} }`;
  };
  return `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth}/auth;
  smtp_auth login plain;
  ${pair("server")}
${KINDS.map(blocks).join("\n")}
  server { listen 127.0.0.1:${ppPort} ssl proxy_protocol; protocol imap; server_name default.test; }
  server { listen 127.0.0.1:${ppPort} ssl proxy_protocol; protocol imap; server_name mail.example.org; ${
    pair(mailCert)
  } }
}
`;
}

/**
 * One s_client session: the served certificate's CN and what the server
 * said. The commands are sent once the handshake is done; -ign_eof keeps
 * reading until the server closes (they end with LOGOUT/QUIT).
 */
async function sClient(
  port: number,
  kind: Kind,
  name: string | null,
  input: string,
): Promise<{ cn: string; out: string }> {
  const args = [
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-CAfile",
    join(TLS, "ca.pem"),
    "-ign_eof",
  ];
  args.push(...(name === null ? ["-noservername"] : ["-servername", name]));
  if (!kind.endsWith("s")) args.push("-starttls", kind);
  const r = await runClient("openssl", args, { input, timeoutMs: CLIENT_MS });
  const out = r.stdout.toString("latin1");
  assert.ok(!r.timedOut, `s_client timed out: ${r.stderr}`);
  const m = /^subject=.*?CN\s*=\s*([^,\n/]+)/m.exec(out);
  assert.ok(m, `no certificate subject from ${kind} with ${name}: ${out}\n${r.stderr}`);
  return { cn: m[1].trim(), out };
}

const BYE: Record<Kind, string> = {
  imaps: "a1 CAPABILITY\r\na2 LOGOUT\r\n",
  imap: "a1 LOGOUT\r\n",
  pop3s: "QUIT\r\n",
  pop3: "QUIT\r\n",
  smtps: "QUIT\r\n",
  smtp: "QUIT\r\n",
};

/** The name asked for → the CN served. */
const EXPECT: [string | null, string][] = [
  ["mail.example.org", "mail.example.org"],
  ["MAIL.example.org", "mail.example.org"],
  ["a.example.net", "*.example.net"],
  ["other.test", "*.example.net"],
  ["unknown.test", "localhost"],
  [null, "localhost"],
];

for (const target of targets()) {
  describe(`SNI (${target})`, { skip: !opensslAvail.ok && opensslAvail.why }, () => {
    let auth: MockAuth;
    let backend: MockImap;
    let mg: Running;
    let port: Record<Kind, number>;
    let ppPort: number;
    before(async () => {
      backend = await MockImap.start();
      auth = await MockAuth.start(() => ok("127.0.0.1", backend.port));
      const ports = await freePorts(KINDS.length + 1);
      port = Object.fromEntries(KINDS.map((k, i) => [k, ports[i]])) as Record<Kind, number>;
      ppPort = ports[KINDS.length];
      mg = await startMailgate(target, conf(auth.port, port, "sni_mail", ppPort));
    });
    after(async () => {
      await mg?.stop();
      await auth?.stop();
      await backend?.stop();
    });

    for (const kind of KINDS) {
      it(`${kind}${kind.endsWith("s") ? " (implicit TLS)" : " (STARTTLS)"}: each name gets its block's certificate`, async () => {
        const got = await Promise.all(
          EXPECT.map(([name]) => sClient(port[kind], kind, name, BYE[kind])),
        );
        assert.deepEqual(
          got.map((g, i) => [EXPECT[i][0], g.cn]),
          EXPECT.map(([name, cn]) => [name, cn]),
        );
      });
    }

    it("implicit TLS: the named block's other settings (imap_capabilities)", async () => {
      const cases: [string | null, string][] = [["mail.example.org", "XMAIL"], [
        "b.example.net",
        "XWILD",
      ], [null, "XDEFAULT"]];
      for (const [name, tag] of cases) {
        const { out } = await sClient(port.imaps, "imaps", name, BYE.imaps);
        const caps = /^\* CAPABILITY .*$/m.exec(out)?.[0] ?? "";
        assert.match(caps, new RegExp(` ${tag}\\b`), `${name}: ${out}`);
        for (const other of ["XMAIL", "XWILD", "XDEFAULT"].filter((t) => t !== tag)) {
          assert.doesNotMatch(caps, new RegExp(other), `${name} must not get ${other}`);
        }
      }
    });

    it("STARTTLS: the session keeps the default block's settings (IMAP greeting capabilities)", async () => {
      const { out } = await sClient(
        port.imap,
        "imap",
        "mail.example.org",
        "a1 CAPABILITY\r\na2 LOGOUT\r\n",
      );
      const caps = /^\* CAPABILITY .*$/m.exec(out)?.[0] ?? "";
      assert.match(caps, / XDEFAULT\b/, out);
    });

    it("PROXY header then implicit TLS: the ClientHello after the header still chooses", async () => {
      for (
        const [name, cn] of [["mail.example.org", "mail.example.org"], ["x.test", "localhost"]]
      ) {
        const raw = netConnect(ppPort, "127.0.0.1");
        await new Promise<void>((resolve, reject) =>
          raw.once("connect", resolve).once("error", reject)
        );
        raw.write("PROXY TCP4 192.0.2.7 127.0.0.1 4242 993\r\n");
        // The default block answers x.test with its own (localhost) certificate: checked below, not by name.
        const t = tlsConnect({
          socket: raw,
          servername: name,
          ca: readFileSync(join(TLS, "ca.pem"), "latin1"),
          checkServerIdentity: () => undefined,
        });
        try {
          const greeting = await new Promise<string>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("no greeting")), CLIENT_MS);
            t.once("error", reject);
            t.once("data", (d: Buffer) => {
              clearTimeout(timer);
              resolve(d.toString("latin1"));
            });
          });
          assert.equal(t.getPeerCertificate().subject.CN, cn, name);
          assert.match(greeting, /^\* OK/);
        } finally {
          t.destroy();
          raw.destroy();
        }
      }
    });

    it("a reload swaps a certificate for new connections", async () => {
      const text = readFileSync(mg.conf, "utf8");
      writeFileSync(mg.conf, conf(auth.port, port, "other", ppPort));
      try {
        const before = (mg.stderr().match(/reconfiguring done/g) ?? []).length;
        // process.kill: after ChildProcess.kill() Deno's node:child_process ignores later kill() calls (stop()).
        process.kill(mg.proc.pid!, "SIGHUP");
        await mg.waitLog(new RegExp(`(?:[^]*?reconfiguring done){${before + 1}}`));
        for (const kind of ["imaps", "smtp"] as Kind[]) {
          assert.equal(
            (await sClient(port[kind], kind, "mail.example.org", BYE[kind])).cn,
            "inherits",
            kind,
          );
          assert.equal(
            (await sClient(port[kind], kind, "x.example.net", BYE[kind])).cn,
            "*.example.net",
            kind,
          );
        }
      } finally {
        writeFileSync(mg.conf, text);
      }
    });
  });
}
