// Listen parameters and server-side TLS settings end to end: the real
// mailgate process (under Deno, under Bun, and as the compiled executable).
// * mail_ssl_session_reuse.t: one IMAP ssl server per session setting; a
//   Node (OpenSSL) client connects twice and reports whether the second
//   connection resumed. Where a runtime cannot do a row, the test asserts
//   the documented behaviour and the start-up warning with FILE:LINE.
// * listen: `*:port` and `[::]:port` together, [::] alone (ipv6only),
//   keep-alive on accepted connections, warnings for what is not applied.
// * client certificates: ssl_trusted_certificate and ssl_verify_depth as
//   seen by the auth server (Auth-SSL-Verify).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, refuse } from "../helpers/mock_auth.ts";
import { ROOT, type Running, startMailgate, type Target, targets } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";
import { tlsDirectiveProblem } from "../../lib/config/runtime_warnings.ts";
import { RUNTIME_SUPPORT, type RuntimeName } from "../../lib/runtime/capabilities.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const SET = join(ROOT, "tests", "fixtures", "tls_settings");
const rd = (dir: string, f: string) => readFileSync(join(dir, f), "utf8");
const CA = rd(TLS, "ca.pem");

const runtimeOf = (t: Target): RuntimeName => (t === "deno" ? "deno" : "bun");

const has = (cmd: string, arg: string) => {
  try {
    return spawnSync(cmd, [arg]).status === 0;
  } catch {
    return false;
  }
};
const NO_NODE = has("node", "--version")
  ? false
  : "node is not installed (the reference TLS client)";
const NO_SS = has("ss", "-V") ? false : "ss (iproute2) is not installed";

/** mail_ssl_session_reuse.t: name, server directives, resumes in nginx. */
const SESSION_ROWS: [string, string, boolean][] = [
  ["default", "", true],
  ["shared", "ssl_session_cache shared:SSL:1m;", true],
  ["shared_notickets", "ssl_session_cache shared:SSL:1m; ssl_session_tickets off;", true],
  ["builtin_notickets", "ssl_session_cache builtin; ssl_session_tickets off;", true],
  ["builtin1000_notickets", "ssl_session_cache builtin:1000; ssl_session_tickets off;", true],
  ["none_notickets", "ssl_session_cache none; ssl_session_tickets off;", false],
  ["off_notickets", "ssl_session_cache off; ssl_session_tickets off;", false],
];

interface Env {
  mg: Running;
  auth: MockAuth;
  port: Record<string, number>;
  conf: string;
  /** Configuration text, by line (1-based: lines[n - 1]). */
  lines: string[];
}

async function setup(target: Target): Promise<Env> {
  const auth = await MockAuth.start(() => refuse("Invalid login or password"));
  const names = [...SESSION_ROWS.map(([n]) => n), "params", "dual", "v6only", "certs"];
  const port = await namedPorts(names);
  // One directive per line: warnings are checked by line.
  const text = [
    "error_log stderr info;",
    "events { }",
    "mail {",
    `  auth_http 127.0.0.1:${auth.port}/auth;`,
    `  ssl_certificate ${join(TLS, "server.pem")};`,
    `  ssl_certificate_key ${join(TLS, "server.key")};`,
    ...SESSION_ROWS.map(([n, d]) =>
      `  server { listen 127.0.0.1:${port[n]} ssl; protocol imap; ${d} }`
    ),
    `  server { protocol imap;`,
    `    listen 127.0.0.1:${port.params} backlog=64 rcvbuf=64k so_keepalive=30s:5s:3;`,
    `  }`,
    `  server { listen *:${port.dual}; protocol imap; }`,
    `  server { listen [::]:${port.dual}; protocol pop3; }`,
    `  server { listen [::]:${port.v6only}; protocol pop3; }`,
    `  server { listen 127.0.0.1:${port.certs} ssl; protocol imap;`,
    `    ssl_verify_client optional;`,
    `    ssl_client_certificate ${join(TLS, "ca.pem")};`,
    `    ssl_trusted_certificate ${join(SET, "ca2.pem")};`,
    `    ssl_crl crls.pem;`,
    `    ssl_verify_depth 1;`,
    `  }`,
    "}",
    "",
  ].join("\n");
  const mg = await startMailgate(target, text, {
    "crls.pem": rd(SET, "ca.crl") + rd(SET, "inter.crl") + rd(SET, "ca2.crl"),
  });
  return { mg, auth, port, conf: mg.conf, lines: text.split("\n") };
}

/** Line number of the (only) line containing `s`. */
function lineOf(env: Env, s: string, from = 0): number {
  const i = env.lines.findIndex((l, n) => n >= from && l.includes(s));
  assert.ok(i >= 0, `no line with ${s}`);
  return i + 1;
}

interface Probe {
  reused?: boolean;
  line?: string;
  error?: string;
}

/** Two connections by the Node client, the second offering the first one's session. */
function twice(port: number): Promise<Probe[]> {
  return new Promise<Probe[]>((resolve, reject) => {
    const args = JSON.stringify({ port, ca: CA, gapsMs: [0] });
    const p = spawn("node", [join(SET, "resume_client.mjs"), args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "", err = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (err += d));
    const t = setTimeout(() => p.kill("SIGKILL"), 20000);
    p.on("exit", (code) => {
      clearTimeout(t);
      if (code !== 0) reject(new Error(`node client failed (${code}): ${err}`));
      else resolve(out.trim().split("\n").map((l) => JSON.parse(l) as Probe));
    });
  });
}

for (const target of targets()) {
  const rt = runtimeOf(target);
  const caps = RUNTIME_SUPPORT[rt];

  describe(`listen parameters and TLS settings through mailgate (${target})`, () => {
    let env: Env;
    before(async () => {
      env = await setup(target);
    });
    after(() => stopAll(env.mg, env.auth));

    /** The [warn] line for a directive on a line of the configuration. */
    const warned = (message: string, line: number) =>
      env.mg.stderr().includes(`[warn] ${message} in ${env.conf}:${line}\n`);

    for (const [name, directives, nginxResumes] of SESSION_ROWS) {
      const resumes = nginxResumes || !caps.tls.resumptionOff;
      it(
        `session reuse, ${name}: ${resumes ? "resumes" : "does not resume"}${
          resumes !== nginxResumes ? " (runtime limit, warned)" : ""
        }`,
        {
          skip: NO_NODE,
        },
        async () => {
          const [a, b] = await twice(env.port[name]);
          assert.equal(a.line, "* OK IMAP4 ready", JSON.stringify(a));
          assert.equal(a.reused, false);
          assert.equal(b.line, "* OK IMAP4 ready", JSON.stringify(b));
          assert.equal(b.reused, resumes);
          // Every setting of the row this runtime cannot apply has its warning.
          const line = lineOf(env, `listen 127.0.0.1:${env.port[name]} ssl`);
          for (const d of directives.split(";").map((x) => x.trim()).filter(Boolean)) {
            const [dn, ...args] = d.split(/\s+/);
            const problem = tlsDirectiveProblem(dn, args, rt);
            if (problem !== null) {
              assert.ok(warned(problem, line), `missing warning: ${problem} (line ${line})`);
            }
          }
          if (resumes !== nginxResumes) {
            // The difference is announced: tickets cannot be turned off here.
            assert.ok(warned(tlsDirectiveProblem("ssl_session_tickets", ["off"], rt)!, line));
          }
        },
      );
    }

    it("no TLS session setting is reported as not implemented", () => {
      assert.doesNotMatch(env.mg.stderr(), /"ssl_session_\w+" is accepted but not implemented/);
    });

    it("listen parameters that are not applied are warned with FILE:LINE; applied ones are not", () => {
      const line = lineOf(env, `listen 127.0.0.1:${env.port.params} `);
      const log = env.mg.stderr();
      assert.ok(warned(`"rcvbuf" is not supported by the ${rt} runtime, ignored`, line), log);
      assert.equal(
        warned(`"backlog" is not supported by the ${rt} runtime, ignored`, line),
        !caps.listen.backlog,
      );
      const ka = rt === "deno"
        ? `"so_keepalive" interval and count are not supported by the deno runtime, ignored: keep-alive uses the idle time and the system's probe interval and count`
        : `"so_keepalive" interval and count are not supported by the bun runtime, ignored: keep-alive uses the idle time, a 1s probe interval and 10 probes`;
      assert.ok(warned(ka, line), log);
      assert.doesNotMatch(log, /ipv6only/);
      assert.doesNotMatch(log, /not applied yet/);
      // Nothing else about listen parameters.
      const listenLines = log.split("\n").filter((l) =>
        /"(backlog|rcvbuf|sndbuf|so_keepalive)/.test(l)
      );
      assert.equal(listenLines.length, rt === "deno" ? 2 : 3, listenLines.join("\n"));
    });

    it(
      "keep-alive is on for accepted connections (Bun: with the 30s idle time)",
      { skip: NO_SS },
      async () => {
        const c = await TestClient.open(env.port.params);
        try {
          assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
          const out = spawnSync("ss", [
            "-tno",
            "state",
            "established",
            `( sport = :${env.port.params} and dport = :${c.sock.localPort} )`,
          ], { encoding: "utf8" }).stdout;
          const timer = /timer:\(keepalive,([^,]+),/.exec(out)?.[1] ?? "none";
          assert.match(timer, caps.listen.keepaliveIdle ? /^\d+sec$/ : /min$/, out);
        } finally {
          c.close();
        }
      },
    );

    it("listen *:port and [::]:port together: IPv4 reaches the first server, IPv6 the second", async () => {
      const v4 = await TestClient.open(env.port.dual, "127.0.0.1");
      assert.equal(await v4.line(), "* OK IMAP4 ready\r\n");
      v4.close();
      let v6: TestClient;
      try {
        v6 = await TestClient.open(env.port.dual, "::1");
      } catch {
        return; // no IPv6 loopback on this host
      }
      assert.equal(await v6.line(), "+OK POP3 ready\r\n");
      v6.close();
    });

    it("listen [::]:port alone is IPv6-only: an IPv4 client gets no greeting", async () => {
      let c: TestClient;
      try {
        c = await TestClient.open(env.port.v6only, "127.0.0.1");
      } catch {
        return; // refused (Bun): not served, as with nginx
      }
      // Deno has no ipv6only option: the connection is accepted and closed at once.
      assert.ok(await c.waitClose());
      assert.equal(c.received.length, 0);
    });

    async function verifyResult(cert: string, key: string): Promise<string | undefined> {
      const before = env.auth.requests.length;
      const s = tlsConnect({
        host: "127.0.0.1",
        port: env.port.certs,
        servername: "localhost",
        ca: CA,
        cert,
        key,
      });
      const c = TestClient.fromSocket(s);
      try {
        assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
        c.write("a LOGIN user pass\r\n");
        assert.match(await c.line(5000), /^a NO /);
        return env.auth.requests[before]?.get("Auth-SSL-Verify");
      } finally {
        c.close();
      }
    }

    it("client certificates: advertised CA, unadvertised ssl_trusted_certificate, one intermediate at depth 1", async () => {
      assert.equal(await verifyResult(rd(TLS, "client.pem"), rd(TLS, "client.key")), "SUCCESS");
      assert.equal(await verifyResult(rd(SET, "client2.pem"), rd(SET, "client2.key")), "SUCCESS");
      assert.equal(
        await verifyResult(rd(SET, "client3_chain.pem"), rd(SET, "client3.key")),
        "SUCCESS",
      );
    });
  });
}
