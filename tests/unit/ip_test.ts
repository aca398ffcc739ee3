// lib/core/ip.ts: IP literals read as nginx reads them (listen,
// set_real_ip_from, PROXY protocol, Auth-Server) and strictly (the auth
// table), and printed as nginx prints them.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  formatIPv6,
  isStrictIpv4,
  isStrictIpv6,
  parseCidr,
  parseIPv4,
  parseIPv6,
  parseNginxAddr,
} from "../../lib/core/ip.ts";

describe("nginx-lax parsing and ngx_inet6_ntop printing", () => {
  test("IPv4", () => {
    assert.deepEqual(parseIPv4("192.0.2.1"), new Uint8Array([192, 0, 2, 1]));
    for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "a.b.c.d", "", "1.2.3.4 "]) {
      assert.equal(parseIPv4(bad), null, bad);
    }
  });
  const v6: [string, string | null][] = [
    ["::", "::"],
    ["::1", "::1"],
    ["0:0::1", "::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["fe80::", "fe80::"],
    [":::", null],
    ["1::2::3", null],
    ["12345::", null],
    ["::g", null],
    ["1:2:3:4:5:6:7:8:9", null],
    ["1:2:3:4:5:6:7", null],
  ];
  for (const [text, want] of v6) {
    test(`IPv6 ${text}`, () => {
      const b = parseIPv6(text);
      assert.equal(b === null ? null : formatIPv6(b), want);
    });
  }
  test("CIDR", () => {
    const a = parseCidr("10.1.2.3/8")!;
    assert.equal(a.hostBits, true);
    assert.deepEqual([...a.cidr.bytes], [10, 0, 0, 0]);
    assert.equal(a.cidr.prefix, 8);
    const b = parseCidr("192.0.2.0/24")!;
    assert.equal(b.hostBits, false);
    const c = parseCidr("2001:db8::/32")!;
    assert.equal(c.cidr.family, 6);
    assert.equal(c.cidr.prefix, 32);
    assert.equal(parseCidr("192.0.2.1")!.cidr.prefix, 32);
    assert.equal(parseCidr("10.0.0.0/33"), null);
    assert.equal(parseCidr("::/129"), null);
    assert.equal(parseCidr("10.0.0.0/x"), null);
  });
});

describe("parseNginxAddr (Auth-Server, as ngx_parse_addr)", () => {
  const good: [string, string][] = [
    ["192.0.2.1", "192.0.2.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.254", "255.255.255.254"],
    ["1..2.3", "1.0.2.3"],
    ["::1", "::1"],
    ["::", "::"],
    ["2001:db8::1", "2001:db8::1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["FE80::ABCD", "FE80::ABCD"],
  ];
  for (const [input, want] of good) {
    test(`valid ${input}`, () => assert.equal(parseNginxAddr(input), want));
  }
  const bad = [
    "",
    "255.255.255.255", // INADDR_NONE in nginx
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "1.2.3.4 ",
    "localhost",
    "[::1]",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "12345::",
    "fe80::1%eth0",
    ":1::",
    "1:2:3:4:5:6:7::8",
    "::1.2.3",
  ];
  for (const input of bad) {
    test(`invalid ${JSON.stringify(input)}`, () => assert.equal(parseNginxAddr(input), null));
  }
  test("isStrictIpv6 rejects IPv4", () => assert.equal(isStrictIpv6("1.2.3.4"), false));
});

describe("strict and lax readings differ only where nginx is lax", () => {
  // [text, lax (parseIPv4 / parseIPv6 accepts), strict]
  const v4: [string, boolean, boolean][] = [
    ["192.0.2.1", true, true],
    ["010.1.1.1", true, false], // ngx_inet_addr: 10.1.1.1; inet_aton: 8.1.1.1
    ["0.0.0.0", true, true],
    ["1..2.3", true, false], // an empty octet is 0
    ["1.2.3.", true, false],
    ["0001.2.3.4", true, false],
    ["255.255.255.255", true, true],
    ["256.1.1.1", false, false],
    ["1.2.3", false, false],
    ["1.2.3.4.5", false, false],
    ["", false, false],
    [" 1.2.3.4", false, false],
  ];
  for (const [text, lax, strict] of v4) {
    test(`IPv4 ${JSON.stringify(text)}`, () => {
      assert.equal(parseIPv4(text) !== null, lax, "lax");
      assert.equal(isStrictIpv4(text), strict, "strict");
    });
  }
  const v6: [string, boolean, boolean][] = [
    ["::ffff:192.0.2.1", true, true],
    ["::ffff:192.0..1", true, false], // the dotted tail read by ngx_inet_addr
    ["::ffff:1.2.3.4.5", false, false],
    ["1.2.3.4::", false, false], // a dotted quad only at the very end
    ["1:2:3:4:5:6:1.2.3.4", true, true],
    ["1:2:3:4:5:6:7:1.2.3.4", false, false],
    ["fe80::1%eth0", false, false],
    ["[::1]", false, false],
  ];
  for (const [text, lax, strict] of v6) {
    test(`IPv6 ${JSON.stringify(text)}`, () => {
      assert.equal(parseIPv6(text) !== null, lax, "lax");
      assert.equal(isStrictIpv6(text), strict, "strict");
    });
  }
  test("parseNginxAddr: lax IPv4 normalised, strict IPv6 as given", () => {
    assert.equal(parseNginxAddr("010.0..1"), "10.0.0.1");
    assert.equal(parseNginxAddr("::ffff:192.0..1"), null);
    assert.equal(parseNginxAddr("1.2.3.4::"), null);
  });
});
