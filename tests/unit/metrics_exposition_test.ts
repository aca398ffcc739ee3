// lib/metrics/exposition.ts: Prometheus text 0.0.4 and OpenMetrics 1.0,
// checked line by line, and with promtool when it is installed.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { escapeLabelValue, render, wantsOpenMetrics } from "../../lib/metrics/exposition.ts";
import { Registry } from "../../lib/metrics/registry.ts";

function sample() {
  const r = new Registry();
  r.counter("t_logins", 'Logins \\ by "outcome"\nsecond line.', ["outcome"]).labels(
    'we"ird\\\nvalue',
  ).inc(3);
  r.gauge("t_open", "Open now.", ["protocol"]).labels("imap").set(2);
  const h = r.histogram("t_auth_seconds", "Auth latency.", ["protocol"], [0.01, 0.1]).labels(
    "pop3",
  );
  h.observe(0.005);
  h.observe(0.05);
  h.observe(5);
  return r.snapshot();
}

describe("exposition", () => {
  test("label values escaped", () => {
    assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  });

  test("Prometheus text format", () => {
    const t = render(sample(), false);
    const lines = t.split("\n");
    assert.ok(lines.includes("# TYPE t_logins_total counter"));
    assert.ok(lines.includes('# HELP t_logins_total Logins \\\\ by "outcome"\\nsecond line.'));
    assert.ok(lines.includes('t_logins_total{outcome="we\\"ird\\\\\\nvalue"} 3'));
    assert.ok(lines.includes('t_open{protocol="imap"} 2'));
    assert.ok(lines.includes('t_auth_seconds_bucket{protocol="pop3",le="0.01"} 1'));
    assert.ok(lines.includes('t_auth_seconds_bucket{protocol="pop3",le="0.1"} 2'));
    assert.ok(lines.includes('t_auth_seconds_bucket{protocol="pop3",le="+Inf"} 3'));
    assert.ok(lines.includes('t_auth_seconds_count{protocol="pop3"} 3'));
    assert.ok(!t.includes("_created"));
    assert.ok(!t.includes("# EOF"));
    assert.ok(t.endsWith("\n"));
  });

  test("OpenMetrics format", () => {
    const t = render(sample(), true);
    const lines = t.split("\n");
    assert.ok(lines.includes("# TYPE t_logins counter"));
    assert.ok(lines.includes('# HELP t_logins Logins \\\\ by \\"outcome\\"\\nsecond line.'));
    assert.ok(lines.some((l) => l.startsWith('t_logins_created{outcome="we')));
    assert.ok(lines.some((l) => l.startsWith('t_auth_seconds_created{protocol="pop3"} ')));
    assert.equal(lines.at(-2), "# EOF");
  });

  test("Accept chooses OpenMetrics", () => {
    assert.equal(wantsOpenMetrics(undefined), false);
    assert.equal(wantsOpenMetrics("text/plain;version=0.0.4"), false);
    assert.equal(
      wantsOpenMetrics(
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
      ),
      true,
    );
  });

  // promtool's `check metrics` reads the text format only (not OpenMetrics).
  test("promtool check metrics accepts the text format", { skip: !hasPromtool() }, () => {
    const r = spawnSync("promtool", ["check", "metrics"], {
      input: render(sample(), false),
      encoding: "utf8",
    });
    // promtool exits 1 on lint problems too; errors and lint findings both land in its output.
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});

function hasPromtool(): boolean {
  return spawnSync("promtool", ["--version"]).status === 0;
}
