// lib/status/aggregate.ts (the master's sum of worker reports) and
// lib/config/status_listen.ts (the directive's address forms).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Aggregator, parseReport, REPORT_PREFIX } from "../../lib/status/aggregate.ts";
import { type FamilySnapshot, Registry } from "../../lib/metrics/registry.ts";
import { parseStatusAddress } from "../../lib/config/status_listen.ts";

function worker(logins: number, open: number, start: number): FamilySnapshot[] {
  const r = new Registry();
  r.counter("mailgate_logins", "h", ["outcome"]).labels("ok").inc(logins);
  r.gauge("mailgate_connections_open", "h").labels().set(open);
  r.gauge("process_start_time_seconds", "h").labels().set(start);
  return r.snapshot();
}
const value = (s: FamilySnapshot[], name: string) =>
  s.find((f) => f.name === name)?.series[0]?.value;

describe("aggregator", () => {
  test("sums workers; an exited worker keeps its counters, not its gauges", () => {
    const a = new Aggregator();
    const own = new Registry();
    own.gauge("process_start_time_seconds", "h").labels().set(100);
    a.report({
      slot: 0,
      pid: 10,
      metrics: worker(3, 2, 200),
      errors: ["2026/01/01 00:00:02 [error] b"],
    });
    a.report({
      slot: 1,
      pid: 11,
      metrics: worker(4, 1, 300),
      errors: ["2026/01/01 00:00:01 [error] a"],
    });
    let t = a.total(own.snapshot());
    assert.equal(value(t, "mailgate_logins"), 7);
    assert.equal(value(t, "mailgate_connections_open"), 3);
    assert.equal(
      value(t, "process_start_time_seconds"),
      100,
      "the master's own start time, not a sum",
    );
    assert.deepEqual(a.errors([], 10), [
      "2026/01/01 00:00:01 [error] a",
      "2026/01/01 00:00:02 [error] b",
    ]);

    a.exited(1, 99); // not that worker's pid: ignored
    assert.equal(value(a.total([]), "mailgate_logins"), 7);
    a.exited(1, 11);
    t = a.total([]);
    assert.equal(value(t, "mailgate_logins"), 7, "counters survive the worker");
    assert.equal(value(t, "mailgate_connections_open"), 2, "its open connections do not");
    // Its replacement starts from zero; the total goes on from 7.
    a.report({ slot: 1, pid: 12, metrics: worker(1, 0, 400), errors: [] });
    assert.equal(value(a.total([]), "mailgate_logins"), 8);
    assert.equal(a.workers().map((w) => w.pid).join(), "10,12");
  });

  test("report lines", () => {
    const line = REPORT_PREFIX + JSON.stringify({ m: worker(1, 0, 1), e: [] });
    assert.equal(parseReport(line, 0, 5)?.pid, 5);
    assert.equal(parseReport("ready", 0, 5), null);
    assert.equal(parseReport(REPORT_PREFIX + "{not json", 0, 5), null);
    assert.equal(parseReport(REPORT_PREFIX + "{}", 0, 5), null);
  });
});

describe("status_listen addresses", () => {
  test("forms", () => {
    assert.deepEqual(parseStatusAddress("127.0.0.1:9100"), {
      kind: "tcp",
      host: "127.0.0.1",
      port: 9100,
    });
    assert.deepEqual(parseStatusAddress("[::1]:9100"), { kind: "tcp", host: "::1", port: 9100 });
    assert.deepEqual(parseStatusAddress("localhost:80"), {
      kind: "tcp",
      host: "127.0.0.1",
      port: 80,
    });
    assert.deepEqual(parseStatusAddress("unix:/run/mg.sock"), {
      kind: "unix",
      path: "/run/mg.sock",
    });
    for (
      const bad of [
        "9100",
        "*:9100",
        "example.org:9100",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "unix:",
        "::1:9100",
      ]
    ) {
      assert.equal(typeof parseStatusAddress(bad), "string", bad);
    }
  });
});
