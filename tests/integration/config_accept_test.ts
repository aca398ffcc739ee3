// Configurations nginx accepts (issue 13), end to end on each target:
// * a certificate and its key in one PEM file, in either order (BlueMind
//   ships its configuration this way; Deno refused the key before), with
//   `ssl on` on one server: an implicit-TLS IMAP greeting on every server;
// * `mailgate -t` prints the runtime [warn] lines a start prints, with
//   FILE:LINE, -q or not, before "test is successful".

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, refuse } from "../helpers/mock_auth.ts";
import {
  ROOT,
  type Running,
  runOnce,
  startMailgate,
  type Target,
  targets,
  tempDir,
} from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts } from "../helpers/ports.ts";
import { runtimeWarnings } from "../../lib/config/runtime_warnings.ts";
import { formatConfigWarning, loadConfig } from "../../lib/config/load.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const rd = (f: string) => readFileSync(join(TLS, f), "utf8");
const CERT = rd("server.pem");
const KEY = rd("server.key");
const CA = rd("ca.pem");
const runtimeOf = (t: Target) => (t === "deno" ? "deno" : "bun");

async function greeting(port: number): Promise<string> {
  const s = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: CA });
  const c = TestClient.fromSocket(s);
  try {
    return await c.line(10000);
  } finally {
    c.close();
  }
}

for (const target of targets()) {
  describe(`combined certificate and key PEM files (${target})`, () => {
    let mg: Running;
    let auth: MockAuth;
    let ports: number[];
    before(async () => {
      auth = await MockAuth.start(() => refuse("Invalid login or password"));
      ports = await freePorts(3);
      const text = [
        "error_log stderr info;",
        "events { }",
        "mail {",
        `  auth_http 127.0.0.1:${auth.port}/auth;`,
        `  server { listen 127.0.0.1:${ports[0]} ssl; protocol imap;`,
        "    ssl_certificate cert_first.pem; ssl_certificate_key cert_first.pem; }",
        `  server { listen 127.0.0.1:${ports[1]} ssl; protocol imap;`,
        "    ssl_certificate key_first.pem; ssl_certificate_key key_first.pem; }",
        `  server { listen 127.0.0.1:${ports[2]}; protocol imap; ssl on;`,
        "    ssl_certificate_key cert_first.pem; ssl_certificate key_first.pem; }",
        "}",
        "",
      ].join("\n");
      mg = await startMailgate(target, text, {
        "cert_first.pem": CERT + KEY,
        "key_first.pem": KEY + CERT,
      });
    });
    after(() => stopAll(mg, auth));
    it("certificate first, key first, and `ssl on`: an implicit-TLS IMAP greeting on each", async () => {
      for (const port of ports) assert.equal(await greeting(port), "* OK IMAP4 ready\r\n");
      assert.match(
        mg.stderr(),
        /\[warn\] the "ssl" directive is deprecated, use the "listen \.\.\. ssl" directive instead in \S+mailgate\.conf:9\n/,
      );
    });
  });

  describe(`-t prints the runtime warnings a start prints (${target})`, () => {
    it("the same [warn] lines with FILE:LINE, with -q too", async () => {
      const { dir, cleanup } = tempDir();
      try {
        const conf = join(dir, "mailgate.conf");
        writeFileSync(join(dir, "both.pem"), CERT + KEY);
        writeFileSync(
          conf,
          [
            "events { }",
            "mail {",
            "  auth_http 127.0.0.1:9/auth;",
            "  ssl_certificate both.pem;",
            "  ssl_certificate_key both.pem;",
            "  ssl_ciphers HIGH:!aNULL;",
            "  ssl_session_cache shared:SSL:1m;",
            "  ssl_session_tickets off;",
            "  server { listen 127.0.0.1:1 ssl; protocol imap; }",
            "}",
            "",
          ].join("\n"),
        );
        const config = await loadConfig({ file: conf, prefix: dir });
        const want = runtimeWarnings(config, runtimeOf(target)).map((w) =>
          `mailgate: [warn] ${formatConfigWarning(w)}\n`
        );
        // Bun applies ssl_ciphers; the session cache line is a warning on both runtimes.
        assert.ok(
          want.some((l) =>
            l.includes(`"ssl_session_cache shared:SSL:1m"`) && l.endsWith(`${conf}:7\n`)
          ),
        );
        const t = await runOnce(target, ["-p", dir, "-c", conf, "-t"]);
        assert.equal(t.code, 0, t.stderr);
        assert.equal(
          t.stderr,
          want.join("") +
            `mailgate: the configuration file ${conf} syntax is ok\n` +
            `mailgate: configuration file ${conf} test is successful\n`,
        );
        const q = await runOnce(target, ["-p", dir, "-c", conf, "-tq"]);
        assert.equal(q.code, 0, q.stderr);
        assert.equal(q.stderr, want.join(""));
      } finally {
        cleanup();
      }
    });
  });
}
