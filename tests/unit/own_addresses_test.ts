// OwnAddresses (issue 13): which backend addresses would reach one of
// mailgate's own listeners.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { interfaceAddresses, OwnAddresses } from "../../lib/proxy/own_addresses.ts";

function own(listeners: { host: string; port: number; ipv6only?: boolean }[], machine: string[] = []) {
  const o = new OwnAddresses();
  o.update(listeners, machine);
  return o;
}

describe("OwnAddresses", () => {
  test("a listener on a specific address matches that address and port only", () => {
    const o = own([{ host: "127.0.0.1", port: 1143 }], ["127.0.0.1", "192.0.2.10"]);
    assert.equal(o.listenerFor("127.0.0.1", 1143), "127.0.0.1:1143");
    assert.equal(o.listenerFor("127.0.0.1", 143), null);
    // Bound to 127.0.0.1 only: another loopback address or interface does not reach it.
    assert.equal(o.listenerFor("127.0.0.2", 1143), null);
    assert.equal(o.listenerFor("192.0.2.10", 1143), null);
    // connect() to the unspecified address lands on loopback.
    assert.equal(o.listenerFor("0.0.0.0", 1143), "127.0.0.1:1143");
    // IPv4-mapped IPv6 is the IPv4 address.
    assert.equal(o.listenerFor("::ffff:127.0.0.1", 1143), "127.0.0.1:1143");
  });

  test("a wildcard IPv4 listener matches loopback, the machine's addresses and 0.0.0.0, not others", () => {
    const o = own([{ host: "0.0.0.0", port: 1143 }], ["127.0.0.1", "192.0.2.10", "fe80::1%eth0"]);
    for (const a of ["127.0.0.1", "127.1.2.3", "0.0.0.0", "192.0.2.10", "::ffff:192.0.2.10"]) {
      assert.equal(o.listenerFor(a, 1143), "0.0.0.0:1143", a);
    }
    assert.equal(o.listenerFor("192.0.2.11", 1143), null);
    assert.equal(o.listenerFor("198.51.100.1", 1143), null);
    assert.equal(o.listenerFor("::1", 1143), null, "an IPv4 wildcard takes no IPv6");
    assert.equal(o.listenerFor("127.0.0.1", 1144), null);
  });

  test("[::]: IPv6 only by default, both families with ipv6only=off", () => {
    const v6 = own([{ host: "::", port: 993, ipv6only: true }], ["2001:db8::5"]);
    assert.equal(v6.listenerFor("::1", 993), "[::]:993");
    assert.equal(v6.listenerFor("2001:db8:0:0::5", 993), "[::]:993", "any spelling of the address");
    assert.equal(v6.listenerFor("127.0.0.1", 993), null);
    const dual = own([{ host: "::", port: 993, ipv6only: false }]);
    assert.equal(dual.listenerFor("127.0.0.1", 993), "[::]:993");
    assert.equal(dual.listenerFor("2001:db8::6", 993), null);
  });

  test("update() replaces the sets (reload)", () => {
    const o = own([{ host: "0.0.0.0", port: 1143 }], ["192.0.2.10"]);
    o.update([{ host: "127.0.0.1", port: 2143 }], []);
    assert.equal(o.listenerFor("127.0.0.1", 1143), null);
    assert.equal(o.listenerFor("192.0.2.10", 1143), null);
    assert.equal(o.listenerFor("127.0.0.1", 2143), "127.0.0.1:2143");
  });

  test("host names and garbage never match", () => {
    const o = own([{ host: "0.0.0.0", port: 25 }]);
    assert.equal(o.listenerFor("localhost", 25), null);
    assert.equal(o.listenerFor("", 25), null);
  });

  test("interfaceAddresses flattens os.networkInterfaces()", () => {
    assert.deepEqual(
      interfaceAddresses({ lo: [{ address: "127.0.0.1" }, { address: "::1" }], eth0: undefined, e1: [{ address: "192.0.2.1" }] }),
      ["127.0.0.1", "::1", "192.0.2.1"],
    );
  });
});
