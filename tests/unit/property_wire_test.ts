// Property tests of the parsers for what mailgate reads from the network
// besides mail commands (issue #7): the auth_http response header parser,
// the PROXY protocol v1/v2 reader and the DNS message decoder. On arbitrary
// bytes they never throw (the DNS decoder only its own DnsFormatError),
// never keep more than their cap, and give the same result however the
// bytes are split; generated valid input decodes to what was encoded.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { binaryToBytes, bytesToBinary, concatBytes } from "../../lib/core/bytes.ts";
import {
  type AuthResponseHeaders,
  AuthResponseParser,
  MAX_AUTH_RESPONSE_HEADER,
  MAX_AUTH_WAIT_SEC,
  type ParseResult,
} from "../../lib/auth/http_response.ts";
import { PROXY_HEADER_MAX, type ProxyReadResult, ProxyHeaderReader } from "../../lib/proxy_protocol/reader.ts";
import { proxyV1, proxyV2 } from "../../lib/proxy_protocol/writer.ts";
import {
  CLASS_IN,
  decodeMessage,
  DnsFormatError,
  encodeName,
  encodeQuery,
  interpretAnswer,
  TYPE_A,
  TYPE_AAAA,
  TYPE_CNAME,
  TYPE_PTR,
} from "../../lib/resolver/dns_message.ts";
import { binary, check, cuts, splitAt } from "../helpers/property.ts";
import type { SockAddr } from "../../lib/runtime/types.ts";

// ---- auth_http response ------------------------------------------------------

function feedAll(chunks: string[], cap?: number): ParseResult {
  const p = new AuthResponseParser(cap);
  let r: ParseResult = { kind: "more" };
  for (const c of chunks) {
    r = p.feed(binaryToBytes(c));
    if (r.kind !== "more") break;
  }
  return r;
}

const headerName = fc.constantFrom(
  "Auth-Status", "auth-status", "AUTH-SERVER", "Auth-Server", "Auth-Port", "Auth-User", "Auth-Pass",
  "Auth-Wait", "Auth-Error-Code", "X-Other", "Content-Length", "Auth-Status:", "Bad Name", "",
);
const headerValue = fc.oneof(
  fc.constantFrom("OK", "WAIT", "Invalid login", "127.0.0.1", "143", "0", "99999999999999999999", "", " x "),
  binary(20),
);
const responseText = fc.tuple(
  fc.constantFrom("HTTP/1.0 200 OK\r\n", "HTTP/1.1 500 Internal Server Error\r\n", "HTTP/", "", "garbage\r\n"),
  fc.array(fc.tuple(headerName, fc.constantFrom(": ", ":", " : ", ""), headerValue, fc.constantFrom("\r\n", "\n", "\r", "")), { maxLength: 10 }),
  fc.constantFrom("\r\n", "\n", "", "\r\nbody after the header"),
).map(([s, hs, end]) => s + hs.map(([n, c, v, e]) => n + c + v + e).join("") + end);

describe("auth_http response parser, properties", () => {
  test("arbitrary bytes: never throws, same result whole / split, bounded by its cap", () => {
    check(fc.property(fc.oneof(responseText, binary(300)), cuts, fc.constantFrom(64, 1024, MAX_AUTH_RESPONSE_HEADER), (text, at, cap) => {
      const whole = feedAll([text], cap);
      assert.deepEqual(feedAll(splitAt(text, at), cap), whole);
      if (whole.kind === "done") {
        const h = whole.headers;
        if (h.waitSec !== null) assert.ok(h.waitSec >= 0 && h.waitSec <= MAX_AUTH_WAIT_SEC);
      }
      // More than the cap without the empty line is always "too big".
      if (text.length > cap && whole.kind === "more") assert.fail("held more than the cap");
    }));
  });

  test("reusable() (auth_http_keepalive) is the same however the answer is split", () => {
    const framing = fc.tuple(
      fc.constantFrom("HTTP/1.1 200 OK\r\n", "HTTP/1.1 204 No Content\r\n", "HTTP/1.0 200 OK\r\n", "HTTP/1.1 200"),
      fc.subarray(["Auth-Status: OK\r\n", "Content-Length: 0\r\n", "Content-Length: 3\r\n", "Connection: close\r\n", "Transfer-Encoding: chunked\r\n"]),
      fc.constantFrom("\r\n", "\r\nabc", "\r\nabcd", "\n"),
    ).map(([s, hs, end]) => s + hs.join("") + end);
    check(fc.property(framing, cuts, (text, at) => {
      const whole = new AuthResponseParser();
      whole.feed(binaryToBytes(text));
      const split = new AuthResponseParser();
      for (const c of splitAt(text, at)) split.feed(binaryToBytes(c));
      assert.equal(split.reusable(), whole.reusable());
      if (whole.reusable()) assert.ok(text.startsWith("HTTP/1.1 ") && !/close|chunked/.test(text));
    }));
  });

  test("a generated valid response gives back its values (last occurrence wins)", () => {
    const value = fc.stringMatching(/^[!-~]([ -~]{0,30}[!-~])?$/);
    check(fc.property(fc.option(value), fc.option(value), fc.option(fc.integer({ min: 1, max: 65535 })), fc.option(value), fc.boolean(), cuts, (server, user, port, pass, http500, at) => {
      let text = http500 ? "HTTP/1.0 500 Oops\r\n" : "HTTP/1.0 200 OK\r\n";
      text += "Auth-Status: OK\r\n";
      const want: Partial<AuthResponseHeaders> = { refusal: null, wait: false, server: null, port: null, user: null, pass: null };
      if (server !== null) text += `Auth-Server: decoy\r\nAuth-Server: ${server}\r\n`, want.server = server;
      if (port !== null) text += `Auth-Port: ${port}\r\n`, want.port = String(port);
      if (user !== null) text += `Auth-User: ${user}\r\n`, want.user = user;
      if (pass !== null) text += `Auth-Pass: ${pass}\r\n`, want.pass = pass;
      text += "\r\n";
      const r = feedAll(splitAt(text, at));
      assert.equal(r.kind, "done");
      if (r.kind === "done") {
        for (const [k, v] of Object.entries(want)) assert.deepEqual(r.headers[k as keyof AuthResponseHeaders], v, k);
      }
    }));
  });

  test("an endless header block is refused once it passes the cap", () => {
    check(fc.property(fc.integer({ min: 1, max: 40 }), (n) => {
      const p = new AuthResponseParser();
      const line = binaryToBytes("X-Filler: " + "y".repeat(500) + "\r\n");
      let r: ParseResult = p.feed(binaryToBytes("HTTP/1.0 200 OK\r\n"));
      for (let i = 0; i < n + 16 && r.kind === "more"; i++) r = p.feed(line);
      assert.deepEqual(r, { kind: "error", reason: "too-big" });
    }), 20);
  });
});

// ---- PROXY protocol ------------------------------------------------------------

function readAll(chunks: Uint8Array[]): { r: ProxyReadResult; rest: Uint8Array } {
  const reader = new ProxyHeaderReader();
  let consumedChunks = 0;
  for (const c of chunks) {
    consumedChunks++;
    const r = reader.push(c);
    if (r.kind === "more") continue;
    // What follows the header: the rest of this chunk, then the later chunks.
    const rest = r.kind === "done" ? concatBytes([r.rest, ...chunks.slice(consumedChunks)]) : new Uint8Array(0);
    return { r: r.kind === "done" ? { ...r, rest: new Uint8Array(0) } : r, rest };
  }
  return { r: { kind: "more" }, rest: new Uint8Array(0) };
}

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join("."));
const addr4: fc.Arbitrary<SockAddr> = fc.tuple(ipv4, fc.integer({ min: 0, max: 65535 })).map(([address, port]) => ({ family: "ipv4" as const, address, port }));
const addr6: fc.Arbitrary<SockAddr> = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 65535 })).map(([address, port]) => ({ family: "ipv6" as const, address, port }));

describe("PROXY protocol reader, properties", () => {
  test("arbitrary bytes: never throws, same result whole / split, never past its 4096-byte cap", () => {
    const prefix = fc.constantFrom("", "PROXY ", "PROXY TCP4 ", "PROXY UNKNOWN", "\r\n\r\n\0\r\nQUIT\n", "\r\n\r\n\0\r\nQUIT\n\x21\x11");
    check(fc.property(prefix, binary(200), cuts, (p, tail, at) => {
      const text = p + tail;
      const whole = readAll([binaryToBytes(text)]);
      const split = readAll(splitAt(text, at).map(binaryToBytes));
      if (whole.r.kind === "error" && split.r.kind === "error") {
        // "broken header" shows the bytes received so far (as nginx shows its
        // read buffer), so a split shows a prefix of what the whole shows.
        assert.ok(whole.r.log.startsWith(split.r.log.replace(/"$/, "")), `${whole.r.log} / ${split.r.log}`);
      } else assert.deepEqual(split.r, whole.r);
      assert.deepEqual(split.rest, whole.rest);
      if (whole.r.kind === "done") assert.ok(text.length - whole.rest.length <= PROXY_HEADER_MAX);
    }));
  });

  test("a header that never ends is refused at the cap", () => {
    check(fc.property(fc.constantFrom("PROXY UNKNOWN ", "\r\n\r\n\0\r\nQUIT\n\x21\x11\x0f\xff"), (p) => {
      const reader = new ProxyHeaderReader();
      let r = reader.push(binaryToBytes(p));
      for (let i = 0; i < 100 && r.kind === "more"; i++) r = reader.push(new Uint8Array(1000).fill(0x41));
      assert.equal(r.kind, "error");
    }), 4);
  });

  test("generated v1 and v2 headers (the writer's) read back with the bytes that follow", () => {
    check(fc.property(fc.oneof(fc.tuple(addr4, addr4), fc.tuple(addr6, addr6)), fc.boolean(), binary(100), cuts, ([src, dst], v2, after, at) => {
      const header = v2 ? proxyV2(src, dst, null) : proxyV1(src, dst);
      const text = bytesToBinary(header) + after;
      const { r, rest } = readAll(splitAt(text, at).map(binaryToBytes));
      assert.equal(r.kind, "done");
      if (r.kind !== "done") return;
      const s = src as { address: string; port: number }, d = dst as { address: string; port: number };
      const norm = (a: string) => (a.includes(":") ? canonical6(a) : a);
      assert.deepEqual(
        r.header && { ...r.header, srcAddr: norm(r.header.srcAddr), dstAddr: norm(r.header.dstAddr) },
        { srcAddr: norm(s.address), srcPort: s.port, dstAddr: norm(d.address), dstPort: d.port },
      );
      assert.equal(bytesToBinary(rest), after);
    }));
  });
});

/** IPv6 text -> 8 full groups, for comparing different spellings. */
function canonical6(a: string): string {
  let [head, tail] = a.includes("::") ? a.split("::") : [a, null];
  const parse = (s: string) => {
    const groups: string[] = [];
    for (const g of s === "" ? [] : s.split(":")) {
      if (g.includes(".")) {
        const o = g.split(".").map(Number);
        groups.push(((o[0] << 8) | o[1]).toString(16), ((o[2] << 8) | o[3]).toString(16));
      } else groups.push(parseInt(g, 16).toString(16));
    }
    return groups;
  };
  const h = parse(head);
  const t = tail === null ? [] : parse(tail);
  head = "";
  return [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].join(":");
}

// ---- DNS ---------------------------------------------------------------------------

/** A response to `qname`/`qtype` with the given answer records (uncompressed, or with pointers to the question). */
function response(id: number, qname: string, qtype: number, rcode: number, answers: { name: string | 0; type: number; ttl: number; data: Uint8Array }[]): Uint8Array {
  const q = encodeQuery(id, qname, qtype);
  const parts: Uint8Array[] = [q];
  for (const a of answers) {
    const owner = a.name === 0 ? Uint8Array.of(0xc0, 12) : encodeName(a.name);
    const fixed = new Uint8Array(10);
    const v = new DataView(fixed.buffer);
    v.setUint16(0, a.type);
    v.setUint16(2, CLASS_IN);
    v.setUint32(4, a.ttl);
    v.setUint16(8, a.data.length);
    parts.push(owner, fixed, a.data);
  }
  const out = concatBytes(parts);
  const v = new DataView(out.buffer);
  v.setUint16(2, 0x8180 | rcode);
  v.setUint16(6, answers.length);
  return out;
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
const dnsName = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join("."));

describe("DNS message decoder, properties", () => {
  test("arbitrary bytes: only DnsFormatError, never another exception", () => {
    const withHeader = fc.tuple(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ maxLength: 300 }))
      .map(([h, b]) => {
        h[4] = 0, h[5] = 1; // one question, so the decoder goes on to the answers
        return concatBytes([h, b]);
      });
    check(fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), withHeader), fc.string({ maxLength: 30 }), (bytes, qname) => {
      try {
        const m = decodeMessage(bytes);
        interpretAnswer(m, qname, TYPE_PTR);
        interpretAnswer(m, m.question?.name ?? qname, TYPE_A);
      } catch (e) {
        assert.ok(e instanceof DnsFormatError, `${(e as Error).name}: ${(e as Error).message}`);
      }
    }), 400);
  });

  test("compression pointers cannot loop: a self- or forward-pointing name is an error", () => {
    check(fc.property(fc.integer({ min: 12, max: 0x3fff }), (target) => {
      const h = new Uint8Array(12);
      h[5] = 1;
      const msg = concatBytes([h, Uint8Array.of(0xc0 | (target >> 8), target & 0xff, 0, 1, 0, 1)]);
      assert.throws(() => decodeMessage(msg), DnsFormatError);
    }), 50);
  });

  test("generated responses decode to their records; CNAME chains are followed", () => {
    check(fc.property(dnsName, dnsName, fc.array(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), { minLength: 1, maxLength: 4 }), fc.nat(100000), fc.boolean(), (qname, alias, ips, ttl, viaCname) => {
      const a = ips.map((ip) => ({ name: viaCname ? alias : 0 as const, type: TYPE_A, ttl, data: Uint8Array.from(ip) }));
      const answers = viaCname ? [{ name: 0 as const, type: TYPE_CNAME, ttl: ttl + 5, data: encodeName(alias) }, ...a] : a;
      const m = decodeMessage(response(7, qname, TYPE_A, 0, answers));
      assert.equal(m.header.id, 7);
      assert.equal(m.question?.name, qname);
      const ans = interpretAnswer(m, qname, TYPE_A);
      assert.deepEqual(ans, { kind: "records", values: ips.map((ip) => ip.join(".")), ttl });
    }));
    check(fc.property(dnsName, fc.uint8Array({ minLength: 16, maxLength: 16 }), (qname, ip) => {
      const m = decodeMessage(response(1, qname, TYPE_AAAA, 0, [{ name: 0, type: TYPE_AAAA, ttl: 60, data: ip }]));
      const ans = interpretAnswer(m, qname, TYPE_AAAA);
      assert.equal(ans.kind, "records");
    }), 50);
  });
});
