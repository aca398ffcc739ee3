// The client-host resolver against scripted DNS servers on loopback: every
// mail_resolver.t case, plus round robin, TC -> TCP, IPv6, caching, forged
// answers, and clean shutdown. Client addresses are documentation addresses
// so nothing can come from /etc/hosts.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import type { ResolverConfig } from "../../lib/config/types.ts";
import {
  createResolver,
  type Resolver,
  type ResolverOptions,
} from "../../lib/resolver/resolver.ts";
import {
  isValidHostName,
  lookupClientHost,
  type LookupResult,
  parseClientAddress,
  ptrName,
} from "../../lib/resolver/client_host.ts";
import {
  A,
  AAAA,
  buildReply,
  CNAME,
  DNAME,
  FakeDns,
  type Handler,
  NXDOMAIN,
  PTR,
  REFUSED,
  type Reply,
  SERVFAIL,
  zone,
} from "../helpers/fake_dns.ts";
import { loadRuntime } from "../../lib/runtime/select.ts";

const runtime = await loadRuntime();

const IP = "192.0.2.1";
const PTR_NAME = "1.2.0.192.in-addr.arpa";
const HOST = "a.example.net";
const UNAVAILABLE = "[UNAVAILABLE]";
const TEMPUNAVAIL = "[TEMPUNAVAIL]";

/** The good zone of mail_resolver.t, moved to documentation addresses. */
function goodZone(ptr: Reply | Reply[] | null = { answers: [{ type: PTR, data: HOST }] }): Handler {
  return zone({
    [`${PTR_NAME} PTR`]: ptr,
    [`${HOST} A`]: { answers: [{ type: A, data: IP }] },
  });
}

function config(servers: FakeDns[], extra: Partial<ResolverConfig> = {}): ResolverConfig {
  return {
    servers: servers.map((s) => ({ host: s.host, port: s.port })),
    validMs: null,
    ipv4: true,
    ipv6: true,
    loc: { file: "test.conf", line: 1 },
    ...extra,
  };
}

/** Starts fake servers, runs `body`, then closes the resolver and stops the servers. */
async function withDns(
  handlers: Handler[],
  timeoutMs: number,
  body: (r: Resolver, dns: FakeDns[]) => Promise<void>,
  extra: Partial<ResolverConfig> = {},
  options: ResolverOptions = {},
): Promise<void> {
  const dns: FakeDns[] = [];
  let r: Resolver | null = null;
  try {
    for (const h of handlers) dns.push(await FakeDns.start(h));
    r = createResolver(runtime, config(dns, extra), timeoutMs, options);
    await body(r, dns);
  } finally {
    r?.close();
    for (const d of dns) await d.stop();
  }
}

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await p;
  return [v, performance.now() - t0];
}

describe("mail_resolver.t cases", () => {
  test("good PTR + matching A record -> the name", async () => {
    await withDns([goodZone()], 2000, async (r, [dns]) => {
      assert.deepEqual(await r.lookupClientHost(IP), { host: HOST, log: null });
      assert.equal(dns.count(PTR_NAME, PTR), 1);
      assert.equal(dns.count(HOST, A), 1);
      assert.equal(dns.count(HOST, AAAA), 1);
      assert.ok(dns.queries.every((q) => q.transport === "udp"));
    });
  });

  test("SERVFAIL for the PTR -> TEMPUNAVAIL, logged like nginx", async () => {
    await withDns([goodZone({ rcode: SERVFAIL })], 2000, async (r) => {
      assert.deepEqual(await r.lookupClientHost(IP), {
        host: TEMPUNAVAIL,
        log: { level: "error", message: `${IP} could not be resolved (2: Server failure)` },
      });
    });
  });

  test("other rcode (REFUSED) -> TEMPUNAVAIL", async () => {
    await withDns([goodZone({ rcode: REFUSED })], 2000, async (r) => {
      const res = await r.lookupClientHost(IP);
      assert.equal(res.host, TEMPUNAVAIL);
      assert.equal(res.log?.message, `${IP} could not be resolved (5: Operation refused)`);
    });
  });

  test("zero-length PTR RDATA -> TEMPUNAVAIL at once (not after the timeout)", async () => {
    const ptr = { answers: [{ type: PTR, rdata: new Uint8Array(0) }] };
    await withDns([goodZone(ptr)], 2000, async (r) => {
      const [res, ms] = await timed(r.lookupClientHost(IP));
      assert.equal(res.host, TEMPUNAVAIL);
      assert.equal(res.log?.message, `${IP} could not be resolved (1: Format error)`);
      assert.ok(ms < 1000, `took ${ms} ms`);
    });
  });

  test("a concurrent lookup is not blocked by a malformed one", async () => {
    const bad = { answers: [{ type: PTR, rdata: new Uint8Array(0) }] };
    const h = zone({
      [`${PTR_NAME} PTR`]: { ...bad, delayMs: 150 },
      "2.2.0.192.in-addr.arpa PTR": { answers: [{ type: PTR, data: "b.example.net" }] },
      "b.example.net A": { answers: [{ type: A, data: "192.0.2.2" }] },
    });
    await withDns([h], 1000, async (r) => {
      const slow = r.lookupClientHost(IP);
      const [fast, ms] = await timed(r.lookupClientHost("192.0.2.2"));
      assert.equal(fast.host, "b.example.net");
      assert.ok(ms < 150, `took ${ms} ms`);
      assert.equal((await slow).host, TEMPUNAVAIL);
    });
  });

  test("uncompressed answer -> the name", async () => {
    const h = zone({
      [`${PTR_NAME} PTR`]: { compress: false, answers: [{ type: PTR, data: HOST }] },
      [`${HOST} A`]: { compress: false, answers: [{ type: A, data: IP }] },
    });
    await withDns([h], 2000, async (r) => {
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
    });
  });

  test("DNAME instead of PTR -> TEMPUNAVAIL", async () => {
    await withDns([goodZone({ answers: [{ type: DNAME, data: HOST }] })], 2000, async (r) => {
      const [res, ms] = await timed(r.lookupClientHost(IP));
      assert.equal(res.host, TEMPUNAVAIL);
      assert.equal(res.log?.level, "error");
      assert.ok(ms < 1000, `took ${ms} ms`);
    });
  });

  test("CNAME followed by the PTR for its target -> the name", async () => {
    const target = "1.1.2.0.192.in-addr.arpa";
    const ptr = {
      answers: [{ type: CNAME, data: target }, { owner: target, type: PTR, data: HOST }],
    };
    for (const compress of [true, false]) {
      await withDns([goodZone({ ...ptr, compress })], 2000, async (r, [dns]) => {
        assert.equal((await r.lookupClientHost(IP)).host, HOST, `compress=${compress}`);
        assert.equal(dns.count(target, PTR), 0, "no extra query when the answer holds the PTR");
      });
    }
  });

  test("lone CNAME (nginx TODO case) -> its target is asked -> the name", async () => {
    const target = "1.1.2.0.192.in-addr.arpa";
    const h = zone({
      [`${PTR_NAME} PTR`]: { answers: [{ type: CNAME, data: target }] },
      [`${target} PTR`]: { answers: [{ type: PTR, data: HOST }] },
      [`${HOST} A`]: { answers: [{ type: A, data: IP }] },
    });
    await withDns([h], 2000, async (r, [dns]) => {
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
      assert.equal(dns.count(target, PTR), 1);
    });
  });

  test("CNAMEs pointing at each other end (no endless follow-up)", async () => {
    const h = zone({
      [`${PTR_NAME} PTR`]: { answers: [{ type: CNAME, data: "x.example" }] },
      "x.example PTR": { answers: [{ type: CNAME, data: PTR_NAME }] },
    });
    await withDns([h], 2000, async (r, [dns]) => {
      assert.equal((await r.lookupClientHost(IP)).host, TEMPUNAVAIL);
      assert.ok(dns.queries.length <= 2, `${dns.queries.length} queries`); // then served from the cache
    });
  });

  test("NXDOMAIN -> UNAVAILABLE", async () => {
    await withDns([goodZone({ rcode: NXDOMAIN })], 2000, async (r, [dns]) => {
      assert.deepEqual(await r.lookupClientHost(IP), {
        host: UNAVAILABLE,
        log: { level: "error", message: `${IP} could not be resolved (3: Host not found)` },
      });
      assert.equal(dns.count(HOST), 0, "no forward lookup");
    });
  });

  test("empty answer -> UNAVAILABLE", async () => {
    await withDns([goodZone({})], 2000, async (r) => {
      const res = await r.lookupClientHost(IP);
      assert.equal(res.host, UNAVAILABLE);
      assert.equal(res.log?.message, `${IP} could not be resolved (3: Host not found)`);
    });
  });

  test("the PTR name must be a plain host name", async () => {
    for (const bad of ["bad_name.example", "a b.example"]) {
      await withDns([goodZone({ answers: [{ type: PTR, data: bad }] })], 2000, async (r, [dns]) => {
        const res = await r.lookupClientHost(IP);
        assert.equal(res.host, TEMPUNAVAIL);
        const shown = bad.replace(" ", "\\032");
        assert.deepEqual(res.log, {
          level: "error",
          message: `${IP} resolved to invalid host name "${shown}"`,
        });
        assert.equal(dns.queries.length, 1, "no forward lookup");
      });
    }
  });

  test("the root name as PTR is invalid", async () => {
    await withDns([goodZone({ answers: [{ type: PTR, data: "" }] })], 2000, async (r) => {
      const res = await r.lookupClientHost(IP);
      assert.equal(res.host, TEMPUNAVAIL);
      assert.equal(res.log?.message, `${IP} resolved to invalid host name ""`);
    });
  });
});

describe("forward confirmation", () => {
  function fwd(a: Reply | null, aaaa: Reply | null = {}): Handler {
    return zone({
      [`${PTR_NAME} PTR`]: { answers: [{ type: PTR, data: HOST }] },
      [`${HOST} A`]: a,
      [`${HOST} AAAA`]: aaaa,
    });
  }

  test("A records without the client address -> UNAVAILABLE", async () => {
    await withDns(
      [fwd({ answers: [{ type: A, data: "198.51.100.7" }, { type: A, data: "192.0.2.10" }] })],
      2000,
      async (r) => {
        assert.deepEqual(await r.lookupClientHost(IP), {
          host: UNAVAILABLE,
          log: { level: "info", message: `"${HOST}" does not resolve to ${IP}` },
        });
      },
    );
  });

  test("name does not exist -> UNAVAILABLE", async () => {
    await withDns([fwd({ rcode: NXDOMAIN }, { rcode: NXDOMAIN })], 2000, async (r) => {
      assert.deepEqual(await r.lookupClientHost(IP), {
        host: UNAVAILABLE,
        log: { level: "error", message: `"${HOST}" could not be resolved (3: Host not found)` },
      });
    });
  });

  test("SERVFAIL for A -> TEMPUNAVAIL", async () => {
    await withDns([fwd({ rcode: SERVFAIL })], 2000, async (r) => {
      assert.deepEqual(await r.lookupClientHost(IP), {
        host: TEMPUNAVAIL,
        log: { level: "error", message: `"${HOST}" could not be resolved (2: Server failure)` },
      });
    });
  });

  test("the matching A answer settles it while AAAA never answers", async () => {
    await withDns([fwd({ answers: [{ type: A, data: IP }] }, null)], 1500, async (r) => {
      const [res, ms] = await timed(r.lookupClientHost(IP));
      assert.equal(res.host, HOST);
      assert.ok(ms < 500, `took ${ms} ms`);
    });
  });

  test("the A answer through a CNAME is followed", async () => {
    const h = zone({
      [`${PTR_NAME} PTR`]: { answers: [{ type: PTR, data: HOST }] },
      [`${HOST} A`]: { answers: [{ type: CNAME, data: "real.example.net" }] },
      "real.example.net A": { answers: [{ type: A, data: IP }] },
    });
    await withDns([h], 2000, async (r) => {
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
    });
  });

  test("ipv6=off: no AAAA query; ipv4=off: no A query", async () => {
    await withDns([fwd({ answers: [{ type: A, data: IP }] })], 2000, async (r, [dns]) => {
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
      assert.equal(dns.count(HOST, AAAA), 0);
    }, { ipv6: false });
    await withDns([fwd({ answers: [{ type: A, data: IP }] })], 2000, async (r, [dns]) => {
      assert.equal((await r.lookupClientHost(IP)).host, UNAVAILABLE);
      assert.equal(dns.count(HOST, A), 0);
      assert.equal(dns.count(HOST, AAAA), 1);
    }, { ipv4: false });
  });

  test("IPv6 client: nibble PTR name and AAAA match", async () => {
    const ip = "2001:db8::5";
    const nibbles = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
    const h = zone({
      [`${nibbles} PTR`]: { answers: [{ type: PTR, data: "v6.example.net" }] },
      "v6.example.net AAAA": { answers: [{ type: AAAA, data: "2001:db8:0:0::5" }] },
    });
    await withDns([h], 2000, async (r, [dns]) => {
      assert.deepEqual(await r.lookupClientHost(ip), { host: "v6.example.net", log: null });
      assert.equal(dns.count(nibbles, PTR), 1);
    });
  });

  test("IPv4-mapped IPv6 client is looked up as IPv4", async () => {
    await withDns([goodZone()], 2000, async (r, [dns]) => {
      assert.equal((await r.lookupClientHost(`::ffff:${IP}`)).host, HOST);
      assert.equal(dns.count(PTR_NAME, PTR), 1);
    });
  });
});

describe("timeouts, round robin, TCP", () => {
  test("no answer -> TEMPUNAVAIL within resolver_timeout + slack, re-sent meanwhile", async () => {
    await withDns([() => null], 600, async (r, [dns]) => {
      const [res, ms] = await timed(r.lookupClientHost(IP));
      assert.deepEqual(res, {
        host: TEMPUNAVAIL,
        log: { level: "error", message: `${IP} could not be resolved (110: Operation timed out)` },
      });
      assert.ok(ms >= 590 && ms < 900, `took ${ms} ms`);
      assert.ok(dns.queries.length >= 2, `re-sent: ${dns.queries.length} queries`);
      assert.equal(new Set(dns.queries.map((q) => q.id)).size, 1, "the same query is re-sent");
    });
  });

  test("a slow answer within the timeout is used", async () => {
    await withDns(
      [goodZone({ answers: [{ type: PTR, data: HOST }], delayMs: 200 })],
      1000,
      async (r) => {
        assert.equal((await r.lookupClientHost(IP)).host, HOST);
      },
    );
  });

  test("round robin: the second server answers when the first never does", async () => {
    await withDns(
      [() => null, goodZone()],
      1500,
      async (r, [silent, good]) => {
        const [res, ms] = await timed(r.lookupClientHost(IP));
        assert.equal(res.host, HOST);
        assert.ok(silent.count(PTR_NAME, PTR) >= 1, "first server was asked");
        assert.equal(good.count(PTR_NAME, PTR), 1);
        assert.ok(ms >= 90 && ms < 1400, `took ${ms} ms`); // waited for the re-send
      },
      {},
      { resendMs: 100 },
    );
  });

  test("queries rotate over the servers", async () => {
    await withDns([goodZone(), goodZone(), goodZone()], 2000, async (r, dns) => {
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
      // PTR, A, AAAA: one to each server, in order.
      assert.deepEqual(dns.map((d) => d.queries.map((q) => q.type)), [[PTR], [A], [AAAA]]);
    });
  });

  test("TC bit -> the query is repeated over TCP", async () => {
    const ptr = { truncateUdp: true, answers: [{ type: PTR, data: HOST }] };
    await withDns([goodZone(ptr)], 2000, async (r, [dns]) => {
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
      assert.deepEqual(
        dns.queries.filter((q) => q.type === PTR).map((q) => q.transport),
        ["udp", "tcp"],
      );
    });
  });

  test("TCP answer that never comes -> timeout", async () => {
    let n = 0;
    const h: Handler = (q) => (q.transport === "udp" ? { truncateUdp: true } : (n++, null));
    await withDns([h], 500, async (r) => {
      const [res, ms] = await timed(r.lookupClientHost(IP));
      assert.equal(res.host, TEMPUNAVAIL);
      assert.ok(ms < 800, `took ${ms} ms`);
      assert.ok(n >= 1);
    });
  });
});

describe("matching answers to queries", () => {
  test("answers with another id or question are ignored", async () => {
    const good = goodZone();
    const h: Handler = (q) =>
      q.type !== PTR ? good(q) : [
        { questionName: "9.9.9.9.in-addr.arpa", answers: [{ type: PTR, data: "evil.example" }] },
        { id: q.id ^ 1, answers: [{ type: PTR, data: "evil.example" }] },
        { answers: [{ type: PTR, data: HOST }], delayMs: 50 },
      ];
    await withDns([h], 2000, async (r, [dns]) => {
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
      assert.equal(dns.count(PTR_NAME, PTR), 1);
    });
  });

  test("an answer from an address that was not asked is ignored", async () => {
    const spoofer = createSocket("udp4");
    try {
      await withDns([() => null], 400, async (r, [dns]) => {
        const pending = r.lookupClientHost(IP);
        for (let i = 0; i < 50 && dns.queries.length === 0; i++) {
          await new Promise((ok) => setTimeout(ok, 10));
        }
        const q = dns.queries[0];
        assert.ok(q, "query seen");
        const packet = buildReply(q, { answers: [{ type: PTR, data: "evil.example" }] }, "udp");
        await new Promise<void>((ok) => spoofer.send(packet, q.from.port, "127.0.0.1", () => ok()));
        const res = await pending;
        assert.equal(res.host, TEMPUNAVAIL);
        assert.match(res.log?.message ?? "", /110: Operation timed out/);
      });
    } finally {
      await new Promise<void>((ok) => spoofer.close(() => ok()));
    }
  });

  test("an answer from a configured server that was not asked (yet) is ignored", async () => {
    // resendMs beyond the timeout: the query only ever goes to the first server.
    await withDns(
      [() => null, () => null],
      400,
      async (r, [asked, other]) => {
        const pending = r.lookupClientHost(IP);
        for (let i = 0; i < 50 && asked.queries.length === 0; i++) {
          await new Promise((ok) => setTimeout(ok, 10));
        }
        const q = asked.queries[0];
        assert.ok(q, "query seen");
        await other.sendUdp(
          buildReply(q, { answers: [{ type: PTR, data: "evil.example" }] }, "udp"),
          q.from.port,
          q.from.address,
        );
        const res = await pending;
        assert.equal(res.host, TEMPUNAVAIL);
        assert.equal(other.queries.length, 0);
      },
      {},
      { resendMs: 10_000 },
    );
  });
});

describe("sharing and caching", () => {
  test("concurrent lookups share one query", async () => {
    await withDns(
      [goodZone({ answers: [{ type: PTR, data: HOST }], delayMs: 100 })],
      2000,
      async (r, [dns]) => {
        const [a, b] = await Promise.all([r.lookupClientHost(IP), r.lookupClientHost(IP)]);
        assert.equal(a.host, HOST);
        assert.equal(b.host, HOST);
        assert.equal(dns.count(PTR_NAME, PTR), 1);
        assert.equal(dns.count(HOST, A), 1);
      },
    );
  });

  test("a later lookup is served from the cache (a bad server would not be needed)", async () => {
    let bad = false;
    const good = goodZone();
    const h: Handler = (q) => (bad ? { rcode: SERVFAIL } : good(q));
    await withDns([h], 2000, async (r, [dns]) => {
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
      const seen = dns.queries.length;
      bad = true;
      assert.equal((await r.lookupClientHost(IP)).host, HOST);
      assert.equal(dns.queries.length, seen, "no new query");
    });
  });

  test("entries expire after their TTL, or after valid=", async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const ttlZone = zone({
      [`${PTR_NAME} PTR`]: { answers: [{ type: PTR, data: HOST, ttl: 60 }] },
      [`${HOST} A`]: { answers: [{ type: A, data: IP, ttl: 60 }] },
    });
    await withDns(
      [ttlZone],
      2000,
      async (r, [dns]) => {
        await r.lookupClientHost(IP);
        now += 59_000;
        await r.lookupClientHost(IP);
        assert.equal(dns.count(PTR_NAME, PTR), 1, "still cached at 59 s");
        now += 2_000;
        await r.lookupClientHost(IP);
        assert.equal(dns.count(PTR_NAME, PTR), 2, "asked again after 61 s");
      },
      {},
      clock,
    );
    await withDns(
      [ttlZone],
      2000,
      async (r, [dns]) => {
        await r.lookupClientHost(IP);
        now += 1_500;
        await r.lookupClientHost(IP);
        assert.equal(dns.count(PTR_NAME, PTR), 2, "valid=1s overrides TTL 60");
      },
      { validMs: 1000 },
      clock,
    );
  });

  test("NXDOMAIN is cached for a while; SERVFAIL is not", async () => {
    let now = 0;
    await withDns(
      [goodZone({ rcode: NXDOMAIN })],
      2000,
      async (r, [dns]) => {
        await r.lookupClientHost(IP);
        await r.lookupClientHost(IP);
        assert.equal(dns.count(PTR_NAME, PTR), 1);
        now += 11_000;
        await r.lookupClientHost(IP);
        assert.equal(dns.count(PTR_NAME, PTR), 2);
      },
      {},
      { now: () => now },
    );
    await withDns([goodZone({ rcode: SERVFAIL })], 2000, async (r, [dns]) => {
      await r.lookupClientHost(IP);
      await r.lookupClientHost(IP);
      assert.equal(dns.count(PTR_NAME, PTR), 2);
    });
  });

  test("TTL 0 is not cached", async () => {
    await withDns(
      [goodZone({ answers: [{ type: PTR, data: HOST, ttl: 0 }] })],
      2000,
      async (r, [dns]) => {
        await r.lookupClientHost(IP);
        await r.lookupClientHost(IP);
        assert.equal(dns.count(PTR_NAME, PTR), 2);
      },
    );
  });

  test("the cache is bounded: the least recently used entry goes", async () => {
    const h = zone({
      [`${PTR_NAME} PTR`]: { answers: [{ type: PTR, data: HOST }] },
      "2.2.0.192.in-addr.arpa PTR": { answers: [{ type: PTR, data: HOST }] },
      [`${HOST} A`]: { answers: [{ type: A, data: IP }, { type: A, data: "192.0.2.2" }] },
    });
    // PTR1, A, AAAA fill 3 entries; PTR2 evicts PTR1 (A and AAAA were used later).
    await withDns(
      [h],
      2000,
      async (r, [dns]) => {
        await r.lookupClientHost(IP);
        assert.equal((await r.lookupClientHost("192.0.2.2")).host, HOST);
        assert.equal(dns.count(HOST, A), 1);
        await r.lookupClientHost(IP);
        assert.equal(dns.count(PTR_NAME, PTR), 2);
      },
      {},
      { maxCacheEntries: 3 },
    );
  });
});

describe("shutdown", () => {
  test("close() ends lookups in progress at once, quietly", async () => {
    await withDns([() => null], 5000, async (r) => {
      const pending = timed(r.lookupClientHost(IP));
      await new Promise((ok) => setTimeout(ok, 50));
      r.close();
      const [res, ms] = await pending;
      assert.deepEqual(res, { host: TEMPUNAVAIL, log: null });
      assert.ok(ms < 1000, `took ${ms} ms`);
      assert.deepEqual(await r.lookupClientHost(IP), { host: TEMPUNAVAIL, log: null });
    });
  });
});

describe("client_host helpers", () => {
  test("ptrName", () => {
    assert.equal(ptrName(parseClientAddress("198.51.100.7")!), "7.100.51.198.in-addr.arpa");
    assert.equal(
      ptrName(parseClientAddress("2001:db8::abcd")!),
      "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
  });

  test("parseClientAddress", () => {
    assert.deepEqual(parseClientAddress("::ffff:198.51.100.7"), new Uint8Array([198, 51, 100, 7]));
    assert.equal(parseClientAddress("fe80::1%eth0")?.length, 16);
    assert.equal(parseClientAddress("unix:"), null);
    assert.equal(parseClientAddress("256.1.1.1"), null);
  });

  test("isValidHostName", () => {
    for (const ok of ["a", "a.example.net", "A-1.Example.NET", "1.2.3.4", "x."]) {
      assert.ok(isValidHostName(ok), ok);
    }
    for (const bad of ["", "a_b", "a b", "a\\032b", "é.net", "a\r\n", "a:b"]) {
      assert.ok(!isValidHostName(bad), bad);
    }
  });

  test("a client address that is not an IP -> TEMPUNAVAIL without a lookup", async () => {
    let calls = 0;
    const lookup = (): Promise<
      LookupResult
    > => (calls++, Promise.resolve({ ok: true, values: [HOST] }));
    const res = await lookupClientHost("unix:", lookup, { ipv4: true, ipv6: true });
    assert.equal(res.host, TEMPUNAVAIL);
    assert.equal(calls, 0);
  });

  test("a throwing lookup ends as TEMPUNAVAIL", async () => {
    const lookup = (): Promise<LookupResult> => {
      throw new Error("bug");
    };
    assert.equal(
      (await lookupClientHost(IP, lookup, { ipv4: true, ipv6: true })).host,
      TEMPUNAVAIL,
    );
  });

  test("forward: one type failing and the other matching -> the name", async () => {
    const lookup = (_name: string, type: number): Promise<LookupResult> =>
      Promise.resolve(
        type === 12
          ? { ok: true, values: [HOST] }
          : type === 28
          ? { ok: false, code: 110 }
          : { ok: true, values: [IP] },
      );
    assert.equal((await lookupClientHost(IP, lookup, { ipv4: true, ipv6: true })).host, HOST);
  });

  test("forward: addresses that do not match plus a timeout -> TEMPUNAVAIL", async () => {
    const lookup = (_name: string, type: number): Promise<LookupResult> =>
      Promise.resolve(
        type === 12
          ? { ok: true, values: [HOST] }
          : type === 28
          ? { ok: false, code: 110 }
          : { ok: true, values: ["198.51.100.1"] },
      );
    const res = await lookupClientHost(IP, lookup, { ipv4: true, ipv6: true });
    assert.equal(res.host, TEMPUNAVAIL);
    assert.equal(res.log?.message, `"${HOST}" could not be resolved (110: Operation timed out)`);
  });
});
