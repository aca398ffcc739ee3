// auth_http_keepalive (mailgate extension): when a connection to the auth
// service may carry another request (the parser's framing rules), and the
// client's pool of idle connections over loopback against a raw node:net
// server that answers several requests per connection.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { createHttpAuthService } from "../../lib/auth/http_client.ts";
import { buildAuthRequest } from "../../lib/auth/http_request.ts";
import { AuthResponseParser } from "../../lib/auth/http_response.ts";
import type { AuthService } from "../../lib/auth/types.ts";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import { nodeConnect } from "../helpers/node_connect.ts";
import { authRequest, tcpAuthUrl } from "../helpers/auth_fixtures.ts";

const OK = "Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n";

/** Feeds `text` whole, then split at every byte boundary: reusable() must not depend on chunking. */
function reusable(text: string): boolean {
  const whole = new AuthResponseParser();
  assert.equal(whole.feed(binaryToBytes(text)).kind, "done");
  const answer = whole.reusable();
  for (let cut = 1; cut < text.length; cut++) {
    const p = new AuthResponseParser();
    p.feed(binaryToBytes(text.slice(0, cut)));
    p.feed(binaryToBytes(text.slice(cut)));
    assert.equal(p.reusable(), answer, `split at ${cut}`);
  }
  return answer;
}

describe("AuthResponseParser.reusable (auth_http_keepalive framing)", () => {
  test("HTTP/1.1 with Content-Length: 0 is reusable", () => {
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}Content-Length: 0\r\n\r\n`), true);
  });
  test("a body that arrived whole with the header is reusable", () => {
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}Content-Length: 5\r\n\r\nhello`), true);
  });
  test("204 without Content-Length has no body: reusable", () => {
    assert.equal(reusable(`HTTP/1.1 204 No Content\r\n${OK}\r\n`), true);
  });
  test("HTTP/1.0, Connection: close, no length, chunked, short or long bodies are not", () => {
    assert.equal(reusable(`HTTP/1.0 200 OK\r\n${OK}Content-Length: 0\r\n\r\n`), false);
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}Connection: close\r\nContent-Length: 0\r\n\r\n`), false);
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}connection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n`), false);
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}\r\n`), false);
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`), false);
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}Content-Length: 5\r\n\r\nhel`), false);
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}Content-Length: 0\r\n\r\nX`), false);
    assert.equal(reusable(`HTTP/1.1 200 OK\r\n${OK}Content-Length: x\r\n\r\n`), false);
    assert.equal(reusable(`${OK}Content-Length: 0\r\n\r\n`), false); // no status line
  });
  test("Content-Length: ngx_atoi's bounds; an overflowing value is unknown framing, not reused", () => {
    const cl = (v: string, body = "") => reusable(`HTTP/1.1 200 OK\r\n${OK}Content-Length: ${v}\r\n\r\n${body}`);
    assert.equal(cl("9223372036854775807"), false, "accepted, but the body is not all here");
    assert.equal(cl("9223372036854775808"), false);
    assert.equal(cl("99999999999999999999"), false);
    assert.equal(cl("99999999999999999999999"), false);
    // 2^64 + 2: a parser that wrapped like 64-bit C would read 2 and reuse.
    assert.equal(cl("18446744073709551618", "ok"), false);
    assert.equal(cl("0".repeat(22)), true, "leading zeros: 0");
    assert.equal(cl("0".repeat(20) + "2", "ok"), true);
  });
  test("a byte after the answer, in a later chunk, makes it not reusable", () => {
    const p = new AuthResponseParser();
    p.feed(binaryToBytes(`HTTP/1.1 200 OK\r\n${OK}Content-Length: 0\r\n\r\n`));
    assert.equal(p.reusable(), true);
    p.feed(binaryToBytes("H"));
    assert.equal(p.reusable(), false);
  });
  test("not done: not reusable", () => {
    const p = new AuthResponseParser();
    p.feed(binaryToBytes(`HTTP/1.1 200 OK\r\n${OK}`));
    assert.equal(p.reusable(), false);
  });
});

/** A LOGIN by `user` (the mock answers echo it back as Auth-User u<n>). */
const authReq = (user: string) =>
  authRequest({ creds: { method: "plain", user, pass: "secret", salt: null, tag: "a1" } });

test("buildAuthRequest: http11 changes only the request line", () => {
  const a = bytesToBinary(buildAuthRequest(tcpAuthUrl(9), authReq("u"), []));
  const b = bytesToBinary(buildAuthRequest(tcpAuthUrl(9), authReq("u"), [], true));
  assert.ok(a.startsWith("GET /auth HTTP/1.0\r\n"));
  assert.equal(b, a.replace("HTTP/1.0", "HTTP/1.1"));
});

/**
 * Answers every request on a connection with `answer(n)` (n counts requests
 * over all connections), keeping the connection open unless the answer says
 * Connection: close. `drop`: "idle" closes each connection 5 ms after its
 * first answer (a server's idle timeout); "next" answers one request per
 * connection and closes the connection, unanswered, when a second request
 * arrives on it (the idle timeout racing the client's next request).
 */
async function keepAliveServer(answer: (n: number, req: string) => string, drop: "no" | "idle" | "next" = "no") {
  const state = { conns: 0, requests: [] as string[], unanswered: 0, open: new Set<net.Socket>() };
  const server = net.createServer((sock) => {
    state.conns++;
    state.open.add(sock);
    sock.on("close", () => state.open.delete(sock));
    sock.on("error", () => {});
    let buf = "";
    let answered = 0;
    sock.on("data", (d: Uint8Array) => {
      buf += bytesToBinary(d);
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        const req = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        if (drop === "next" && answered > 0) {
          state.unanswered++;
          return sock.end();
        }
        state.requests.push(req);
        const text = answer(state.requests.length, req);
        sock.write(binaryToBytes(text));
        if (/connection: close/i.test(text)) return sock.end();
        answered++;
        if (drop === "idle") setTimeout(() => sock.end(), 5);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    state,
    async stop() {
      for (const s of state.open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const ok11 = (n: number) => `HTTP/1.1 200 OK\r\n${OK}Auth-User: u${n}\r\nContent-Length: 0\r\n\r\n`;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A keepAliveServer and an auth service on it (auth_http_keepalive as
 * `keepalive` says; undefined = the default), both stopped afterwards.
 */
async function withPool(
  opts: {
    answer?: (n: number, req: string) => string;
    drop?: "no" | "idle" | "next";
    keepalive?: number;
    keepaliveIdleMs?: number;
  },
  body: (svc: AuthService, srv: Awaited<ReturnType<typeof keepAliveServer>>) => Promise<void>,
): Promise<void> {
  const srv = await keepAliveServer(opts.answer ?? ok11, opts.drop ?? "no");
  const svc = createHttpAuthService({
    url: tcpAuthUrl(srv.port),
    headers: [],
    timeoutMs: 3000,
    connect: nodeConnect,
    keepalive: opts.keepalive,
    keepaliveIdleMs: opts.keepaliveIdleMs,
  });
  try {
    await body(svc, srv);
  } finally {
    svc.close?.();
    await srv.stop();
  }
}

describe("auth_http_keepalive: the client's pool", () => {
  test("sequential requests share one connection; requests say HTTP/1.1", () =>
    withPool({ keepalive: 2 }, async (svc, srv) => {
      for (let i = 1; i <= 5; i++) {
        const r = await svc.authenticate(authReq(`user${i}`));
        assert.equal(r.kind, "ok");
        assert.equal(r.kind === "ok" && r.user, `u${i}`);
      }
      assert.equal(srv.state.conns, 1);
      assert.ok(srv.state.requests.every((q) => q.startsWith("GET /auth HTTP/1.1\r\n")));
      assert.ok(srv.state.requests[4].includes("Auth-User: user5\r\n"));
      svc.close?.();
      await wait(50);
      assert.equal(srv.state.open.size, 0, "close() lets the idle connection go");
    }));

  test("concurrent requests open more connections; only `keepalive` of them are kept", () =>
    withPool({ keepalive: 2 }, async (svc, srv) => {
      const rs = await Promise.all([1, 2, 3, 4].map((i) => svc.authenticate(authReq(`c${i}`))));
      assert.ok(rs.every((r) => r.kind === "ok"));
      assert.equal(srv.state.conns, 4);
      await wait(50);
      assert.equal(srv.state.open.size, 2);
    }));

  test("a kept connection the server closed meanwhile: the request goes on a new one", () =>
    withPool({ drop: "idle", keepalive: 4 }, async (svc, srv) => {
      for (let i = 1; i <= 3; i++) {
        assert.equal((await svc.authenticate(authReq(`s${i}`))).kind, "ok");
        await wait(30); // the server's close arrives while the connection is idle
      }
      assert.equal(srv.state.conns, 3);
      assert.equal(srv.state.requests.length, 3, "each request sent once");
    }));

  test("a kept connection that dies as the request is sent is retried once on a new connection", () =>
    withPool({ drop: "next", keepalive: 4 }, async (svc, srv) => {
      for (let i = 1; i <= 5; i++) assert.equal((await svc.authenticate(authReq(`r${i}`))).kind, "ok");
      assert.equal(srv.state.unanswered, 4, "requests 2-5 first went to a kept connection, which closed");
      assert.equal(srv.state.requests.length, 5);
      assert.equal(srv.state.conns, 5);
    }));

  test("a connection idle longer than keepaliveIdleMs is closed, not reused", () =>
    withPool({ keepalive: 4, keepaliveIdleMs: 40 }, async (svc, srv) => {
      assert.equal((await svc.authenticate(authReq("i1"))).kind, "ok");
      await wait(80);
      assert.equal((await svc.authenticate(authReq("i2"))).kind, "ok");
      assert.equal(srv.state.conns, 2);
      await wait(50);
      assert.equal(srv.state.open.size, 1, "the stale one was closed");
    }));

  test("an overflowing Content-Length: the answer counts, the connection is not reused", () =>
    withPool({
      keepalive: 4,
      answer: (n) => `HTTP/1.1 200 OK\r\n${OK}Auth-User: u${n}\r\nContent-Length: 99999999999999999999999\r\n\r\n`,
    }, async (svc, srv) => {
      for (let i = 1; i <= 3; i++) {
        const r = await svc.authenticate(authReq(`o${i}`));
        assert.equal(r.kind === "ok" && r.user, `u${i}`);
      }
      assert.equal(srv.state.conns, 3);
      await wait(50);
      assert.equal(srv.state.open.size, 0, "each connection was closed by the client");
    }));

  test("HTTP/1.0 answers or Connection: close are never reused", () =>
    withPool({
      keepalive: 4,
      answer: (n) =>
        n % 2 ? `HTTP/1.0 200 OK\r\n${OK}Content-Length: 0\r\n\r\n` : `HTTP/1.1 200 OK\r\n${OK}Connection: close\r\n\r\n`,
    }, async (svc, srv) => {
      for (let i = 1; i <= 4; i++) assert.equal((await svc.authenticate(authReq(`h${i}`))).kind, "ok");
      assert.equal(srv.state.conns, 4);
      await wait(50);
      assert.equal(srv.state.open.size, 0);
    }));

  test("an idle connection that receives a stray byte is closed, not reused", () =>
    withPool({ keepalive: 4 }, async (svc, srv) => {
      assert.equal((await svc.authenticate(authReq("a"))).kind, "ok");
      [...srv.state.open][0].write("HTTP/1.1 200 OK\r\n");
      await wait(50);
      assert.equal(srv.state.open.size, 0, "the client closed it");
      assert.equal((await svc.authenticate(authReq("b"))).kind, "ok");
      assert.equal(srv.state.conns, 2);
    }));

  test("keepalive 0 (default): HTTP/1.0, one connection per request, even if the server keeps it open", () =>
    withPool({}, async (svc, srv) => {
      for (let i = 1; i <= 3; i++) assert.equal((await svc.authenticate(authReq(`z${i}`))).kind, "ok");
      assert.equal(srv.state.conns, 3);
      assert.ok(srv.state.requests.every((q) => q.startsWith("GET /auth HTTP/1.0\r\n")));
      await wait(50);
      assert.equal(srv.state.open.size, 0);
    }));
});
