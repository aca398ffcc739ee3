// End-of-mail check 2 (directives.md §11) with real files: certificates and
// keys are read and parsed with node:crypto, encrypted keys are opened with
// the pass phrases of ssl_password_file in order.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, formatConfigError, loadConfig } from "../../lib/config/load.ts";
import type { Config } from "../../lib/config/types.ts";

const TLS = new URL("../fixtures/tls/", import.meta.url).pathname;

/** Loads a mail block (files are written next to nginx.conf); returns the config or the error text. */
async function run(mailBody: string, files: Record<string, string | Uint8Array> = {}): Promise<
  { cfg: Config; err: null; dir: string } | { cfg: null; err: string; dir: string }
> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-config-"));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    writeFileSync(
      join(dir, "nginx.conf"),
      `events {}\nmail {\nauth_http 127.0.0.1:9000;\n${mailBody}\n}\n`,
    );
    try {
      return {
        cfg: await loadConfig({ file: join(dir, "nginx.conf"), prefix: dir }),
        err: null,
        dir,
      };
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return { cfg: null, err: formatConfigError(e).split(dir).join("DIR"), dir };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SSL_SERVER = "server { listen 127.0.0.1:10993 ssl; protocol imap; }";

describe("certificate and key loading", () => {
  test("an encrypted key opens with the second pass phrase of the password file", async () => {
    const r = await run(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server_enc.key;\nssl_password_file ${TLS}password_file;\n${SSL_SERVER}`,
    );
    assert.equal(r.err, null);
    assert.equal(r.cfg!.mail!.servers[0].ssl.passwordFile, `${TLS}password_file`);
  });
  test("password file relative to the config directory, CRLF lines", async () => {
    const r = await run(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server_enc.key;\nssl_password_file pw.txt;\n${SSL_SERVER}`,
      { "pw.txt": "nope\r\nmailgate\r\n" },
    );
    assert.equal(r.err, null);
    assert.equal(r.cfg!.mail!.servers[0].ssl.passwordFile, join(r.dir, "pw.txt"));
  });
  test("an encrypted key without a working pass phrase is an error naming the key", async () => {
    const none = await run(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server_enc.key;\n${SSL_SERVER}`,
    );
    assert.match(
      none.err!,
      new RegExp(
        `^cannot load certificate key "${TLS}server_enc.key": PEM_read_bio_PrivateKey\\(\\) failed \\(SSL: .+\\) in DIR/nginx\\.conf:5$`,
      ),
    );
    const wrong = await run(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server_enc.key;\nssl_password_file pw;\n${SSL_SERVER}`,
      { pw: "wrong\nalso wrong\n" },
    );
    assert.match(
      wrong.err!,
      /^cannot load certificate key ".*server_enc.key": PEM_read_bio_PrivateKey\(\) failed/,
    );
  });
  test("a missing certificate file", async () => {
    const r = await run(
      `ssl_certificate missing.pem;\nssl_certificate_key ${TLS}server.key;\n${SSL_SERVER}`,
    );
    assert.equal(
      r.err,
      'cannot load certificate "DIR/missing.pem": BIO_new_file() failed (2: No such file or directory) in DIR/nginx.conf:4',
    );
  });
  test("a certificate file that is not PEM", async () => {
    const r = await run(
      `ssl_certificate bad.pem;\nssl_certificate_key ${TLS}server.key;\n${SSL_SERVER}`,
      { "bad.pem": "garbage\n" },
    );
    assert.match(
      r.err!,
      /^cannot load certificate "DIR\/bad\.pem": PEM_read_bio_X509_AUX\(\) failed \(SSL: .+\) in DIR\/nginx\.conf:4$/,
    );
  });
  test("a key file that is not a key", async () => {
    const r = await run(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server.pem;\n${SSL_SERVER}`,
    );
    assert.match(
      r.err!,
      /^cannot load certificate key ".*server\.pem": PEM_read_bio_PrivateKey\(\) failed/,
    );
  });
  test("a key that does not match the certificate", async () => {
    const r = await run(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}other.key;\n${SSL_SERVER}`,
    );
    assert.equal(
      r.err,
      `SSL_CTX_use_PrivateKey("${TLS}other.key") failed (SSL: key values mismatch) in DIR/nginx.conf:5`,
    );
  });
  test("several pairs, and data: values", async () => {
    const cert = readFileSync(`${TLS}other.pem`, "utf8");
    const key = readFileSync(`${TLS}other.key`, "utf8");
    const r = await run(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server.key;\n` +
        `ssl_certificate "data:${cert}";\nssl_certificate_key 'data:${key}';\n${SSL_SERVER}`,
    );
    assert.equal(r.err, null);
    const ssl = r.cfg!.mail!.servers[0].ssl;
    assert.equal(ssl.certificates.length, 2);
    assert.ok(ssl.certificates[1].startsWith("data:-----BEGIN CERTIFICATE-----"));
    assert.ok(ssl.certificateKeys[1].startsWith("data:-----BEGIN"));
  });
  test("ssl_password_file that cannot be opened: at its line", async () => {
    const r = await run(`ssl_password_file nope.txt;\n${SSL_SERVER}`);
    assert.equal(
      r.err,
      'open() "DIR/nope.txt" failed (2: No such file or directory) in DIR/nginx.conf:4',
    );
  });
  test("ssl_password_file is a duplicate-checked directive", async () => {
    const r = await run(
      `ssl_password_file ${TLS}password_file;\nssl_password_file ${TLS}password_file;`,
    );
    assert.equal(r.err, '"ssl_password_file" directive is duplicate in DIR/nginx.conf:5');
  });
});

describe("which servers are checked", () => {
  test("certificates of a server without ssl or starttls are ignored", async () => {
    const r = await run(
      "ssl_certificate missing.pem;\nserver { listen 127.0.0.1:10143; protocol imap; }",
    );
    assert.equal(r.err, null);
  });
  test("server-level starttls off overrides a mail-level starttls on", async () => {
    const r = await run(
      "starttls on;\nserver { listen 127.0.0.1:10143; protocol imap; starttls off; }",
    );
    assert.equal(r.err, null);
  });
  test("a server-level starttls names its own line", async () => {
    const r = await run("server {\nlisten 127.0.0.1:10143;\nprotocol imap;\nstarttls only;\n}");
    assert.equal(
      r.err,
      'no "ssl_certificate" is defined for the "starttls" directive in DIR/nginx.conf:7',
    );
  });
  test("listen ... ssl names the listen line even after starttls", async () => {
    const r = await run(
      "server {\nstarttls on;\nlisten 127.0.0.1:10143;\nlisten 127.0.0.1:10993 ssl;\nprotocol imap;\n}",
    );
    assert.equal(
      r.err,
      'no "ssl_certificate" is defined for the "listen ... ssl" directive in DIR/nginx.conf:7',
    );
  });
  test("optional_no_ca needs no CA; on/optional do", async () => {
    const base = `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server.key;\n`;
    assert.equal((await run(`${base}ssl_verify_client optional_no_ca;\n${SSL_SERVER}`)).err, null);
    assert.equal(
      (await run(`${base}ssl_verify_client optional;\n${SSL_SERVER}`)).err,
      "no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client in DIR/nginx.conf:6",
    );
    assert.equal(
      (await run(
        `${base}ssl_verify_client on;\nssl_trusted_certificate ${TLS}ca.pem;\n${SSL_SERVER}`,
      )).err,
      null,
    );
    assert.equal(
      (await run(`${base}ssl_verify_client on;\nssl_client_certificate nope.pem;\n${SSL_SERVER}`))
        .err,
      'SSL_CTX_load_verify_locations("DIR/nope.pem") failed (2: No such file or directory) in DIR/nginx.conf:7',
    );
  });
  test("session ticket keys must be 48 or 80 bytes", async () => {
    const base = `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server.key;\n`;
    const ok = await run(
      `${base}ssl_session_ticket_key k48;\nssl_session_ticket_key k80;\n${SSL_SERVER}`,
      {
        k48: new Uint8Array(48),
        k80: new Uint8Array(80),
      },
    );
    assert.equal(ok.err, null);
    const bad = await run(`${base}ssl_session_ticket_key k47;\n${SSL_SERVER}`, {
      k47: new Uint8Array(47),
    });
    assert.equal(bad.err, '"DIR/k47" must be 80 or 48 bytes in DIR/nginx.conf:6');
  });
});
