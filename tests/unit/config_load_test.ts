// Grammar (quotes, escapes, comments, `${`), include with globs, the -g
// string, main-context directives, ignored http/stream blocks, and what
// loadConfig records (seen directives, files read, warnings).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import { Lexer, type Token } from "../../lib/config/lexer.ts";
import { COMMAND_LINE_LOC, formatConfigWarning } from "../../lib/config/errors.ts";
import type { Config } from "../../lib/config/types.ts";

const FIXTURES = new URL("../fixtures/config/", import.meta.url).pathname;

/** Writes the files into a fresh temp dir, loads nginx.conf, removes the dir. */
async function load(
  files: Record<string, string>,
  globals?: string,
): Promise<{ dir: string; cfg: Config }> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-config-"));
  try {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    const cfg = await loadConfig({
      file: join(dir, "nginx.conf"),
      prefix: dir,
      globals,
      hostname: "h.test",
    });
    return { dir, cfg };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function tokens(text: string): Token[] {
  const lx = new Lexer(new TextEncoder().encode(text), "/t.conf");
  const out: Token[] = [];
  for (let i = 0; i < 100; i++) {
    const t = lx.next();
    out.push(t);
    if (t.kind === "eof") return out;
  }
  throw new Error("too many tokens");
}

function args(text: string): string[][] {
  return tokens(text).flatMap((t) => (t.kind === "directive" ? [t.args] : []));
}

describe("lexer", () => {
  test("terminators end words without spaces", () => {
    assert.deepEqual(tokens("server{listen 25;}"), [
      { kind: "directive", args: ["server"], end: "{", line: 1 },
      { kind: "directive", args: ["listen", "25"], end: ";", line: 1 },
      { kind: "close", line: 1 },
      { kind: "eof", line: 1 },
    ]);
  });
  test("quotes keep whitespace and specials; empty quoted string is an argument", () => {
    assert.deepEqual(args(`a "x y;{}#'" 'q"q' "" '';`), [["a", "x y;{}#'", 'q"q', "", ""]]);
  });
  test("a quoted value may be followed by ; { or )", () => {
    assert.deepEqual(args(`a "b";c "d"{`), [["a", "b"], ["c", "d"]]);
    assert.deepEqual(args(`a "b")c;`), [["a", "b", ")c"]]);
  });
  test("# starts a comment only at a token start", () => {
    assert.deepEqual(args("a b#c #comment ; x\n d;"), [["a", "b#c", "d"]]);
    assert.deepEqual(args("# whole line\na b; # trailing\n"), [["a", "b"]]);
  });
  test("backslash escapes", () => {
    assert.deepEqual(args(String.raw`a \"x\" "q\"q" 'q\'q' s\\s t\tt r\rr n\nn \q "\z";`), [
      ["a", '"x"', 'q"q', "q'q", "s\\s", "t\tt", "r\rr", "n\nn", "\\q", "\\z"],
    ]);
    assert.deepEqual(args(String.raw`a b\ c d\;e;`), [["a", "b\\ c", "d\\;e"]]);
  });
  test("${ does not open a block and } inside it stays in the word", () => {
    assert.deepEqual(args("a ${name}x ${b}{"), [["a", "${name}x", "${b}"]]);
    assert.deepEqual(tokens("a ${b}{ }").map((t) => t.kind), ["directive", "close", "eof"]);
  });
  test("lines: the line of the terminator", () => {
    const t = tokens("a\nb\n\nc;\nd {\n}\n");
    assert.deepEqual(t.map((x) => x.line), [4, 5, 6, 7]);
  });
  test("multi-byte UTF-8 values survive", () => {
    assert.deepEqual(args('server_name "mäil ✉";'), [["server_name", "mäil ✉"]]);
  });
});

describe("main context", () => {
  test("defaults", async () => {
    const { dir, cfg } = await load({ "nginx.conf": "events {}\n" });
    assert.equal(cfg.file, join(dir, "nginx.conf"));
    assert.equal(cfg.prefix, dir);
    assert.equal(cfg.workerProcesses, 1);
    assert.equal(cfg.pid, null);
    assert.equal(cfg.workerConnections, 512);
    assert.equal(cfg.workerShutdownTimeout, null);
    assert.equal(cfg.mail, null);
    assert.deepEqual(cfg.errorLogs.map((l) => [l.target, l.level]), [["stderr", "error"]]);
    assert.deepEqual(cfg.warnings, []);
  });
  test("values and prefix-relative paths", async () => {
    const { dir, cfg } = await load({
      "nginx.conf": [
        "worker_processes 4;",
        "daemon OFF;",
        "master_process on;",
        "pid logs/m.pid;",
        "error_log logs/e.log warn;",
        "error_log /var/log/x.log debug_mail;",
        "error_log syslog:server=[::1]:514 info;",
        'worker_shutdown_timeout "1m 30s";',
        "events { worker_connections 100; use epoll; multi_accept on; }",
      ].join("\n"),
    });
    assert.equal(cfg.workerProcesses, 4);
    assert.equal(cfg.daemon, false);
    assert.equal(cfg.pid, join(dir, "logs/m.pid"));
    assert.deepEqual(cfg.errorLogs.map((l) => [l.target, l.level, l.loc.line]), [
      [join(dir, "logs/e.log"), "warn", 5],
      ["/var/log/x.log", "debug", 6],
      ["syslog:server=[::1]:514", "info", 7],
    ]);
    assert.equal(cfg.workerShutdownTimeout, 90000);
    assert.equal(cfg.workerConnections, 100);
  });
  test("worker_processes auto", async () => {
    const { cfg } = await load({ "nginx.conf": "worker_processes auto;\nevents {}\n" });
    assert.equal(cfg.workerProcesses, "auto");
  });
  test("ignored main directives warn with their location", async () => {
    const { dir, cfg } = await load({
      "nginx.conf": "user nobody;\nevents {}\nworker_rlimit_nofile 100;\n",
    });
    assert.deepEqual(cfg.warnings.map(formatConfigWarning), [
      `"user" directive is ignored in ${dir}/nginx.conf:1`,
      `"worker_rlimit_nofile" directive is ignored in ${dir}/nginx.conf:3`,
    ]);
  });
  test("http and stream blocks are read for syntax only, one warning each", async () => {
    const { dir, cfg } = await load({
      "nginx.conf":
        'events {}\nhttp {\n include missing/*.types; unknown_directive { nested "}"; }\n}\nstream { server { listen 1; } }\n',
    });
    assert.deepEqual(cfg.warnings.map(formatConfigWarning), [
      `"http" block is ignored: mailgate proxies mail only in ${dir}/nginx.conf:2`,
      `"stream" block is ignored: mailgate proxies mail only in ${dir}/nginx.conf:5`,
    ]);
    assert.deepEqual(cfg.seen.map((s) => s.name), ["events", "http", "stream"]);
  });
  test("seen lists every directive in file order, files every file read", async () => {
    const { dir, cfg } = await load({
      "nginx.conf": "events {\ninclude ev.conf;\n}\ndaemon off;\n",
      "ev.conf": "worker_connections 9;\n",
    });
    assert.deepEqual(cfg.seen, [
      { name: "events", args: [], loc: { file: join(dir, "nginx.conf"), line: 1 } },
      { name: "include", args: ["ev.conf"], loc: { file: join(dir, "nginx.conf"), line: 2 } },
      { name: "worker_connections", args: ["9"], loc: { file: join(dir, "ev.conf"), line: 1 } },
      { name: "daemon", args: ["off"], loc: { file: join(dir, "nginx.conf"), line: 4 } },
    ]);
    assert.deepEqual(cfg.files, [
      { path: join(dir, "nginx.conf"), text: "events {\ninclude ev.conf;\n}\ndaemon off;\n" },
      { path: join(dir, "ev.conf"), text: "worker_connections 9;\n" },
    ]);
    assert.equal(cfg.workerConnections, 9);
  });
});

describe("include", () => {
  test("glob includes matches in sorted order, in the current context", async () => {
    const { cfg } = await load({
      "nginx.conf":
        "events {}\nmail {\nauth_http 127.0.0.1:1;\ninclude servers/*.conf;\ninclude none/*.conf;\n}\n",
      "servers/b.conf": "server { listen 127.0.0.1:2002; protocol pop3; }\n",
      "servers/a.conf": "server { listen 127.0.0.1:2001; protocol imap; }\n",
      "servers/c.conf.off": "bogus;\n",
      "servers/.hidden.conf": "bogus;\n",
    });
    assert.deepEqual(cfg.mail!.servers.map((s) => s.protocol), ["imap", "pop3"]);
    assert.deepEqual(cfg.files.map((f) => f.path.split("/").pop()), [
      "nginx.conf",
      "a.conf",
      "b.conf",
    ]);
  });
  test("glob in a directory component and ? / [] patterns", async () => {
    const { cfg } = await load({
      "nginx.conf": "events {}\ninclude d?/[ab].conf;\n",
      "d1/a.conf": "pid /a;\n",
      "d2/c.conf": "bogus;\n",
    });
    assert.equal(cfg.pid, "/a");
  });
  test("absolute include path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-inc-"));
    try {
      writeFileSync(join(dir, "abs.conf"), "daemon off;\n");
      const { cfg } = await load({ "nginx.conf": `events {}\ninclude ${dir}/abs.conf;\n` });
      assert.equal(cfg.daemon, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("a file may be included twice (not recursively)", async () => {
    const { cfg } = await load({
      "nginx.conf":
        "events {}\nmail {\nauth_http 127.0.0.1:1;\ninclude h.conf;\nserver { listen 127.0.0.1:2001; protocol imap; include h.conf; }\n}\n",
      "h.conf": "auth_http_header X-A b;\n",
    });
    // The server's own header list replaces the mail-level one as a whole.
    assert.deepEqual(cfg.mail!.servers[0].authHttpHeaders, [["X-A", "b"]]);
    assert.equal(cfg.files.length, 3);
  });
});

describe("-g", () => {
  test("extra main directives apply; seen marks them as command line", async () => {
    const { cfg } = await load({ "nginx.conf": "events {}\n" }, "daemon off; worker_processes 2;");
    assert.equal(cfg.daemon, false);
    assert.equal(cfg.workerProcesses, 2);
    assert.deepEqual(cfg.seen.slice(0, 2), [
      { name: "daemon", args: ["off"], loc: COMMAND_LINE_LOC },
      { name: "worker_processes", args: ["2"], loc: COMMAND_LINE_LOC },
    ]);
  });
  test("warnings from -g format as in command line", async () => {
    const { cfg } = await load({ "nginx.conf": "events {}\n" }, "user nobody;");
    assert.deepEqual(cfg.warnings.map(formatConfigWarning), [
      '"user" directive is ignored in command line',
    ]);
  });
});

describe("fixtures", () => {
  test("a realistic nginx.conf with http{} and stream{} loads with warnings", async () => {
    const cfg = await loadConfig({
      file: FIXTURES + "nginx_realistic.conf",
      prefix: "/",
      hostname: "h.test",
    });
    assert.deepEqual(cfg.warnings.map((w) => [w.message, w.loc?.line]), [
      ['"user" directive is ignored', 2],
      ['"http" block is ignored: mailgate proxies mail only', 13],
      ['"stream" block is ignored: mailgate proxies mail only', 39],
    ]);
    const s = cfg.mail!.servers;
    assert.deepEqual(s.map((x) => x.protocol), ["smtp", "pop3", "imap"]);
    assert.equal(s[0].authHttp!.hostHeader, "localhost");
    assert.equal(s[0].authHttp!.uri, "/cgi-bin/nginxauth.cgi");
    assert.ok(s[0].listens.length >= 1);
    assert.deepEqual(s[0].smtpAuth, ["login", "plain"]);
    assert.equal(cfg.workerConnections, 768);
  });
});
