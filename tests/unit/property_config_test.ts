// Property tests of the configuration reader and the auth table parser
// (issue #7): the lexer on arbitrary bytes and loadConfig on generated
// (mutated) configuration files fail only with a ConfigError carrying a
// location, never with another exception or a hang; quoted and escaped words
// read back as written; parseAuthTable fails only with its "in FILE:LINE"
// error and finds every entry of a generated table.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { ConfigError, loadConfig } from "../../lib/config/load.ts";
import { Lexer } from "../../lib/config/lexer.ts";
import { lookupUser, parseAuthTable } from "../../lib/auth/table.ts";
import { binary, check, RUNS } from "../helpers/property.ts";
import { binaryToBytes } from "../../lib/core/bytes.ts";

/** Bound on tokens read from one input (every loop in a test is bounded). */
const MAX_TOKENS = 100_000;

function lexAll(src: Uint8Array): string[][] {
  const lx = new Lexer(src, "/fuzz.conf");
  const out: string[][] = [];
  for (let i = 0; i < MAX_TOKENS; i++) {
    const t = lx.next();
    if (t.kind === "eof") return out;
    out.push(t.kind === "directive" ? [...t.args, t.end] : ["}"]);
  }
  throw new Error("lexer did not reach the end");
}

const BASE = `
error_log stderr info;
worker_processes 1;
events { worker_connections 64; }
mail {
  server_name mail.example.test;
  auth_http 127.0.0.1:9000/auth;
  auth_http_header X-Secret "s3 cr\\"et";
  auth_http_timeout 5s;
  proxy_buffer 8k;
  imap_capabilities IMAP4rev1 "SASL-IR" 'ID';
  smtp_auth login plain cram-md5;
  server { listen 127.0.0.1:1143; protocol imap; imap_auth plain login; timeout 1m; max_errors 3; }
  server { listen 127.0.0.1:1110; protocol pop3; pop3_auth plain apop; starttls off; }
  server { listen 127.0.0.1:1025; protocol smtp; xclient off; smtp_greeting_delay 1s; }
}
`;

/** BASE cut into words, spaces and punctuation, for mutation. */
const PIECES = BASE.match(/"(?:[^"\\]|\\.)*"|'[^']*'|[;{}]|\s+|[^\s;{}]+/g)!;

const HOSTILE = fc.constantFrom(
  ";", "{", "}", "\"", "'", "\\", "#", "$", "${", "${x}", "\0", "\xff\xfe", "\r", "\n", " ",
  "99999999999999999999", "99999999999999999999k", "-1", "0", "1e9", "4294967296s", "0x10",
  "listen", "server", "mail", "events", "include *.conf", "include nothing*", "http { }",
  "stream {", "protocol", "imap", "smtp", "pop3", "[::1]:25", "unix:", "unix:/x", "*:", ":0",
  "127.0.0.1:99999", "auth_http", "auth_table", "ssl_certificate", "a".repeat(5000),
);

const mutation = fc.oneof(
  fc.tuple(fc.constant("delete" as const), fc.nat(), fc.constant("")),
  fc.tuple(fc.constant("insert" as const), fc.nat(), HOSTILE),
  fc.tuple(fc.constant("replace" as const), fc.nat(), HOSTILE),
  fc.tuple(fc.constant("insert" as const), fc.nat(), binary(8)),
);

function mutate(muts: [string, number, string][]): string {
  const p = [...PIECES];
  for (const [kind, at, text] of muts) {
    const i = at % (p.length + 1);
    if (kind === "delete") p.splice(i, 1);
    else if (kind === "insert") p.splice(i, 0, text);
    else p[Math.min(i, p.length - 1)] = text;
  }
  return p.join("");
}

describe("configuration reader, properties", () => {
  test("lexer on arbitrary bytes: tokens or a located ConfigError, nothing else", () => {
    const text = fc.oneof(binary(300), fc.array(HOSTILE, { maxLength: 30 }).map((a) => a.join(" ")));
    check(fc.property(text, (s) => {
      try {
        lexAll(binaryToBytes(s));
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        assert.ok(e.loc !== null && e.loc.line >= 1, String(e));
      }
    }));
  });

  test("quoted and escaped words read back as written", () => {
    const wordArb = fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 20 });
    check(fc.property(fc.array(fc.array(wordArb, { minLength: 1, maxLength: 5 }), { maxLength: 6 }), (directives) => {
      const quote = (w: string) => '"' + w.replace(/[\\"]/g, (c) => "\\" + c) + '"';
      const text = directives.map((d) => d.map(quote).join(" ") + ";\n").join("");
      const back = lexAll(new TextEncoder().encode(text));
      assert.deepEqual(back, directives.map((d) => [...d, ";"]));
    }));
  });

  test("loadConfig on mutated configuration files: a Config or a located ConfigError", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-prop-config-"));
    try {
      const file = join(dir, "mailgate.conf");
      let loaded = 0, refused = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 6 }), async (muts) => {
          writeFileSync(file, binaryToBytes(mutate(muts)));
          try {
            const cfg = await loadConfig({ file, prefix: dir, hostname: "h.test", lookup: () => Promise.resolve([]) });
            loaded++;
            for (const s of cfg.mail?.servers ?? []) {
              assert.ok(["imap", "pop3", "smtp"].includes(s.protocol));
              assert.ok(s.timeoutMs >= 0 && Number.isFinite(s.timeoutMs)); // 0 is accepted, as nginx does
              assert.ok(Number.isSafeInteger(s.proxyBuffer) && s.proxyBuffer >= 0);
              assert.ok(Number.isSafeInteger(s.imapClientBuffer) && Number.isSafeInteger(s.smtpClientBuffer));
            }
          } catch (e) {
            assert.ok(e instanceof ConfigError, `${(e as Error).name}: ${(e as Error).message}`);
            refused++;
          }
        }),
        { numRuns: Math.max(200, RUNS) },
      );
      // The generator reaches both outcomes (it is not all noise).
      assert.ok(loaded > 0 && refused > 0, `loaded ${loaded}, refused ${refused}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("auth table parser, properties", () => {
  test("arbitrary text: a table or an error naming FILE:LINE, nothing else", () => {
    const line = fc.oneof(
      binary(40),
      fc.tuple(
        fc.constantFrom("*", "@example.org", "alice@Example.org", "bob", "@", "a@", "#c", ""),
        fc.constantFrom("127.0.0.1:143", "[::1]:993", "1.2.3.4:0", "1.2.3.4:65536", "host:1", "[::1]", "1.2.3.4"),
        fc.constantFrom("", "plain:x", "scrypt:16384:8:1:AAAA:BBBB", "scrypt:1:1:1::", "other", "plain:"),
        fc.constantFrom("", " extra", " # comment"),
      ).map((a) => a.join(" ")),
    );
    check(fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
      try {
        parseAuthTable(lines.join("\n"), "/t/users.table");
      } catch (e) {
        assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), String(e));
        assert.match((e as Error).message, / in \/t\/users\.table:\d+$/);
      }
    }));
  });

  test("a generated table finds each user: exact, then @domain, then *", () => {
    const local = fc.stringMatching(/^[a-z0-9._+-]{1,12}$/);
    const dom = fc.stringMatching(/^[a-z0-9-]{1,10}\.(org|net|test)$/);
    check(fc.property(fc.uniqueArray(fc.tuple(local, dom), { maxLength: 8, selector: ([l, d]) => `${l}@${d}` }), fc.boolean(), (users, star) => {
      const lines = users.map(([l, d], i) => `${l}@${d.toUpperCase()}\t127.0.0.1:${1000 + i}`);
      if (star) lines.push("*  [::1]:9");
      const t = parseAuthTable(lines.join("\r\n") + "\n", "/t/users.table");
      users.forEach(([l, d], i) => assert.equal(lookupUser(t, `${l}@${d}`)?.port, 1000 + i));
      assert.equal(lookupUser(t, "nobody@nowhere.invalid")?.port ?? null, star ? 9 : null);
    }));
  });
});
