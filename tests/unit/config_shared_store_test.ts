// shared_store, shared_store_password_file, shared_store_timeout: parsed
// into MailConfig.sharedStore, errors at their FILE:LINE, never echoing a
// password.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, formatConfigError } from "../../lib/config/errors.ts";
import { loadConfig } from "../../lib/config/load.ts";
import type { SharedStoreConfig } from "../../lib/config/shared_store.ts";

async function load(
  mailBody: string,
  serverBody = "",
  files: Record<string, string> = {},
): Promise<SharedStoreConfig | null> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-store-config-"));
  try {
    const conf = `events {}\nmail {\nauth_http 127.0.0.1:9000;\n${mailBody}\n` +
      `server {\nlisten 127.0.0.1:10143;\nprotocol imap;\n${serverBody}\n}\n}\n`;
    writeFileSync(join(dir, "nginx.conf"), conf);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const cfg = await loadConfig({
      file: join(dir, "nginx.conf"),
      prefix: dir,
      hostname: "host.test",
    });
    return cfg.mail!.sharedStore;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function error(
  mailBody: string,
  serverBody = "",
  files: Record<string, string> = {},
): Promise<string> {
  try {
    await load(mailBody, serverBody, files);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return formatConfigError(e).replace(/ in \/\S+\/nginx\.conf:/, " in nginx.conf:");
  }
  assert.fail("no error");
}

describe("shared_store directives", () => {
  test("absent: no shared store", async () => {
    assert.equal(await load(""), null);
  });

  test("URL forms, default port, db, timeout default 100ms", async () => {
    const s = await load("shared_store redis://127.0.0.1:6380/2;");
    assert.deepEqual(
      { ...s!.target },
      {
        host: "127.0.0.1",
        port: 6380,
        db: 2,
        user: null,
        password: null,
        bareCredential: false,
        display: "redis://127.0.0.1:6380",
      },
    );
    assert.equal(s!.timeoutMs, 100);
    const v6 = await load("shared_store redis://[::1];\nshared_store_timeout 250ms;");
    assert.equal(v6!.target.host, "::1");
    assert.equal(v6!.target.port, 6379);
    assert.equal(v6!.target.display, "redis://[::1]:6379");
    assert.equal(v6!.timeoutMs, 250);
    const auth = await load("shared_store redis://mail:p%40ss@redis.test:6379/0;");
    assert.equal(auth!.target.user, "mail");
    assert.equal(auth!.target.password, "p@ss");
    const bare = await load("shared_store redis://onlypass@127.0.0.1:6379;");
    assert.equal(bare!.target.user, null);
    assert.equal(bare!.target.password, "onlypass");
  });

  test("password file: first line; a bare name in the URL is then the user", async () => {
    const s = await load(
      "shared_store redis://mail@127.0.0.1:6379;\nshared_store_password_file redis.pass;",
      "",
      {
        "redis.pass": "from-file\nignored\n",
      },
    );
    assert.equal(s!.target.user, "mail");
    assert.equal(s!.target.password, "from-file");
  });

  test("errors at FILE:LINE, without the password", async () => {
    assert.equal(
      await error("shared_store http://127.0.0.1:6379;"),
      `invalid shared store URL "http://127.0.0.1:6379": expected redis://[user:password@]host:port[/db] in nginx.conf:4`,
    );
    const bad = await error("shared_store redis://u:topsecret@127.0.0.1:99999;");
    assert.match(bad, /invalid port .* in nginx\.conf:4$/);
    assert.ok(!bad.includes("topsecret"));
    assert.match(
      await error("shared_store_timeout 0;\nshared_store redis://127.0.0.1;"),
      /"shared_store_timeout" must be more than 0 in nginx\.conf:4/,
    );
    assert.match(
      await error("shared_store_timeout abc;"),
      /"shared_store_timeout" directive invalid value in nginx\.conf:4/,
    );
    assert.match(
      await error("shared_store redis://a;\nshared_store redis://b;"),
      /"shared_store" directive is duplicate in nginx\.conf:5/,
    );
    assert.match(
      await error("shared_store_timeout 50ms;"),
      /"shared_store_timeout" is given without "shared_store" in nginx\.conf:4/,
    );
    assert.match(
      await error("shared_store redis://127.0.0.1;\nshared_store_password_file missing.pass;"),
      /cannot read "shared_store_password_file" ".*missing\.pass".* in nginx\.conf:5/,
    );
    assert.match(
      await error("shared_store redis://u:x@127.0.0.1;\nshared_store_password_file p;", "", {
        p: "y\n",
      }),
      /cannot both be given in nginx\.conf:5/,
    );
    assert.match(
      await error("", "shared_store redis://127.0.0.1;"),
      /"shared_store" directive is not allowed here in nginx\.conf:8/,
    );
  });
});
