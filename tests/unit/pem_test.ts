// lib/tls/pem.ts: splitting a PEM file into blocks by type, so every
// consumer gets only its blocks (a certificate and its key in one file,
// cert chain + key, CA + CRL bundles, data: values, encrypted keys); and
// lib/config/pem_files.ts handing them on from one read at load.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { certificatesOf, crlsOf, dhParamsOf, privateKeyOf, splitPem } from "../../lib/tls/pem.ts";
import {
  loadBackendPem,
  loadCertificateChain,
  loadPrivateKey,
} from "../../lib/config/pem_files.ts";
import type { ProxySslConfig } from "../../lib/config/types.ts";

const TLS = new URL("../fixtures/tls/", import.meta.url).pathname;
const SET = new URL("../fixtures/tls_settings/", import.meta.url).pathname;
const rd = (dir: string, f: string) => readFileSync(dir + f, "utf8");
const CERT = rd(TLS, "server.pem");
const KEY = rd(TLS, "server.key");
const ENC_KEY = rd(TLS, "server_enc.key");
const CA = rd(TLS, "ca.pem");
const CRL = rd(SET, "ca.crl");
const CRL2 = rd(SET, "ca2.crl");
const DH = "-----BEGIN DH PARAMETERS-----\nMAYCAQACAQI=\n-----END DH PARAMETERS-----\n";

describe("splitPem", () => {
  test("the fixtures are single blocks, kept byte for byte", () => {
    for (const f of [CERT, KEY, ENC_KEY, CA, CRL]) {
      const b = splitPem(f);
      assert.equal(b.length, 1);
      assert.equal(b[0].text, f);
    }
  });
  test("certificate then key, and key then certificate: each consumer gets its block", () => {
    for (const combined of [CERT + KEY, KEY + CERT]) {
      const blocks = splitPem(combined);
      assert.deepEqual(blocks.map((b) => b.label).sort(), ["CERTIFICATE", "PRIVATE KEY"]);
      assert.equal(certificatesOf(blocks), CERT);
      assert.equal(privateKeyOf(blocks)?.text, KEY);
      // What the TLS stacks are handed parses on its own.
      new X509Certificate(certificatesOf(blocks));
      createPrivateKey(privateKeyOf(blocks)!.text);
    }
  });
  test("a chain and its key: the certificates in file order, leaf first", () => {
    const blocks = splitPem(CERT + CA + KEY);
    assert.equal(certificatesOf(blocks), CERT + CA);
    assert.equal(privateKeyOf(blocks)?.text, KEY);
  });
  test("text around and between blocks, CRLF line ends and a broken block are skipped", () => {
    const crlf = (s: string) => s.replace(/\n/g, "\r\n");
    const text = "subject=CN=localhost\n" + crlf(CERT) + "\nBag Attributes\n" +
      "-----BEGIN CERTIFICATE-----\nAAAA\n" + // no END: not a block
      KEY + "trailing words\n";
    const blocks = splitPem(text);
    assert.deepEqual(blocks.map((b) => b.label), ["CERTIFICATE", "PRIVATE KEY"]);
    assert.equal(certificatesOf(blocks), CERT);
    assert.equal(privateKeyOf(blocks)?.text, KEY);
  });
  test("a CA and CRL bundle: certificates for the CAs, CRLs for the CRL list", () => {
    const blocks = splitPem(CA + CRL + CRL2);
    assert.equal(certificatesOf(blocks), CA);
    assert.equal(crlsOf(blocks), CRL + CRL2);
    assert.equal(privateKeyOf(blocks), null);
    assert.equal(dhParamsOf(splitPem(CA + DH)), DH);
    assert.equal(dhParamsOf(blocks), "");
  });
  test("an encrypted key (PKCS#8 and traditional RSA with headers) is found whole", () => {
    const blocks = splitPem(CERT + ENC_KEY);
    assert.equal(privateKeyOf(blocks)?.label, "ENCRYPTED PRIVATE KEY");
    assert.equal(privateKeyOf(blocks)?.text, ENC_KEY);
    const legacy = createPrivateKey(KEY).export({
      type: "pkcs1",
      format: "pem",
      cipher: "aes-128-cbc",
      passphrase: "secret",
    }) as string;
    assert.match(legacy, /Proc-Type: 4,ENCRYPTED\nDEK-Info: /);
    const k = privateKeyOf(splitPem(CERT + legacy))!;
    assert.equal(k.label, "RSA PRIVATE KEY");
    assert.equal(k.text, legacy);
    createPrivateKey({ key: k.text, passphrase: "secret" });
  });
  test("no blocks at all", () => {
    assert.deepEqual(splitPem(""), []);
    assert.deepEqual(splitPem("not a pem file\n"), []);
  });
});

describe("pem_files: what the loader hands on", () => {
  test("data: values are split like files", () => {
    const v = "data:" + KEY + CERT;
    const { chain } = loadCertificateChain(v);
    assert.equal(chain, CERT);
    assert.equal(
      loadPrivateKey(v, null).export({ type: "pkcs8", format: "pem" }),
      createPrivateKey(KEY).export({ type: "pkcs8", format: "pem" }),
    );
  });
  test("an encrypted key in a combined data: value opens with its pass phrase", () => {
    const k = loadPrivateKey("data:" + CERT + ENC_KEY, ["wrong", "mailgate"]);
    assert.equal(k.asymmetricKeyType, createPrivateKey(KEY).asymmetricKeyType);
  });
  test("no block of the wanted type: nginx's OpenSSL reasons", () => {
    assert.throws(() => loadCertificateChain("data:" + KEY), {
      message:
        `cannot load certificate "data:${KEY}": PEM_read_bio_X509_AUX() failed (SSL: error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE)`,
    });
    assert.throws(() => loadPrivateKey(TLS + "server.pem", null), {
      message:
        `cannot load certificate key "${TLS}server.pem": PEM_read_bio_PrivateKey() failed (SSL: error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM)`,
    });
  });
  test("backend files: the client certificate and key from one file, CAs from a bundle", () => {
    const p: ProxySslConfig = {
      ssl: true,
      starttls: false,
      verify: true,
      trustedCertificate: "data:" + CA + CRL,
      name: null,
      serverName: false,
      certificate: "data:" + KEY + CERT,
      certificateKey: "data:" + KEY + CERT,
    };
    const pem = loadBackendPem(p);
    assert.equal(pem.ca, CA);
    assert.equal(pem.cert, CERT);
    assert.equal(pem.key, createPrivateKey(KEY).export({ type: "pkcs8", format: "pem" }));
    assert.throws(() => loadBackendPem({ ...p, trustedCertificate: "data:" + KEY }), {
      message:
        `cannot load "proxy_ssl_trusted_certificate" file "data:${KEY}": no certificate found`,
    });
  });
});
