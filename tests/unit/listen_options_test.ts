// listen parameters -> ListenSpec (proxy/server.ts), the keep-alive call
// each adapter makes (runtime/shared/keepalive.ts), and the start-up warnings for
// the parameters a runtime cannot apply (config/runtime_warnings.ts), with the
// FILE:LINE of the listen directive. Pure: the adapters' socket behaviour
// is in runtime_test.ts.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import type { Config } from "../../lib/config/types.ts";
import { listenWarnings, runtimeWarnings } from "../../lib/config/runtime_warnings.ts";
import { formatConfigWarning } from "../../lib/config/errors.ts";
import { MULTIPATH_WARNING } from "../../lib/config/listen.ts";
import { listenKey, listenSpec, planSockets, type ServerRuntime } from "../../lib/proxy/server.ts";
import { keepaliveCall } from "../../lib/runtime/shared/keepalive.ts";
import type { RuntimeName } from "../../lib/runtime/capabilities.ts";

const TLS = new URL("../fixtures/tls/", import.meta.url).pathname;

async function load(servers: string): Promise<{ config: Config; file: string }> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-listen-"));
  try {
    const file = join(dir, "mailgate.conf");
    // Line 4 holds the first server.
    writeFileSync(
      file,
      `events {}\nmail {\nauth_http 127.0.0.1:9000; ssl_certificate ${TLS}server.pem; ssl_certificate_key ${TLS}server.key;\n${servers}\n}\n`,
    );
    return { config: await loadConfig({ file, prefix: dir }), file };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const runtimesOf = (config: Config): ServerRuntime[] =>
  config.mail!.servers.map((server) => ({ server }) as unknown as ServerRuntime);

describe("listen parameters -> ListenSpec", () => {
  test("backlog, so_keepalive and ipv6only reach the spec; [::] defaults to ipv6only on", async () => {
    const { config } = await load(`server { protocol imap;
listen 127.0.0.1:1143 backlog=64 so_keepalive=30m:10s:5;
listen [::]:1143;
listen [::]:1144 ipv6only=off so_keepalive=on;
listen [::1]:1145 so_keepalive=off;
listen 127.0.0.1:1146 so_keepalive=::3;
listen unix:/tmp/mailgate-test.sock backlog=5;
}`);
    const specs = config.mail!.servers[0].listens.map(listenSpec);
    assert.deepEqual(specs, [
      {
        kind: "tcp",
        host: "127.0.0.1",
        port: 1143,
        backlog: 64,
        keepalive: { idleSec: 1800, intvlSec: 10, cnt: 5 },
      },
      { kind: "tcp", host: "::", port: 1143, ipv6only: true },
      { kind: "tcp", host: "::", port: 1144, ipv6only: false, keepalive: true },
      { kind: "tcp", host: "::1", port: 1145, keepalive: false },
      {
        kind: "tcp",
        host: "127.0.0.1",
        port: 1146,
        keepalive: { idleSec: null, intvlSec: null, cnt: 3 },
      },
      { kind: "unix", path: "/tmp/mailgate-test.sock" },
    ]);
  });

  test("planSockets opens [::] sockets first and keeps the wildcard grouping", async () => {
    const { config } = await load(`
server { protocol imap; listen *:1143; listen 127.0.0.2:1143; }
server { protocol pop3; listen [::]:1143; listen [::1]:1143; }
server { protocol smtp; listen 127.0.0.3:1143 bind; listen 127.0.0.1:1025; }`);
    const sockets = planSockets(runtimesOf(config));
    assert.deepEqual(sockets.map((s) => s.key), [
      "[::]:1143",
      "0.0.0.0:1143",
      "127.0.0.3:1143",
      "127.0.0.1:1025",
    ]);
    assert.deepEqual(sockets[0].entries.map((e) => listenKey(e.listen)), [
      "[::]:1143",
      "[::1]:1143",
    ]);
    assert.deepEqual(sockets[1].entries.map((e) => listenKey(e.listen)), [
      "0.0.0.0:1143",
      "127.0.0.2:1143",
    ]);
    assert.deepEqual(sockets[0].spec, { kind: "tcp", host: "::", port: 1143, ipv6only: true });
  });
});

describe("so_keepalive -> setKeepAlive", () => {
  test("on/off, idle where settable, nothing when not configured", () => {
    assert.equal(keepaliveCall(undefined, true), null);
    assert.deepEqual(keepaliveCall(true, false), { enable: true });
    assert.deepEqual(keepaliveCall(false, true), { enable: false });
    const t = { idleSec: 30, intvlSec: 5, cnt: 3 };
    assert.deepEqual(keepaliveCall(t, true), { enable: true, delayMs: 30000 });
    assert.deepEqual(keepaliveCall(t, false), { enable: true });
    assert.deepEqual(keepaliveCall({ idleSec: null, intvlSec: 5, cnt: null }, true), {
      enable: true,
    });
  });
});

describe("start-up warnings for listen parameters", () => {
  const SERVERS = `server { protocol imap;
listen 127.0.0.1:1143 backlog=64 rcvbuf=64k sndbuf=32k;
listen 127.0.0.1:1144 so_keepalive=30m::;
listen 127.0.0.1:1145 so_keepalive=30m:10s:5;
listen 127.0.0.1:1146-1148 so_keepalive=on ipv6only=on;
listen [::]:1149 so_keepalive=off;
listen unix:/tmp/mailgate-test.sock backlog=5;
}`;

  const messages = async (rt: RuntimeName) => {
    const { config, file } = await load(SERVERS);
    return listenWarnings(config, rt).map((w) => formatConfigWarning(w).replace(file, "F"));
  };

  test("deno: rcvbuf/sndbuf, keep-alive interval/count, unix backlog; backlog, keep-alive on/off/idle and ipv6only are applied", async () => {
    assert.deepEqual(await messages("deno"), [
      `"rcvbuf" is not supported by the deno runtime, ignored in F:5`,
      `"sndbuf" is not supported by the deno runtime, ignored in F:5`,
      `"so_keepalive" interval and count are not supported by the deno runtime, ignored: keep-alive uses the idle time and the system's probe interval and count in F:7`,
      `"backlog" on a unix socket is not supported by the deno runtime, ignored in F:10`,
    ]);
  });

  test("bun: backlog, rcvbuf/sndbuf, keep-alive interval/count; keep-alive idle and ipv6only are applied", async () => {
    assert.deepEqual(await messages("bun"), [
      `"backlog" is not supported by the bun runtime, ignored in F:5`,
      `"rcvbuf" is not supported by the bun runtime, ignored in F:5`,
      `"sndbuf" is not supported by the bun runtime, ignored in F:5`,
      `"so_keepalive" interval and count are not supported by the bun runtime, ignored: keep-alive uses the idle time, a 1s probe interval and 10 probes in F:7`,
      `"backlog" is not supported by the bun runtime, ignored in F:10`,
    ]);
  });

  test("a port range is one warning; multipath is reported once, by the loader; no blanket 'not applied yet'", async () => {
    const { config } = await load(
      `server { protocol imap; listen 127.0.0.1:1150-1152 rcvbuf=8k multipath; }`,
    );
    for (const rt of ["deno", "bun"] as const) {
      const all = runtimeWarnings(config, rt).map((w) => w.message);
      assert.deepEqual(all.filter((m) => m.startsWith(`"rcvbuf"`)).length, 1);
      assert.ok(!all.includes(MULTIPATH_WARNING));
      assert.ok(!all.some((m) => /not applied yet/.test(m)));
    }
    assert.equal(config.warnings.filter((w) => w.message === MULTIPATH_WARNING).length, 1);
  });
});
