// Table-driven checks of the value parsers (directives.md §1.3) and the IP
// helpers used by listen / set_real_ip_from.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  parseFlag,
  parseMsec,
  parseNumber,
  parseOffset,
  parseSec,
  parseSize,
} from "../../lib/config/units.ts";
import { componentRegExp } from "../../lib/config/glob.ts";
import { type ParsedUrl, parseUrl } from "../../lib/config/url.ts";

describe("number", () => {
  const cases: [string, number | null][] = [
    ["0", 0],
    ["5", 5],
    ["0012", 12],
    ["", null],
    ["-1", null],
    ["+1", null],
    ["1.0", null],
    ["1k", null],
    [" 1", null],
    ["99999999999999999999", null],
  ];
  for (const [v, want] of cases) test(JSON.stringify(v), () => assert.equal(parseNumber(v), want));
});

describe("size", () => {
  const cases: [string, number | null][] = [
    ["128", 128],
    ["10k", 10240],
    ["10K", 10240],
    ["1m", 1048576],
    ["2M", 2097152],
    ["0", 0],
    ["1g", null],
    ["1G", null],
    ["k", null],
    ["1.5k", null],
    ["1 k", null],
    ["1kb", null],
    ["", null],
    ["-1", null],
  ];
  for (const [v, want] of cases) test(JSON.stringify(v), () => assert.equal(parseSize(v), want));
  test("offset also takes g", () => {
    assert.equal(parseOffset("1g"), 1073741824);
    assert.equal(parseOffset("2G"), 2147483648);
    assert.equal(parseOffset("1t"), null);
  });
});

describe("time in milliseconds", () => {
  const cases: [string, number | null][] = [
    ["60", 60000],
    ["0", 0],
    ["500ms", 500],
    ["1s", 1000],
    ["1m", 60000],
    ["1h30m", 5400000],
    ["1h 30m", 5400000],
    ["2s500ms", 2500],
    ["1w", 604800000],
    ["1d", 86400000],
    ["1h30", 3630000],
    ["1d2h3m4s5ms", 93784005],
    ["30m1h", null],
    ["1s1s", null],
    ["1ms1s", null],
    ["1y", null],
    ["1M", null],
    ["", null],
    ["s", null],
    ["1x", null],
    ["-1s", null],
    ["1.5s", null],
    ["1 2s", null],
  ];
  for (const [v, want] of cases) test(JSON.stringify(v), () => assert.equal(parseMsec(v), want));
});

describe("time in seconds", () => {
  const cases: [string, number | null][] = [
    ["300", 300],
    ["5m", 300],
    ["1y", 31536000],
    ["1M", 2592000],
    ["1y1M", 34128000],
    ["1h", 3600],
    ["2d", 172800],
    ["10ms", null],
    ["1M1y", null],
    ["", null],
    ["1q", null],
  ];
  for (const [v, want] of cases) test(JSON.stringify(v), () => assert.equal(parseSec(v), want));
});

describe("flag", () => {
  const cases: [string, boolean | null][] = [
    ["on", true],
    ["ON", true],
    ["Off", false],
    ["off", false],
    ["yes", null],
    ["1", null],
  ];
  for (const [v, want] of cases) test(v, () => assert.equal(parseFlag(v), want));
});

describe("URL forms", () => {
  test("listen forms", () => {
    const ok = (v: string) => {
      const r = parseUrl(v, { listen: true });
      assert.ok("ok" in r, v);
      return r.ok;
    };
    assert.deepEqual(pick(ok("110")), { host: "*", port: 110, lastPort: 110 });
    assert.deepEqual(pick(ok("*:110")), { host: "*", port: 110, lastPort: 110 });
    assert.deepEqual(pick(ok("8000-8010")), { host: "*", port: 8000, lastPort: 8010 });
    assert.deepEqual(pick(ok("[::1]:25")), { host: "[::1]", port: 25, lastPort: 25 });
    assert.deepEqual(ok("unix:/run/x.sock"), { kind: "unix", path: "/run/x.sock", uri: "" });
  });
  test("auth_http forms", () => {
    const r = parseUrl("[::1]:9000/auth?x=1", { uriPart: true, defaultPort: 80 });
    assert.ok("ok" in r && r.ok.kind === "inet");
    assert.equal(r.ok.uri, "/auth?x=1");
    assert.equal(r.ok.port, 9000);
    const q = parseUrl("auth.test?x=1", { uriPart: true, defaultPort: 80 });
    assert.ok("ok" in q && q.ok.kind === "inet");
    assert.equal(q.ok.uri, "?x=1");
    assert.equal(q.ok.port, 80);
  });
});

function pick(u: ParsedUrl) {
  assert.ok(u.kind === "inet");
  return { host: u.host, port: u.port, lastPort: u.lastPort };
}

describe("glob components", () => {
  const cases: [string, string, boolean][] = [
    ["*.conf", "a.conf", true],
    ["*.conf", "a.conf.bak", false],
    ["?.conf", "ab.conf", false],
    ["[ab].conf", "b.conf", true],
    ["[!ab].conf", "b.conf", false],
    ["[!ab].conf", "c.conf", true],
    ["a.conf", "abconf", false],
    ["[a-c]*", "bz", true],
  ];
  for (const [p, name, want] of cases) {
    test(`${p} ~ ${name}`, () => assert.equal(componentRegExp(p).test(name), want));
  }
});
