import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CLASS_IN,
  decodeMessage,
  decodeQuestion,
  DnsFormatError,
  type DnsMessage,
  encodeName,
  encodeQuery,
  interpretAnswer,
  readName,
  TYPE_A,
  TYPE_AAAA,
  TYPE_CNAME,
  TYPE_DNAME,
  TYPE_PTR,
} from "../../lib/resolver/dns_message.ts";

// Packets are written by hand: hex for fixed fields, lbl() for names.

/** "a.b" -> [1,'a',1,'b',0] (no compression). */
function lbl(name: string, terminate = true): number[] {
  const out: number[] = [];
  for (const l of name.split(".")) out.push(l.length, ...Array.from(l, (c) => c.charCodeAt(0)));
  if (terminate) out.push(0);
  return out;
}

function hex(s: string): number[] {
  return s.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16));
}

function pkt(...parts: number[][]): Uint8Array {
  return new Uint8Array(parts.flat());
}

const Q_PTR = [...lbl("1.2.0.192.in-addr.arpa"), ...hex("00 0c 00 01")]; // 24 + 4 bytes at offset 12
const HDR_1_ANSWER = hex("ab cd 81 80 00 01 00 01 00 00 00 00");
const TTL_3600 = hex("00 00 0e 10");

/** PTR answer, owner compressed to the question, target written in full. */
const COMPRESSED_PTR = pkt(
  HDR_1_ANSWER,
  Q_PTR,
  hex("c0 0c 00 0c 00 01"),
  TTL_3600,
  hex("00 0f"),
  lbl("a.example.net"),
);

/** The same answer with no compression at all (nginx's "uncompressed answer" case). */
const UNCOMPRESSED_PTR = pkt(
  HDR_1_ANSWER,
  Q_PTR,
  lbl("1.2.0.192.in-addr.arpa"),
  hex("00 0c 00 01"),
  TTL_3600,
  hex("00 0f"),
  lbl("a.example.net"),
);

describe("encodeQuery / encodeName", () => {
  test("a query is header, one question, RD set", () => {
    const got = encodeQuery(0x1234, "a.example.net", TYPE_A);
    const want = pkt(
      hex("12 34 01 00 00 01 00 00 00 00 00 00"),
      lbl("a.example.net"),
      hex("00 01 00 01"),
    );
    assert.deepEqual(got, want);
  });

  test("trailing dot and root", () => {
    assert.deepEqual(encodeName("a.example.net."), new Uint8Array(lbl("a.example.net")));
    assert.deepEqual(encodeName(""), new Uint8Array([0]));
    assert.deepEqual(encodeName("."), new Uint8Array([0]));
  });

  test("ip6.arpa name with 34 labels fits", () => {
    const name = "1." + "0.".repeat(31) + "ip6.arpa";
    assert.equal(encodeName(name).length, 32 * 2 + 4 + 5 + 1);
  });

  for (
    const [why, name] of [
      ["empty label", "a..b"],
      ["leading dot", ".a"],
      ["64-byte label", "x".repeat(64) + ".net"],
      ["name over 255 bytes", Array(64).fill("abc").join(".")],
      ["space", "a b.net"],
      ["backslash", "a\\.net"],
      ["non-ASCII", "é.net"],
    ]
  ) {
    test(`rejects ${why}`, () => {
      assert.throws(() => encodeName(name), DnsFormatError);
    });
  }

  test("63-byte label and 253-character name are accepted", () => {
    assert.equal(encodeName("x".repeat(63)).length, 65);
    const n = Array(63).fill("abc").join(".") + ".a"; // 251 + 2 = 253 characters
    assert.equal(encodeName(n).length, 255);
  });
});

describe("decodeMessage", () => {
  test("compressed PTR answer", () => {
    const m = decodeMessage(COMPRESSED_PTR);
    assert.equal(m.header.id, 0xabcd);
    assert.equal(m.header.qr, true);
    assert.equal(m.header.tc, false);
    assert.equal(m.header.rcode, 0);
    assert.deepEqual(m.question, { name: "1.2.0.192.in-addr.arpa", type: TYPE_PTR, cls: CLASS_IN });
    assert.deepEqual(m.answers, [{
      name: "1.2.0.192.in-addr.arpa",
      type: TYPE_PTR,
      cls: CLASS_IN,
      ttl: 3600,
      data: "a.example.net",
      rdlength: 15,
    }]);
  });

  test("uncompressed PTR answer decodes the same", () => {
    assert.deepEqual(
      decodeMessage(UNCOMPRESSED_PTR).answers,
      decodeMessage(COMPRESSED_PTR).answers,
    );
  });

  test("compression inside RDATA and for owners of later records", () => {
    // answer 1 (offset 40): PTR a.example.net; RDATA at 52, "example" label at 54.
    // answer 2: owner -> 12, RDATA "b" + pointer to 54.
    const p = pkt(
      hex("00 01 81 80 00 01 00 02 00 00 00 00"),
      Q_PTR,
      hex("c0 0c 00 0c 00 01"),
      TTL_3600,
      hex("00 0f"),
      lbl("a.example.net"),
      hex("c0 0c 00 0c 00 01"),
      TTL_3600,
      hex("00 04"),
      lbl("b", false),
      hex("c0 36"),
    );
    const m = decodeMessage(p);
    assert.deepEqual(m.answers.map((a) => a.data), ["a.example.net", "b.example.net"]);
  });

  test("A and AAAA RDATA", () => {
    const p = pkt(
      hex("00 02 81 80 00 01 00 02 00 00 00 00"),
      lbl("h.example"),
      hex("00 01 00 01"),
      hex("c0 0c 00 01 00 01"),
      TTL_3600,
      hex("00 04 c0 00 02 07"),
      hex("c0 0c 00 1c 00 01"),
      TTL_3600,
      hex("00 10 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 05"),
    );
    assert.deepEqual(decodeMessage(p).answers.map((a) => a.data), [
      "192.0.2.7",
      "2001:db8:0:0:0:0:0:5",
    ]);
  });

  test("TTL with the top bit set is 0; huge TTLs are capped at a week", () => {
    const big = pkt(
      HDR_1_ANSWER,
      Q_PTR,
      hex("c0 0c 00 0c 00 01 80 00 00 01 00 0f"),
      lbl("a.example.net"),
    );
    assert.equal(decodeMessage(big).answers[0].ttl, 0);
    const week = pkt(
      HDR_1_ANSWER,
      Q_PTR,
      hex("c0 0c 00 0c 00 01 7f ff ff ff 00 0f"),
      lbl("a.example.net"),
    );
    assert.equal(decodeMessage(week).answers[0].ttl, 604800);
  });

  test("odd label bytes are escaped, so they never look like name syntax", () => {
    const p = pkt(hex("00 03 81 80 00 00 00 00 00 00 00 00"), [
      3,
      0x61,
      0x2e,
      0x62,
      2,
      0x20,
      0x5c,
      0,
    ]);
    assert.equal(readName(p, 12).name, "a\\046b.\\032\\092");
  });

  test("header flags: TC and rcode", () => {
    const p = pkt(hex("00 04 83 83 00 01 00 00 00 00 00 00"), Q_PTR);
    const m = decodeMessage(p);
    assert.equal(m.header.tc, true);
    assert.equal(m.header.rcode, 3);
    assert.deepEqual(m.answers, []);
  });

  test("DNAME RDATA is carried undecoded", () => {
    const p = pkt(
      HDR_1_ANSWER,
      Q_PTR,
      hex("c0 0c 00 27 00 01"),
      TTL_3600,
      hex("00 0f"),
      lbl("a.example.net"),
    );
    const m = decodeMessage(p);
    assert.equal(m.answers[0].type, TYPE_DNAME);
    assert.equal(m.answers[0].data, null);
  });

  test("authority and additional sections are not read", () => {
    const p = pkt(hex("00 05 81 80 00 01 00 00 00 01 00 00"), Q_PTR, hex("ff ff ff"));
    assert.deepEqual(decodeMessage(p).answers, []);
  });

  const rejected: [string, Uint8Array][] = [
    [
      "zero-length PTR RDATA",
      pkt(HDR_1_ANSWER, Q_PTR, hex("c0 0c 00 0c 00 01"), TTL_3600, hex("00 00")),
    ],
    [
      "PTR RDATA longer than its name",
      pkt(
        HDR_1_ANSWER,
        Q_PTR,
        hex("c0 0c 00 0c 00 01"),
        TTL_3600,
        hex("00 10"),
        lbl("a.example.net"),
        [0],
      ),
    ],
    [
      "PTR RDATA shorter than its name",
      pkt(
        HDR_1_ANSWER,
        Q_PTR,
        hex("c0 0c 00 0c 00 01"),
        TTL_3600,
        hex("00 05"),
        lbl("a.example.net"),
      ),
    ],
    [
      "A RDATA of 3 bytes",
      pkt(HDR_1_ANSWER, Q_PTR, hex("c0 0c 00 01 00 01"), TTL_3600, hex("00 03 01 02 03")),
    ],
    [
      "AAAA RDATA of 4 bytes",
      pkt(HDR_1_ANSWER, Q_PTR, hex("c0 0c 00 1c 00 01"), TTL_3600, hex("00 04 01 02 03 04")),
    ],
    [
      "pointer to itself",
      pkt(HDR_1_ANSWER, Q_PTR, hex("c0 28 00 0c 00 01"), TTL_3600, hex("00 00")),
    ],
    [
      "pointer forwards",
      pkt(HDR_1_ANSWER, Q_PTR, hex("c0 30 00 0c 00 01"), TTL_3600, hex("00 00")),
    ],
    [
      // owner -> 52, where the RDATA holds a perfectly good name: still not backwards
      "pointer forwards to a valid name",
      pkt(
        HDR_1_ANSWER,
        Q_PTR,
        hex("c0 34 00 0c 00 01"),
        TTL_3600,
        hex("00 0f"),
        lbl("a.example.net"),
      ),
    ],
    [
      // owner at 40 = "x" + pointer to 40: reading from 40 again
      "pointer back to the start of its own name",
      pkt(HDR_1_ANSWER, Q_PTR, [1, 0x78], hex("c0 28 00 0c 00 01"), TTL_3600, hex("00 00")),
    ],
    [
      "question name that is a pointer to itself",
      pkt(hex("00 06 81 80 00 01 00 00 00 00 00 00"), hex("c0 0c 00 0c 00 01")),
    ],
    ["label type 0x40", pkt(hex("00 07 81 80 00 01 00 00 00 00 00 00"), hex("41 00 00 0c 00 01"))],
    [
      "name over 255 bytes",
      pkt(
        hex("00 08 81 80 00 01 00 00 00 00 00 00"),
        lbl(Array(64).fill("abc").join(".")),
        hex("00 0c 00 01"),
      ),
    ],
    ["two questions", pkt(hex("00 09 81 80 00 02 00 00 00 00 00 00"), Q_PTR, Q_PTR)],
    [
      "answer count beyond the data",
      pkt(
        hex("00 0a 81 80 00 01 00 02 00 00 00 00"),
        Q_PTR,
        Array.from(COMPRESSED_PTR.subarray(40)),
      ),
    ],
  ];
  for (const [why, p] of rejected) {
    test(`rejects ${why}`, () => {
      assert.throws(() => decodeMessage(p), DnsFormatError);
    });
  }

  test("every truncation of a valid answer is rejected", () => {
    for (const full of [COMPRESSED_PTR, UNCOMPRESSED_PTR]) {
      for (let n = 0; n < full.length; n++) {
        assert.throws(
          () => decodeMessage(full.subarray(0, n)),
          DnsFormatError,
          `prefix of ${n} bytes`,
        );
      }
      assert.doesNotThrow(() => decodeMessage(full));
    }
  });

  test("decodeQuestion reads only header and question", () => {
    // The broken answer does not stop matching the response to its query.
    const p = pkt(HDR_1_ANSWER, Q_PTR, hex("c0 0c 00 0c 00 01"), TTL_3600, hex("00 00"));
    const { header, question, next } = decodeQuestion(p);
    assert.equal(header.id, 0xabcd);
    assert.equal(question?.name, "1.2.0.192.in-addr.arpa");
    assert.equal(next, 40);
  });
});

describe("interpretAnswer", () => {
  const QN = "1.2.0.192.in-addr.arpa";
  function msg(rcode: number, answers: [string, number, string | null, number?][]): DnsMessage {
    return {
      header: { id: 1, qr: true, opcode: 0, tc: false, rcode, qdcount: 1, ancount: answers.length },
      question: { name: QN, type: TYPE_PTR, cls: CLASS_IN },
      answers: answers.map(([name, type, data, ttl]) => ({
        name,
        type,
        cls: CLASS_IN,
        ttl: ttl ?? 3600,
        data,
        rdlength: 0,
      })),
    };
  }

  test("PTR for the question name", () => {
    assert.deepEqual(interpretAnswer(msg(0, [[QN, TYPE_PTR, "a.example.net", 60]]), QN, TYPE_PTR), {
      kind: "records",
      values: ["a.example.net"],
      ttl: 60,
    });
  });

  test("owner names compare case-insensitively", () => {
    const m = msg(0, [[QN.toUpperCase(), TYPE_PTR, "a.example.net"]]);
    assert.equal(interpretAnswer(m, QN, TYPE_PTR).kind, "records");
  });

  test("CNAME then the PTR it points to; TTL is the chain's minimum", () => {
    const m = msg(0, [[QN, TYPE_CNAME, "1.1.2.0.192.in-addr.arpa", 30], [
      "1.1.2.0.192.in-addr.arpa",
      TYPE_PTR,
      "a.example.net",
      60,
    ]]);
    assert.deepEqual(interpretAnswer(m, QN, TYPE_PTR), {
      kind: "records",
      values: ["a.example.net"],
      ttl: 30,
    });
  });

  test("CNAME chain of three, records listed first", () => {
    const m = msg(0, [
      ["c3.example", TYPE_PTR, "a.example.net"],
      ["c2.example", TYPE_CNAME, "c3.example"],
      ["c1.example", TYPE_CNAME, "c2.example"],
      [QN, TYPE_CNAME, "c1.example"],
    ]);
    assert.deepEqual(interpretAnswer(m, QN, TYPE_PTR).kind, "records");
  });

  test("a lone CNAME asks to follow its target", () => {
    const m = msg(0, [[QN, TYPE_CNAME, "1.1.2.0.192.in-addr.arpa", 20]]);
    assert.deepEqual(interpretAnswer(m, QN, TYPE_PTR), {
      kind: "cname",
      target: "1.1.2.0.192.in-addr.arpa",
      ttl: 20,
    });
  });

  test("a PTR whose owner is not in the chain is not used", () => {
    const m = msg(0, [[QN, TYPE_CNAME, "x.example"], ["y.example", TYPE_PTR, "evil.example"]]);
    assert.deepEqual(interpretAnswer(m, QN, TYPE_PTR), {
      kind: "cname",
      target: "x.example",
      ttl: 3600,
    });
    assert.equal(
      interpretAnswer(msg(0, [["y.example", TYPE_PTR, "evil.example"]]), QN, TYPE_PTR).kind,
      "unusable",
    );
  });

  test("a CNAME loop is unusable", () => {
    const m = msg(0, [[QN, TYPE_CNAME, "x.example"], ["x.example", TYPE_CNAME, QN]]);
    assert.equal(interpretAnswer(m, QN, TYPE_PTR).kind, "unusable");
  });

  test("DNAME only is unusable", () => {
    assert.equal(interpretAnswer(msg(0, [[QN, TYPE_DNAME, null]]), QN, TYPE_PTR).kind, "unusable");
  });

  test("records of another type are not an answer", () => {
    assert.equal(
      interpretAnswer(msg(0, [[QN, TYPE_AAAA, "0:0:0:0:0:0:0:1"]]), QN, TYPE_A).kind,
      "unusable",
    );
  });

  test("empty answer, NXDOMAIN, other rcodes", () => {
    assert.deepEqual(interpretAnswer(msg(0, []), QN, TYPE_PTR), { kind: "nodata" });
    assert.deepEqual(interpretAnswer(msg(3, [[QN, TYPE_CNAME, "x.example"]]), QN, TYPE_PTR), {
      kind: "nxdomain",
    });
    assert.deepEqual(interpretAnswer(msg(2, []), QN, TYPE_PTR), { kind: "rcode", rcode: 2 });
    assert.deepEqual(interpretAnswer(msg(5, []), QN, TYPE_PTR), { kind: "rcode", rcode: 5 });
  });

  test("records in another class are ignored", () => {
    const m = msg(0, [[QN, TYPE_PTR, "a.example.net"]]);
    m.answers[0].cls = 3;
    assert.equal(interpretAnswer(m, QN, TYPE_PTR).kind, "unusable");
  });

  test("several records: all values, minimum TTL", () => {
    const m = msg(0, [["h.example", TYPE_A, "192.0.2.1", 50], [
      "h.example",
      TYPE_A,
      "192.0.2.2",
      40,
    ]]);
    assert.deepEqual(interpretAnswer(m, "H.example", TYPE_A), {
      kind: "records",
      values: ["192.0.2.1", "192.0.2.2"],
      ttl: 40,
    });
  });

  test("end to end from bytes", () => {
    assert.deepEqual(interpretAnswer(decodeMessage(UNCOMPRESSED_PTR), QN, TYPE_PTR), {
      kind: "records",
      values: ["a.example.net"],
      ttl: 3600,
    });
  });
});
