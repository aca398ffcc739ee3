// lib/status/http.ts: the status listener's request reader, fed whole and
// split at every byte; bad requests; and lib/status/server.ts's routes.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatResponse, MAX_HEAD, type ReadResult, RequestReader } from "../../lib/status/http.ts";
import { route, type StatusSource } from "../../lib/status/server.ts";
import { statusJson } from "../../lib/status/status_json.ts";
import { Registry } from "../../lib/metrics/registry.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function readAll(text: string, split: number[] = []): ReadResult[] {
  const b = enc.encode(text);
  const r = new RequestReader();
  const out: ReadResult[] = [];
  let at = 0;
  for (const s of [...split, b.length]) {
    out.push(...r.push(b.subarray(at, s)));
    at = s;
  }
  return out;
}

const TWO = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text\r\n\r\n" +
  "HEAD / HTTP/1.1\r\nhost: a\r\nConnection: close\r\n\r\n";

describe("status http reader", () => {
  test("two pipelined requests, whole and split at every byte", () => {
    const want = readAll(TWO);
    assert.equal(want.length, 2);
    const [a, b] = want.map((
      r,
    ) => (r.kind === "request" ? r.request : assert.fail(JSON.stringify(r))));
    assert.equal(a.method, "GET");
    assert.equal(a.path, "/metrics");
    assert.equal(a.headers.get("accept"), "application/openmetrics-text");
    assert.equal(a.keepAlive, true);
    assert.equal(b.method, "HEAD");
    assert.equal(b.keepAlive, false);
    for (let i = 1; i < TWO.length; i++) {
      assert.deepEqual(readAll(TWO, [i]), want, `split at ${i}`);
    }
    // One byte at a time.
    assert.deepEqual(readAll(TWO, [...Array(TWO.length).keys()].slice(1)), want);
  });

  test("bare LF line ends; HTTP/1.0 closes unless keep-alive", () => {
    const r = readAll("GET / HTTP/1.0\n\n");
    assert.equal(r[0].kind === "request" && r[0].request.keepAlive, false);
    const k = readAll("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert.equal(k[0].kind === "request" && k[0].request.keepAlive, true);
  });

  const BAD: [string, string, number][] = [
    ["no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400],
    ["two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    ["bad request line", "GET /\r\n\r\n", 400],
    ["extra spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["absolute URI", "GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
    ["garbage version", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400],
    ["space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
    ["folded header", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", 400],
    ["body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 400],
    ["chunked", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["bare CR", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400],
    ["control byte", "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400],
  ];
  for (const [name, text, status] of BAD) {
    test(`bad: ${name} -> ${status}`, () => {
      const r = readAll(text);
      assert.equal(r.length, 1);
      assert.equal(r[0].kind === "error" && r[0].status, status);
      // Nothing after an error is read.
      const reader = new RequestReader();
      reader.push(enc.encode(text));
      assert.deepEqual(reader.push(enc.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n")), []);
    });
  }

  test("head too large, with and without its end", () => {
    const big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + "a".repeat(MAX_HEAD) + "\r\n\r\n";
    assert.equal(
      readAll(big)[0].kind === "error" && (readAll(big)[0] as { status: number }).status,
      431,
    );
    const r = new RequestReader();
    const res = r.push(enc.encode("GET / HTTP/1.1\r\nX: " + "a".repeat(MAX_HEAD + 10)));
    assert.equal(res.length, 1);
    assert.equal(res[0].kind, "error");
  });

  test("responses: HEAD has no body; close said when not kept alive", () => {
    const body = enc.encode("hello");
    const get = dec.decode(
      formatResponse(200, [["Content-Type", "text/plain"]], body, { head: false, keepAlive: true }),
    );
    assert.match(get, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(get, /Content-Length: 5\r\n/);
    assert.ok(get.endsWith("\r\n\r\nhello"));
    assert.ok(!get.includes("Connection: close"));
    const head = dec.decode(formatResponse(200, [], body, { head: true, keepAlive: false }));
    assert.ok(head.endsWith("Connection: close\r\n\r\n"));
  });
});

describe("status routes", () => {
  const reg = new Registry();
  reg.counter("mailgate_logins", "h", ["protocol", "mechanism", "outcome"]).labels(
    "imap",
    "plain",
    "ok",
  ).inc(4);
  const source: StatusSource = {
    metrics: () => reg.snapshot(),
    status: () => statusJson(reg.snapshot(), [], []),
  };
  const req = (method: string, path: string, accept?: string) => {
    const headers = new Map([["host", "a"]]);
    if (accept) headers.set("accept", accept);
    return { method, path, version: "1.1" as const, headers, keepAlive: true };
  };
  test("GET /metrics, text and OpenMetrics", () => {
    const t = route(req("GET", "/metrics"), source);
    assert.equal(t.status, 200);
    assert.match(t.headers[0][1], /^text\/plain; version=0\.0\.4/);
    assert.match(
      dec.decode(t.body),
      /mailgate_logins_total\{protocol="imap",mechanism="plain",outcome="ok"\} 4/,
    );
    const o = route(req("GET", "/metrics", "application/openmetrics-text"), source);
    assert.match(o.headers[0][1], /^application\/openmetrics-text/);
    assert.ok(dec.decode(o.body).endsWith("# EOF\n"));
  });
  test("status.json, page, 404, 405", () => {
    const j = JSON.parse(dec.decode(route(req("GET", "/status.json"), source).body));
    assert.equal(j.logins.ok, 4);
    const page = dec.decode(route(req("GET", "/"), source).body);
    assert.match(page, /<title>mailgate status<\/title>/);
    // Self-contained: nothing loaded from elsewhere.
    assert.doesNotMatch(page, /(src|href)=["']?(https?:)?\/\//);
    assert.equal(route(req("GET", "/nope"), source).status, 404);
    const p = route(req("POST", "/metrics"), source);
    assert.equal(p.status, 405);
    assert.deepEqual(p.headers.find((h) => h[0] === "Allow"), ["Allow", "GET, HEAD"]);
  });
});
