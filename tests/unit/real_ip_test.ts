import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { proxyHeaderToAddr, realIpTrusted } from "../../lib/proxy_protocol/real_ip.ts";
import { parseCidr } from "../../lib/core/ip.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import type { SockAddr } from "../../lib/runtime/types.ts";

type List = ServerConfig["setRealIpFrom"];

/** A set_real_ip_from list as the config loader builds it (host bits cleared). */
function list(...entries: string[]): List {
  return entries.map((e) => {
    if (e === "unix:") return { kind: "unix" as const };
    const parsed = parseCidr(e);
    if (!parsed) throw new Error(`bad test CIDR ${e}`);
    return parsed.cidr;
  });
}

const v4 = (address: string): SockAddr => ({ family: "ipv4", address, port: 40000 });
const v6 = (address: string): SockAddr => ({ family: "ipv6", address, port: 40000 });
const unix: SockAddr = { family: "unix", path: "" };

describe("realIpTrusted (tls_and_proxy_protocol.md §7)", () => {
  const table: [string, SockAddr, string[], boolean][] = [
    ["exact /32", v4("127.0.0.1"), ["127.0.0.1/32"], true],
    ["bare address = /32", v4("127.0.0.1"), ["127.0.0.1"], true],
    ["/32 other host", v4("127.0.0.2"), ["127.0.0.1/32"], false],
    ["/8 inside", v4("10.200.3.4"), ["10.0.0.0/8"], true],
    ["/8 outside", v4("11.0.0.1"), ["10.0.0.0/8"], false],
    ["/0 matches every IPv4 peer", v4("203.0.113.9"), ["0.0.0.0/0"], true],
    ["/0 IPv4 does not match IPv6", v6("2001:db8::1"), ["0.0.0.0/0"], false],
    ["host bits set work like the network", v4("10.9.9.9"), ["10.1.2.3/8"], true],
    ["host bits set: outside", v4("11.1.2.3"), ["10.1.2.3/8"], false],
    ["/25 boundary inside", v4("192.0.2.127"), ["192.0.2.0/25"], true],
    ["/25 boundary outside", v4("192.0.2.128"), ["192.0.2.0/25"], false],
    ["/31", v4("192.0.2.5"), ["192.0.2.4/31"], true],
    ["second entry matches", v4("192.0.2.7"), ["10.0.0.0/8", "unix:", "192.0.2.7"], true],
    ["empty list", v4("127.0.0.1"), [], false],
    ["IPv6 /128", v6("::1"), ["::1/128"], true],
    ["IPv6 /128 other host", v6("::2"), ["::1/128"], false],
    ["IPv6 /32", v6("2001:db8:ffff::1"), ["2001:db8::/32"], true],
    ["IPv6 /32 outside", v6("2001:db9::1"), ["2001:db8::/32"], false],
    ["IPv6 /0", v6("2001:db8::1"), ["::/0"], true],
    ["IPv6 /0 does not match IPv4", v4("192.0.2.1"), ["::/0"], false],
    ["IPv6 /60 host bits set", v6("2001:db8:0:5::1"), ["2001:db8:0:7::1/60"], true],
    ["IPv6 /60 outside", v6("2001:db8:0:10::1"), ["2001:db8:0:7::1/60"], false],
    ["IPv6 peer, IPv4 entry", v6("::1"), ["127.0.0.1"], false],
    [
      "IPv6 peer spelled long",
      v6("2001:0db8:0000:0000:0000:0000:0000:0001"),
      ["2001:db8::1"],
      true,
    ],
    ["IPv6 peer with a zone", v6("fe80::1%eth0"), ["fe80::/10"], true],
    ["IPv4 peer, IPv4-mapped /128 entry", v4("127.0.0.1"), ["::ffff:127.0.0.1"], true],
    ["IPv4 peer, IPv4-mapped /104 entry", v4("10.1.2.3"), ["::ffff:10.0.0.0/104"], true],
    ["IPv4 peer, IPv4-mapped /104 outside", v4("11.1.2.3"), ["::ffff:10.0.0.0/104"], false],
    ["IPv4 peer, the whole mapped block /96", v4("198.51.100.1"), ["::ffff:0:0/96"], true],
    ["IPv4-mapped IPv6 peer, IPv4 entry", v6("::ffff:127.0.0.1"), ["127.0.0.0/8"], true],
    ["IPv4-mapped IPv6 peer, mapped entry", v6("::ffff:127.0.0.1"), ["::ffff:127.0.0.1"], true],
    ["unix: matches a UNIX peer", unix, ["unix:"], true],
    ["UNIX peer without unix:", unix, ["0.0.0.0/0", "::/0"], false],
    ["unix: does not match TCP peers", v4("127.0.0.1"), ["unix:"], false],
    ["unparsable peer address", v4("localhost"), ["0.0.0.0/0"], false],
  ];
  for (const [name, peer, entries, want] of table) {
    test(
      `${name}: ${JSON.stringify(entries)} ${want ? "trusts" : "does not trust"} ${
        peer.family === "unix" ? "unix" : peer.address
      }`,
      () => {
        assert.equal(realIpTrusted(peer, list(...entries)), want);
      },
    );
  }

  test("an entry whose host bits were not cleared matches the same way", () => {
    // The loader clears them; a hand-built entry with them set still means its network.
    const raw: List = [{ kind: "cidr", family: 4, bytes: Uint8Array.of(10, 1, 2, 3), prefix: 8 }];
    assert.equal(realIpTrusted(v4("10.200.0.1"), raw), true);
    assert.equal(realIpTrusted(v4("11.1.2.3"), raw), false);
  });

  test("an IPv6 entry wider than the mapped block does not match IPv4 peers", () => {
    assert.equal(realIpTrusted(v4("10.0.0.1"), list("::/80")), false);
    // Even spelled with mapped host bits that were left in place.
    const raw: List = [{
      kind: "cidr",
      family: 6,
      bytes: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0),
      prefix: 80,
    }];
    assert.equal(realIpTrusted(v4("10.0.0.1"), raw), false);
    assert.equal(realIpTrusted(v6("::ffff:10.0.0.1"), raw), false);
    assert.equal(realIpTrusted(v6("::1"), raw), true);
  });
});

describe("proxyHeaderToAddr (§7)", () => {
  const hdr = (srcAddr: string, srcPort = 123) => ({
    srcAddr,
    srcPort,
    dstAddr: "192.0.2.2",
    dstPort: 5678,
  });
  test("IPv4 and IPv6 sources become the client address, port included", () => {
    assert.deepEqual(proxyHeaderToAddr(hdr("192.0.2.1")), {
      family: "ipv4",
      address: "192.0.2.1",
      port: 123,
    });
    assert.deepEqual(proxyHeaderToAddr(hdr("2001:DB8:0:0:0:0:0:1", 0)), {
      family: "ipv6",
      address: "2001:db8::1",
      port: 0,
    });
    assert.deepEqual(proxyHeaderToAddr(hdr("::ffff:192.0.2.1", 65535)), {
      family: "ipv6",
      address: "::ffff:192.0.2.1",
      port: 65535,
    });
  });
  test("text is re-printed as nginx does", () => {
    assert.deepEqual(proxyHeaderToAddr(hdr("010.0.0.01")), {
      family: "ipv4",
      address: "10.0.0.1",
      port: 123,
    });
  });
  test("a source that is not an IP address: null (nothing is replaced)", () => {
    for (const bad of ["1.2.3", "1.2.3.256", "::1::2", "", "1.2.3.4.5", "abc", "2001:db8::g"]) {
      assert.equal(proxyHeaderToAddr(hdr(bad)), null, bad);
    }
  });
});
