// Host names for the auth service and the backend (issue 17): the
// resolver's name -> addresses lookup (scripted outcomes), and the backend
// dial of an Auth-Server host name with and without a resolver.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { lookupHostAddresses } from "../../lib/resolver/host_addresses.ts";
import {
  type LookupResult,
  RESOLVE_NXDOMAIN,
  RESOLVE_TIMEDOUT,
} from "../../lib/resolver/client_host.ts";
import { TYPE_A, TYPE_AAAA } from "../../lib/resolver/dns_message.ts";
import { BackendDial, type DialRequest } from "../../lib/proxy/backend_dial.ts";
import type { ConnectSpec } from "../../lib/runtime/types.ts";
import { isAuthServerName } from "../../lib/auth/http_response.ts";

const BOTH = { ipv4: true, ipv6: true };

function scripted(table: Record<number, LookupResult>) {
  const asked: number[] = [];
  return {
    asked,
    lookup: (_name: string, type: number) => {
      asked.push(type);
      return Promise.resolve(table[type] ?? { ok: false, code: RESOLVE_NXDOMAIN });
    },
  };
}

describe("lookupHostAddresses", () => {
  test("A then AAAA addresses, both asked", async () => {
    const s = scripted({
      [TYPE_A]: { ok: true, values: ["192.0.2.1"] },
      [TYPE_AAAA]: { ok: true, values: ["2001:db8::1"] },
    });
    assert.deepEqual(await lookupHostAddresses("h.test", s.lookup, BOTH), {
      ok: true,
      addresses: ["192.0.2.1", "2001:db8::1"],
    });
    assert.deepEqual(s.asked.sort(), [TYPE_A, TYPE_AAAA].sort());
  });
  test("ipv6=off asks A only; an IPv6-only name then does not resolve", async () => {
    const s = scripted({ [TYPE_AAAA]: { ok: true, values: ["2001:db8::1"] } });
    assert.deepEqual(await lookupHostAddresses("h.test", s.lookup, { ipv4: true, ipv6: false }), {
      ok: false,
      code: RESOLVE_NXDOMAIN,
    });
    assert.deepEqual(s.asked, [TYPE_A]);
  });
  test("one family failing does not hide the other's addresses", async () => {
    const s = scripted({
      [TYPE_A]: { ok: false, code: RESOLVE_TIMEDOUT },
      [TYPE_AAAA]: { ok: true, values: ["2001:db8::1"] },
    });
    assert.deepEqual(await lookupHostAddresses("h.test", s.lookup, BOTH), {
      ok: true,
      addresses: ["2001:db8::1"],
    });
  });
  test("a timeout says more than NXDOMAIN", async () => {
    const s = scripted({ [TYPE_A]: { ok: false, code: RESOLVE_TIMEDOUT } });
    assert.deepEqual(await lookupHostAddresses("h.test", s.lookup, BOTH), {
      ok: false,
      code: RESOLVE_TIMEDOUT,
    });
  });
  test("a throwing lookup is a failure, not a rejection", async () => {
    const r = await lookupHostAddresses("h.test", () => Promise.reject(new Error("bug")), BOTH);
    assert.equal(r.ok, false);
  });
});

describe("Auth-Server values", () => {
  test("host names are names; addresses and junk are not", () => {
    for (const v of ["mail.example.com", "backend-1.test", "localhost"]) {
      assert.equal(isAuthServerName(v), true, v);
    }
    for (
      const v of [
        "",
        "1.2.3.4",
        "010.1..2",
        "[::1]",
        "a_b.test",
        "-a.test",
        ".a.test",
        "a..b",
        "a b",
        "x".repeat(254),
      ]
    ) {
      assert.equal(isAuthServerName(v), false, v);
    }
  });
});

describe("BackendDial with an Auth-Server host name", () => {
  function dial(over: Partial<DialRequest>, seen: ConnectSpec[]) {
    const req: DialRequest = {
      connect: (spec) => {
        seen.push(spec);
        return Promise.reject(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
      },
      addr: "backend.test",
      port: 143,
      upstream: "backend.test:143",
      authKind: "http",
      own: null,
      connectTimeoutMs: 1000,
      tlsMode: "off",
      tls: null,
      proxyProtocol: "off",
      client: {
        addr: { family: "ipv4", address: "192.0.2.9", port: 5000 },
        local: { family: "ipv4", address: "192.0.2.1", port: 143 },
        tls: null,
      },
      serverTls: null,
      createLogin: () => {
        throw new Error("not reached");
      },
      ...over,
    };
    return new BackendDial(req).result;
  }

  test("no resolver: an auth-side failure with a clear log line, no connect", async () => {
    const seen: ConnectSpec[] = [];
    const r = await dial({ lookupHost: null }, seen);
    assert.equal(r.kind, "fail");
    if (r.kind !== "fail") return;
    assert.equal(r.blame, "auth");
    assert.deepEqual(r.log, {
      level: "error",
      message: `Auth-Server "backend.test" is a host name, but no "resolver" is defined`,
    });
    assert.equal(seen.length, 0);
  });

  test("with a resolver: connects to the first address", async () => {
    const seen: ConnectSpec[] = [];
    const r = await dial({
      lookupHost: () => Promise.resolve({ ok: true, addresses: ["192.0.2.7", "192.0.2.8"] }),
    }, seen);
    assert.equal(r.kind, "fail"); // the scripted connect refuses
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as { host: string }).host, "192.0.2.7");
  });

  test("a name that does not resolve: logged with nginx's resolver text", async () => {
    const seen: ConnectSpec[] = [];
    const r = await dial({
      lookupHost: () => Promise.resolve({ ok: false, code: RESOLVE_NXDOMAIN }),
    }, seen);
    assert.ok(
      r.kind === "fail" &&
        r.log?.message === `Auth-Server "backend.test" could not be resolved (3: Host not found)`,
    );
    assert.equal(seen.length, 0);
  });

  test("an IP literal is not looked up", async () => {
    const seen: ConnectSpec[] = [];
    await dial({ addr: "192.0.2.5", lookupHost: () => assert.fail("looked up") }, seen);
    assert.equal((seen[0] as { host: string }).host, "192.0.2.5");
  });
});
