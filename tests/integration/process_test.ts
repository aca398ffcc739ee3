// Running mailgate for real: command line (-t, -T, -v, -s), start-up errors,
// pid file, signals (reload keeping sessions, graceful and fast stop, log
// reopen), worker processes — under Deno, Bun and the compiled executable.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { ROOT, runOnce, startMailgate, targets, tempDir } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts } from "../helpers/ports.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");

function children(pid: number): number[] {
  const r = spawnSync("pgrep", ["-P", String(pid)]);
  return String(r.stdout).split("\n").filter(Boolean).map(Number);
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const target of targets()) {
  describe(`running mailgate (${target})`, () => {
    let auth: MockAuth;
    let backend: MockImap;
    before(async () => {
      backend = await MockImap.start();
      auth = await MockAuth.start(() => ok("127.0.0.1", backend.port));
    });
    after(() => stopAll(auth, backend));

    const conf = (port: number, extra = "", main = "") => `
${main}
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  ${extra}
  server { listen 127.0.0.1:${port}; protocol imap; }
}
`;

    it("-t prints nginx's two lines; -T dumps every file; a bad file fails with FILE:LINE", async () => {
      const t = tempDir();
      try {
        const file = join(t.dir, "m.conf");
        writeFileSync(file, conf(1143, "include extra.conf;"));
        writeFileSync(join(t.dir, "extra.conf"), "timeout 5s;\n");
        const r = await runOnce(target, ["-t", "-c", file]);
        assert.equal(r.code, 0);
        assert.equal(r.stderr, `mailgate: the configuration file ${file} syntax is ok\nmailgate: configuration file ${file} test is successful\n`);
        const q = await runOnce(target, ["-tq", "-c", file]);
        assert.equal(q.stderr, "");
        const d = await runOnce(target, ["-T", "-c", file]);
        assert.ok(d.stdout.includes(`# configuration file ${file}:\n`));
        assert.ok(d.stdout.includes(`# configuration file ${join(t.dir, "extra.conf")}:\ntimeout 5s;\n`));
        writeFileSync(join(t.dir, "extra.conf"), "timeout 5s;\nbogus_directive on;\n");
        const b = await runOnce(target, ["-t", "-c", file]);
        assert.equal(b.code, 1);
        assert.equal(b.stderr, `mailgate: [emerg] unknown directive "bogus_directive" in ${join(t.dir, "extra.conf")}:2\nmailgate: configuration file ${file} test failed\n`);
      } finally {
        t.cleanup();
      }
    });

    it("-v / -h / invalid option", async () => {
      const v = await runOnce(target, ["-v"]);
      assert.equal(v.code, 0);
      assert.match(v.stderr, /^mailgate version: mailgate\/\d+\.\d+\.\d+\n$/);
      const h = await runOnce(target, ["-h"]);
      assert.match(h.stderr, /Usage: mailgate \[-\?hvVtTq\]/);
      const x = await runOnce(target, ["-x"]);
      assert.equal(x.code, 1);
      assert.equal(x.stderr, 'mailgate: invalid option: "x"\n');
    });

    it("start-up errors are one line and a non-zero exit: port taken, unreadable certificate", async () => {
      const [port] = await freePorts(1);
      const first = await startMailgate(target, conf(port));
      const t = tempDir();
      try {
        const file = join(t.dir, "m.conf");
        writeFileSync(file, conf(port));
        const r = await runOnce(target, ["-p", t.dir, "-c", file]);
        assert.equal(r.code, 1);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], new RegExp(`^mailgate: \\[emerg\\] bind\\(\\) to 127\\.0\\.0\\.1:${port} failed \\(.+\\)$`));
        writeFileSync(file, conf(port + 1, `ssl_certificate ${t.dir}/missing.pem; ssl_certificate_key ${TLS}/server.key; starttls on;`));
        const c = await runOnce(target, ["-p", t.dir, "-c", file]);
        assert.equal(c.code, 1);
        assert.match(c.stderr, /^mailgate: \[emerg\] cannot load certificate ".*missing\.pem": .*\n$/);
      } finally {
        t.cleanup();
        await first.stop();
      }
    });

    it("pid file; HUP reloads: new connections get the new settings, a live session keeps going", async () => {
      const [port] = await freePorts(1);
      const mg = await startMailgate(target, conf(port, "imap_capabilities OLD;", "pid mg.pid;"));
      try {
        const pidFile = join(mg.dir, "mg.pid");
        assert.equal(readFileSync(pidFile, "utf8"), `${mg.proc.pid}\n`);
        const live = await TestClient.open(port);
        await live.line();
        live.write("a1 LOGIN u p\r\n");
        assert.equal(await live.line(), "a1 OK mock login ok\r\n");
        writeFileSync(mg.conf, conf(port, "imap_capabilities NEW;", "pid mg.pid;"));
        const r = await runOnce(target, ["-p", mg.dir, "-c", mg.conf, "-s", "reload"]);
        assert.equal(r.code, 0, r.stderr);
        await mg.waitLog(/reconfiguring done/);
        const c = await TestClient.open(port);
        await c.line();
        c.write("1 CAPABILITY\r\n");
        assert.equal(await c.line(), "* CAPABILITY NEW AUTH=PLAIN\r\n");
        c.close();
        live.write("a2 WHOAMI\r\n");
        assert.equal(await live.line(), "a2 OK u\r\n", "the session that started before the reload still works");
        // A broken configuration is refused and the running one stays.
        writeFileSync(mg.conf, conf(port, "imap_capabilities BROKEN", "pid mg.pid;"));
        process.kill(mg.proc.pid!, "SIGHUP");
        await mg.waitLog(/reload failed, the running configuration is kept/);
        const d = await TestClient.open(port);
        await d.line();
        d.write("1 CAPABILITY\r\n");
        assert.equal(await d.line(), "* CAPABILITY NEW AUTH=PLAIN\r\n");
        d.close();
        live.close();
        const s = await runOnce(target, ["-p", mg.dir, "-c", mg.conf, "-s", "stop"]);
        // the broken config cannot be loaded to find the pid file: -s needs a valid config
        assert.equal(s.code, 1);
        writeFileSync(mg.conf, conf(port, "", "pid mg.pid;"));
        const s2 = await runOnce(target, ["-p", mg.dir, "-c", mg.conf, "-s", "stop"]);
        assert.equal(s2.code, 0, s2.stderr);
        await until(() => mg.proc.exitCode !== null, 5000, "exit after -s stop");
        assert.equal(existsSync(pidFile), false, "pid file removed at exit");
      } finally {
        await mg.stop();
      }
    });

    it("QUIT drains: the live session finishes, then the process exits; worker_shutdown_timeout bounds it", async () => {
      const [port] = await freePorts(1);
      const mg = await startMailgate(target, conf(port, "", "worker_shutdown_timeout 500ms;"));
      try {
        const live = await TestClient.open(port);
        await live.line();
        live.write("a1 LOGIN u p\r\n");
        assert.equal(await live.line(), "a1 OK mock login ok\r\n");
        process.kill(mg.proc.pid!, "SIGQUIT");
        await mg.waitLog(/gracefully shutting down/);
        // new connections are refused, the live one still works until the bound
        await assert.rejects(TestClient.open(port));
        live.write("a2 NOOP\r\n");
        assert.equal(await live.line(), "a2 OK noop\r\n");
        assert.ok(await live.waitClose(3000), "closed by worker_shutdown_timeout");
        await until(() => mg.proc.exitCode !== null, 5000, "exit after QUIT");
        assert.equal(mg.proc.exitCode, 0);
      } finally {
        await mg.stop();
      }
    });

    it("-s reopen: logs continue in a new file after rotation", async () => {
      const [port] = await freePorts(1);
      const mg = await startMailgate(target, conf(port, "error_log mail.log info;", "pid mg.pid;"));
      try {
        const log = join(mg.dir, "mail.log");
        const c = await TestClient.open(port);
        await c.line();
        c.close();
        await until(() => existsSync(log) && readFileSync(log, "utf8").includes("connected"), 3000, "first log line");
        renameSync(log, log + ".1");
        const r = await runOnce(target, ["-p", mg.dir, "-c", mg.conf, "-s", "reopen"]);
        assert.equal(r.code, 0, r.stderr);
        await new Promise((r) => setTimeout(r, 200));
        const d = await TestClient.open(port);
        await d.line();
        d.close();
        await until(() => existsSync(log) && readFileSync(log, "utf8").includes("connected"), 3000, "log in the new file");
      } finally {
        await mg.stop();
      }
    });

    it("worker_processes 2: two workers share the port; a killed worker is restarted; QUIT stops all", async () => {
      const [port] = await freePorts(1);
      const mg = await startMailgate(target, conf(port, "", "worker_processes 2; pid mg.pid;"), {}, /master started with 2 worker processes/);
      try {
        const master = mg.proc.pid!;
        await until(() => children(master).length === 2, 5000, "two workers");
        const seen = new Set<string>();
        for (let i = 0; i < 40 && seen.size < 2; i++) {
          const c = await TestClient.open(port);
          assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
          c.close();
          const m = mg.stderr().match(/(\d+)#0: \*\d+ client 127\.0\.0\.1:\d+ connected/g) ?? [];
          for (const x of m) seen.add(x.split("#")[0]);
        }
        assert.equal(seen.size, 2, "both workers accepted connections");
        const [victim] = children(master);
        process.kill(victim, "SIGKILL");
        await mg.waitLog(new RegExp(`worker process ${victim} exited on signal SIGKILL, restarting`));
        await until(() => children(master).length === 2 && !children(master).includes(victim), 10000, "restart");
        const c = await TestClient.open(port);
        assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
        c.close();
        const kids = children(master);
        process.kill(master, "SIGQUIT");
        await until(() => mg.proc.exitCode !== null, 10000, "master exit");
        await until(() => kids.every((k) => spawnSync("kill", ["-0", String(k)]).status !== 0), 5000, "workers exit");
        assert.equal(existsSync(join(mg.dir, "mg.pid")), false);
      } finally {
        await mg.stop();
      }
    });
  });
}
