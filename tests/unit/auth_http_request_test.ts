import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { authServerName, buildAuthRequest, escapeAuthValue } from "../../lib/auth/http_request.ts";
import type { AuthRequest } from "../../lib/auth/types.ts";
import type { AuthHttpUrl } from "../../lib/config/types.ts";
import type { Credentials } from "../../lib/core/machine.ts";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type { TlsInfo } from "../../lib/runtime/types.ts";
import { authRequest } from "../helpers/auth_fixtures.ts";

const URL_: AuthHttpUrl = {
  raw: "http://127.0.0.1:9000/mail/auth?x=1",
  target: { kind: "tcp", host: "127.0.0.1", port: 9000 },
  hostHeader: "127.0.0.1",
  uri: "/mail/auth?x=1",
};

/** An IMAP request, first attempt, from 192.0.2.42; the fixture's defaults otherwise. */
function req(creds: Partial<Credentials>, over: Partial<AuthRequest> = {}): AuthRequest {
  return authRequest({
    attempt: 1,
    clientIp: "192.0.2.42",
    creds: { method: "plain", user: "alice", pass: "secret", salt: null, ...creds },
    ...over,
  });
}

/** The request as a binary string. */
function build(r: AuthRequest, extra: [string, string][] = [], url = URL_): string {
  return bytesToBinary(buildAuthRequest(url, r, extra));
}

function lines(...l: string[]): string {
  return l.join("\r\n") + "\r\n\r\n";
}

const TLS: TlsInfo = {
  protocol: "TLSv1.3",
  cipher: "TLS_AES_256_GCM_SHA384",
  servername: null,
  alpn: null,
  peerCert: null,
  verifyError: null,
};

const CERT = {
  subject: "CN=client.example.com,O=Example",
  issuer: "CN=Example CA",
  serial: "C07AD56B846B5BFF",
  fingerprint: "0123456789abcdef0123456789abcdef01234567",
  pem: "-----BEGIN CERTIFICATE-----\nMIIB x%y\n-----END CERTIFICATE-----\n",
};

describe("buildAuthRequest", () => {
  test("plain (IMAP LOGIN)", () => {
    assert.equal(
      build(req({})),
      lines(
        "GET /mail/auth?x=1 HTTP/1.0",
        "Host: 127.0.0.1",
        "Auth-Method: plain",
        "Auth-User: alice",
        "Auth-Pass: secret",
        "Auth-Protocol: imap",
        "Auth-Login-Attempt: 1",
        "Client-IP: 192.0.2.42",
      ),
    );
  });

  test("apop carries Auth-Salt after Auth-Pass", () => {
    const salt = "<1104993317.1714561234@pop.example.net>";
    assert.equal(
      build(
        req({ method: "apop", user: "bob", pass: "4f1c0d9e4f1c0d9e4f1c0d9e4f1c0d9e", salt }, {
          protocol: "pop3",
          attempt: 3,
        }),
        [],
        {
          raw: "auth.internal/mail/auth",
          target: { kind: "tcp", host: "10.0.0.5", port: 80 },
          hostHeader: "auth.internal",
          uri: "/mail/auth",
        },
      ),
      lines(
        "GET /mail/auth HTTP/1.0",
        "Host: auth.internal",
        "Auth-Method: apop",
        "Auth-User: bob",
        "Auth-Pass: 4f1c0d9e4f1c0d9e4f1c0d9e4f1c0d9e",
        `Auth-Salt: ${salt}`,
        "Auth-Protocol: pop3",
        "Auth-Login-Attempt: 3",
        "Client-IP: 192.0.2.42",
      ),
    );
  });

  test("cram-md5 carries Auth-Salt; plain never does even with a session salt", () => {
    const salt = "<1.2@mail.example.com>";
    const cram = build(req({ method: "cram-md5", pass: "d".repeat(32), salt }));
    assert.match(
      cram,
      /\r\nAuth-Pass: d{32}\r\nAuth-Salt: <1\.2@mail\.example\.com>\r\nAuth-Protocol: imap\r\n/,
    );
    const plain = build(req({ method: "plain", salt }));
    assert.ok(!plain.includes("Auth-Salt"));
  });

  test("external: empty Auth-Pass even if a password is left over", () => {
    const r = build(req({ method: "external", user: "ext@example.com", pass: "stale" }));
    assert.match(
      r,
      /\r\nAuth-Method: external\r\nAuth-User: ext@example\.com\r\nAuth-Pass: \r\nAuth-Protocol/,
    );
  });

  test("none (SMTP): empty user and pass, Client-Host, the three SMTP lines", () => {
    const r = req({
      method: "none",
      user: "stale",
      pass: "stale",
      smtp: {
        helo: "client.example",
        esmtp: true,
        from: "MAIL FROM:<a@b.example> SIZE=100",
        to: "RCPT TO:<c@d.example>",
      },
    }, { protocol: "smtp", clientHost: "[UNAVAILABLE]" });
    assert.equal(
      build(r),
      lines(
        "GET /mail/auth?x=1 HTTP/1.0",
        "Host: 127.0.0.1",
        "Auth-Method: none",
        "Auth-User: ",
        "Auth-Pass: ",
        "Auth-Protocol: smtp",
        "Auth-Login-Attempt: 1",
        "Client-IP: 192.0.2.42",
        "Client-Host: [UNAVAILABLE]",
        "Auth-SMTP-Helo: client.example",
        "Auth-SMTP-From: MAIL FROM:<a@b.example> SIZE=100",
        "Auth-SMTP-To: RCPT TO:<c@d.example>",
      ),
    );
  });

  test("SMTP plain login: Client-Host but no SMTP lines", () => {
    const r = build(req({ smtp: { helo: "x", esmtp: false, from: "", to: "" } }, {
      protocol: "smtp",
      clientHost: "mx.example.net",
    }));
    assert.match(r, /\r\nClient-IP: 192\.0\.2\.42\r\nClient-Host: mx\.example\.net\r\n\r\n$/);
    assert.ok(!r.includes("Auth-SMTP"));
  });

  test("PROXY protocol lines after Client-IP/Client-Host", () => {
    const r = build(req({}, {
      protocol: "smtp",
      clientHost: "h.example",
      proxyProtocol: { srcAddr: "2001:db8::1", srcPort: 51000, dstAddr: "192.0.2.1", dstPort: 25 },
    }));
    assert.match(
      r,
      /\r\nClient-Host: h\.example\r\nProxy-Protocol-Addr: 2001:db8::1\r\nProxy-Protocol-Port: 51000\r\nProxy-Protocol-Server-Addr: 192\.0\.2\.1\r\nProxy-Protocol-Server-Port: 25\r\n\r\n$/,
    );
  });

  test("TLS without client verification: Auth-SSL, protocol, cipher only", () => {
    const r = build(
      req({}, { tls: { ...TLS, peerCert: CERT }, verifyClient: "off", passClientCert: true }),
    );
    assert.match(
      r,
      /\r\nClient-IP: 192\.0\.2\.42\r\nAuth-SSL: on\r\nAuth-SSL-Protocol: TLSv1\.3\r\nAuth-SSL-Cipher: TLS_AES_256_GCM_SHA384\r\n\r\n$/,
    );
  });

  test("TLS, verification on, no certificate: Verify NONE and no details", () => {
    const r = build(req({}, { tls: TLS, verifyClient: "optional", passClientCert: true }));
    assert.match(
      r,
      /\r\nAuth-SSL-Cipher: TLS_AES_256_GCM_SHA384\r\nAuth-SSL-Verify: NONE\r\n\r\n$/,
    );
  });

  test("TLS, verified certificate, pass_client_cert: every line, PEM escaped", () => {
    const r = build(
      req({}, { tls: { ...TLS, peerCert: CERT }, verifyClient: "on", passClientCert: true }),
      [["X-Auth-Key", "s3cr3t value"]],
    );
    const tail = r.slice(r.indexOf("Auth-SSL: on"));
    assert.equal(
      tail,
      lines(
        "Auth-SSL: on",
        "Auth-SSL-Protocol: TLSv1.3",
        "Auth-SSL-Cipher: TLS_AES_256_GCM_SHA384",
        "Auth-SSL-Verify: SUCCESS",
        "Auth-SSL-Subject: CN=client.example.com,O=Example",
        "Auth-SSL-Issuer: CN=Example CA",
        "Auth-SSL-Serial: C07AD56B846B5BFF",
        "Auth-SSL-Fingerprint: 0123456789abcdef0123456789abcdef01234567",
        "Auth-SSL-Cert: -----BEGIN%20CERTIFICATE-----%0AMIIB%20x%25y%0A-----END%20CERTIFICATE-----%0A",
        "X-Auth-Key: s3cr3t value",
      ),
    );
  });

  test("TLS, failed verification (optional_no_ca), no pass_client_cert", () => {
    const r = build(req({}, {
      tls: { ...TLS, peerCert: CERT, verifyError: "self-signed certificate" },
      verifyClient: "optional_no_ca",
      passClientCert: false,
    }));
    assert.match(r, /\r\nAuth-SSL-Verify: FAILED:self-signed certificate\r\nAuth-SSL-Subject: /);
    assert.match(r, /\r\nAuth-SSL-Fingerprint: [0-9a-f]{40}\r\n\r\n$/);
    assert.ok(!r.includes("Auth-SSL-Cert"));
  });

  test("order: PROXY, then TLS, then auth_http_header lines in configuration order", () => {
    const r = build(
      req({}, {
        proxyProtocol: { srcAddr: "198.51.100.2", srcPort: 1, dstAddr: "198.51.100.3", dstPort: 2 },
        tls: TLS,
      }),
      [["X-B", "2"], ["X-A", ""], ["X-B", "3"]],
    );
    const names = r.split("\r\n").slice(1).filter((l) => l !== "").map((l) =>
      l.slice(0, l.indexOf(":"))
    );
    assert.deepEqual(names, [
      "Host",
      "Auth-Method",
      "Auth-User",
      "Auth-Pass",
      "Auth-Protocol",
      "Auth-Login-Attempt",
      "Client-IP",
      "Proxy-Protocol-Addr",
      "Proxy-Protocol-Port",
      "Proxy-Protocol-Server-Addr",
      "Proxy-Protocol-Server-Port",
      "Auth-SSL",
      "Auth-SSL-Protocol",
      "Auth-SSL-Cipher",
      "X-B",
      "X-A",
      "X-B",
    ]);
    assert.ok(r.endsWith("\r\nX-A: \r\nX-B: 3\r\n\r\n"));
  });

  test("user and password are escaped and written byte for byte", () => {
    const user = 'john doe%"\\@+\x7f';
    const pass = "a\r\nb\t\x00\x80\xff\xe9";
    const bytes = buildAuthRequest(URL_, req({ user, pass }), []);
    const text = bytesToBinary(bytes);
    assert.ok(text.includes('\r\nAuth-User: john%20doe%25"\\@+\x7f\r\n'));
    assert.ok(text.includes("\r\nAuth-Pass: a%0D%0Ab%09%00\x80\xff\xe9\r\n"));
    // The high bytes are single bytes on the wire, not UTF-8 sequences.
    const i = text.indexOf("Auth-Pass: ");
    assert.deepEqual([...bytes.subarray(i + 11 + 14, i + 11 + 17)], [0x80, 0xff, 0xe9]);
  });

  test("UNIX-socket URL: Host localhost", () => {
    const unixUrl: AuthHttpUrl = {
      raw: "unix:/run/auth.sock:/auth",
      target: { kind: "unix", path: "/run/auth.sock" },
      hostHeader: "localhost",
      uri: "/auth",
    };
    assert.ok(build(req({}), [], unixUrl).startsWith("GET /auth HTTP/1.0\r\nHost: localhost\r\n"));
  });
});

describe("escapeAuthValue (auth_http.md §2.5)", () => {
  const cases: [string, string][] = [
    ["john doe", "john%20doe"],
    ["100%", "100%25"],
    ["a\r\nb", "a%0D%0Ab"],
    ["", ""],
    ["plain", "plain"],
    ["\x00\x1f\x20\x21", "%00%1F%20!"],
    ['"\\@+\x7f\x80\xff', '"\\@+\x7f\x80\xff'],
  ];
  for (const [input, want] of cases) {
    test(JSON.stringify(input), () => assert.equal(escapeAuthValue(input), want));
  }

  test("every byte", () => {
    for (let b = 0; b < 256; b++) {
      const got = escapeAuthValue(String.fromCharCode(b));
      const escaped = b <= 0x20 || b === 0x25;
      assert.equal(
        got,
        escaped ? "%" + b.toString(16).toUpperCase().padStart(2, "0") : String.fromCharCode(b),
      );
    }
  });

  test("the request bytes of an escaped value are ASCII for escaped bytes", () => {
    assert.deepEqual([...binaryToBytes(escapeAuthValue("\n"))], [0x25, 0x30, 0x41]);
  });
});

describe("authServerName", () => {
  test("tcp, IPv6, unix", () => {
    assert.equal(authServerName(URL_), "127.0.0.1:9000");
    assert.equal(
      authServerName({ ...URL_, target: { kind: "tcp", host: "::1", port: 80 } }),
      "[::1]:80",
    );
    assert.equal(
      authServerName({ ...URL_, target: { kind: "unix", path: "/tmp/a.sock" } }),
      "unix:/tmp/a.sock",
    );
  });
});
