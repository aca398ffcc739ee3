// Property tests of the shared core pieces (issue #7): the bounded input
// buffer against a plain-array model, the backend reply reader under any
// chunking, and the SASL codecs (lenient base64 against Node's decoder,
// PLAIN / LOGIN / CRAM-MD5 / EXTERNAL payloads on arbitrary input).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import { LineBuffer } from "../../lib/core/line_buffer.ts";
import { ReplyReader } from "../../lib/core/reply_reader.ts";
import {
  decodeBase64,
  decodeCramMd5,
  decodeExternal,
  decodeLoginValue,
  decodePlain,
  encodeBase64,
  saslResponseOfLine,
} from "../../lib/core/sasl.ts";
import { binary, check, cuts, splitAt } from "../helpers/property.ts";

type Op = { op: "push"; data: Uint8Array } | { op: "consume"; n: number } | { op: "clear" } | { op: "take" };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 700 }).map((data) => ({ op: "push" as const, data })) },
  { weight: 3, arbitrary: fc.nat(800).map((n) => ({ op: "consume" as const, n })) },
  { weight: 1, arbitrary: fc.constant({ op: "clear" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "take" as const }) },
);

describe("core pieces, properties", () => {
  test("LineBuffer behaves like an array bounded by maxHeld, never holding more", () => {
    check(fc.property(fc.integer({ min: 1, max: 2000 }), fc.array(op, { maxLength: 60 }), (max, ops) => {
      const b = new LineBuffer(max, 16);
      let model: number[] = [];
      for (const o of ops) {
        switch (o.op) {
          case "push": {
            const fits = model.length + o.data.length <= max;
            assert.equal(b.push(o.data), fits);
            if (fits) model = model.concat(Array.from(o.data));
            break;
          }
          case "consume":
            b.consume(o.n);
            model = model.slice(Math.min(o.n, model.length));
            break;
          case "clear":
            b.clear();
            model = [];
            break;
          case "take":
            assert.deepEqual(Array.from(b.take()), model);
            model = [];
            break;
        }
        assert.ok(b.length <= max);
        assert.equal(b.length, model.length);
        assert.deepEqual(Array.from(b.view()), model);
        const target = model.length > 0 ? model[model.length >> 1] : 10;
        assert.equal(b.indexOf(target), model.indexOf(target));
      }
    }));
  });

  test("ReplyReader hands out the same lines however the bytes are split, within its bound", () => {
    const lineArb = fc.tuple(binary(60), fc.constantFrom("\r\n", "\n", "\r", "")).map(([t, e]) => t + e);
    check(fc.property(fc.array(lineArb, { maxLength: 20 }), fc.integer({ min: 8, max: 300 }), cuts, (lines, limit, at) => {
      const text = lines.join("");
      const read = (chunks: string[]) => {
        const r = new ReplyReader(limit);
        const out: string[] = [];
        outer: for (const c of chunks) {
          r.push(binaryToBytes(c));
          for (let i = 0; i < 1000; i++) {
            const l = r.nextLine();
            if (l.kind === "more") break;
            if (l.kind === "tooLong") {
              out.push("TOOLONG " + l.text);
              assert.ok(l.text.length < limit);
              break outer;
            }
            out.push(bytesToBinary(r.data().subarray(l.start, l.cr)));
            // One reply per line here, so the bound applies per line.
            r.endReply();
          }
        }
        return out;
      };
      const whole = read([text]);
      assert.deepEqual(read(splitAt(text, at)), whole);
      for (const l of whole) if (!l.startsWith("TOOLONG ")) assert.ok(l.length + 2 <= limit);
    }));
  });

  test("decodeBase64 agrees with Node's decoder on valid base64, never throws on anything", () => {
    check(fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, pad) => {
      let b64 = Buffer.from(bytes).toString("base64");
      if (!pad) b64 = b64.replace(/=+$/, "");
      assert.equal(decodeBase64(b64), bytesToBinary(bytes));
      assert.equal(encodeBase64(bytesToBinary(bytes)), Buffer.from(bytes).toString("base64"));
    }));
    check(fc.property(binary(200), (s) => {
      const r = decodeBase64(s);
      if (r !== null) {
        // Whatever was accepted is alphabet-only up to the first "=".
        const head = s.split("=")[0];
        assert.ok(/^[A-Za-z0-9+/]*$/.test(head), JSON.stringify(s));
        assert.equal(head.length % 4 === 1, false);
        assert.equal(r.length, Math.floor((head.length * 3) / 4));
      }
    }));
  });

  test("SASL payload decoders never throw and round-trip generated credentials", () => {
    check(fc.property(binary(120), (s) => {
      for (const f of [decodePlain, decodeCramMd5]) {
        const r = f(s);
        if (!r.ok) assert.match(r.log, /^client sent invalid /);
      }
      for (const f of [decodeLoginValue, decodeExternal]) {
        const r = f(s);
        if (!r.ok) assert.match(r.log, /^client sent invalid base64 encoding in AUTH /);
      }
      const w = saslResponseOfLine(s, 3);
      assert.ok(["cancel", "invalid", "value"].includes(w.kind));
    }));
    const noNul = binary(60).map((s) => s.replace(/\0/g, ""));
    check(fc.property(noNul, noNul, binary(60), (authz, user, pass) => {
      const r = decodePlain(encodeBase64(authz + "\0" + user + "\0" + pass));
      assert.deepEqual(r, { ok: true, user, pass });
    }));
    check(fc.property(binary(60).map((s) => s.replace(/ /g, "")), fc.stringMatching(/^[0-9a-f]{32}$/), (user, digest) => {
      assert.deepEqual(decodeCramMd5(encodeBase64(user + " " + digest)), { ok: true, user, pass: digest });
    }));
  });
});
