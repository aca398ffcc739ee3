import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { commonName, PP2_VALUE_MAX, proxyV1, proxyV2 } from "../../lib/proxy_protocol/writer.ts";
import { crc32c } from "../../lib/proxy_protocol/crc32c.ts";
import { ProxyHeaderReader } from "../../lib/proxy_protocol/reader.ts";
import type { SockAddr, TlsInfo } from "../../lib/runtime/types.ts";
import { ownCertInfo } from "../../lib/proxy_protocol/own_cert.ts";
import { readFileSync } from "node:fs";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const v4 = (address: string, port: number): SockAddr => ({ family: "ipv4", address, port });
const v6 = (address: string, port: number): SockAddr => ({ family: "ipv6", address, port });
const unix: SockAddr = { family: "unix", path: "/run/mailgate.sock" };
const hex = (b: Uint8Array | number[]) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

/** TLV bytes: type, 2-byte length, value. */
const tlv = (
  type: number,
  value: number[],
) => [type, value.length >> 8, value.length & 0xff, ...value];

// deno-fmt-ignore
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function tls(over: Partial<TlsInfo> = {}): TlsInfo {
  return {
    protocol: "TLSv1.3",
    cipher: "TLS_AES_256_GCM_SHA384",
    servername: null,
    alpn: null,
    peerCert: null,
    verifyError: null,
    ...over,
  };
}

const CLIENT_CERT = {
  subject: "CN=client.example.com,O=Example",
  issuer: "CN=Example CA",
  serial: "01",
  fingerprint: "00".repeat(20),
  pem: "",
};

describe("proxyV1 (tls_and_proxy_protocol.md §8)", () => {
  test("IPv4 client: the spec's examples", () => {
    assert.equal(
      text(proxyV1(v4("127.0.0.1", 40112), v4("127.0.0.1", 8025))),
      "PROXY TCP4 127.0.0.1 127.0.0.1 40112 8025\r\n",
    );
    assert.equal(
      text(proxyV1(v4("192.0.2.1", 123), v4("127.0.0.1", 8025))),
      "PROXY TCP4 192.0.2.1 127.0.0.1 123 8025\r\n",
    );
  });

  test("IPv6 client: TCP6, no brackets, nginx's compressed form", () => {
    assert.equal(
      text(proxyV1(v6("2001:DB8:0:0:0:0:0:1", 40000), v6("::1", 993))),
      "PROXY TCP6 2001:db8::1 ::1 40000 993\r\n",
    );
  });

  test("families differ: TCP6, the IPv4 side written as ::ffff:a.b.c.d", () => {
    assert.equal(
      text(proxyV1(v4("192.0.2.1", 123), v6("::1", 993))),
      "PROXY TCP6 ::ffff:192.0.2.1 ::1 123 993\r\n",
    );
    assert.equal(
      text(proxyV1(v6("2001:db8::5", 1), v4("127.0.0.1", 2))),
      "PROXY TCP6 2001:db8::5 ::ffff:127.0.0.1 1 2\r\n",
    );
  });

  test("a link-local zone is not written", () => {
    assert.equal(
      text(proxyV1(v6("fe80::1%eth0", 5), v6("fe80::2%eth0", 6))),
      "PROXY TCP6 fe80::1 fe80::2 5 6\r\n",
    );
  });

  test("UNIX-socket client: PROXY UNKNOWN", () => {
    assert.equal(text(proxyV1(unix, unix)), "PROXY UNKNOWN\r\n");
  });

  test("ports 0 and 65535", () => {
    assert.equal(
      text(proxyV1(v4("10.0.0.1", 0), v4("10.0.0.2", 65535))),
      "PROXY TCP4 10.0.0.1 10.0.0.2 0 65535\r\n",
    );
  });
});

describe("proxyV2 exact bytes (hand-written fixtures; CRCs from an independent bitwise CRC-32C)", () => {
  test("IPv4 client, no TLS: PROXY/INET/STREAM, 12 address bytes, CRC32C TLV", () => {
    // deno-fmt-ignore
    const expected = [
      ...SIGNATURE,
      0x21, // version 2, command PROXY
      0x11, // family INET, transport STREAM
      0x00, 0x13, // length 19 = 12 addresses + 7 CRC32C TLV
      192, 0, 2, 1, // source address
      127, 0, 0, 1, // destination address
      0x00, 0x7b, // source port 123
      0x1f, 0x59, // destination port 8025
      0x03, 0x00, 0x04, 0x8d, 0xf0, 0xb4, 0x26, // CRC32C TLV
    ];
    assert.equal(hex(proxyV2(v4("192.0.2.1", 123), v4("127.0.0.1", 8025), null)), hex(expected));
  });

  test("IPv6 client: INET6, 36 address bytes", () => {
    // deno-fmt-ignore
    const expected = [
      ...SIGNATURE,
      0x21, // version 2, PROXY
      0x21, // INET6, STREAM
      0x00, 0x2b, // length 43 = 36 + 7
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // 2001:db8::1
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // ::1
      0x9c, 0x40, // 40000
      0x03, 0xe1, // 993
      0x03, 0x00, 0x04, 0x50, 0x14, 0xa8, 0x18, // CRC32C
    ];
    assert.equal(hex(proxyV2(v6("2001:db8::1", 40000), v6("::1", 993), null)), hex(expected));
  });

  test("IPv4 client on an IPv6 local address: INET6 with ::ffff:192.0.2.1", () => {
    // deno-fmt-ignore
    const expected = [
      ...SIGNATURE,
      0x21,
      0x21, // INET6
      0x00, 0x2b,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1, // ::ffff:192.0.2.1
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // ::1
      0x00, 0x7b, // 123
      0x03, 0xe1, // 993
      0x03, 0x00, 0x04, 0x04, 0x84, 0x73, 0x11, // CRC32C
    ];
    assert.equal(hex(proxyV2(v4("192.0.2.1", 123), v6("::1", 993), null)), hex(expected));
  });

  test("both IPv4-mapped IPv6: INET with 4-byte addresses", () => {
    const mapped = proxyV2(v6("::ffff:192.0.2.1", 123), v6("::ffff:127.0.0.1", 8025), null);
    assert.equal(hex(mapped), hex(proxyV2(v4("192.0.2.1", 123), v4("127.0.0.1", 8025), null)));
    assert.equal(mapped[13], 0x11);
  });

  test("UNIX-socket client: LOCAL/UNSPEC, no addresses, only the CRC32C TLV", () => {
    // deno-fmt-ignore
    const expected = [
      ...SIGNATURE,
      0x20, // version 2, command LOCAL
      0x00, // UNSPEC
      0x00, 0x07, // length 7
      0x03, 0x00, 0x04, 0xa9, 0xb8, 0x7e, 0x8f, // CRC32C
    ];
    assert.equal(hex(proxyV2(unix, unix, null)), hex(expected));
  });

  test("TLS with SNI, ALPN and a verified client certificate: every TLV", () => {
    const info = tls({
      servername: "mail.example.com",
      alpn: "imap",
      peerCert: CLIENT_CERT,
    });
    const out = proxyV2(v4("192.0.2.1", 123), v4("127.0.0.1", 8025), info, {
      sigAlg: "SHA256",
      keyAlg: "RSA2048",
    });
    const subTlvs = [
      ...tlv(0x21, ascii("TLSv1.3")), // VERSION
      ...tlv(0x22, ascii("client.example.com")), // CN
      ...tlv(0x23, ascii("TLS_AES_256_GCM_SHA384")), // CIPHER
      ...tlv(0x24, ascii("SHA256")), // SIG_ALG
      ...tlv(0x25, ascii("RSA2048")), // KEY_ALG
    ];
    // deno-fmt-ignore
    const expected = [
      ...SIGNATURE,
      0x21,
      0x11,
      0x00, 0x80, // length 128 = 12 + 19 (AUTHORITY) + 7 (ALPN) + 83 (SSL) + 7 (CRC32C)
      192, 0, 2, 1, 127, 0, 0, 1, 0x00, 0x7b, 0x1f, 0x59,
      0x02, 0x00, 0x10, ...ascii("mail.example.com"), // AUTHORITY
      0x01, 0x00, 0x04, ...ascii("imap"), // ALPN
      0x20, 0x00, 0x50, // SSL, length 80
      0x07, // client: SSL | CERT_CONN | CERT_SESS
      0x00, 0x00, 0x00, 0x00, // verify: 0 = verified
      ...subTlvs,
      0x03, 0x00, 0x04, 0x17, 0xe4, 0xc4, 0x3d, // CRC32C
    ];
    assert.equal(subTlvs.length, 75);
    assert.equal(hex(out), hex(expected));
  });

  test("TLS without a client certificate: flags 0x01, verify 1, no CN; unknown SIG/KEY_ALG left out", () => {
    const out = proxyV2(
      v4("192.0.2.1", 123),
      v4("127.0.0.1", 8025),
      tls({ protocol: "TLSv1.2", cipher: "ECDHE-RSA-AES128-GCM-SHA256" }),
    );
    // deno-fmt-ignore
    const expected = [
      ...SIGNATURE,
      0x21,
      0x11,
      0x00, 0x43, // 67 = 12 + 48 (SSL) + 7
      192, 0, 2, 1, 127, 0, 0, 1, 0x00, 0x7b, 0x1f, 0x59,
      0x20, 0x00, 0x2d, // SSL, length 45
      0x01, // client: SSL only
      0x00, 0x00, 0x00, 0x01, // verify: 1 = no certificate
      ...tlv(0x21, ascii("TLSv1.2")),
      ...tlv(0x23, ascii("ECDHE-RSA-AES128-GCM-SHA256")),
      0x03, 0x00, 0x04, 0x90, 0x61, 0x24, 0x24, // CRC32C
    ];
    assert.equal(hex(out), hex(expected));
  });

  test("verify result of a failed client certificate: OpenSSL's code, 1 when unknown", () => {
    const verifyOf = (verifyError: string) => {
      const out = proxyV2(
        v4("192.0.2.1", 1),
        v4("127.0.0.1", 2),
        tls({ peerCert: CLIENT_CERT, verifyError }),
      );
      const ssl = 16 + 12; // SSL is the first TLV (no SNI, no ALPN)
      assert.equal(out[ssl], 0x20);
      assert.equal(out[ssl + 3], 0x07);
      return (out[ssl + 4] << 24) | (out[ssl + 5] << 16) | (out[ssl + 6] << 8) | out[ssl + 7];
    };
    assert.equal(verifyOf("certificate has expired"), 10);
    assert.equal(verifyOf("self-signed certificate"), 18);
    assert.equal(verifyOf("unable to get local issuer certificate"), 20);
    assert.equal(verifyOf("something else"), 1);
  });

  test("the CRC32C TLV is last and checks the header with its value zeroed", () => {
    const cases = [
      proxyV2(
        v4("10.1.2.3", 4),
        v6("2001:db8::9", 5),
        tls({ servername: "x", peerCert: CLIENT_CERT }),
      ),
      proxyV2(unix, unix, tls({ alpn: "pop3" })),
    ];
    for (const out of cases) {
      const len = (out[14] << 8) | out[15];
      assert.equal(out.length, 16 + len, "the length field covers every TLV");
      const at = out.length - 7;
      assert.deepEqual(Array.from(out.subarray(at, at + 3)), [0x03, 0x00, 0x04]);
      const stored =
        ((out[at + 3] << 24) | (out[at + 4] << 16) | (out[at + 5] << 8) | out[at + 6]) >>> 0;
      const zeroed = out.slice();
      zeroed.fill(0, at + 3);
      assert.equal(stored, crc32c(zeroed));
    }
  });

  test("a TLV value over the cap is left out", () => {
    const long = "a".repeat(PP2_VALUE_MAX + 1);
    const out = proxyV2(
      v4("192.0.2.1", 1),
      v4("127.0.0.1", 2),
      tls({ servername: long, alpn: "imap" }),
    );
    assert.equal(out[16 + 12], 0x01, "ALPN comes first: no AUTHORITY");
  });
});

describe("round trip through the reader", () => {
  const pairs: [SockAddr, SockAddr, string, string][] = [
    [v4("192.0.2.1", 123), v4("127.0.0.1", 8025), "192.0.2.1", "127.0.0.1"],
    [v6("2001:db8::1", 40000), v6("::1", 993), "2001:db8::1", "::1"],
    [v4("192.0.2.1", 123), v6("::1", 993), "::ffff:192.0.2.1", "::1"],
  ];
  for (const [client, local, src, dst] of pairs) {
    test(`${src} -> ${dst}`, () => {
      const port = (a: SockAddr) => (a.family === "unix" ? -1 : a.port);
      const want = { srcAddr: src, srcPort: port(client), dstAddr: dst, dstPort: port(local) };
      const tail = new Uint8Array([0x16, 0x03, 0x01]);
      for (
        const bytes of [
          proxyV1(client, local),
          proxyV2(client, local, tls({ servername: "h", peerCert: CLIENT_CERT })),
        ]
      ) {
        const r = new ProxyHeaderReader().push(new Uint8Array([...bytes, ...tail]));
        assert.equal(r.kind, "done");
        if (r.kind !== "done") return;
        assert.deepEqual(r.header, want);
        assert.deepEqual(r.rest, tail);
      }
    });
  }

  test("UNIX-socket client: no addresses either way", () => {
    for (const bytes of [proxyV1(unix, unix), proxyV2(unix, unix, tls())]) {
      const r = new ProxyHeaderReader().push(bytes);
      assert.deepEqual(r, { kind: "done", header: null, rest: new Uint8Array(0) });
    }
  });
});

describe("commonName (RFC 2253 subject)", () => {
  const cn = (s: string) => {
    const b = commonName(s);
    return b === null ? null : hex(b);
  };
  test("plain, escaped, hex-escaped UTF-8, several CNs, none", () => {
    assert.equal(cn("CN=alice,O=Example"), hex(ascii("alice")));
    assert.equal(cn("O=Example,CN=a\\,b\\+c"), hex(ascii("a,b+c")));
    assert.equal(cn("CN=caf\\C3\\A9"), "63 61 66 c3 a9");
    assert.equal(cn("CN=caf\u00e9"), "63 61 66 c3 a9");
    assert.equal(cn("CN=first,OU=x,CN=last"), hex(ascii("last")));
    assert.equal(cn("UID=7+CN=multi,O=x"), hex(ascii("multi")));
    assert.equal(cn("O=Example,C=US"), null);
  });
});

describe("crc32c (Castagnoli)", () => {
  test("check value and RFC 3720 B.4 vectors", () => {
    assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });
});

describe("ownCertInfo: SIG_ALG and KEY_ALG of the proxy's own certificate (§8)", () => {
  test("the RSA test certificate, and nothing for what is not a certificate", () => {
    const pem = readFileSync(new URL("../fixtures/tls/server.pem", import.meta.url), "utf8");
    assert.deepEqual(ownCertInfo(pem), { sigAlg: "RSA-SHA256", keyAlg: "RSA2048" });
    assert.deepEqual(ownCertInfo("not a certificate"), {});
  });
});
