// The auth_http client end to end over loopback: a raw node:net server in
// the test (not node:http, so it can send malformed responses), and the
// client connecting through tests/helpers/node_connect.ts. A second group
// uses tests/helpers/fake_conn.ts for paths a real socket makes awkward
// (reset, a connect that completes after the timeout) and to check that
// every path destroys its connection.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHttpAuthService, describeSocketError } from "../../lib/auth/http_client.ts";
import { buildAuthRequest } from "../../lib/auth/http_request.ts";
import type { AuthRequest } from "../../lib/auth/types.ts";
import type { AuthHttpUrl } from "../../lib/config/types.ts";
import { bytesToBinary } from "../../lib/core/bytes.ts";
import type { Conn, ConnectSpec } from "../../lib/runtime/types.ts";
import { FakeConn, fakeConnector, fakeConnPair, recordConn } from "../helpers/fake_conn.ts";
import { nodeConnect } from "../helpers/node_connect.ts";
import { authRequest, tcpAuthUrl } from "../helpers/auth_fixtures.ts";

/** How the test server answers one connection; `req` is the request text, `n` the connection number (1-based). */
type Handler = (sock: net.Socket, req: string, n: number) => void;

interface TestServer {
  port: number;
  path: string | null;
  requests: string[];
  /** Connections accepted so far. */
  conns: number;
  /** Resolves when the n-th connection (1-based) is closed. */
  closed(n: number): Promise<void>;
  stop(): Promise<void>;
}

const REQUEST_CAP = 64 * 1024;

async function startServer(handler: Handler, unixPath: string | null = null): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const closeWaiters: Promise<void>[] = [];
  const state: TestServer = {
    port: 0,
    path: unixPath,
    requests: [],
    conns: 0,
    closed: (n) => closeWaiters[n - 1],
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((sock) => {
    const n = ++state.conns;
    sockets.add(sock);
    sock.on("error", () => {});
    closeWaiters[n - 1] = new Promise((r) =>
      sock.on("close", () => {
        sockets.delete(sock);
        r();
      })
    );
    let buf = "";
    let seen = false;
    sock.on("data", (d: Uint8Array) => {
      if (seen) return;
      buf += bytesToBinary(d);
      if (buf.length > REQUEST_CAP) return sock.destroy();
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      seen = true;
      const req = buf.slice(0, end + 4);
      state.requests.push(req);
      handler(sock, req, n);
    });
  });
  await new Promise<void>((
    r,
  ) => (unixPath === null ? server.listen(0, "127.0.0.1", r) : server.listen(unixPath, r)));
  if (unixPath === null) state.port = (server.address() as net.AddressInfo).port;
  return state;
}


function service(
  url: AuthHttpUrl,
  timeoutMs = 5000,
  connect: (s: ConnectSpec) => Promise<Conn> = nodeConnect,
  maxWaitRounds?: number,
) {
  return createHttpAuthService({
    url,
    headers: [["X-Secret", "k"]],
    timeoutMs,
    connect,
    maxWaitRounds,
  });
}

/** Bounded wait for a promise (so a broken client cannot hang the test). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((
      _,
      rej,
    ) => (t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms))),
  ]);
}

const OK =
  "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 198.51.100.1\r\nAuth-Port: 143\r\n\r\n";

describe("auth_http client over loopback", () => {
  test("OK: exact request, result, and the client closes without reading the body", async () => {
    const srv = await startServer((sock) => sock.write(OK + "body that is never read"));
    try {
      const url = tcpAuthUrl(srv.port);
      const r = await service(url).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "ok",
        addr: "198.51.100.1",
        port: 143,
        user: "alice",
        pass: "secret",
        backendName: "198.51.100.1:143",
      });
      assert.equal(srv.requests.length, 1);
      assert.equal(
        srv.requests[0],
        bytesToBinary(buildAuthRequest(url, authRequest(), [["X-Secret", "k"]])),
      );
      assert.ok(srv.requests[0].startsWith("GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\n"));
      assert.ok(srv.requests[0].endsWith("\r\nX-Secret: k\r\n\r\n"));
      // The server never closes: the client must.
      await within(srv.closed(1), 2000, "client close");
    } finally {
      await srv.stop();
    }
  });

  test("response in many small writes", async () => {
    const srv = await startServer(async (sock) => {
      for (const piece of OK.match(/.{1,7}/gs) ?? []) {
        sock.write(piece);
        await new Promise((r) => setTimeout(r, 2));
      }
    });
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.equal(r.kind, "ok");
    } finally {
      await srv.stop();
    }
  });

  test("HTTP 500 with OK headers is a success", async () => {
    const srv = await startServer((sock) =>
      sock.end(
        "HTTP/1.1 500 Internal Server Error\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.1\r\nAuth-Port: 1143\r\nAuth-Pass: clear\r\n\r\n",
      )
    );
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "ok",
        addr: "10.0.0.1",
        port: 1143,
        user: "alice",
        pass: "clear",
        backendName: "10.0.0.1:1143",
      });
    } finally {
      await srv.stop();
    }
  });

  test("refusal with Auth-Wait", async () => {
    const srv = await startServer((sock) =>
      sock.end(
        "HTTP/1.1 403 Forbidden\r\nAuth-Status: Bad user name or password\r\nAuth-Wait: 2\r\n\r\n",
      )
    );
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "refused",
        message: "Bad user name or password",
        waitSec: 2,
        errorCode: null,
      });
    } finally {
      await srv.stop();
    }
  });

  test("refusal with an overflowing Auth-Wait: ignored (as nginx), answered at once", async () => {
    const srv = await startServer((sock) =>
      sock.end("HTTP/1.1 403 Forbidden\r\nAuth-Status: No\r\nAuth-Wait: 99999999999999999999999\r\n\r\n")
    );
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, { kind: "refused", message: "No", waitSec: 0, errorCode: null });
    } finally {
      await srv.stop();
    }
  });

  test("WAIT: same request again on a new connection, same attempt, Auth-User/Auth-Pass replaced", async () => {
    const srv = await startServer((sock, _req, n) => {
      if (n === 1) {
        sock.write(
          "HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-User: bob\r\nAuth-Pass: p w\r\n\r\n",
        );
      } else sock.write(OK);
    });
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "ok",
        addr: "198.51.100.1",
        port: 143,
        user: "bob",
        pass: "p w",
        backendName: "198.51.100.1:143",
        uncacheable: true, // reached through WAIT: the auth cache must not keep it
      });
      assert.equal(srv.conns, 2);
      assert.match(srv.requests[0], /\r\nAuth-User: alice\r\nAuth-Pass: secret\r\n/);
      assert.match(srv.requests[1], /\r\nAuth-User: bob\r\nAuth-Pass: p%20w\r\n/);
      for (const q of srv.requests) assert.match(q, /\r\nAuth-Login-Attempt: 2\r\n/);
      // The first connection was closed by the client after the WAIT answer.
      await within(srv.closed(1), 2000, "first connection closed");
    } finally {
      await srv.stop();
    }
  });

  test("WAIT's Auth-User/Auth-Pass also replace the always-empty values of smtp_auth none and EXTERNAL", async () => {
    for (const method of ["none", "external"] as const) {
      const srv = await startServer((sock, _req, n) => {
        if (n === 1) sock.write("HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-User: routed\r\nAuth-Pass: pw\r\n\r\n");
        else sock.write("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 198.51.100.1\r\nAuth-Port: 25\r\n\r\n");
      });
      try {
        const req = authRequest({
          protocol: method === "none" ? "smtp" : "imap",
          creds: method === "none"
            ? { method, user: "", pass: "", salt: null, tag: "", smtp: { helo: "h", esmtp: true, from: "MAIL FROM:<a@b>", to: "RCPT TO:<c@d>" } }
            : { method, user: "alice", pass: "", salt: null, tag: "a1" },
        });
        const r = await service(tcpAuthUrl(srv.port)).authenticate(req);
        assert.deepEqual(r, {
          kind: "ok",
          addr: "198.51.100.1",
          port: 25,
          user: "routed",
          pass: "pw",
          backendName: "198.51.100.1:25",
          uncacheable: true,
        }, method);
        assert.match(srv.requests[0], method === "none" ? /\r\nAuth-User: \r\nAuth-Pass: \r\n/ : /\r\nAuth-User: alice\r\nAuth-Pass: \r\n/);
        assert.match(srv.requests[1], /\r\nAuth-User: routed\r\nAuth-Pass: pw\r\n/, method);
      } finally {
        await srv.stop();
      }
    }
  });

  test("WAIT honours Auth-Wait before asking again", async () => {
    const times: number[] = [];
    const srv = await startServer((sock, _req, n) => {
      times.push(Date.now());
      sock.end(n === 1 ? "Auth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n" : OK);
    });
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.equal(r.kind, "ok");
      assert.equal(times.length, 2);
      assert.ok(times[1] - times[0] >= 950, `second request after ${times[1] - times[0]} ms`);
    } finally {
      await srv.stop();
    }
  });

  test("WAIT rounds are bounded", async () => {
    const srv = await startServer((sock) => sock.end("Auth-Status: WAIT\r\n\r\n"));
    try {
      const r = await service(tcpAuthUrl(srv.port), 5000, nodeConnect, 3).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "error",
        log: `auth http server 127.0.0.1:${srv.port} sent WAIT 3 times, giving up`,
      });
      assert.equal(srv.conns, 3);
    } finally {
      await srv.stop();
    }
  });

  test("connection refused", async () => {
    // A port that was just free: listen, note it, close.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await service(tcpAuthUrl(port)).authenticate(authRequest());
    assert.deepEqual(r, {
      kind: "error",
      log:
        `connect() to 127.0.0.1:${port} failed (111: Connection refused) while in http auth state`,
    });
  });

  test("timeout: the server accepts and never answers", async () => {
    const srv = await startServer(() => {});
    try {
      const t0 = Date.now();
      const r = await within(
        service(tcpAuthUrl(srv.port), 300).authenticate(authRequest()),
        3000,
        "timeout",
      );
      const dt = Date.now() - t0;
      assert.deepEqual(r, {
        kind: "error",
        log: `auth http server 127.0.0.1:${srv.port} timed out`,
      });
      assert.ok(dt >= 290 && dt < 1000, `timed out after ${dt} ms`);
      await within(srv.closed(1), 2000, "client closed after the timeout");
    } finally {
      await srv.stop();
    }
  });

  test("timeout: a response that trickles in too slowly", async () => {
    const srv = await startServer((sock) => {
      sock.write("HTTP/1.0 200 OK\r\n");
      const t = setInterval(() => {
        if (sock.destroyed) clearInterval(t);
        else sock.write("X-Slow: 1\r\n");
      }, 50);
      sock.on("close", () => clearInterval(t));
    });
    try {
      const r = await within(
        service(tcpAuthUrl(srv.port), 300).authenticate(authRequest()),
        3000,
        "timeout",
      );
      assert.deepEqual(r, {
        kind: "error",
        log: `auth http server 127.0.0.1:${srv.port} timed out`,
      });
    } finally {
      await srv.stop();
    }
  });

  test("server closes in the middle of the headers", async () => {
    const srv = await startServer((sock) =>
      sock.end("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Ser")
    );
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "error",
        log: `auth http server 127.0.0.1:${srv.port} sent invalid response`,
      });
    } finally {
      await srv.stop();
    }
  });

  test("server closes without answering", async () => {
    const srv = await startServer((sock) => sock.end());
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "error",
        log: `auth http server 127.0.0.1:${srv.port} sent invalid response`,
      });
    } finally {
      await srv.stop();
    }
  });

  test("garbage", async () => {
    const srv = await startServer((sock) => sock.write("<html>500 oops</html>\r\n\r\n"));
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "error",
        log: `auth http server 127.0.0.1:${srv.port} sent invalid header in response`,
      });
      await within(srv.closed(1), 2000, "client closed after garbage");
    } finally {
      await srv.stop();
    }
  });

  test("CR without LF in the status line", async () => {
    const srv = await startServer((sock) => sock.write("HTTP/1.0 200 OK\rAuth-Status: OK\r\n\r\n"));
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "error",
        log: `auth http server 127.0.0.1:${srv.port} sent invalid response`,
      });
    } finally {
      await srv.stop();
    }
  });

  test("header block too big", async () => {
    const srv = await startServer((sock) =>
      sock.write(`HTTP/1.0 200 OK\r\nX-Pad: ${"x".repeat(20000)}\r\n\r\n`)
    );
    try {
      const r = await service(tcpAuthUrl(srv.port)).authenticate(authRequest());
      assert.deepEqual(r, {
        kind: "error",
        log: `auth http server 127.0.0.1:${srv.port} sent too big response header`,
      });
    } finally {
      await srv.stop();
    }
  });

  test("auth server on a UNIX socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-auth-"));
    const path = join(dir, "auth.sock");
    const srv = await startServer((sock) => sock.write(OK), path);
    try {
      const url: AuthHttpUrl = {
        raw: `unix:${path}:/a`,
        target: { kind: "unix", path },
        hostHeader: "localhost",
        uri: "/a",
      };
      const r = await service(url).authenticate(authRequest());
      assert.equal(r.kind, "ok");
      assert.ok(srv.requests[0].startsWith("GET /a HTTP/1.0\r\nHost: localhost\r\n"));
    } finally {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("auth_http client over fake conns", () => {
  const url = tcpAuthUrl(9);

  /** A connector whose "server" side runs `script` once the request arrived. */
  function scripted(script: (server: FakeConn, request: string) => void) {
    return fakeConnector((server) => {
      let buf = "";
      let done = false;
      server.attach({
        data(chunk) {
          buf += bytesToBinary(chunk);
          if (!done && buf.includes("\r\n\r\n")) {
            done = true;
            script(server, buf);
          }
        },
        drain() {},
        end() {},
        close() {},
      });
    });
  }

  async function settled(conns: FakeConn[]): Promise<void> {
    // Close events are delivered on later macrotasks.
    for (let i = 0; i < 20 && !conns.every((c) => c.isClosed); i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  test("OK delivered one byte per chunk (the fake overwrites delivered chunks)", async () => {
    const net_ = fakeConnector((server) => {
      for (const ch of OK) server.write(new TextEncoder().encode(ch));
    }, { maxChunk: 1 });
    const r = await service(url, 5000, net_.connect).authenticate(authRequest());
    assert.equal(r.kind, "ok");
    await settled(net_.conns);
    assert.equal(net_.conns.length, 1);
    assert.ok(net_.conns[0].isClosed, "client side closed");
  });

  test("every path closes its connection", async () => {
    const answers: [string, (s: FakeConn) => void, string][] = [
      ["ok", (s) => s.write(new TextEncoder().encode(OK)), "ok"],
      ["refused", (s) => s.write(new TextEncoder().encode("Auth-Status: no\r\n\r\n")), "refused"],
      ["garbage", (s) => s.write(new TextEncoder().encode("??\r\n")), "error"],
      ["eof", (s) => s.end(), "error"],
      ["destroy", (s) => s.destroy(), "error"],
    ];
    for (const [name, answer, kind] of answers) {
      const net_ = scripted(answer);
      const r = await service(url, 5000, net_.connect).authenticate(authRequest());
      assert.equal(r.kind, kind, name);
      await settled(net_.conns);
      assert.ok(net_.conns.every((c) => c.isClosed), `${name}: connection closed`);
      assert.equal(net_.conns[0].writesAfterClose, 0, name);
    }
  });

  test("reset by the auth server", async () => {
    const net_ = scripted((s) => s.reset());
    const r = await service(url, 5000, net_.connect).authenticate(authRequest());
    assert.deepEqual(r, {
      kind: "error",
      log: "recv() failed (104: Connection reset by peer) while in http auth state",
    });
  });

  test("timeout while connecting: the late connection is destroyed", async () => {
    let resolveConn!: (c: Conn) => void;
    const [client, server] = fakeConnPair();
    const rec = recordConn(server);
    const slowConnect = (spec: ConnectSpec): Promise<Conn> => {
      // The adapter's own connect timeout is later than auth_http_timeout.
      assert.ok(spec.timeoutMs !== undefined && spec.timeoutMs > 100);
      return new Promise((r) => (resolveConn = r));
    };
    const r = await service(url, 100, slowConnect).authenticate(authRequest());
    assert.deepEqual(r, { kind: "error", log: "auth http server 127.0.0.1:9 timed out" });
    resolveConn(client);
    await within(rec.closed, 1000, "late conn closed");
    assert.equal(rec.text(), "", "nothing was sent on the late connection");
  });

  test("connect errors are reported like nginx", async () => {
    const refuse = () => {
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
    };
    const r = await service(url, 5000, fakeConnector(refuse).connect).authenticate(authRequest());
    assert.deepEqual(r, {
      kind: "error",
      log: "connect() to 127.0.0.1:9 failed (111: Connection refused) while in http auth state",
    });
  });
});

describe("describeSocketError", () => {
  test("node, Deno and unknown errors", () => {
    assert.equal(
      describeSocketError(Object.assign(new Error("x"), { code: "ECONNREFUSED" })),
      "111: Connection refused",
    );
    const denoErr = new Error("Connection refused (os error 111)");
    denoErr.name = "ConnectionRefused";
    assert.equal(describeSocketError(denoErr), "111: Connection refused");
    assert.equal(
      describeSocketError(new Error("No such file or directory (os error 2)")),
      "2: No such file or directory",
    );
    assert.equal(describeSocketError(new Error("weird\r\nthing")), "weird thing");
    assert.equal(describeSocketError("str"), "str");
  });
});

// The client tests above rely on tests/helpers/fake_conn.ts behaving like a
// real connection; these pin down the parts of the Conn contract it models.
describe("fake_conn helper", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

  test("bytes written before attach wait; events arrive asynchronously", async () => {
    const [a, b] = fakeConnPair();
    a.write(enc("hello"));
    await tick();
    const rec = recordConn(b);
    assert.deepEqual(rec.events, [], "nothing delivered inside attach()");
    await tick();
    assert.equal(rec.text(), "hello");
  });

  test("backpressure: false above the high-water mark, drain once delivered", async () => {
    const [a, b] = fakeConnPair({ highWaterMark: 4 });
    const ra = recordConn(a);
    assert.equal(a.write(enc("1234")), true);
    assert.equal(a.write(enc("5")), false);
    const rb = recordConn(b);
    await tick(20);
    assert.equal(rb.text(), "12345");
    assert.deepEqual(ra.events, ["drain"]);
  });

  test("pause holds data; resume delivers it", async () => {
    const [a, b] = fakeConnPair();
    const rb = recordConn(b);
    b.pause();
    a.write(enc("x"));
    await tick();
    assert.equal(rb.text(), "");
    b.resume();
    await tick();
    assert.equal(rb.text(), "x");
  });

  test("end: peer gets the data, then end, then close; the writer closes too", async () => {
    const [a, b] = fakeConnPair();
    const ra = recordConn(a);
    const rb = recordConn(b);
    a.write(enc("bye"));
    a.end();
    assert.equal(await within(rb.closed, 1000, "b closed"), undefined);
    await within(ra.closed, 1000, "a closed");
    assert.deepEqual(rb.events, ["data", "end", "close"]);
    assert.equal(rb.text(), "bye");
    assert.equal(a.write(enc("late")), false);
    assert.equal(a.writesAfterClose, 1);
  });

  test("reset: the peer gets close(ECONNRESET) without end", async () => {
    const [a, b] = fakeConnPair();
    const rb = recordConn(b);
    a.reset();
    const err = await within(rb.closed, 1000, "b closed");
    assert.equal((err as { code?: string }).code, "ECONNRESET");
    assert.deepEqual(rb.events, ["close"]);
  });

  test("delivered chunks are overwritten after the handler (catches kept views)", async () => {
    const [a, b] = fakeConnPair();
    let kept: Uint8Array | null = null;
    b.attach({ data: (c) => (kept = c), drain() {}, end() {}, close() {} });
    a.write(enc("abc"));
    await tick();
    assert.deepEqual([...kept!], [0xee, 0xee, 0xee]);
  });

  test("TLS: both sides start; plaintext queued at the handshake breaks it", async () => {
    const [a, b] = fakeConnPair();
    recordConn(a);
    recordConn(b);
    const [ia, ib] = await Promise.all([
      a.startTls({ certs: [] }),
      b.startTlsClient({ servername: null, verify: false }),
    ]);
    assert.equal(ia.protocol, "TLSv1.3");
    assert.equal(ib, a.tls);
    const [c, d] = fakeConnPair();
    recordConn(c);
    d.write(enc("injected"));
    const server = c.startTls({ certs: [] });
    const client = d.startTlsClient({ servername: null, verify: false });
    await assert.rejects(server, /plaintext/);
    await assert.rejects(client, /plaintext/);
  });
});
