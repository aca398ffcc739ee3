// Configurations nginx accepts (issue 13): `ssl on|off` as nginx 1.22/1.24
// take it, http/stream directive names answered with nginx's "not allowed
// here", and a certificate with its key in one PEM file. Every expected
// string was checked against nginx 1.22.1 (`nginx -t`) with the same
// configuration; "in FILE:LINE" is what both print.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  formatConfigError,
  formatConfigWarning,
  loadConfig,
} from "../../lib/config/load.ts";
import type { Config } from "../../lib/config/types.ts";

const TLS = new URL("../fixtures/tls/", import.meta.url).pathname;
const CERT = readFileSync(TLS + "server.pem", "utf8");
const KEY = readFileSync(TLS + "server.key", "utf8");

/** Loads `events {}\nmail {\nauth_http ...;\n<body>\n}` (body starts on line 4); DIR stands for the directory. */
async function run(
  body: string,
  files: Record<string, string> = {},
): Promise<{ cfg: Config | null; err: string | null; warnings: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-accept-"));
  const rel = (s: string) => s.split(dir).join("DIR");
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    writeFileSync(
      join(dir, "nginx.conf"),
      `events {}\nmail {\nauth_http 127.0.0.1:9000;\n${body}\n}\n`,
    );
    try {
      const cfg = await loadConfig({ file: join(dir, "nginx.conf"), prefix: dir });
      return { cfg, err: null, warnings: cfg.warnings.map((w) => rel(formatConfigWarning(w))) };
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return { cfg: null, err: rel(formatConfigError(e)), warnings: [] };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const DEPRECATED = (line: number) =>
  `the "ssl" directive is deprecated, use the "listen ... ssl" directive instead in DIR/nginx.conf:${line}`;
const COMBINED = { "both.pem": CERT + KEY, "key_first.pem": KEY + CERT };
const PAIR = "ssl_certificate both.pem; ssl_certificate_key both.pem;";

describe("ssl on|off (nginx ≤ 1.24)", () => {
  test("accepted with nginx's deprecation warning; every listen of the server becomes implicit TLS", async () => {
    const r = await run(
      `server { listen 127.0.0.1:10993; listen 127.0.0.1:10994; protocol imap;\nssl on; ${PAIR} }`,
      COMBINED,
    );
    assert.equal(r.err, null);
    assert.deepEqual(r.warnings, [DEPRECATED(5)]);
    const s = r.cfg!.mail!.servers[0];
    assert.deepEqual(s.listens.map((l) => l.ssl), [true, true]);
    assert.equal(s.starttls, "off");
    assert.equal(s.ssl.pem?.certs.length, 1);
  });
  test("ssl on at mail level is inherited; ssl off in a server turns it off there (a warning for each)", async () => {
    const r = await run(
      `ssl on; ${PAIR}\nserver { listen 127.0.0.1:10993; protocol imap; }\nserver { listen 127.0.0.1:10143; protocol imap;\nssl off; }`,
      COMBINED,
    );
    assert.equal(r.err, null);
    assert.deepEqual(r.warnings, [DEPRECATED(4), DEPRECATED(7)]);
    assert.deepEqual(r.cfg!.mail!.servers.map((s) => s.listens[0].ssl), [true, false]);
  });
  test("ssl off alone changes nothing", async () => {
    const r = await run("server { listen 127.0.0.1:10143; protocol imap;\nssl off; }");
    assert.equal(r.err, null);
    assert.deepEqual(r.warnings, [DEPRECATED(5)]);
    assert.equal(r.cfg!.mail!.servers[0].listens[0].ssl, false);
  });
  const errors: [string, string, string][] = [
    [
      "ssl on, then starttls at the same level",
      "server { listen 127.0.0.1:10993; protocol imap;\nssl on;\nstarttls on; }",
      `"ssl" directive conflicts with "starttls" in DIR/nginx.conf:6`,
    ],
    [
      "starttls, then ssl on at the same level",
      "server { listen 127.0.0.1:10993; protocol imap;\nstarttls only;\nssl on; }",
      `"starttls" directive conflicts with "ssl on" in DIR/nginx.conf:6`,
    ],
    [
      'no certificate: the mode is "ssl" at the ssl line',
      "server { listen 127.0.0.1:10993; protocol imap;\nssl on; }",
      `no "ssl_certificate" is defined for the "ssl" directive in DIR/nginx.conf:5`,
    ],
    [
      "no key for the ssl mode",
      "server { listen 127.0.0.1:10993; protocol imap;\nssl on; ssl_certificate both.pem; }",
      `no "ssl_certificate_key" is defined for the "ssl" directive in DIR/nginx.conf:5`,
    ],
    [
      "mail-level ssl on with server starttls: no conflict across levels, the server's line",
      "ssl on;\nserver { listen 127.0.0.1:10993; protocol imap;\nstarttls on; }",
      `no "ssl_certificate" is defined for the "ssl" directive in DIR/nginx.conf:6`,
    ],
    [
      "listen ... ssl comes first, at its own line",
      "server { listen 127.0.0.1:10993 ssl; protocol imap;\nssl on; }",
      `no "ssl_certificate" is defined for the "listen ... ssl" directive in DIR/nginx.conf:4`,
    ],
    [
      "ssl off, then starttls: starttls mode at the starttls line",
      "server { listen 127.0.0.1:10143; protocol imap;\nssl off;\nstarttls on; }",
      `no "ssl_certificate" is defined for the "starttls" directive in DIR/nginx.conf:6`,
    ],
    [
      "starttls, then ssl off: starttls mode at the ssl line",
      "server { listen 127.0.0.1:10143; protocol imap;\nstarttls on;\nssl off; }",
      `no "ssl_certificate" is defined for the "starttls" directive in DIR/nginx.conf:6`,
    ],
    [
      "a flag",
      "server { listen 127.0.0.1:10993; protocol imap;\nssl yes; }",
      `invalid value "yes" in "ssl" directive, it must be "on" or "off" in DIR/nginx.conf:5`,
    ],
    [
      "once per level",
      "server { listen 127.0.0.1:10993; protocol imap;\nssl on;\nssl off; }",
      `"ssl" directive is duplicate in DIR/nginx.conf:6`,
    ],
  ];
  for (const [name, body, want] of errors) {
    test(name, async () => assert.equal((await run(body, COMBINED)).err, want));
  }
});

describe("directives of nginx's other modules", () => {
  const cases: [string, string, string][] = [
    [
      "proxy_pass in a mail server",
      "server { listen 127.0.0.1:10143; protocol imap;\nproxy_pass 127.0.0.1:143; }",
      `"proxy_pass" directive is not allowed here in DIR/nginx.conf:5`,
    ],
    [
      "proxy_connect_timeout at mail level",
      "proxy_connect_timeout 5s;",
      `"proxy_connect_timeout" directive is not allowed here in DIR/nginx.conf:4`,
    ],
    [
      "a location block, before its braces are looked at",
      "location / {\n}",
      `"location" directive is not allowed here in DIR/nginx.conf:4`,
    ],
    [
      "any argument count",
      "server { listen 127.0.0.1:10143; protocol imap;\nproxy_set_header; }",
      `"proxy_set_header" directive is not allowed here in DIR/nginx.conf:5`,
    ],
    [
      "a name nginx does not know stays unknown",
      "proxy_passs x;",
      `unknown directive "proxy_passs" in DIR/nginx.conf:4`,
    ],
  ];
  for (const [name, body, want] of cases) {
    test(name, async () => assert.equal((await run(body)).err, want));
  }
  test("at main level too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-accept-"));
    try {
      writeFileSync(join(dir, "nginx.conf"), "events {}\nserver_tokens off;\n");
      await assert.rejects(loadConfig({ file: join(dir, "nginx.conf"), prefix: dir }), {
        message: `"server_tokens" directive is not allowed here`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a certificate and its key in one PEM file", () => {
  for (const file of ["both.pem", "key_first.pem"]) {
    test(`${file}: the chain and the key are handed on separately`, async () => {
      const r = await run(
        `server { listen 127.0.0.1:10993 ssl; protocol imap; ssl_certificate ${file}; ssl_certificate_key ${file}; }`,
        COMBINED,
      );
      assert.equal(r.err, null);
      const pem = r.cfg!.mail!.servers[0].ssl.pem!;
      assert.equal(pem.certs[0].cert, CERT);
      assert.match(
        pem.certs[0].key,
        /^-----BEGIN PRIVATE KEY-----\n[^-]+-----END PRIVATE KEY-----\n$/,
      );
    });
  }
  test("a file with only a certificate as the key: nginx's message", async () => {
    const r = await run(
      "server { listen 127.0.0.1:10993 ssl; protocol imap; ssl_certificate cert.pem;\nssl_certificate_key cert.pem; }",
      { "cert.pem": CERT },
    );
    assert.equal(
      r.err,
      `cannot load certificate key "DIR/cert.pem": PEM_read_bio_PrivateKey() failed (SSL: error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM) in DIR/nginx.conf:5`,
    );
  });
  test("a file with only a key as the certificate: nginx's message", async () => {
    const r = await run(
      "server { listen 127.0.0.1:10993 ssl; protocol imap;\nssl_certificate key.pem; ssl_certificate_key key.pem; }",
      { "key.pem": KEY },
    );
    assert.equal(
      r.err,
      `cannot load certificate "DIR/key.pem": PEM_read_bio_X509_AUX() failed (SSL: error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE) in DIR/nginx.conf:5`,
    );
  });
  test("a client CA file without certificates or CRLs: nginx's message", async () => {
    const r = await run(
      `server { listen 127.0.0.1:10993 ssl; protocol imap; ${PAIR}\nssl_verify_client on; ssl_client_certificate key.pem; }`,
      { ...COMBINED, "key.pem": KEY },
    );
    assert.equal(
      r.err,
      `SSL_CTX_load_verify_locations("DIR/key.pem") failed (SSL: error:05800088:x509 certificate routines::no certificate or crl found) in DIR/nginx.conf:5`,
    );
  });
  test("CA and CRL in one bundle: each setting gets its blocks", async () => {
    const crl = readFileSync(
      new URL("../fixtures/tls_settings/ca.crl", import.meta.url).pathname,
      "utf8",
    );
    const ca = readFileSync(TLS + "ca.pem", "utf8");
    const r = await run(
      `server { listen 127.0.0.1:10993 ssl; protocol imap; ${PAIR}\nssl_verify_client on; ssl_client_certificate bundle.pem; ssl_crl bundle.pem; }`,
      { ...COMBINED, "bundle.pem": ca + crl },
    );
    assert.equal(r.err, null);
    const pem = r.cfg!.mail!.servers[0].ssl.pem!;
    assert.equal(pem.ca, ca);
    assert.equal(pem.crl, crl);
  });
  test("backend TLS: proxy_ssl_certificate and its key in one file, read at load", async () => {
    const r = await run(
      "server { listen 127.0.0.1:10143; protocol imap; proxy_ssl on;\nproxy_ssl_certificate both.pem; proxy_ssl_certificate_key key_first.pem; }",
      COMBINED,
    );
    assert.equal(r.err, null);
    const pem = r.cfg!.mail!.servers[0].proxySsl.pem!;
    assert.equal(pem.cert, CERT);
    assert.match(pem.key!, /^-----BEGIN PRIVATE KEY-----\n/);
    const missing = await run(
      "server { listen 127.0.0.1:10143; protocol imap; proxy_ssl on;\nproxy_ssl_trusted_certificate nope.pem; }",
    );
    assert.equal(
      missing.err,
      `cannot load "proxy_ssl_trusted_certificate" file "DIR/nope.pem": (2: No such file or directory) in DIR/nginx.conf:5`,
    );
  });
});
