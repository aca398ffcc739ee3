import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  BROKEN_HEADER_LOG_MAX,
  PROXY_HEADER_MAX,
  type ProxyHeader,
  ProxyHeaderReader,
  type ProxyReadResult,
} from "../../lib/proxy_protocol/reader.ts";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const cat = (...parts: (Uint8Array | number[])[]) =>
  Uint8Array.from(parts.flatMap((p) => Array.from(p)));
const read = (input: Uint8Array) => new ProxyHeaderReader().push(input);

// deno-fmt-ignore
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** A TLS ClientHello's first bytes and an IMAP command: what follows a header. */
// deno-fmt-ignore
const CLIENT_HELLO = [0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03];
const IMAP_LOGIN = bytes("a1 LOGIN user pass\r\n");

function done(header: ProxyHeader | null, rest: Uint8Array | number[]): ProxyReadResult {
  return { kind: "done", header, rest: Uint8Array.from(rest) };
}

/** Push `input` in pieces cut at `cuts`; the final result and every earlier one. */
function pushSplit(
  input: Uint8Array,
  cuts: number[],
): { results: ProxyReadResult[]; rest: Uint8Array } {
  const reader = new ProxyHeaderReader();
  const results: ProxyReadResult[] = [];
  let from = 0;
  for (const to of [...cuts, input.length]) {
    const r = reader.push(input.subarray(from, to));
    results.push(r);
    from = to;
    if (r.kind !== "more") break;
  }
  const last = results[results.length - 1];
  // The bytes the reader never saw belong to the next layer, after `rest`.
  const rest = last.kind === "done" ? cat(last.rest, input.subarray(from)) : new Uint8Array(0);
  return { results, rest };
}

/** A valid header + tail gives the same header and the same following bytes at every split. */
function assertSameAtEverySplit(
  input: Uint8Array,
  headerLen: number,
  header: ProxyHeader | null,
): void {
  const whole = read(input);
  assert.deepEqual(whole, done(header, input.subarray(headerLen)));
  for (let k = 0; k <= input.length; k++) {
    const { results, rest } = pushSplit(input, [k]);
    const last = results[results.length - 1];
    assert.equal(last.kind, "done", `split at ${k}`);
    if (last.kind !== "done") return;
    assert.deepEqual(last.header, header, `split at ${k}`);
    assert.deepEqual(rest, input.subarray(headerLen), `split at ${k}`);
    if (k < headerLen) {
      assert.equal(results[0].kind, "more", `a valid beginning of ${k} bytes is awaited`);
    } else assert.equal(results[0].kind, "done", `${k} bytes hold the whole header`);
  }
  // One byte at a time: "more" until the header's last byte.
  const reader = new ProxyHeaderReader();
  for (let i = 0; i < headerLen - 1; i++) {
    assert.deepEqual(reader.push(input.subarray(i, i + 1)), { kind: "more" }, `byte ${i}`);
  }
  assert.deepEqual(
    reader.push(input.subarray(headerLen - 1)),
    done(header, input.subarray(headerLen)),
  );
}

describe("PROXY v1 (tls_and_proxy_protocol.md §6)", () => {
  const line = "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n";
  const hdr = { srcAddr: "192.0.2.1", srcPort: 123, dstAddr: "192.0.2.2", dstPort: 5678 };

  test("the mail_proxy_protocol.t header, then SMTP", () => {
    assert.deepEqual(
      read(bytes(line + "EHLO example.com\r\n")),
      done(hdr, bytes("EHLO example.com\r\n")),
    );
  });

  test("consumes exactly the header: a ClientHello or an IMAP command comes back untouched", () => {
    assert.deepEqual(read(cat(bytes(line), CLIENT_HELLO)), done(hdr, CLIENT_HELLO));
    assert.deepEqual(read(cat(bytes(line), IMAP_LOGIN)), done(hdr, IMAP_LOGIN));
    assert.deepEqual(read(bytes(line)), done(hdr, []));
  });

  test("rest is a copy: the caller may reuse its read buffer", () => {
    const chunk = cat(bytes(line), IMAP_LOGIN);
    const r = read(chunk);
    chunk.fill(0);
    assert.deepEqual(r, done(hdr, IMAP_LOGIN));
  });

  test("same result split at every byte boundary", () => {
    assertSameAtEverySplit(cat(bytes(line), IMAP_LOGIN), line.length, hdr);
    const unknown = "PROXY UNKNOWN ff::1 ff::2 1 2\r\n";
    assertSameAtEverySplit(cat(bytes(unknown), CLIENT_HELLO), unknown.length, null);
  });

  test("TCP6, upper-case hex, ports 0 and 65535", () => {
    assert.deepEqual(
      read(bytes("PROXY TCP6 2001:DB8::1 ::ffff:10.0.0.1 0 65535\r\n")),
      done({ srcAddr: "2001:DB8::1", srcPort: 0, dstAddr: "::ffff:10.0.0.1", dstPort: 65535 }, []),
    );
  });

  test("addresses are not checked against TCP4/TCP6 nor parsed; leading zeros in ports (ngx_atoi)", () => {
    assert.deepEqual(
      read(bytes("PROXY TCP4 ::1 1.2.3 00080 7\r\n")),
      done({ srcAddr: "::1", srcPort: 80, dstAddr: "1.2.3", dstPort: 7 }, []),
    );
  });

  test("UNKNOWN: everything up to the first CR LF is skipped, no addresses", () => {
    assert.deepEqual(read(bytes("PROXY UNKNOWN\r\nA")), done(null, bytes("A")));
    assert.deepEqual(
      read(bytes("PROXY UNKNOWN TCP4 x\x01\ry \r\nA\r\n")),
      done(null, bytes("A\r\n")),
    );
    assert.deepEqual(read(bytes("PROXY UNKNOWNxyz\r\n")), done(null, []));
    // A lone LF does not end it either.
    assert.deepEqual(read(bytes("PROXY UNKNOWN a\nb\r\nA")), done(null, bytes("A")));
  });

  test("header of exactly PROXY_HEADER_MAX bytes is read; one byte more is a broken header", () => {
    const head = "PROXY UNKNOWN ";
    const exact = head + "a".repeat(PROXY_HEADER_MAX - head.length - 2) + "\r\n";
    assert.equal(exact.length, PROXY_HEADER_MAX);
    assert.deepEqual(read(bytes(exact + "X")), done(null, bytes("X")));
    const over = head + "a".repeat(PROXY_HEADER_MAX - head.length - 1) + "\r\n";
    const shown = (head + "a".repeat(BROKEN_HEADER_LOG_MAX)).slice(0, BROKEN_HEADER_LOG_MAX);
    assert.deepEqual(read(bytes(over)), { kind: "error", log: `broken header: "${shown}"` });
  });

  test("over the limit in small pieces: the error comes at byte 4096, without waiting for more", () => {
    const reader = new ProxyHeaderReader();
    const piece = bytes("PROXY UNKNOWN ".padEnd(64, "z"));
    let r: ProxyReadResult = { kind: "more" };
    let pushed = 0;
    for (let n = 0; n < PROXY_HEADER_MAX / piece.length && r.kind === "more"; n++) {
      r = reader.push(piece);
      pushed += piece.length;
    }
    assert.equal(pushed, PROXY_HEADER_MAX);
    assert.equal(r.kind, "error");
  });
});

describe("PROXY v1 errors: broken header, nginx's log text", () => {
  const cases: [string, string, string][] = [
    ["not a PROXY header", "GET / HTTP/1.0\r\nHost: x\r\n", "GET / HTTP/1.0"],
    ["lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "proxy TCP4 1.2.3.4 5.6.7.8 1 2"],
    [
      "two spaces after PROXY",
      "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
      "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2",
    ],
    ["TCP5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2"],
    ["tcp4", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2"],
    ["TCP4 without a space", "PROXY TCP4\r\n", "PROXY TCP4"],
    ["UNKNOW", "PROXY UNKNOW\r\n", "PROXY UNKNOW"],
    ["empty address", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2"],
    ["empty first address", "PROXY TCP4  1.2.3.4 1 2\r\n", "PROXY TCP4  1.2.3.4 1 2"],
    ["address character", "PROXY TCP4 1.2.3.x 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.x 5.6.7.8 1 2"],
    ["bracketed IPv6", "PROXY TCP6 [::1] ::1 1 2\r\n", "PROXY TCP6 [::1] ::1 1 2"],
    ["port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2"],
    ["port with a sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2"],
    ["empty port", "PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8  2"],
    ["empty last port", "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 "],
    [
      "space after the last port",
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
    ],
    ["LF without CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nEHLO\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2"],
    ["CR without LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rEHLO\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2"],
    ["missing ports", "PROXY TCP4 1.2.3.4 5.6.7.8\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8"],
    ["an IMAP command", "a1 LOGIN user pass\r\n", "a1 LOGIN user pass"],
    ["CRLF CRLF CR: not the v2 signature", "\r\n\r\n\r", ""],
    ["control bytes are escaped", 'PRO\x00XY\x1b "q" \\\r\n', "PRO\\x00XY\\x1b \\x22q\\x22 \\x5c"],
  ];
  for (const [name, input, shown] of cases) {
    test(name, () => {
      assert.deepEqual(read(bytes(input)), { kind: "error", log: `broken header: "${shown}"` });
    });
  }

  test("a TLS ClientHello without a header: non-printable bytes escaped, up to the first CR", () => {
    // deno-fmt-ignore
    const hello = [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0xff, 0x0d, 0x41];
    assert.deepEqual(read(Uint8Array.from(hello)), {
      kind: "error",
      log: 'broken header: "\\x16\\x03\\x01\\x00\\x05\\x01\\xff"',
    });
  });

  test(`the shown data is capped at ${BROKEN_HEADER_LOG_MAX} bytes`, () => {
    const r = read(bytes("x".repeat(500)));
    assert.deepEqual(r, {
      kind: "error",
      log: `broken header: "${"x".repeat(BROKEN_HEADER_LOG_MAX)}"`,
    });
  });

  test("garbage fails at every split at its first wrong byte; the shown text is what had arrived", () => {
    for (const [, input, shown] of cases) {
      const data = bytes(input);
      for (let k = 0; k <= data.length; k++) {
        const { results } = pushSplit(data, [k]);
        const last = results[results.length - 1];
        assert.equal(last.kind, "error", `${JSON.stringify(input)} split at ${k}`);
        if (last.kind !== "error") return;
        const m = /^broken header: "(.*)"$/.exec(last.log);
        assert.ok(m, last.log);
        assert.ok(shown.startsWith(m[1]), `${JSON.stringify(input)} split at ${k}: ${last.log}`);
      }
    }
  });

  test("push after the end is a programming error", () => {
    const r = new ProxyHeaderReader();
    r.push(bytes("PROXY UNKNOWN\r\n"));
    assert.throws(() => r.push(bytes("x")), /after the header/);
    const e = new ProxyHeaderReader();
    e.push(bytes("x"));
    assert.throws(() => e.push(bytes("x")));
  });
});

/** v2 header: signature, version/command, family/transport, length, then `body`. */
function v2(
  verCmd: number,
  famTransport: number,
  body: number[],
  length = body.length,
): Uint8Array {
  return Uint8Array.from([...SIGNATURE, verCmd, famTransport, length >> 8, length & 0xff, ...body]);
}

describe("PROXY v2 (tls_and_proxy_protocol.md §6)", () => {
  // deno-fmt-ignore
  const inetBody = [
    192, 0, 2, 1, // source 192.0.2.1
    192, 0, 2, 2, // destination 192.0.2.2
    0x00, 0x7b, // source port 123
    0x16, 0x2e, // destination port 5678
  ];
  const inetHdr = { srcAddr: "192.0.2.1", srcPort: 123, dstAddr: "192.0.2.2", dstPort: 5678 };

  test("PROXY, INET, STREAM", () => {
    const h = v2(0x21, 0x11, inetBody);
    assert.equal(h.length, 28);
    assert.deepEqual(read(cat(h, CLIENT_HELLO)), done(inetHdr, CLIENT_HELLO));
    assertSameAtEverySplit(cat(h, IMAP_LOGIN), h.length, inetHdr);
  });

  test("PROXY, INET6, STREAM, with TLVs consumed and not interpreted", () => {
    // deno-fmt-ignore
    const body = [
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source 2001:db8::1
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1, // destination ::ffff:127.0.0.1
      0x9c, 0x40, // source port 40000
      0x03, 0xe1, // destination port 993
      0x02, 0x00, 0x03, 0x61, 0x62, 0x63, // AUTHORITY "abc"
      0x04, 0x00, 0x02, 0x00, 0x00, // NOOP
      0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, // CRC32C (wrong; not checked, as in nginx)
    ];
    const h = v2(0x21, 0x21, body);
    const hdr = {
      srcAddr: "2001:db8::1",
      srcPort: 40000,
      dstAddr: "::ffff:127.0.0.1",
      dstPort: 993,
    };
    assertSameAtEverySplit(cat(h, CLIENT_HELLO), h.length, hdr);
  });

  test("no address information: LOCAL, other commands, DGRAM, UNSPEC, UNIX", () => {
    const unixBody = new Array(216).fill(0x2f); // two 108-byte paths
    const cases: [string, Uint8Array][] = [
      ["LOCAL, empty", v2(0x20, 0x00, [])],
      ["LOCAL with INET addresses", v2(0x20, 0x11, inetBody)],
      ["command 0xF", v2(0x2f, 0x11, inetBody)],
      ["INET DGRAM", v2(0x21, 0x12, inetBody)],
      ["UNSPEC STREAM", v2(0x21, 0x01, [1, 2, 3])],
      ["UNIX STREAM", v2(0x21, 0x31, unixBody)],
      ["family 4", v2(0x21, 0x41, inetBody)],
    ];
    for (const [name, h] of cases) {
      assert.deepEqual(read(cat(h, IMAP_LOGIN)), done(null, IMAP_LOGIN), name);
    }
    assertSameAtEverySplit(cat(cases[0][1], IMAP_LOGIN), 16, null);
    assertSameAtEverySplit(cat(cases[5][1], IMAP_LOGIN), 16 + 216, null);
  });

  test("version other than 2", () => {
    assert.deepEqual(read(v2(0x11, 0x11, inetBody)), {
      kind: "error",
      log: "unknown PROXY protocol version: 1",
    });
    assert.deepEqual(read(v2(0xf1, 0x11, inetBody)), {
      kind: "error",
      log: "unknown PROXY protocol version: 15",
    });
    // Known as soon as the 13th byte is in, without waiting for the rest.
    assert.deepEqual(
      read(Uint8Array.from([...SIGNATURE, 0x31])),
      { kind: "error", log: "unknown PROXY protocol version: 3" },
    );
  });

  test("length over the 4096-byte limit: header is too large", () => {
    const max = PROXY_HEADER_MAX - 16;
    const tooLarge = { kind: "error", log: "header is too large" };
    assert.deepEqual(read(v2(0x21, 0x11, [], max + 1)), tooLarge);
    assert.deepEqual(read(v2(0x21, 0x11, [], 0xffff)), tooLarge);
    // The largest allowed: addresses and a NOOP TLV filling the rest.
    const noop = max - 12 - 3;
    const full = v2(0x21, 0x11, [
      ...inetBody,
      0x04,
      noop >> 8,
      noop & 0xff,
      ...new Array(noop).fill(0),
    ]);
    assert.equal(full.length, PROXY_HEADER_MAX);
    assert.deepEqual(read(cat(full, [0x41])), done(inetHdr, [0x41]));
  });

  test("addresses shorter than the family needs: broken header", () => {
    const broken = { kind: "error", log: 'broken header: ""' };
    assert.deepEqual(read(v2(0x21, 0x11, inetBody.slice(0, 11))), broken);
    assert.deepEqual(read(v2(0x21, 0x21, inetBody)), broken);
  });

  test("a signature gone wrong is a broken header (judged as v1, as nginx does)", () => {
    assert.deepEqual(read(Uint8Array.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01])), {
      kind: "error",
      log: 'broken header: ""',
    });
    assert.deepEqual(read(bytes("\r\n")), { kind: "more" }); // still a valid v2 beginning
    assert.deepEqual(read(bytes("\r\r")), { kind: "error", log: 'broken header: ""' });
  });

  test("v2 errors are the same at every split", () => {
    const inputs = [v2(0x11, 0x11, inetBody), v2(0x21, 0x11, [], 5000), v2(0x21, 0x21, inetBody)];
    for (const input of inputs) {
      const want = read(input);
      assert.equal(want.kind, "error");
      for (let k = 0; k <= input.length; k++) {
        const { results } = pushSplit(input, [k]);
        assert.deepEqual(results[results.length - 1], want, `split at ${k}`);
      }
    }
  });
});
