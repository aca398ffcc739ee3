// lib/metrics/registry.ts: children made once per label set, the
// cardinality cap, histogram buckets, snapshots and the master's merge.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mergeSnapshots, OTHER, Registry } from "../../lib/metrics/registry.ts";

describe("registry", () => {
  test("one child per label set, kept by the caller", () => {
    const r = new Registry();
    const c = r.counter("x", "help", ["a"]);
    const one = c.labels("1");
    assert.equal(c.labels("1"), one);
    one.inc();
    one.inc(2);
    c.labels("2").inc();
    const s = r.snapshot()[0];
    assert.deepEqual(s.series.map((x) => [x.labels, x.value]), [[["1"], 3], [["2"], 1]]);
  });

  test("wrong label count is an error", () => {
    const r = new Registry();
    assert.throws(() => r.counter("x", "h", ["a", "b"]).labels("1"), /2 label values expected/);
    assert.throws(() => r.counter("x", "h"), /registered twice/);
  });

  test("cap: label sets beyond it are counted under other", () => {
    const r = new Registry();
    const c = r.counter("up", "h", ["upstream"], { cap: 3, capLabel: "upstream" });
    for (let i = 0; i < 10; i++) c.labels(`10.0.0.${i}:143`).inc();
    const s = r.snapshot()[0];
    assert.equal(s.series.length, 4);
    assert.deepEqual(s.series[3].labels, [OTHER]);
    assert.equal(s.series[3].value, 7);
    // The same name over the cap keeps landing in other.
    c.labels("10.0.0.9:143").inc();
    assert.equal(r.snapshot()[0].series[3].value, 8);
    assert.equal(r.snapshot()[0].series.length, 4);
  });

  test("histogram: per-bucket counts, sum and count", () => {
    const r = new Registry();
    const h = r.histogram("lat", "h", [], [0.1, 1]).labels();
    for (const v of [0.05, 0.1, 0.5, 3]) h.observe(v);
    const s = r.snapshot()[0].series[0];
    assert.deepEqual(s.counts, [2, 1, 1]);
    assert.equal(s.value, 4);
    assert.equal(s.sum, 3.65);
  });

  test("merge sums counters, gauges and histograms; countersOnly drops gauges", () => {
    const mk = (n: number) => {
      const r = new Registry();
      r.counter("c", "h", ["a"]).labels("x").inc(n);
      r.gauge("g", "h").labels().set(n);
      r.histogram("h", "h", [], [1]).labels().observe(n);
      return r.snapshot();
    };
    const m = mergeSnapshots([mk(1), mk(5)]);
    assert.equal(m.find((f) => f.name === "c")!.series[0].value, 6);
    assert.equal(m.find((f) => f.name === "g")!.series[0].value, 6);
    assert.deepEqual(m.find((f) => f.name === "h")!.series[0].counts, [1, 1]);
    assert.equal(m.find((f) => f.name === "h")!.series[0].sum, 6);
    const c = mergeSnapshots([mk(2)], true);
    assert.equal(c.find((f) => f.name === "g"), undefined);
    // The inputs are not changed by a merge.
    const a = mk(1);
    mergeSnapshots([a, mk(1)]);
    assert.equal(a[0].series[0].value, 1);
  });
});
