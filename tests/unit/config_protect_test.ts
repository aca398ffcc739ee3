// The protection directives (README "Protection"): max_commands as freenginx
// (default 1000), the auth cache and failed-login limits; values, defaults,
// inheritance from the mail level, and the errors for bad arguments.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import type { ServerConfig } from "../../lib/config/types.ts";

async function server(body: string, mailBody = ""): Promise<ServerConfig> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-protect-"));
  try {
    writeFileSync(
      join(dir, "nginx.conf"),
      `events {}\nmail {\nauth_http 127.0.0.1:9000;\n${mailBody}\n` +
        `server {\nlisten 127.0.0.1:10143;\nprotocol imap;\n${body}\n}\n}\n`,
    );
    const cfg = await loadConfig({
      file: join(dir, "nginx.conf"),
      prefix: dir,
      hostname: "h.test",
    });
    return cfg.mail!.servers[0];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("defaults: max_commands 1000 (freenginx), cache and limits off", async () => {
  const s = await server("");
  assert.equal(s.maxCommands, 1000);
  assert.deepEqual(s.protect, {
    cacheTtlMs: 0,
    cacheNegativeTtlMs: 0,
    cacheSize: 10000,
    cacheSecretFile: null,
    failLimitIp: null,
    failLimitUser: null,
  });
});

test("values, and the mail level inherited where the server sets nothing", async () => {
  const s = await server(
    "max_commands 20; auth_cache_ttl 5m; auth_fail_limit_user 5 10m;",
    "auth_cache_negative_ttl 30s; auth_cache_size 50; auth_cache_secret secret.key; auth_fail_limit_ip 10 1m;",
  );
  assert.equal(s.maxCommands, 20);
  assert.equal(s.protect.cacheTtlMs, 300_000);
  assert.equal(s.protect.cacheNegativeTtlMs, 30_000);
  assert.equal(s.protect.cacheSize, 50);
  assert.match(s.protect.cacheSecretFile!, /\/secret\.key$/);
  assert.deepEqual(s.protect.failLimitIp, { count: 10, windowMs: 60_000 });
  assert.deepEqual(s.protect.failLimitUser, { count: 5, windowMs: 600_000 });
});

test("bad arguments are refused with the directive named", async () => {
  for (
    const [body, re] of [
      ["max_commands x;", /"max_commands" directive invalid number/],
      ["auth_cache_size 0;", /"auth_cache_size" must be at least 1/],
      ["auth_fail_limit_ip 0 1m;", /"auth_fail_limit_ip" directive invalid number "0"/],
      ["auth_fail_limit_user 3 500ms;", /"auth_fail_limit_user" directive invalid time "500ms"/],
      ["auth_fail_limit_ip 3;", /invalid number of arguments in "auth_fail_limit_ip"/],
      ["auth_cache_ttl 1m; auth_cache_ttl 2m;", /"auth_cache_ttl" directive is duplicate/],
    ] as const
  ) {
    await assert.rejects(server(body), re, body);
  }
});
