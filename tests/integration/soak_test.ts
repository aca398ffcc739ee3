// The short soak (issue #7): ~200 concurrent sessions for ~10 s per target
// (Deno, Bun, the compiled executable) through the real mailgate process,
// IMAP downloads and uploads, POP3 downloads and uploads, SMTP DATA, each
// with its own payload checked byte for byte (tools/soak.ts; `deno task
// soak` runs the long one). Nothing may be lost, truncated or crossed, no
// session may fail, fds must come back and RSS stays bounded.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { targets } from "../helpers/mailgate.ts";
import { Payload, PayloadCheck, type SoakOptions, soakTarget, table, verdict } from "../../tools/soak.ts";

const OPTIONS: Omit<SoakOptions, "targets"> = {
  sessions: 200,
  seconds: 10,
  protocols: ["imap", "pop3", "smtp"],
  maxPayload: 48 * 1024,
  transfers: 3,
  settleSeconds: 2,
  inProcessBackend: true,
  log: () => {},
};

describe("soak: payload checks", () => {
  it("a payload is caught when lost, truncated, reordered or another session's", () => {
    const p = new Payload(7, 10_000);
    const whole = Buffer.concat(Array.from({ length: p.blocks }, (_, k) => p.block(k)));
    const ok = new PayloadCheck(p);
    ok.push(whole.subarray(0, 3333));
    ok.push(whole.subarray(3333));
    assert.ok(ok.complete);
    const short = new PayloadCheck(p);
    short.push(whole.subarray(0, 9999));
    assert.ok(short.ok && !short.complete);
    const other = new PayloadCheck(p);
    const q = new Payload(8, 10_000);
    other.push(q.block(0));
    assert.ok(!other.ok);
    const swapped = new PayloadCheck(p);
    swapped.push(Buffer.concat([p.block(1), p.block(0)]));
    assert.ok(!swapped.ok);
    const long = new PayloadCheck(p);
    long.push(Buffer.concat([whole, Buffer.from("x")]));
    assert.ok(!long.ok);
  });
});

for (const target of targets()) {
  describe(`soak (${target})`, () => {
    it(`${OPTIONS.sessions} sessions for ${OPTIONS.seconds} s: nothing lost, truncated or crossed; fds back; RSS bounded`, async () => {
      const r = await soakTarget(target, { ...OPTIONS, targets: [target] });
      console.log(table([r], OPTIONS.protocols));
      const problems = verdict(r, OPTIONS.protocols);
      assert.deepEqual(problems, [], [...problems, ...r.failures, ...r.errorSamples].join("\n"));
      for (const p of OPTIONS.protocols) assert.ok(r.byProto[p].transfers >= OPTIONS.transfers, `${p}: some transfers`);
    });
  });
}
