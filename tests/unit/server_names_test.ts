// SNI: server_name matching with nginx's precedence (tls/server_names.ts),
// the ClientHello's server_name (tls/client_hello.ts), and the
// configuration rules for servers sharing a listen address
// (config/server_names.ts).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nameMatchRank, selectServerByName, validServerName } from "../../lib/tls/server_names.ts";
import { chooseCertIndex, helloServerName, helloSignatureSchemes } from "../../lib/tls/client_hello.ts";
import { loadConfig } from "../../lib/config/load.ts";
import { formatConfigWarning } from "../../lib/config/errors.ts";
import type { Config } from "../../lib/config/types.ts";

describe("server name matching (nginx precedence)", () => {
  const blocks = [
    ["default.test"],
    ["mail.example.org", "*.example.org"],
    ["*.mail.example.org"],
    ["mail.*"],
    [".example.com"],
    ["imap.example.com"],
  ];
  const cases: [string | null, number][] = [
    ["mail.example.org", 1], // exact beats the leading wildcard of block 2 and mail.* of block 3
    ["x.mail.example.org", 2], // the longest leading wildcard
    ["a.example.org", 1],
    ["mail.example.net", 3], // only the trailing wildcard
    ["example.com", 4], // ".example.com" includes the name itself
    ["a.b.example.com", 4],
    ["imap.example.com", 5], // exact beats ".example.com"
    ["IMAP.Example.COM", 5], // case-insensitive
    ["imap.example.com.", 5], // a trailing dot is the same name
    ["unknown.test", 0],
    ["example.org", 0], // "*.example.org" needs a label before it
    ["", 0],
    [null, 0],
  ];
  for (const [name, want] of cases) {
    test(`${name} -> block ${want}`, () => assert.equal(selectServerByName(blocks, name), want));
  }
  test("leading wildcard beats trailing wildcard; longer beats shorter", () => {
    assert.ok(
      nameMatchRank("*.example.org", "mail.example.org") >
        nameMatchRank("mail.*", "mail.example.org"),
    );
    assert.ok(
      nameMatchRank("*.b.example.org", "a.b.example.org") >
        nameMatchRank("*.example.org", "a.b.example.org"),
    );
    assert.ok(
      nameMatchRank("mail.example.*", "mail.example.org") >
        nameMatchRank("mail.*", "mail.example.org"),
    );
    assert.equal(nameMatchRank("mail.*", "mail."), -1);
  });
  test("the earlier block wins a tie", () => {
    assert.equal(selectServerByName([["a.test"], ["*.test"], ["*.test"]], "b.test"), 1);
  });
  test("valid forms", () => {
    for (const ok of ["mail.example.org", "*.example.org", ".example.org", "mail.*", "localhost"]) {
      assert.ok(validServerName(ok), ok);
    }
    for (const bad of ["", "*", "*.", ".", "m*il.example.org", "~^mail", "*.example.*"]) {
      assert.ok(!validServerName(bad), bad);
    }
  });
});

/** A TLS 1.2-style ClientHello record with the given extensions. */
function clientHello(exts: Uint8Array[]): Uint8Array {
  const extBytes = exts.reduce((n, e) => n + e.length, 0);
  const body: number[] = [0x03, 0x03, ...new Array(32).fill(7), 0, 0, 2, 0x13, 0x01, 1, 0];
  body.push(extBytes >> 8, extBytes & 0xff);
  for (const e of exts) body.push(...e);
  const hs = [1, 0, body.length >> 8, body.length & 0xff, ...body];
  return new Uint8Array([0x16, 3, 1, hs.length >> 8, hs.length & 0xff, ...hs]);
}

function sniExt(name: string): Uint8Array {
  const n = [...name].map((c) => c.charCodeAt(0));
  const entry = [0, n.length >> 8, n.length & 0xff, ...n];
  const list = [entry.length >> 8, entry.length & 0xff, ...entry];
  return new Uint8Array([0, 0, list.length >> 8, list.length & 0xff, ...list]);
}

const otherExt = new Uint8Array([0, 10, 0, 4, 0, 2, 0, 0x1d]); // supported_groups

describe("ClientHello server_name", () => {
  test("found after other extensions", () => {
    assert.equal(
      helloServerName(clientHello([otherExt, sniExt("mail.example.org")])),
      "mail.example.org",
    );
  });
  test("no SNI extension: null", () => {
    assert.equal(helloServerName(clientHello([otherExt])), null);
  });
  test("incomplete record: undefined (read more), at every cut", () => {
    const full = clientHello([sniExt("a.example.net")]);
    for (let i = 0; i < full.length; i++) {
      assert.equal(helloServerName(full.subarray(0, i)), undefined, `cut ${i}`);
    }
  });
  test("not TLS: null", () => {
    assert.equal(helloServerName(new TextEncoder().encode("a1 CAPABILITY\r\n")), null);
  });
  test("a length past the record does not read outside it", () => {
    const h = clientHello([sniExt("x.test")]);
    const bad = h.slice();
    bad[bad.length - 6 - 2] = 0xff; // the name's length
    assert.equal(helloServerName(bad), null);
  });
});

async function load(mailBody: string): Promise<Config> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-sni-"));
  try {
    writeFileSync(
      join(dir, "nginx.conf"),
      `events {}\nmail {\nauth_http 127.0.0.1:9000;\n${mailBody}\n}\n`,
    );
    return await loadConfig({ file: join(dir, "nginx.conf"), prefix: dir, hostname: "host.test" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function loadError(mailBody: string): Promise<string> {
  try {
    await load(mailBody);
  } catch (e) {
    const loc = (e as { loc?: { line: number } }).loc;
    return `${(e as Error).message} in nginx.conf:${loc?.line}`;
  }
  throw new Error("loaded");
}

describe("config: several servers on one address", () => {
  test("server_name lists several names; the first is the server's name", async () => {
    const cfg = await load(
      "server { listen 127.0.0.1:10143; protocol imap; server_name Mail.Example.org *.example.net mail.*; }",
    );
    const s = cfg.mail!.servers[0];
    assert.equal(s.serverName, "Mail.Example.org");
    assert.deepEqual(s.serverNames, ["mail.example.org", "*.example.net", "mail.*"]);
  });
  test("no server_name: the host name, and no SNI names", async () => {
    const s = (await load("server { listen 127.0.0.1:10143; protocol imap; }")).mail!.servers[0];
    assert.equal(s.serverName, "host.test");
    assert.deepEqual(s.serverNames, []);
  });
  test("shared address with server_names: accepted, in file order", async () => {
    const cfg = await load(
      "server { listen 127.0.0.1:10143; protocol imap; server_name a.test; }\n" +
        "server { listen 127.0.0.1:10143; protocol imap; server_name b.test; }",
    );
    assert.deepEqual(cfg.mail!.servers.map((s) => s.serverName), ["a.test", "b.test"]);
    assert.deepEqual(cfg.warnings, []);
  });
  test("a name on two servers of one address: nginx's conflicting server name warning", async () => {
    const cfg = await load(
      "server { listen 127.0.0.1:10143; protocol imap; server_name a.test c.test; }\n" +
        "server { listen 127.0.0.1:10143; protocol imap; server_name b.test A.test; }",
    );
    assert.deepEqual(
      cfg.warnings.map(formatConfigWarning).map((w) =>
        w.replace(/ in \S+nginx\.conf:/, " in nginx.conf:")
      ),
      [
        'conflicting server name "a.test" on 127.0.0.1:10143, ignored in nginx.conf:5',
      ],
    );
  });
  test("a shared address where a server has no server_name of its own: nginx's duplicate error", async () => {
    assert.equal(
      await loadError(
        "server_name m.test;\nserver { listen 127.0.0.1:10143; protocol imap; server_name a.test; }\n" +
          "server { listen 127.0.0.1:10143; protocol imap; }",
      ),
      'duplicate "127.0.0.1:10143" address and port pair in nginx.conf:6',
    );
  });
  test("one server repeating an address: still the duplicate error, at parse time", async () => {
    assert.equal(
      await loadError(
        "server { listen 127.0.0.1:10143; listen 127.0.0.1:10143; protocol imap; server_name a.test; }",
      ),
      'duplicate "127.0.0.1:10143" address and port pair in nginx.conf:4',
    );
  });
  test("different protocols, or ssl on one only: refused", async () => {
    assert.equal(
      await loadError(
        "server { listen 127.0.0.1:10143; protocol imap; server_name a.test; }\n" +
          "server { listen 127.0.0.1:10143; protocol pop3; server_name b.test; }",
      ),
      'servers of different protocols on "127.0.0.1:10143" in nginx.conf:5',
    );
    assert.equal(
      await loadError(
        "server { listen 127.0.0.1:10143; protocol imap; server_name a.test; }\n" +
          "server { listen 127.0.0.1:10143 proxy_protocol; protocol imap; server_name b.test; }",
      ),
      'different "ssl" or "proxy_protocol" parameters on "127.0.0.1:10143" in nginx.conf:5',
    );
  });
  test("regular-expression and malformed names: refused", async () => {
    assert.equal(
      await loadError('server { listen 127.0.0.1:10143; protocol imap; server_name "~^mail"; }'),
      'regular expression server names are not supported: "~^mail" in nginx.conf:4',
    );
    assert.equal(
      await loadError("server { listen 127.0.0.1:10143; protocol imap; server_name m*il.test; }"),
      'invalid server name "m*il.test" in nginx.conf:4',
    );
  });
});

/** signature_algorithms (13) offering the given schemes. */
function sigAlgsExt(schemes: number[]): Uint8Array {
  const list = schemes.flatMap((x) => [x >> 8, x & 0xff]);
  const body = [list.length >> 8, list.length & 0xff, ...list];
  return new Uint8Array([0, 13, body.length >> 8, body.length & 0xff, ...body]);
}

describe("ClientHello signature_algorithms (one extension walker with server_name)", () => {
  test("found beside SNI, in either order; the pair chosen follows them", () => {
    const ecdsa = [0x0403, 0x0804];
    for (const exts of [[sniExt("a.test"), sigAlgsExt(ecdsa)], [sigAlgsExt(ecdsa), sniExt("a.test")]]) {
      const h = clientHello(exts);
      assert.deepEqual(helloSignatureSchemes(h), ecdsa);
      assert.equal(helloServerName(h), "a.test");
      assert.equal(chooseCertIndex(["rsa", "ec"], helloSignatureSchemes(h)!), 1);
    }
  });
  test("absent: null (RSA for TLS 1.2); incomplete: undefined at every cut", () => {
    assert.equal(helloSignatureSchemes(clientHello([otherExt])), null);
    assert.equal(chooseCertIndex(["ec", "rsa"], null), 1);
    const full = clientHello([sigAlgsExt([0x0401])]);
    for (let i = 0; i < full.length; i++) {
      assert.equal(helloSignatureSchemes(full.subarray(0, i)), undefined, `cut ${i}`);
    }
  });
});
