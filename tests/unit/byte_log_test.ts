// The test helpers' byte log (tests/helpers/byte_log.ts): exact bytes, lines
// split anywhere, views that stay valid, and linear copying (issue 13: the
// test client's Buffer.concat per chunk copied ~165 MB for a 3 MiB stream).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ByteLog } from "../helpers/byte_log.ts";

const MiB = 1024 * 1024;

describe("ByteLog", () => {
  it("keeps every byte and hands out lines and counted bytes in order", () => {
    const text = Buffer.from("a1 OK one\r\n* 2 EXISTS\r\nraw12345tail\nno end");
    for (let cut = 0; cut <= text.length; cut++) {
      const log = new ByteLog();
      log.push(text.subarray(0, cut));
      log.push(text.subarray(cut));
      assert.equal(log.line()!.toString(), "a1 OK one\r\n");
      assert.equal(log.line()!.toString(), "* 2 EXISTS\r\n");
      assert.equal(log.take(8).toString(), "raw12345");
      assert.equal(log.line()!.toString(), "tail\n");
      assert.equal(log.line(), null);
      assert.equal(log.peek().toString(), "no end");
      assert.ok(log.all.equals(text));
    }
  });

  it("finds a line that arrives byte by byte", () => {
    const log = new ByteLog(false);
    for (const ch of "a long line without its end yet") {
      log.push(Buffer.from(ch));
      assert.equal(log.line(), null);
    }
    log.push(Buffer.from("\nnext"));
    assert.equal(log.line()!.toString(), "a long line without its end yet\n");
    assert.equal(log.peek().toString(), "next");
  });

  it("views handed out stay valid while the log grows", () => {
    for (const keepAll of [true, false]) {
      const log = new ByteLog(keepAll);
      log.push(Buffer.from("first\n"));
      const first = log.line()!;
      const early = keepAll ? log.all : null;
      for (let i = 0; i < 200; i++) log.push(Buffer.alloc(4096, i));
      assert.equal(first.toString(), "first\n", `keepAll ${keepAll}`);
      if (early) assert.equal(early.toString(), "first\n");
      if (keepAll) assert.equal(log.all.length, 6 + 200 * 4096);
    }
  });

  it("copies a 3 MiB stream in small chunks a bounded number of times (linear)", () => {
    for (const keepAll of [true, false]) {
      const log = new ByteLog(keepAll);
      const chunk = Buffer.alloc(1500, 0x41);
      let pushed = 0;
      while (pushed < 3 * MiB) {
        log.push(chunk);
        pushed += chunk.length;
        if (!keepAll) log.take(log.unread >> 1); // a reader that keeps up partly
      }
      // Doubling growth: each byte is copied in once and moved at most ~2 more times on average.
      assert.ok(log.copied <= 4 * pushed, `copied ${log.copied} for ${pushed} pushed (keepAll ${keepAll})`);
      if (keepAll) assert.equal(log.all.length, pushed);
    }
  });
});
