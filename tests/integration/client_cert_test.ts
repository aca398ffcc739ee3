// Client certificates (mail_imap_ssl.t) through the real mailgate process on
// every target: ssl_verify_client on / optional / optional with
// ssl_trusted_certificate / optional_no_ca, with auth_http_pass_client_cert
// on. The auth service always says OK; the tests look at the request it
// received (Auth-SSL* headers, auth_http.md §2.3) and at the lines a
// rejected client reads (tls_and_proxy_protocol.md §4), for implicit TLS
// and after STARTTLS/STLS, in IMAP, POP3 and SMTP.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type CipherNameAndProtocol, connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { MockPop3 } from "../helpers/mock_pop3.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { ROOT, type Running, startMailgate, type Target, targets } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const SET = join(ROOT, "tests", "fixtures", "tls_settings");
const rd = (dir: string, f: string) => readFileSync(join(dir, f), "latin1");
const CA = rd(TLS, "ca.pem");

/** A client certificate: PEM, key, and the details the auth service must see. */
interface Cred {
  cert: string;
  key: string;
  subject: string;
  issuer: string;
}
/** Signed by the CA named in ssl_client_certificate. */
const CLIENT: Cred = { cert: rd(TLS, "client.pem"), key: rd(TLS, "client.key"), subject: "CN=client.example.com", issuer: "CN=mailgate test CA" };
/** Self-signed: an unknown CA everywhere. */
const SELF: Cred = { cert: rd(TLS, "selfsigned.pem"), key: rd(TLS, "selfsigned.key"), subject: "CN=1.example.com", issuer: "CN=1.example.com" };
/** Self-signed and expired (2020-2021): untrusted *and* expired. */
const EXPIRED: Cred = { cert: rd(TLS, "expired.pem"), key: rd(TLS, "expired.key"), subject: "CN=expired.example", issuer: "CN=expired.example" };
/** Signed by ca2, which only the `trusted` server lists (ssl_trusted_certificate). */
const CA2_SIGNED: Cred = { cert: rd(SET, "client2.pem"), key: rd(SET, "client2.key"), subject: "CN=2.example.com", issuer: "CN=mailgate trusted-only CA" };

/** The certificate-detail headers, omitted when no certificate was presented. */
const DETAIL_HEADERS = ["Auth-SSL-Subject", "Auth-SSL-Issuer", "Auth-SSL-Serial", "Auth-SSL-Fingerprint", "Auth-SSL-Cert"];
/** The order of the TLS headers in the request (auth_http.md §2). */
const TLS_HEADER_ORDER = ["Auth-SSL", "Auth-SSL-Protocol", "Auth-SSL-Cipher", "Auth-SSL-Verify", ...DETAIL_HEADERS];

/** auth_http.md §2.5: bytes 0x00-0x20 and '%' as %XX (upper-case hex). */
function escapeValue(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    out += c <= 0x20 || c === 0x25 ? "%" + c.toString(16).toUpperCase().padStart(2, "0") : ch;
  }
  return out;
}

/** The password the clients send (quoted in IMAP), and how Auth-Pass carries it. */
const PASS = "pa ss%";
const PASS_ESCAPED = "pa%20ss%25";

interface Env {
  mg: Running;
  auth: MockAuth;
  imap: MockImap;
  pop3: MockPop3;
  smtp: MockSmtp;
  port: Record<string, number>;
}

async function setup(target: Target): Promise<Env> {
  const imap = await MockImap.start();
  const pop3 = await MockPop3.start();
  const smtp = await MockSmtp.start();
  const auth = await MockAuth.start((req: AuthRequestSeen) => {
    const proto = req.get("Auth-Protocol");
    return ok("127.0.0.1", proto === "pop3" ? pop3.port : proto === "smtp" ? smtp.port : imap.port);
  });
  const names = ["plain", "on", "optional", "trusted", "noca", "pop3on", "smtpon", "imapStarttls", "pop3Starttls", "smtpStarttls"];
  const port = await namedPorts(names);
  const clientCa = `ssl_client_certificate ${join(TLS, "ca.pem")};`;
  const mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  server_name mail.test;
  auth_http 127.0.0.1:${auth.port}/auth;
  auth_http_pass_client_cert on;
  smtp_auth login plain;
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  server { listen 127.0.0.1:${port.plain}; protocol imap; }
  server { listen 127.0.0.1:${port.on} ssl; protocol imap; ssl_verify_client on; ${clientCa} }
  server { listen 127.0.0.1:${port.optional} ssl; protocol imap; ssl_verify_client optional; ${clientCa} }
  server { listen 127.0.0.1:${port.trusted} ssl; protocol imap; ssl_verify_client optional; ${clientCa}
           ssl_trusted_certificate ${join(SET, "ca2.pem")}; }
  server { listen 127.0.0.1:${port.noca} ssl; protocol imap; ssl_verify_client optional_no_ca; ${clientCa} }
  server { listen 127.0.0.1:${port.pop3on} ssl; protocol pop3; ssl_verify_client on; ${clientCa} }
  server { listen 127.0.0.1:${port.smtpon} ssl; protocol smtp; ssl_verify_client on; ${clientCa} }
  server { listen 127.0.0.1:${port.imapStarttls}; protocol imap; starttls on; ssl_verify_client on; ${clientCa} }
  server { listen 127.0.0.1:${port.pop3Starttls}; protocol pop3; starttls on; ssl_verify_client on; ${clientCa} }
  server { listen 127.0.0.1:${port.smtpStarttls}; protocol smtp; starttls on; ssl_verify_client on; ${clientCa} }
}
`);
  return { mg, auth, imap, pop3, smtp, port };
}

/** Bound on every TLS handshake. */
const HANDSHAKE_MS = 5000;

interface TlsOpts {
  cred?: Cred;
  maxVersion?: ConnectionOptions["maxVersion"];
  /** An existing plain socket to upgrade (STARTTLS). */
  socket?: Socket;
  port?: number;
}

/** A TLS client (verifying the server as "localhost"); resolves after the handshake. */
function tlsOpen(o: TlsOpts): Promise<{ s: TLSSocket; c: TestClient }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      ...(o.socket ? { socket: o.socket } : { host: "127.0.0.1", port: o.port }),
      ca: CA,
      servername: "localhost",
      ...(o.cred ? { cert: o.cred.cert, key: o.cred.key } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
    });
    // Attached before the handshake so no early byte is missed.
    const c = TestClient.fromSocket(s);
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error("TLS handshake did not complete"));
    }, HANDSHAKE_MS);
    s.once("secureConnect", () => {
      clearTimeout(t);
      resolve({ s, c });
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

for (const target of targets()) {
  describe(`client certificates through mailgate (${target})`, () => {
    let env: Env;
    before(async () => {
      env = await setup(target);
    });
    after(() => stopAll(env.mg, env.auth, env.imap, env.pop3, env.smtp));

    /** IMAP over implicit TLS: greeting, LOGIN, the auth request it caused. */
    async function imapLogin(p: number, o: TlsOpts = {}): Promise<{ req: AuthRequestSeen; protocol: string; cipher: CipherNameAndProtocol }> {
      const { s, c } = await tlsOpen({ ...o, port: p });
      // Read now: a closed TLSSocket reports null.
      const protocol = s.getProtocol() ?? "";
      const cipher = s.getCipher();
      try {
        assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
        const n = env.auth.requests.length;
        c.write(`a1 LOGIN user@example.com "${PASS}"\r\n`);
        assert.equal(await c.line(), "a1 OK mock login ok\r\n");
        assert.equal(env.auth.requests.length, n + 1);
        return { req: env.auth.requests[n], protocol, cipher };
      } finally {
        c.close();
      }
    }

    /** The client reads exactly `line`, then the connection closes; no auth request. */
    async function rejected(c: TestClient, line: string): Promise<void> {
      const n = env.auth.requests.length;
      assert.equal(await c.line(), line);
      assert.ok(await c.waitClose(), "connection closed after the rejection line");
      assert.equal(c.pending(), "", "nothing after the rejection line");
      assert.equal(env.auth.requests.length, n);
    }

    /** The TLS headers present, in the order §2 prescribes. */
    function tlsHeaderNames(req: AuthRequestSeen): string[] {
      const names = req.headers.map(([k]) => k).filter((k) => k.startsWith("Auth-SSL"));
      const order = names.map((k) => TLS_HEADER_ORDER.indexOf(k));
      assert.ok(order.every((x, i) => x >= 0 && (i === 0 || x > order[i - 1])), `TLS headers out of order: ${names}`);
      return names;
    }

    /** The certificate details as the auth service must see them. */
    function assertDetails(req: AuthRequestSeen, cred: Cred) {
      const x = new X509Certificate(cred.cert);
      assert.equal(req.get("Auth-SSL-Subject"), cred.subject);
      assert.equal(req.get("Auth-SSL-Issuer"), cred.issuer);
      const serial = req.get("Auth-SSL-Serial") ?? "";
      assert.match(serial, /^(?:[0-9A-F]{2})+$/, "upper-case hex, even length");
      assert.equal(serial.replace(/^(00)+/, ""), x.serialNumber.toUpperCase().replace(/^0+/, ""));
      const fp = req.get("Auth-SSL-Fingerprint") ?? "";
      assert.match(fp, /^[0-9a-f]{40}$/);
      assert.equal(fp, x.fingerprint.replaceAll(":", "").toLowerCase(), "SHA-1 of the DER certificate");
      // The PEM as OpenSSL writes it (the fixture files are in that form), escaped.
      assert.equal(req.get("Auth-SSL-Cert"), escapeValue(cred.cert));
      assert.match(req.get("Auth-SSL-Cert") ?? "", /^-----BEGIN%20CERTIFICATE-----%0A[A-Za-z0-9+/=]{64}%0A/);
      assert.ok((req.get("Auth-SSL-Cert") ?? "").endsWith("-----END%20CERTIFICATE-----%0A"));
    }

    it("plain connection: no Auth-SSL* headers", async () => {
      const c = await TestClient.open(env.port.plain);
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      c.write(`a1 LOGIN user@example.com "${PASS}"\r\n`);
      assert.equal(await c.line(), "a1 OK mock login ok\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.deepEqual(req.headers.filter(([k]) => k.startsWith("Auth-SSL")), []);
      assert.equal(req.get("Auth-Pass"), PASS_ESCAPED);
      c.close();
    });

    it("ssl_verify_client on, no certificate: '* BYE No required SSL certificate' instead of the greeting, then close", async () => {
      const { c } = await tlsOpen({ port: env.port.on });
      await rejected(c, "* BYE No required SSL certificate\r\n");
      await env.mg.waitLog(/client sent no required SSL certificate/);
    });

    it("ssl_verify_client on, CA-signed certificate: greeting, SUCCESS with details", async () => {
      const { req } = await imapLogin(env.port.on, { cred: CLIENT });
      assert.equal(req.get("Auth-SSL-Verify"), "SUCCESS");
      assertDetails(req, CLIENT);
      assert.equal(req.get("Auth-Pass"), PASS_ESCAPED);
    });

    it("ssl_verify_client on, unknown CA: '* BYE SSL certificate error'", async () => {
      const { c } = await tlsOpen({ port: env.port.on, cred: SELF });
      await rejected(c, "* BYE SSL certificate error\r\n");
    });

    it("optional, no certificate: greeting; Auth-SSL: on, Verify NONE, no details", async () => {
      const { req, protocol } = await imapLogin(env.port.optional);
      assert.deepEqual(tlsHeaderNames(req), ["Auth-SSL", "Auth-SSL-Protocol", "Auth-SSL-Cipher", "Auth-SSL-Verify"]);
      assert.equal(req.get("Auth-SSL"), "on");
      assert.equal(req.get("Auth-SSL-Verify"), "NONE");
      assert.equal(req.get("Auth-SSL-Protocol"), protocol);
      assert.equal(req.get("Auth-Pass"), PASS_ESCAPED);
    });

    it("optional, certificate from an unknown CA (self-signed, or ca2 not listed): '* BYE SSL certificate error'", async () => {
      for (const cred of [SELF, CA2_SIGNED]) {
        const { c } = await tlsOpen({ port: env.port.optional, cred });
        await rejected(c, "* BYE SSL certificate error\r\n");
      }
      await env.mg.waitLog(/client SSL certificate verify error: \(self-signed certificate\)/);
    });

    it("optional, certificate signed by the ssl_client_certificate CA: SUCCESS with every detail", async () => {
      const { req } = await imapLogin(env.port.optional, { cred: CLIENT });
      assert.deepEqual(tlsHeaderNames(req), TLS_HEADER_ORDER);
      assert.equal(req.get("Auth-SSL-Verify"), "SUCCESS");
      assertDetails(req, CLIENT);
      assert.equal(req.get("Auth-Pass"), PASS_ESCAPED);
    });

    it("optional + ssl_trusted_certificate: a certificate signed by the trusted-only CA gives SUCCESS", async () => {
      const { req } = await imapLogin(env.port.trusted, { cred: CA2_SIGNED });
      assert.equal(req.get("Auth-SSL-Verify"), "SUCCESS");
      assertDetails(req, CA2_SIGNED);
      assert.equal(req.get("Auth-Pass"), PASS_ESCAPED);
      const again = await imapLogin(env.port.trusted, { cred: CLIENT });
      assert.equal(again.req.get("Auth-SSL-Verify"), "SUCCESS");
      assertDetails(again.req, CLIENT);
      const { c } = await tlsOpen({ port: env.port.trusted, cred: SELF });
      await rejected(c, "* BYE SSL certificate error\r\n");
    });

    it("optional_no_ca, self-signed certificate: greeting, FAILED:self-signed certificate, details, escaped PEM", async () => {
      const { req } = await imapLogin(env.port.noca, { cred: SELF });
      assert.deepEqual(tlsHeaderNames(req), TLS_HEADER_ORDER);
      assert.equal(req.get("Auth-SSL-Verify"), "FAILED:self-signed certificate");
      assertDetails(req, SELF);
      assert.equal(req.get("Auth-Pass"), PASS_ESCAPED);
    });

    it("optional_no_ca, a self-signed certificate that has expired: '* BYE SSL certificate error' (only untrusted issuers are tolerated)", async () => {
      const { c } = await tlsOpen({ port: env.port.noca, cred: EXPIRED });
      await rejected(c, "* BYE SSL certificate error\r\n");
      await env.mg.waitLog(/client SSL certificate verify error: \(certificate has expired\)/);
    });

    it("optional_no_ca, issuer not known locally: FAILED:unable to verify the first certificate; a good one: SUCCESS; none: NONE", async () => {
      // OpenSSL reports error 20 (no local issuer) and then, because nginx's
      // verify callback accepts every error, error 21 for the same leaf;
      // SSL_get_verify_result() keeps the last one, which nginx sends.
      const a = await imapLogin(env.port.noca, { cred: CA2_SIGNED });
      assert.equal(a.req.get("Auth-SSL-Verify"), "FAILED:unable to verify the first certificate");
      assertDetails(a.req, CA2_SIGNED);
      const b = await imapLogin(env.port.noca, { cred: CLIENT });
      assert.equal(b.req.get("Auth-SSL-Verify"), "SUCCESS");
      const n = await imapLogin(env.port.noca);
      assert.equal(n.req.get("Auth-SSL-Verify"), "NONE");
      for (const h of DETAIL_HEADERS) assert.equal(n.req.get(h), undefined, h);
    });

    // Auth-SSL-Protocol / Auth-SSL-Cipher: what the client negotiated, the
    // cipher in OpenSSL notation (Node's getCipher().name is OpenSSL's; for
    // TLS 1.2 it differs from the standard name). Forcing particular suites
    // is done with openssl s_client in tests/peers/tls_clients_test.ts (the
    // node:tls client under Deno does not apply `ciphers`).
    for (const version of ["TLSv1.3", "TLSv1.2"] as const) {
      it(`Auth-SSL-Protocol and Auth-SSL-Cipher match the negotiated ones (${version})`, async () => {
        const { req, protocol, cipher } = await imapLogin(env.port.optional, { maxVersion: version, cred: CLIENT });
        assert.equal(protocol, version);
        assert.equal(req.get("Auth-SSL-Protocol"), protocol);
        assert.equal(req.get("Auth-SSL-Cipher"), cipher.name, `standard name ${cipher.standardName}`);
        if (version === "TLSv1.2") assert.match(cipher.name, /^ECDHE-/, "OpenSSL notation");
      });
    }

    it("POP3 ssl_verify_client on: '-ERR No required SSL certificate' / '-ERR SSL certificate error'; a good certificate logs in", async () => {
      const a = await tlsOpen({ port: env.port.pop3on });
      await rejected(a.c, "-ERR No required SSL certificate\r\n");
      const b = await tlsOpen({ port: env.port.pop3on, cred: SELF });
      await rejected(b.c, "-ERR SSL certificate error\r\n");
      const { c } = await tlsOpen({ port: env.port.pop3on, cred: CLIENT });
      assert.equal(await c.line(), "+OK POP3 ready\r\n");
      c.write(`USER user@example.com\r\nPASS ${PASS}\r\n`);
      assert.equal(await c.line(), "+OK\r\n");
      assert.equal(await c.line(), "+OK mock logged in\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-Protocol"), "pop3");
      assert.equal(req.get("Auth-SSL-Verify"), "SUCCESS");
      assertDetails(req, CLIENT);
      assert.equal(req.get("Auth-Pass"), PASS_ESCAPED);
      c.close();
    });

    it("SMTP ssl_verify_client on: '421 4.7.1 No required SSL certificate' / '421 4.7.1 SSL certificate error'", async () => {
      const a = await tlsOpen({ port: env.port.smtpon });
      await rejected(a.c, "421 4.7.1 No required SSL certificate\r\n");
      const b = await tlsOpen({ port: env.port.smtpon, cred: SELF });
      await rejected(b.c, "421 4.7.1 SSL certificate error\r\n");
      const { c } = await tlsOpen({ port: env.port.smtpon, cred: CLIENT });
      assert.equal(await c.line(), "220 mail.test ESMTP ready\r\n");
      c.close();
    });

    /** Plain connection, the protocol's upgrade dialogue, then the handshake. */
    async function startTls(proto: "imap" | "pop3" | "smtp", cred?: Cred): Promise<TestClient> {
      const p = env.port[`${proto}Starttls`];
      const plain = await TestClient.open(p);
      if (proto === "imap") {
        assert.equal(await plain.line(), "* OK IMAP4 ready\r\n");
        plain.write("s1 STARTTLS\r\n");
        assert.equal(await plain.line(), "s1 OK completed\r\n");
      } else if (proto === "pop3") {
        assert.equal(await plain.line(), "+OK POP3 ready\r\n");
        plain.write("STLS\r\n");
        assert.equal(await plain.line(), "+OK\r\n");
      } else {
        assert.equal(await plain.line(), "220 mail.test ESMTP ready\r\n");
        plain.write("EHLO client.example.com\r\n");
        await plain.until(/^250 /);
        plain.write("STARTTLS\r\n");
        assert.equal(await plain.line(), "220 2.0.0 Start TLS\r\n");
      }
      assert.equal(plain.pending(), "");
      const { c } = await tlsOpen({ socket: plain.sock, cred });
      return c;
    }

    it("STARTTLS/STLS with ssl_verify_client on: the check runs after the upgrade handshake", async () => {
      const lines = {
        imap: ["* BYE No required SSL certificate\r\n", "* BYE SSL certificate error\r\n"],
        pop3: ["-ERR No required SSL certificate\r\n", "-ERR SSL certificate error\r\n"],
        smtp: ["421 4.7.1 No required SSL certificate\r\n", "421 4.7.1 SSL certificate error\r\n"],
      } as const;
      for (const proto of ["imap", "pop3", "smtp"] as const) {
        await rejected(await startTls(proto), lines[proto][0]);
        await rejected(await startTls(proto, SELF), lines[proto][1]);
      }
      // The rejections after STARTTLS are logged " using starttls" (tls_and_proxy_protocol.md §3).
      await env.mg.waitLog(/client sent no required SSL certificate.* using starttls/);
      await env.mg.waitLog(/client SSL certificate verify error: .* using starttls/);
    });

    it("STARTTLS with ssl_verify_client on and a CA-signed certificate: no new greeting, login with SUCCESS", async () => {
      const c = await startTls("imap", CLIENT);
      c.write("a1 NOOP\r\n");
      assert.equal(await c.line(), "a1 OK completed\r\n", "the first line after the handshake answers the client");
      c.write(`a2 LOGIN user@example.com "${PASS}"\r\n`);
      assert.equal(await c.line(), "a2 OK mock login ok\r\n");
      const req = env.auth.requests.at(-1)!;
      assert.equal(req.get("Auth-SSL"), "on");
      assert.equal(req.get("Auth-SSL-Verify"), "SUCCESS");
      assertDetails(req, CLIENT);
      c.close();

      const s = await startTls("smtp", CLIENT);
      s.write("EHLO client.example.com\r\n");
      const ehlo = await s.until(/^250 /);
      assert.ok(!ehlo.some((l) => /STARTTLS/.test(l)), "no STARTTLS once TLS is on");
      s.write(`AUTH PLAIN ${Buffer.from(`\0user@example.com\0${PASS}`).toString("base64")}\r\n`);
      assert.equal(await s.line(), "235 2.0.0 OK\r\n");
      const sreq = env.auth.requests.at(-1)!;
      assert.equal(sreq.get("Auth-Protocol"), "smtp");
      assert.equal(sreq.get("Auth-SSL-Verify"), "SUCCESS");
      assert.equal(sreq.get("Auth-Pass"), PASS_ESCAPED);
      s.close();
    });
  });
}
