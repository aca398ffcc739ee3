// listen (directives.md §3): address forms, port ranges, host names,
// parameters and the bind they imply, protocol autodetection by port.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import type { Config, ListenConfig } from "../../lib/config/types.ts";
import type { IpAddr } from "../../lib/config/url.ts";

const TLS = new URL("../fixtures/tls/", import.meta.url).pathname;
/** Certificates at mail level, so `listen ... ssl` passes the end-of-mail checks. */
const CERTS = `ssl_certificate ${TLS}server.pem; ssl_certificate_key ${TLS}server.key;`;

function lookup(host: string): Promise<IpAddr[]> {
  if (host === "both.test") {
    return Promise.resolve([
      { family: 4, bytes: new Uint8Array([127, 0, 0, 1]) },
      { family: 6, bytes: new Uint8Array([...new Array(15).fill(0), 1]) },
    ]);
  }
  return Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" }));
}

async function load(mailBody: string, useRealDns = false): Promise<Config> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-config-"));
  try {
    writeFileSync(
      join(dir, "nginx.conf"),
      `events {}\nmail {\nauth_http 127.0.0.1:9000; ${CERTS}\n${mailBody}\n}\n`,
    );
    return await loadConfig({
      file: join(dir, "nginx.conf"),
      prefix: dir,
      lookup: useRealDns ? undefined : lookup,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function listens(args: string): Promise<ListenConfig[]> {
  const cfg = await load(`server { listen ${args}; protocol imap; }`);
  return cfg.mail!.servers[0].listens;
}

const addr = (l: ListenConfig) =>
  l.address.kind === "unix"
    ? `unix:${l.address.path}`
    : `${l.address.host}|${l.address.port}|${l.address.wildcard}`;

describe("address forms", () => {
  const cases: [string, string[]][] = [
    ["110", ["0.0.0.0|110|true"]],
    ["*:110", ["0.0.0.0|110|true"]],
    ["0.0.0.0:110", ["0.0.0.0|110|true"]],
    ["127.0.0.1:110", ["127.0.0.1|110|false"]],
    ["[::1]:110", ["::1|110|false"]],
    ["[::]:110", ["::|110|true"]],
    ["[0:0:0:0:0:0:0:1]:110", ["::1|110|false"]],
    ["unix:/var/run/mail.sock", ["unix:/var/run/mail.sock"]],
    ["8000-8002", ["0.0.0.0|8000|true", "0.0.0.0|8001|true", "0.0.0.0|8002|true"]],
    ["127.0.0.1:9000-9001", ["127.0.0.1|9000|false", "127.0.0.1|9001|false"]],
    ["[::1]:9000-9001", ["::1|9000|false", "::1|9001|false"]],
    ["both.test:25-26", [
      "127.0.0.1|25|false",
      "127.0.0.1|26|false",
      "::1|25|false",
      "::1|26|false",
    ]],
  ];
  for (const [arg, want] of cases) {
    test(arg, async () => assert.deepEqual((await listens(arg)).map(addr), want));
  }
  test("localhost is resolved with node:dns", async () => {
    const cfg = await load("server { listen localhost:10025; protocol smtp; }", true);
    const hosts = cfg.mail!.servers[0].listens.map((
      l,
    ) => (l.address.kind === "tcp" ? l.address.host : ""));
    assert.ok(hosts.length >= 1);
    assert.ok(hosts.every((h) => h === "127.0.0.1" || h === "::1"), hosts.join(","));
    assert.equal(new Set(hosts).size, hosts.length);
  });
});

describe("parameters", () => {
  test("defaults: nothing set, no bind", async () => {
    const [l] = await listens("127.0.0.1:10143");
    assert.deepEqual({ ...l, loc: null, address: null }, {
      loc: null,
      address: null,
      ssl: false,
      proxyProtocol: false,
      bind: false,
      backlog: null,
      rcvbuf: null,
      sndbuf: null,
      ipv6only: null,
      multipath: false,
      soKeepalive: null,
    });
    assert.equal(l.loc.line, 4);
  });
  test("ssl and proxy_protocol do not imply bind", async () => {
    const [l] = await listens("127.0.0.1:993 ssl proxy_protocol");
    assert.equal(l.ssl, true);
    assert.equal(l.proxyProtocol, true);
    assert.equal(l.bind, false);
  });
  const implying: [string, Partial<ListenConfig>][] = [
    ["bind", {}],
    ["backlog=1024", { backlog: 1024 }],
    ["rcvbuf=64k", { rcvbuf: 65536 }],
    ["sndbuf=1m", { sndbuf: 1048576 }],
    ["ipv6only=on", { ipv6only: true }],
    ["ipv6only=off", { ipv6only: false }],
    ["multipath", { multipath: true }],
    ["so_keepalive=on", { soKeepalive: true }],
    ["so_keepalive=off", { soKeepalive: false }],
    ["so_keepalive=30m::10", { soKeepalive: { idle: 1800, intvl: null, cnt: 10 } }],
    ["so_keepalive=:5s:", { soKeepalive: { idle: null, intvl: 5, cnt: null } }],
    ["so_keepalive=1h:1m:3", { soKeepalive: { idle: 3600, intvl: 60, cnt: 3 } }],
  ];
  for (const [p, want] of implying) {
    test(`${p} implies bind`, async () => {
      const [l] = await listens(`[::]:10143 ${p}`);
      assert.equal(l.bind, true);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(l[k as keyof ListenConfig], v, k);
    });
  }
  test("multipath warns that it is ignored", async () => {
    const cfg = await load("server { listen 127.0.0.1:10143 multipath; protocol imap; }");
    assert.deepEqual(cfg.warnings.map((w) => [w.message, w.loc?.line]), [[
      "multipath is not supported on this platform, ignored",
      4,
    ]]);
  });
  test("parameters apply to every socket of a range", async () => {
    const ls = await listens("127.0.0.1:7000-7001 ssl backlog=5");
    assert.deepEqual(ls.map((l) => [l.ssl, l.backlog]), [[true, 5], [true, 5]]);
  });
});

describe("protocol autodetection", () => {
  const cases: [string, string][] = [
    ["143", "imap"],
    ["993", "imap"],
    ["110", "pop3"],
    ["995", "pop3"],
    ["25", "smtp"],
    ["465", "smtp"],
    ["587", "smtp"],
  ];
  for (const [port, proto] of cases) {
    test(`port ${port} → ${proto}`, async () => {
      const cfg = await load(`server { listen 127.0.0.1:${port}; }`);
      assert.equal(cfg.mail!.servers[0].protocol, proto);
    });
  }
  test("the first well-known listen decides; the first port of a range counts", async () => {
    const cfg = await load(
      "server { listen 127.0.0.1:10000; listen 127.0.0.1:110; listen 127.0.0.1:25; }\nserver { listen 127.0.0.2:143-144; }",
    );
    assert.deepEqual(cfg.mail!.servers.map((s) => s.protocol), ["pop3", "imap"]);
  });
  test("an explicit protocol wins wherever it is written", async () => {
    const cfg = await load(
      "server { listen 127.0.0.1:25; protocol imap; }\nserver { protocol pop3; listen 127.0.0.1:143; }",
    );
    assert.deepEqual(cfg.mail!.servers.map((s) => s.protocol), ["imap", "pop3"]);
  });
  test("993 does not imply ssl", async () => {
    const cfg = await load("server { listen 127.0.0.1:993; }");
    assert.equal(cfg.mail!.servers[0].listens[0].ssl, false);
  });
});
