// relay() tests: deterministic ones on scripted fake connections, and
// end-to-end ones through the runtime adapter (deno.ts under `deno test -A
// --unstable-net`, bun.ts under `bun test`) with node:net peers on loopback.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import type { Conn, ConnEvents, Runtime, SockAddr, TlsInfo } from "../../lib/runtime/types.ts";
import { relay, type RelayEndReason, type RelayStats } from "../../lib/proxy/relay.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const adapterPath = isBun ? "../../lib/runtime/bun/mod.ts" : "../../lib/runtime/deno/mod.ts";
const { runtime } = (await import(adapterPath)) as { runtime: Runtime };

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function within<T>(ms: number, p: Promise<T>, what = "operation"): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

function patternByte(i: number): number {
  return (i ^ (i >>> 8) ^ (i >>> 16) ^ (i >>> 24)) & 0xff;
}
function fillPattern(buf: Uint8Array, offset: number): Uint8Array {
  for (let k = 0; k < buf.length; k++) buf[k] = patternByte(offset + k);
  return buf;
}

/** Records the relay's result; `ended` resolves on the (single) onEnd call. */
function endRecorder() {
  const calls: { reason: RelayEndReason; stats: RelayStats; at: number }[] = [];
  let resolve!: () => void;
  const ended = new Promise<void>((r) => (resolve = r));
  return {
    calls,
    ended,
    onEnd(reason: RelayEndReason, stats: RelayStats) {
      calls.push({ reason, stats, at: Date.now() });
      resolve();
    },
  };
}

// ---------------------------------------------------------------- fake conns

const ADDR: SockAddr = { family: "ipv4", address: "127.0.0.1", port: 1 };

/** A scripted Conn: the test drives its events and decides write()'s result. */
class FakeConn implements Conn {
  readonly remote = ADDR;
  readonly local = ADDR;
  readonly tls: TlsInfo | null = null;
  ev: ConnEvents | null = null;
  paused = false;
  written: string[] = [];
  writeResult = true;
  ended = false;
  destroyed = false;
  #closed = false;
  attach(e: ConnEvents) {
    this.ev = e;
  }
  write(c: Uint8Array): boolean {
    if (c.length > 0) this.written.push(dec.decode(c));
    return this.writeResult;
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  startTls(): Promise<TlsInfo> {
    return Promise.reject(new Error("not supported"));
  }
  startTlsClient(): Promise<TlsInfo> {
    return Promise.reject(new Error("not supported"));
  }
  end() {
    this.ended = true;
    this.#close();
  }
  destroy() {
    this.destroyed = true;
    this.#close();
  }
  #close(err?: Error) {
    if (this.#closed) return;
    this.#closed = true;
    queueMicrotask(() => this.ev!.close(err));
  }
  // drivers
  data(s: string) {
    this.ev!.data(enc.encode(s));
  }
  drain() {
    this.ev!.drain();
  }
  eof() {
    this.ev!.end();
  }
  fail(err: Error) {
    this.#close(err);
  }
}

describe("relay on scripted connections", () => {
  test("copies both ways, counts bytes, pauses the source on false and resumes on drain", async () => {
    const c = new FakeConn(), b = new FakeConn();
    const rec = endRecorder();
    const r = relay(c, b, { timeoutMs: 10000, onEnd: rec.onEnd });
    assert.equal(c.paused, false);
    assert.equal(b.paused, false);
    c.data("a1 LOGOUT\r\n");
    b.data("* BYE\r\n");
    assert.deepEqual(b.written, ["a1 LOGOUT\r\n"]);
    assert.deepEqual(c.written, ["* BYE\r\n"]);
    b.writeResult = false;
    c.data("big");
    assert.equal(c.paused, true, "client not paused when the backend is full");
    assert.equal(b.paused, false);
    b.writeResult = true;
    b.drain();
    assert.equal(c.paused, false, "client not resumed on backend drain");
    c.writeResult = false;
    b.data("down");
    assert.equal(b.paused, true);
    c.drain();
    assert.equal(b.paused, false);
    r.stop();
    await within(1000, rec.ended);
    assert.equal(rec.calls.length, 1);
    assert.equal(rec.calls[0].reason, "stopped");
    assert.deepEqual(rec.calls[0].stats, { up: 14, down: 11 });
    r.stop();
    await sleep(10);
    assert.equal(rec.calls.length, 1, "onEnd called twice");
  });

  test("a connection left above its high-water mark by the caller holds the other side until it drains", async () => {
    const c = new FakeConn(), b = new FakeConn();
    c.writeResult = false; // the backend's login reply is still queued to the client
    const rec = endRecorder();
    const r = relay(c, b, { timeoutMs: 10000, onEnd: rec.onEnd });
    assert.equal(b.paused, true, "backend read while the client queue is full");
    assert.equal(c.paused, false);
    assert.deepEqual(c.written, [], "the probe wrote bytes");
    c.writeResult = true;
    c.drain();
    assert.equal(b.paused, false);
    r.stop();
    await within(1000, rec.ended);
  });

  test("client EOF: client destroyed, backend flushed with end(); onEnd once both closed", async () => {
    const c = new FakeConn(), b = new FakeConn();
    const rec = endRecorder();
    relay(c, b, { timeoutMs: 10000, onEnd: rec.onEnd });
    c.data("last");
    c.eof();
    assert.equal(c.destroyed, true);
    assert.equal(b.ended, true);
    assert.equal(b.destroyed, false);
    await within(1000, rec.ended);
    assert.deepEqual(rec.calls.map((x) => x.reason), ["client"]);
    assert.deepEqual(rec.calls[0].stats, { up: 4, down: 0 });
  });

  test("backend EOF ends with reason backend; an error close ends with reason error", async () => {
    const c = new FakeConn(), b = new FakeConn();
    const rec = endRecorder();
    relay(c, b, { timeoutMs: 10000, onEnd: rec.onEnd });
    b.eof();
    assert.equal(c.ended, true);
    assert.equal(b.destroyed, true);
    await within(1000, rec.ended);
    assert.equal(rec.calls[0].reason, "backend");

    const c2 = new FakeConn(), b2 = new FakeConn();
    const rec2 = endRecorder();
    relay(c2, b2, { timeoutMs: 10000, onEnd: rec2.onEnd });
    c2.fail(new Error("ECONNRESET"));
    await within(1000, rec2.ended);
    assert.equal(rec2.calls[0].reason, "error");
    assert.equal(b2.ended, true);
  });

  test("inactivity timeout: re-armed by traffic in either direction, then fires", async () => {
    const c = new FakeConn(), b = new FakeConn();
    const rec = endRecorder();
    const t0 = Date.now();
    relay(c, b, { timeoutMs: 150, onEnd: rec.onEnd });
    for (let i = 0; i < 6; i++) {
      await sleep(50);
      if (i % 2) c.data("x");
      else b.data("y");
    }
    const lastActivity = Date.now();
    assert.equal(rec.calls.length, 0, "timed out despite activity");
    await within(2000, rec.ended);
    const r = rec.calls[0];
    assert.equal(r.reason, "timeout");
    assert.ok(c.destroyed && b.destroyed);
    assert.ok(
      r.at - lastActivity >= 140,
      `fired ${r.at - lastActivity} ms after the last activity`,
    );
    assert.ok(r.at - t0 >= 140 + 250);
  });
});

// ---------------------------------------------------------------- end to end

/**
 * client (node:net) -> proxy (runtime listener + relay) -> backend (node:net).
 * `prelude` is written to the client by the "session" before relay() starts.
 */
async function proxyTo(backendPort: number, timeoutMs: number, prelude?: Uint8Array) {
  const rec = endRecorder();
  const errors: Error[] = [];
  const l = await runtime.listen({ kind: "tcp", host: "127.0.0.1", port: 0 }, (client) => {
    runtime.connect({ kind: "tcp", host: "127.0.0.1", port: backendPort, timeoutMs: 2000 }).then(
      (backend) => {
        if (prelude) client.write(prelude);
        relay(client, backend, { timeoutMs, onEnd: rec.onEnd });
      },
      (e) => {
        errors.push(e);
        client.destroy();
      },
    );
  });
  return { l, port: (l.addr as { port: number }).port, rec, errors };
}

function listenNode(handler: (s: net.Socket) => void): Promise<net.Server> {
  const srv = net.createServer((s) => {
    s.on("error", () => {});
    handler(s);
  });
  return new Promise((r) => srv.listen(0, "127.0.0.1", () => r(srv)));
}
const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;
const closeNode = (s: net.Server) => new Promise<void>((r) => s.close(() => r()));

describe(`relay end to end over the ${runtime.name} adapter`, () => {
  test("32 MB each way through an echo backend, byte for byte, after a 1 MB prelude", async () => {
    const TOTAL = 32 * 1024 * 1024;
    const CHUNK = 256 * 1024;
    const PRE = 1024 * 1024;
    const prelude = new Uint8Array(PRE).fill(0x2a);
    const backend = await listenNode((s) => s.pipe(s));
    const proxy = await proxyTo(portOf(backend), 10000, prelude);
    try {
      const s = net.connect({ host: "127.0.0.1", port: proxy.port });
      s.on("error", () => {});
      let got = 0;
      let bad = -1;
      const doneReading = new Promise<void>((resolve) => {
        s.on("data", (d: Uint8Array) => {
          for (let k = 0; k < d.length; k++) {
            const i = got + k;
            const want = i < PRE ? 0x2a : patternByte(i - PRE);
            if (d[k] !== want && bad < 0) bad = i;
          }
          got += d.length;
          if (got >= PRE + TOTAL) resolve();
        });
      });
      let sent = 0;
      const buf = new Uint8Array(CHUNK);
      await within(
        60000,
        (async () => {
          while (sent < TOTAL) {
            const ok = s.write(fillPattern(buf, sent).slice());
            sent += CHUNK;
            if (!ok) await new Promise((r) => s.once("drain", r));
          }
        })(),
        "sending 32 MB",
      );
      await within(60000, doneReading, "receiving 32 MB");
      assert.equal(bad, -1, `first wrong byte at ${bad}`);
      assert.equal(got, PRE + TOTAL);
      s.end();
      await within(5000, proxy.rec.ended, "relay end");
      assert.equal(proxy.rec.calls.length, 1);
      assert.equal(proxy.rec.calls[0].reason, "client");
      assert.deepEqual(proxy.rec.calls[0].stats, { up: TOTAL, down: TOTAL });
      assert.deepEqual(proxy.errors, []);
    } finally {
      proxy.l.close();
      await closeNode(backend);
    }
  });

  test("backend EOF: everything it sent reaches the client, then the client is closed", async () => {
    const SIZE = 4 * 1024 * 1024;
    const backend = await listenNode((s) => {
      s.end(fillPattern(new Uint8Array(SIZE), 0));
    });
    const proxy = await proxyTo(portOf(backend), 10000);
    try {
      const s = net.connect({ host: "127.0.0.1", port: proxy.port });
      s.on("error", () => {});
      let got = 0;
      let bad = -1;
      s.on("data", (d: Uint8Array) => {
        for (let k = 0; k < d.length; k++) {
          if (d[k] !== patternByte(got + k) && bad < 0) bad = got + k;
        }
        got += d.length;
      });
      await within(10000, new Promise((r) => s.once("close", r)), "client close");
      assert.equal(got, SIZE);
      assert.equal(bad, -1);
      await within(5000, proxy.rec.ended);
      assert.equal(proxy.rec.calls[0].reason, "backend");
      assert.equal(proxy.rec.calls[0].stats.down, SIZE);
    } finally {
      proxy.l.close();
      await closeNode(backend);
    }
  });

  test("client EOF: everything it sent reaches the backend before the backend is closed", async () => {
    const SIZE = 4 * 1024 * 1024;
    let received = 0;
    let bad = -1;
    let sawEnd!: () => void;
    const backendEnded = new Promise<void>((r) => (sawEnd = r));
    const backend = await listenNode((s) => {
      s.on("data", (d: Uint8Array) => {
        for (let k = 0; k < d.length; k++) {
          if (d[k] !== patternByte(received + k) && bad < 0) bad = received + k;
        }
        received += d.length;
      });
      s.on("end", () => sawEnd());
      s.on("close", () => sawEnd());
    });
    const proxy = await proxyTo(portOf(backend), 10000);
    try {
      const s = net.connect({ host: "127.0.0.1", port: proxy.port });
      s.on("error", () => {});
      s.end(fillPattern(new Uint8Array(SIZE), 0));
      await within(10000, backendEnded, "backend end");
      assert.equal(received, SIZE);
      assert.equal(bad, -1);
      await within(5000, proxy.rec.ended);
      assert.equal(proxy.rec.calls[0].reason, "client");
      assert.equal(proxy.rec.calls[0].stats.up, SIZE);
    } finally {
      proxy.l.close();
      await closeNode(backend);
    }
  });

  test("proxy_timeout: an idle session ends with reason timeout and both sides are closed", async () => {
    let backendClosed!: () => void;
    const backendGone = new Promise<void>((r) => (backendClosed = r));
    const backend = await listenNode((s) => {
      s.write("* OK greeting\r\n");
      s.on("close", () => backendClosed());
    });
    const proxy = await proxyTo(portOf(backend), 300);
    try {
      const s = net.connect({ host: "127.0.0.1", port: proxy.port });
      s.on("error", () => {});
      let text = "";
      s.on("data", (d) => (text += String(d)));
      const t0 = Date.now();
      await within(5000, new Promise((r) => s.once("close", r)), "client close");
      await within(5000, backendGone, "backend close");
      await within(5000, proxy.rec.ended);
      assert.equal(text, "* OK greeting\r\n");
      assert.equal(proxy.rec.calls[0].reason, "timeout");
      assert.ok(Date.now() - t0 >= 280, "timed out too early");
    } finally {
      proxy.l.close();
      await closeNode(backend);
    }
  });
});
