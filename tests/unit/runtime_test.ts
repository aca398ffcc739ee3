// Runtime adapter tests: run under `deno test -A --unstable-net` (deno.ts)
// and `bun test` (bun.ts). Real sockets on 127.0.0.1 / unix sockets, ports
// from port 0; peers are node:net / node:tls (available in both runtimes).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import * as fs from "node:fs";
import { Duplex } from "node:stream";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import process from "node:process";
import type { Conn, ListenSpec, Runtime, SockAddr, TlsServerOptions } from "../../lib/runtime/types.ts";
import { RUNTIME_SUPPORT } from "../../lib/runtime/capabilities.ts";
import {
  peerCertFromDer,
  pemToDers,
  VERIFY_ERRORS_NO_CA,
  verifyLeaf,
} from "../../lib/tls/tls_verify.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const adapterPath = isBun ? "../../lib/runtime/bun/mod.ts" : "../../lib/runtime/deno/mod.ts";
const { runtime } = (await import(adapterPath)) as { runtime: Runtime };

const FIX = new URL("../fixtures/tls/", import.meta.url).pathname;
const rd = (f: string) => fs.readFileSync(FIX + f, "utf8");
const CA = rd("ca.pem");
const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------- helpers

/** Reject if `p` does not settle within `ms` (every wait in these tests is bounded). */
function within<T>(ms: number, p: Promise<T>, what = "operation"): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Attaches to a Conn and records everything it delivers. */
class Sink {
  chunks: Uint8Array[] = [];
  bytes = 0;
  events: string[] = [];
  closeError: Error | undefined;
  #waiters: { pred: () => boolean; resolve: () => void }[] = [];
  constructor(readonly conn: Conn, private onData?: (c: Uint8Array) => void, keep = true) {
    conn.attach({
      data: (c) => {
        if (keep) this.chunks.push(c.slice());
        this.bytes += c.length;
        if (this.events[this.events.length - 1] !== "data") this.events.push("data");
        this.onData?.(c);
        this.#check();
      },
      drain: () => {
        this.events.push("drain");
        this.#check();
      },
      end: () => {
        this.events.push("end");
        this.#check();
      },
      close: (e) => {
        this.events.push("close");
        this.closeError = e;
        this.#check();
      },
    });
  }
  text(): string {
    return this.chunks.map((c) => dec.decode(c)).join("");
  }
  #check() {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred()) return true;
      w.resolve();
      return false;
    });
  }
  until(pred: () => boolean, ms = 5000, what = "condition"): Promise<void> {
    if (pred()) return Promise.resolve();
    return within(ms, new Promise<void>((resolve) => this.#waiters.push({ pred, resolve })), what);
  }
  closed(ms = 5000) {
    return this.until(() => this.events.includes("close"), ms, "close event");
  }
}

/** Listen on 127.0.0.1:0 and hand accepted conns to a queue. */
async function listenLocal(spec?: { kind: "unix"; path: string }) {
  const accepted: Conn[] = [];
  const waiters: ((c: Conn) => void)[] = [];
  const l = await runtime.listen(spec ?? { kind: "tcp", host: "127.0.0.1", port: 0 }, (c) => {
    const w = waiters.shift();
    if (w) w(c);
    else accepted.push(c);
  });
  return {
    l,
    port: (l.addr as { port: number }).port,
    next(ms = 5000): Promise<Conn> {
      const c = accepted.shift();
      if (c) return Promise.resolve(c);
      return within(ms, new Promise<Conn>((r) => waiters.push(r)), "accept");
    },
  };
}

/** node:net client collecting everything it reads. */
function nodeClient(opts: net.NetConnectOpts) {
  const s = net.connect(opts);
  let buf = "";
  let ended = false;
  const waiters: (() => void)[] = [];
  const poke = () => waiters.splice(0).forEach((w) => w());
  s.on("data", (d) => {
    buf += d.toString("latin1");
    poke();
  });
  s.on("end", () => {
    ended = true;
    poke();
  });
  s.on("close", () => {
    ended = true;
    poke();
  });
  s.on("error", () => {});
  const until = (pred: () => boolean, ms = 5000) =>
    within(
      ms,
      (async () => {
        while (!pred()) await new Promise<void>((r) => waiters.push(r));
      })(),
      "node client condition",
    );
  return {
    s,
    get text() {
      return buf;
    },
    get ended() {
      return ended;
    },
    until,
  };
}

/** Deterministic, non-periodic test bytes: the value of absolute offset i. */
function patternByte(i: number): number {
  return (i ^ (i >>> 8) ^ (i >>> 16) ^ (i >>> 24)) & 0xff;
}
function fillPattern(buf: Uint8Array, offset: number): Uint8Array {
  for (let k = 0; k < buf.length; k++) buf[k] = patternByte(offset + k);
  return buf;
}

function serverTls(extra: Partial<TlsServerOptions> = {}): TlsServerOptions {
  return { certs: [{ cert: rd("server.pem"), key: rd("server.key") }], ...extra };
}

// ---------------------------------------------------------------- plain TCP

describe(`${runtime.name} adapter: plain sockets`, () => {
  test("listen on port 0 reports the real port; echo exact bytes both ways", async () => {
    const srv = await listenLocal();
    try {
      assert.equal(srv.l.addr.family, "ipv4");
      assert.ok(srv.port > 0);
      const client = await runtime.connect({
        kind: "tcp",
        host: "127.0.0.1",
        port: srv.port,
        timeoutMs: 2000,
      });
      const server = await srv.next();
      // Addresses as mailgate reports them.
      assert.deepEqual(server.local, { family: "ipv4", address: "127.0.0.1", port: srv.port });
      assert.deepEqual(client.remote, { family: "ipv4", address: "127.0.0.1", port: srv.port });
      assert.equal(
        (server.remote as { port: number }).port,
        (client.local as { port: number }).port,
      );
      assert.equal(server.tls, null);
      new Sink(server, (c) => server.write(c)); // echo
      const got = new Sink(client);
      const all = new Uint8Array(256 * 4);
      for (let i = 0; i < all.length; i++) all[i] = i & 0xff;
      assert.equal(client.write(all.subarray(0, 300)), true);
      client.write(all.subarray(300));
      await got.until(() => got.bytes >= all.length);
      const joined = new Uint8Array(got.bytes);
      let o = 0;
      for (const c of got.chunks) (joined.set(c, o), o += c.length);
      assert.deepEqual(joined, all);
      client.destroy();
      await got.closed();
      assert.deepEqual(got.events.filter((e) => e === "close"), ["close"]);
    } finally {
      srv.l.close();
    }
  });

  test("IPv6 and dual-stack: ::1 is ipv6; an IPv4 client on [::] is reported as plain IPv4", async () => {
    let l6: Awaited<ReturnType<typeof listenLocal>>["l"] | null = null;
    const accepted: Conn[] = [];
    try {
      l6 = await runtime.listen({ kind: "tcp", host: "::", port: 0 }, (c) => accepted.push(c));
    } catch {
      return; // no IPv6 on this host: nothing to check
    }
    try {
      const port = (l6.addr as { port: number }).port;
      const v4 = await runtime.connect({ kind: "tcp", host: "127.0.0.1", port, timeoutMs: 2000 });
      const v6 = await runtime.connect({ kind: "tcp", host: "[::1]", port, timeoutMs: 2000 });
      for (let i = 0; i < 100 && accepted.length < 2; i++) await sleep(10);
      assert.equal(accepted.length, 2);
      const byPort = (c: Conn) => (c.remote as { port: number }).port;
      const s4 = accepted.find((c) => byPort(c) === (v4.local as { port: number }).port)!;
      const s6 = accepted.find((c) => byPort(c) === (v6.local as { port: number }).port)!;
      assert.deepEqual({ ...s4.remote, port: 0 }, {
        family: "ipv4",
        address: "127.0.0.1",
        port: 0,
      });
      assert.deepEqual({ ...s6.remote, port: 0 }, { family: "ipv6", address: "::1", port: 0 });
      assert.deepEqual(v6.remote, { family: "ipv6", address: "::1", port });
      for (const c of [v4, v6, ...accepted]) c.destroy();
    } finally {
      l6.close();
    }
  });

  test("write() copies the caller's chunk (caller may reuse it at once)", async () => {
    const srv = await listenLocal();
    try {
      const client = await runtime.connect({ kind: "tcp", host: "127.0.0.1", port: srv.port });
      const server = await srv.next();
      const got = new Sink(server);
      const buf = enc.encode("first");
      client.write(buf);
      buf.set(enc.encode("XXXXX"));
      client.write(enc.encode("-second"));
      await got.until(() => got.bytes >= 12);
      assert.equal(got.text(), "first-second");
      client.destroy();
      await got.closed();
    } finally {
      srv.l.close();
    }
  });

  test("8 MB to a slow reader: writer sees false/drain, reader gets every byte in order", async () => {
    const TOTAL = 8 * 1024 * 1024;
    const CHUNK = 64 * 1024;
    const srv = await listenLocal();
    try {
      const client = await runtime.connect({ kind: "tcp", host: "127.0.0.1", port: srv.port });
      const server = await srv.next();
      let pos = 0;
      let bad = -1;
      let reads = 0;
      const reader = new Sink(client, (c) => {
        for (let k = 0; k < c.length; k++) {
          if (c[k] !== patternByte(pos + k) && bad < 0) bad = pos + k;
        }
        pos += c.length;
        // Slow reader: pause for a moment every 32 reads.
        if (++reads % 32 === 0) {
          client.pause();
          setTimeout(() => client.resume(), 5);
        }
      }, false);
      let falses = 0;
      let drains = 0;
      let sent = 0;
      const chunk = new Uint8Array(CHUNK);
      const writerDone = new Promise<void>((resolve) => {
        const pump = () => {
          while (sent < TOTAL) {
            const ok = server.write(fillPattern(chunk, sent));
            sent += CHUNK;
            if (!ok) {
              falses++;
              return;
            }
          }
          resolve();
        };
        server.attach({
          data() {},
          drain() {
            drains++;
            pump();
          },
          end() {},
          close() {},
        });
        pump();
      });
      await within(30000, writerDone, "writer");
      await reader.until(() => reader.bytes >= TOTAL, 30000, "all bytes");
      assert.equal(reader.bytes, TOTAL);
      assert.equal(bad, -1, `first wrong byte at ${bad}`);
      assert.ok(falses > 0, "write() never returned false");
      assert.equal(drains, falses, "one drain per false");
      client.destroy();
      await reader.closed();
    } finally {
      srv.l.close();
    }
  });

  test("pause() stops data until resume(); nothing is lost", async () => {
    const srv = await listenLocal();
    try {
      const c = nodeClient({ host: "127.0.0.1", port: srv.port });
      const server = await srv.next();
      const got = new Sink(server);
      c.s.write("one");
      await got.until(() => got.bytes >= 3);
      server.pause();
      c.s.write("two");
      await sleep(150);
      assert.equal(got.text(), "one", "data arrived while paused");
      c.s.write("three");
      await sleep(50);
      server.resume();
      await got.until(() => got.bytes >= 11);
      assert.equal(got.text(), "onetwothree");
      c.s.destroy();
      await got.closed();
    } finally {
      srv.l.close();
    }
  });

  test("EOF from the peer: data, then end, then close (once); end() flushes before closing", async () => {
    const srv = await listenLocal();
    try {
      const c = nodeClient({ host: "127.0.0.1", port: srv.port });
      const server = await srv.next();
      const got = new Sink(server);
      c.s.end("last words");
      await got.closed();
      assert.deepEqual(got.events, ["data", "end", "close"]);
      assert.equal(got.text(), "last words");
      assert.equal(got.closeError, undefined);

      // end(): everything queued is written, then the connection closes.
      const c2 = nodeClient({ host: "127.0.0.1", port: srv.port });
      const s2 = await srv.next();
      const s2sink = new Sink(s2);
      const big = fillPattern(new Uint8Array(1024 * 1024), 0);
      s2.write(big);
      s2.write(enc.encode("END"));
      s2.end();
      assert.equal(s2.write(enc.encode("ignored")), true);
      await c2.until(() => c2.ended, 10000);
      assert.equal(c2.text.length, big.length + 3);
      assert.equal(c2.text.slice(-3), "END");
      await s2sink.closed();
      assert.deepEqual(s2sink.events, ["close"]);
    } finally {
      srv.l.close();
    }
  });

  test("attach() replaces the handlers; a later attach on a closed conn still hears close", async () => {
    const srv = await listenLocal();
    try {
      const c = nodeClient({ host: "127.0.0.1", port: srv.port });
      const server = await srv.next();
      const first = new Sink(server);
      c.s.write("a");
      await first.until(() => first.bytes === 1);
      const second = new Sink(server);
      c.s.write("b");
      await second.until(() => second.bytes === 1);
      assert.equal(first.text(), "a");
      assert.equal(second.text(), "b");
      c.s.destroy();
      await second.closed();
      assert.ok(!first.events.includes("close"));
      const third = new Sink(server);
      await third.closed(1000);
    } finally {
      srv.l.close();
    }
  });

  test("peer reset while writing becomes a close event (no crash, no rejection)", async () => {
    const srv = await listenLocal();
    try {
      const c = nodeClient({ host: "127.0.0.1", port: srv.port });
      const server = await srv.next();
      const got = new Sink(server);
      c.s.on("data", () => c.s.resetAndDestroy());
      const chunk = new Uint8Array(256 * 1024);
      for (let i = 0; i < 64 && !got.events.includes("close"); i++) {
        server.write(chunk);
        await sleep(5);
      }
      await got.closed();
      assert.equal(got.events.filter((e) => e === "close").length, 1);
    } finally {
      srv.l.close();
    }
  });

  test("connect to a closed port rejects cleanly", async () => {
    const srv = await listenLocal();
    const port = srv.port;
    srv.l.close();
    await sleep(20);
    await assert.rejects(
      within(5000, runtime.connect({ kind: "tcp", host: "127.0.0.1", port, timeoutMs: 2000 })),
      (e: Error) => !/timed out/.test(e.message),
    );
  });

  test("connect timeout: rejects with 'timed out' after timeoutMs", async () => {
    // A loopback listener whose accept queue is full: the kernel drops SYNs,
    // so a connect hangs (no traffic leaves the machine). The listener lives
    // in a node child process that blocks its event loop so it never accepts.
    const child = spawn("node", [
      "-e",
      `const net=require("net"),fs=require("fs");const s=net.createServer();
       s.listen({host:"127.0.0.1",port:0,backlog:1},()=>{fs.writeSync(1,s.address().port+"\\n");
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,8000);process.exit(0);});`,
    ], { stdio: ["ignore", "pipe", "inherit"] });
    const fillers: net.Socket[] = [];
    try {
      const port = await within(
        5000,
        new Promise<number>((resolve, reject) => {
          child.stdout!.once("data", (d) => resolve(Number(String(d).trim())));
          child.once("error", reject);
        }),
        "child listener",
      );
      for (let i = 0; i < 4; i++) {
        const f = net.connect({ host: "127.0.0.1", port });
        f.on("error", () => {});
        fillers.push(f);
      }
      await sleep(200);
      const t0 = Date.now();
      await assert.rejects(
        within(5000, runtime.connect({ kind: "tcp", host: "127.0.0.1", port, timeoutMs: 300 })),
        /timed out/,
      );
      const took = Date.now() - t0;
      assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
    } finally {
      for (const f of fillers) f.destroy();
      child.kill("SIGKILL");
      await within(
        5000,
        new Promise((r) =>
          child.exitCode !== null || child.signalCode !== null ? r(0) : child.once("exit", r)
        ),
      );
    }
  });

  test("unix sockets: listen, connect, echo, addresses", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailgate-rt-"));
    const p = path.join(dir, "s.sock");
    const srv = await listenLocal({ kind: "unix", path: p });
    try {
      assert.deepEqual(srv.l.addr, { family: "unix", path: p } satisfies SockAddr);
      const client = await runtime.connect({ kind: "unix", path: p, timeoutMs: 2000 });
      const server = await srv.next();
      assert.equal(server.remote.family, "unix");
      assert.equal(client.remote.family, "unix");
      new Sink(server, (c) => server.write(c));
      const got = new Sink(client);
      client.write(enc.encode("over unix"));
      await got.until(() => got.bytes >= 9);
      assert.equal(got.text(), "over unix");
      client.end();
      await got.closed();
    } finally {
      srv.l.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- TLS

/**
 * How the server upgrades after reading "a STARTTLS":
 * - "sync": pause, reply and startTls inside the data handler;
 * - "paused": reply later from a timer after pause(), startTls 60 ms after
 *   that (the ClientHello arrives while paused: held bytes must go to TLS);
 * - "inflight": reply later from a timer and call startTls at once without
 *   pausing (the read already in flight returns the ClientHello).
 */
type UpgradeMode = "sync" | "paused" | "inflight";

/** A plaintext+STARTTLS server on our adapter; returns what the app saw. */
async function starttlsServer(opts: { mode: UpgradeMode; tlsOptions: TlsServerOptions }) {
  const srv = await listenLocal();
  const seen = {
    plain: [] as string[],
    tls: [] as string[],
    info: null as unknown,
    error: null as Error | null,
  };
  const done = (async () => {
    const conn = await srv.next();
    conn.write(enc.encode("* OK ready\r\n"));
    let upgraded = false;
    const handshake = new Promise<void>((resolve) => {
      const go = () =>
        conn.startTls(opts.tlsOptions).then((info) => {
          seen.info = info;
          conn.resume();
          resolve();
        }, (e) => {
          seen.error = e;
          resolve();
        });
      conn.attach({
        data(c) {
          const s = dec.decode(c);
          if (!upgraded) {
            seen.plain.push(s);
            if (s.startsWith("a STARTTLS\r\n")) {
              // The rest of this chunk (pipelined injection) is discarded, as the session does.
              upgraded = true;
              if (opts.mode === "sync") {
                conn.pause();
                conn.write(enc.encode("a OK begin TLS\r\n"));
                go();
              } else {
                setTimeout(() => {
                  if (opts.mode === "paused") conn.pause();
                  conn.write(enc.encode("a OK begin TLS\r\n"));
                  if (opts.mode === "paused") setTimeout(go, 60);
                  else go();
                }, 20);
              }
            }
          } else {
            seen.tls.push(s);
            conn.write(enc.encode("PONG " + s));
          }
        },
        drain() {},
        end() {},
        close() {
          resolve();
        },
      });
    });
    await handshake;
    return conn;
  })();
  return { srv, seen, done };
}

/** node:net client that sends STARTTLS with pipelined injection, then TLS. */
async function starttlsClient(port: number, extra: tls.ConnectionOptions = {}) {
  const s = net.connect({ host: "127.0.0.1", port });
  s.on("error", () => {});
  let text = "";
  await within(
    5000,
    new Promise<void>((resolve) => {
      const onData = (d: Uint8Array) => {
        text += dec.decode(d);
        if (text.includes("* OK ready\r\n") && !text.includes("STARTTLS sent")) {
          text += "STARTTLS sent";
          s.write("a STARTTLS\r\nINJECTED\r\n");
        }
        if (text.includes("a OK begin TLS\r\n")) {
          s.off("data", onData);
          resolve();
        }
      };
      s.on("data", onData);
    }),
    "STARTTLS reply",
  );
  const t = tls.connect({ socket: s, servername: "localhost", ca: CA, ...extra });
  t.on("error", () => {});
  await within(
    5000,
    new Promise<void>((resolve, reject) => {
      t.once("secureConnect", () => resolve());
      t.once("error", reject);
      t.once("close", () => reject(new Error("closed during handshake")));
    }),
    "client handshake",
  );
  return t;
}

function tlsRoundTrip(t: tls.TLSSocket, line: string): Promise<string> {
  return within(
    5000,
    new Promise<string>((resolve) => {
      let got = "";
      t.on("data", (d) => {
        got += String(d);
        if (got.endsWith("\r\n")) resolve(got);
      });
      t.write(line);
    }),
    "TLS round trip",
  );
}

describe(`${runtime.name} adapter: TLS`, () => {
  for (const mode of ["sync", "paused", "inflight"] as const) {
    test(`server STARTTLS with pipelined injection (upgrade: ${mode})`, async () => {
      const { srv, seen, done } = await starttlsServer({ mode, tlsOptions: serverTls() });
      try {
        const t = await starttlsClient(srv.port);
        const conn = await within(5000, done, "server handshake");
        assert.equal(seen.error, null);
        const reply = await tlsRoundTrip(t, "PING\r\n");
        assert.equal(reply, "PONG PING\r\n");
        assert.equal(seen.plain.join(""), "a STARTTLS\r\nINJECTED\r\n");
        assert.deepEqual(seen.tls, ["PING\r\n"], "plaintext seen after the handshake");
        const info = conn.tls!;
        assert.match(info.protocol, /^TLSv1\.[23]$/);
        assert.ok(info.cipher.length > 0);
        assert.equal(info.servername, "localhost");
        assert.equal(info.peerCert, null);
        t.destroy();
        const closed = new Sink(conn);
        await closed.closed();
      } finally {
        srv.l.close();
      }
    });
  }

  test("implicit TLS at byte 0 (read already in flight), greeting inside TLS; data/end/close semantics", async () => {
    const srv = await listenLocal();
    try {
      const t = tls.connect({ host: "127.0.0.1", port: srv.port, servername: "localhost", ca: CA });
      t.on("error", () => {});
      let got = "";
      t.on("data", (d) => (got += String(d)));
      const conn = await srv.next();
      // Handlers first (reading starts), then TLS: the ClientHello comes back
      // from the read that is already pending and must reach the TLS layer.
      const early: string[] = [];
      conn.attach({ data: (c) => early.push(dec.decode(c)), drain() {}, end() {}, close() {} });
      const info = await within(5000, conn.startTls(serverTls()), "handshake");
      assert.deepEqual(early, []);
      assert.match(info.protocol, /^TLSv1\.[23]$/);
      assert.ok(info.cipher.length > 0);
      const sink = new Sink(conn, (c) => conn.write(c));
      conn.write(enc.encode("* OK greeting\r\n"));
      await within(
        5000,
        (async () => {
          while (!got.includes("* OK greeting\r\n")) await sleep(5);
        })(),
      );
      t.write("echo me\r\n");
      await within(
        5000,
        (async () => {
          while (!got.includes("echo me\r\n")) await sleep(5);
        })(),
      );
      // 1 MB through TLS with backpressure, checked.
      const big = fillPattern(new Uint8Array(1024 * 1024), 0);
      let received = 0;
      let bad = -1;
      t.removeAllListeners("data");
      t.on("data", (d: Uint8Array) => {
        for (let k = 0; k < d.length; k++) {
          if (d[k] !== patternByte(received + k) && bad < 0) bad = received + k;
        }
        received += d.length;
      });
      let off = 0;
      while (off < big.length) {
        const ok = conn.write(big.subarray(off, off + 65536));
        off += 65536;
        if (!ok) await sink.until(() => sink.events.includes("drain"), 5000, "drain");
        sink.events = sink.events.filter((e) => e !== "drain");
      }
      await within(
        10000,
        (async () => {
          while (received < big.length) await sleep(5);
        })(),
      );
      assert.equal(bad, -1);
      t.end();
      await sink.closed();
      assert.deepEqual(sink.events.filter((e) => e !== "data"), ["end", "close"]);
    } finally {
      srv.l.close();
    }
  });

  test("end() right after a large write over TLS: every byte arrives before the close", async () => {
    const SIZE = 2 * 1024 * 1024;
    const srv = await listenLocal();
    try {
      const t = tls.connect({ host: "127.0.0.1", port: srv.port, servername: "localhost", ca: CA });
      t.on("error", () => {});
      let received = 0;
      let bad = -1;
      t.on("data", (d: Uint8Array) => {
        for (let k = 0; k < d.length; k++) {
          if (d[k] !== patternByte(received + k) && bad < 0) bad = received + k;
        }
        received += d.length;
      });
      const clientClosed = new Promise((r) => t.once("close", r));
      const conn = await srv.next();
      await within(5000, conn.startTls(serverTls()), "handshake");
      const sink = new Sink(conn);
      conn.write(fillPattern(new Uint8Array(SIZE), 0));
      conn.end();
      await within(10000, clientClosed, "client close");
      assert.equal(received, SIZE);
      assert.equal(bad, -1);
      await sink.closed();
    } finally {
      srv.l.close();
    }
  });

  test("ALPN: the listener's protocol is selected; a foreign-only offer fails; no offer is fine", async () => {
    const srv = await listenLocal();
    try {
      const attempt = async (alpn: string[] | undefined) => {
        const t = tls.connect({
          host: "127.0.0.1",
          port: srv.port,
          servername: "localhost",
          ca: CA,
          ALPNProtocols: alpn,
        });
        t.on("error", () => {});
        const conn = await srv.next();
        const server = conn.startTls(serverTls({ alpn: "imap", cacheKey: "alpn-test" })).then(
          (i) => i,
          (e: Error) => e,
        );
        const client = await within(
          5000,
          new Promise<string | false | null | Error>((resolve) => {
            t.once("secureConnect", () => resolve(t.alpnProtocol ?? null));
            t.once("error", (e) => resolve(e));
            t.once("close", () => resolve(new Error("closed")));
          }),
        );
        const s = await within(5000, server);
        t.destroy();
        conn.destroy();
        return { client, server: s };
      };
      const ok = await attempt(["imap"]);
      assert.equal(ok.client, "imap");
      assert.equal((ok.server as { alpn: string }).alpn, "imap");
      const bad = await attempt(["pop3"]);
      assert.ok(bad.client instanceof Error, "handshake with foreign ALPN succeeded");
      assert.ok(bad.server instanceof Error);
      const none = await attempt(undefined);
      assert.ok(!(none.client instanceof Error));
      assert.equal((none.server as { alpn: string | null }).alpn, null);
    } finally {
      srv.l.close();
    }
  });

  test("RSA + ECDSA pairs: the client gets a certificate it can verify", async () => {
    // The client is a Node child process: it honours `sigalgs`, so it can
    // be made RSA-only or ECDSA-only (the in-process node:tls may not).
    const srv = await listenLocal();
    const rsa = { cert: rd("server.pem"), key: rd("server.key") };
    const ec = { cert: EC_CERT, key: EC_KEY };
    const attempt = async (certs: TlsServerOptions["certs"], sigalgs: string | null) => {
      const script =
        `const tls=require("tls");const c=tls.connect({host:"127.0.0.1",port:${srv.port},
        servername:"localhost",ca:process.env.CA${
          sigalgs ? `,sigalgs:${JSON.stringify(sigalgs)}` : ""
        }});c.once("data",()=>{
        const p=c.getPeerCertificate();console.log(p.asn1Curve?"ec":"rsa");c.destroy();});
        c.on("error",(e)=>{console.log("error "+e.message);});`;
      const child = spawn("node", ["-e", script], {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, CA },
      });
      let out = "";
      child.stdout!.on("data", (d) => (out += String(d)));
      const exited = new Promise((r) => child.once("exit", r));
      const conn = await srv.next(10000);
      const info = await within(
        10000,
        conn.startTls({ certs }).catch((e: Error) => e),
        "handshake",
      );
      // The client reads the certificate once the server has spoken.
      conn.write(enc.encode("* OK\r\n"));
      await within(10000, exited, "client exit");
      conn.destroy();
      assert.ok(!(info instanceof Error), String(info));
      return out.trim();
    };
    try {
      assert.equal(await attempt([rsa, ec], "ecdsa_secp256r1_sha256"), "ec");
      assert.equal(await attempt([rsa, ec], "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"), "rsa");
      assert.equal(await attempt([ec, rsa], "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"), "rsa");
      assert.equal(await attempt([rsa, ec], null), "ec", "ECDSA is preferred, as with OpenSSL");
    } finally {
      srv.l.close();
    }
  });

  test("an encrypted private key is opened with its pass phrase", async () => {
    const srv = await listenLocal();
    try {
      const t = tls.connect({ host: "127.0.0.1", port: srv.port, servername: "localhost", ca: CA });
      t.on("error", () => {});
      const conn = await srv.next();
      const info = await within(
        5000,
        conn.startTls({
          certs: [{ cert: rd("server.pem"), key: rd("server_enc.key"), passphrase: "mailgate" }],
        }),
      );
      assert.match(info.protocol, /^TLSv1\.[23]$/);
      t.destroy();
      conn.destroy();
    } finally {
      srv.l.close();
    }
  });

  test("client certificates: verified, self-signed, none", async () => {
    const srv = await listenLocal();
    try {
      const opts = serverTls({ ca: CA, requestCert: true, cacheKey: "cc-test" });
      const attempt = async (cert?: string) => {
        const t = tls.connect({
          host: "127.0.0.1",
          port: srv.port,
          servername: "localhost",
          ca: CA,
          ...(cert ? { cert: rd(cert + ".pem"), key: rd(cert + ".key") } : {}),
        });
        t.on("error", () => {});
        const conn = await srv.next();
        const info = await within(5000, conn.startTls(opts));
        t.destroy();
        conn.destroy();
        return info;
      };
      const good = await attempt("client");
      assert.equal(good.peerCert?.subject, "CN=client.example.com");
      assert.equal(good.peerCert?.issuer, "CN=mailgate test CA");
      assert.equal(good.peerCert?.serial, "56D85FFEA0B668432CEF62E1E5B6B196AEF73FCB");
      assert.match(good.peerCert!.fingerprint, /^[0-9a-f]{40}$/);
      assert.equal(good.peerCert?.pem, rd("client.pem"));
      assert.equal(good.verifyError, null);
      const self = await attempt("selfsigned");
      assert.equal(self.peerCert?.subject, "CN=1.example.com");
      assert.equal(self.verifyError, "self-signed certificate");
      assert.ok(VERIFY_ERRORS_NO_CA.has(self.verifyError!));
      const none = await attempt(undefined);
      assert.equal(none.peerCert, null);
      assert.equal(none.verifyError, null);
    } finally {
      srv.l.close();
    }
  });

  test("client side: connect({tls}) verifies against the CA; wrong CA rejects; verify off accepts", async () => {
    const server = tls.createServer({ cert: rd("server.pem"), key: rd("server.key") }, (s) => {
      s.on("error", () => {});
      s.end("* OK hello over TLS\r\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const c = await runtime.connect({
        kind: "tcp",
        host: "127.0.0.1",
        port,
        timeoutMs: 3000,
        tls: { servername: "localhost", ca: CA, verify: true },
      });
      assert.match(c.tls!.protocol, /^TLSv1\.[23]$/);
      assert.equal(c.tls!.peerCert?.subject, "CN=localhost");
      assert.equal(c.tls!.verifyError, null);
      const sink = new Sink(c);
      await sink.closed();
      assert.equal(sink.text(), "* OK hello over TLS\r\n");

      await assert.rejects(within(
        5000,
        runtime.connect({
          kind: "tcp",
          host: "127.0.0.1",
          port,
          timeoutMs: 3000,
          tls: { servername: "localhost", ca: rd("other.pem"), verify: true },
        }),
      ));
      await assert.rejects(within(
        5000,
        runtime.connect({
          kind: "tcp",
          host: "127.0.0.1",
          port,
          timeoutMs: 3000,
          tls: { servername: "wrong.example", ca: CA, verify: true },
        }),
      ));
      const lax = await runtime.connect({
        kind: "tcp",
        host: "127.0.0.1",
        port,
        timeoutMs: 3000,
        tls: { servername: "localhost", ca: rd("other.pem"), verify: false },
      });
      assert.equal(lax.tls!.peerCert?.subject, "CN=localhost");
      const s2 = new Sink(lax);
      await s2.closed();
    } finally {
      server.close();
    }
  });

  test("client side: startTlsClient after a plaintext exchange (STARTTLS to a backend)", async () => {
    const server = net.createServer((raw) => {
      raw.on("error", () => {});
      raw.write("220 ready\r\n");
      raw.once("data", () => {
        raw.write("220 go ahead\r\n");
        const t = new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: tls.createSecureContext({ cert: rd("server.pem"), key: rd("server.key") }),
        });
        t.on("error", () => {});
        t.on("data", (d) => t.end("250 " + String(d)));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const c = await runtime.connect({ kind: "tcp", host: "127.0.0.1", port, timeoutMs: 3000 });
      let phase = 0;
      const sink = new Sink(c, (d) => {
        const s = dec.decode(d);
        if (phase === 0 && s.includes("220 ready")) {
          phase = 1;
          c.write(enc.encode("STARTTLS\r\n"));
        } else if (phase === 1 && s.includes("220 go ahead")) {
          phase = 2;
          c.startTlsClient({ servername: "localhost", ca: CA, verify: true }).then(() => {
            phase = 3;
            c.write(enc.encode("EHLO x\r\n"));
          }, () => {});
        }
      });
      await sink.closed();
      assert.equal(phase, 3);
      assert.match(sink.text(), /220 go ahead\r\n250 EHLO x\r\n$/);
      assert.equal(c.tls!.peerCert?.subject, "CN=localhost");
    } finally {
      server.close();
    }
  });
});

// ---------------------------------------------------------------- certificate details

// CN with RFC 2253 specials, a multi-valued RDN, UTF-8, emailAddress, a
// serial with a sign byte. Expected strings from
// `openssl x509 -noout -subject -serial -fingerprint -sha1 -nameopt RFC2253`.
const DN_CERT = `-----BEGIN CERTIFICATE-----
MIIDQTCCAikCCQDAetVrhGtb/zANBgkqhkiG9w0BAQsFADAbMRkwFwYDVQQDDBBt
YWlsZ2F0ZSB0ZXN0IENBMCAXDTI2MTEyMjAyMjQ0M1oYDzIxMjYxMDI5MDIyNDQz
WjCBpzELMAkGA1UEBhMCREUxFjAUBgNVBAoMDUV4YW1wbGUsIEluYy4xIDALBgNV
BAsMBE1haWwwEQYKCZImiZPyLGQBAQwDb3BzMRUwEwYDVQQLDAxSw6lzZWF1ICLO
sSIxIDAeBgNVBAMMFyNjbGllbnQuZXhhbXBsZS5jb207IHggMSUwIwYJKoZIhvcN
AQkBFhZwb3N0bWFzdGVyQGV4YW1wbGUuY29tMIIBIjANBgkqhkiG9w0BAQEFAAOC
AQ8AMIIBCgKCAQEAp53x0ZaPF8QINYzOmxqR7+C9aQhENTv+QwUi5G72WGDp6Tlv
JIwv8SFr4OarsyFrQankdTN1/45TpkNX71u/HxXXt0KuwALs+P4suRVgAyE7tf+8
cBORS9MorsQTib0jvvu7s7oUZsyX47A/O4bNP4IRVX75D8avAoDf6FBZtSSBdPv6
OwJgFCx7K8o4oGcoFUFcQ4WptYkqysWHncfKa740yTXjOK9FAHqc8+MuUqTD/Ct2
+iyXFbClVjlybNRIJ5GECok1dK28SfiTOurYcJIyIgLnsFIl45l0HOoYOzUUyQ/t
9/fvuy1v0ciO5amY9LaP6fl6rn2XyQpEYTprAwIDAQABMA0GCSqGSIb3DQEBCwUA
A4IBAQBT/8ThPGDjjS+QxFW+qbIiL+pJg5sqZG8plW0daPtGU9onbF/Te1kaPFbk
bD8k+ptoQ7xptAl0239lJ9BismbBJJUfl2j08Tob/xcjI/0E3Y7cxVDI6AVSWIlD
ENpj1tttBU4eKd1b2f7yn2hGYArZr7sTUvclRSxZSf6Ov4LBtOCsBbLkHdAa4Efv
hZtE0vNpD+wPdfW+AKglTYe/TKysq4gSShybTdzPAa7NMFs+uAtcBzE9XxxiLS8v
5PgQU8g6wLcbNV2Jq3oKZjZ5ZzDg/JKsg9tcwbsAaI4qpHphMuJ+G5DWtlaucxYE
wtJM+mhKE83yXSyPY1rZzgilhi3H
-----END CERTIFICATE-----
`;

// A P-256 server certificate (CN=localhost, SAN localhost/127.0.0.1) signed
// by the fixture CA, for the RSA + ECDSA test.
const EC_CERT = `-----BEGIN CERTIFICATE-----
MIICTDCCATSgAwIBAgIDDs1aMA0GCSqGSIb3DQEBCwUAMBsxGTAXBgNVBAMMEG1h
aWxnYXRlIHRlc3QgQ0EwIBcNMjYxMTIyMDIzNjEzWhgPMjEyNjEwMjkwMjM2MTNa
MBQxEjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA
BMiWF+C204NmQEQ9dkVFvSTTYLmrurc2pyCGFWSHRz/faOiBBwzfyj+6ZirukYo4
gHwmMN5aUmw+wbyUz3abwtSjaTBnMBoGA1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAA
ATAJBgNVHRMEAjAAMB0GA1UdDgQWBBSnj4lAwplnbFTNZFT0ZZgRgVYiXDAfBgNV
HSMEGDAWgBR+yOya3vJ6j3vf6r/J6HMG7SzDuTANBgkqhkiG9w0BAQsFAAOCAQEA
W0oJMeVQmusKpNSLX6EQDOFa7Eb61EpP1sZh+t6lyWWB3yqEQ93mo0q0776qzLrW
txFKIPzBOUWqvjyutQfnHKmjIVqDLx54jBl/F5s9X53Z0t9eWc6jmH//OTzB0feV
v1HWN3W6C9OLntah6cHeUkBwUsV73KzVb7c0vCG2Yxg0ghAW5TbU3tFI8lXSz3u2
JlJPV4lxHiZRPUZVWAobA4as4g59WSM/3aN/h1ZA2fBBcSz2ti+leu6zu9/PzVHr
2x7jEt4I7kCqqwbi2TNgg8NKbIty245YJtfvzlLf8eS89SwXUwNe3SwK4CF0OYtt
JlkUgaYrXdUOy2W3kZ98OQ==
-----END CERTIFICATE-----
`;
const EC_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg9WUpSSQo09zTVJwv
nOF+AxFaER9c8rIsmHRagCrqnmuhRANCAATIlhfgttODZkBEPXZFRb0k02C5q7q3
NqcghhVkh0c/32jogQcM38o/umYq7pGKOIB8JjDeWlJsPsG8lM92m8LU
-----END PRIVATE KEY-----
`;

describe("peer certificate details and verification", () => {
  test("subject/issuer in OpenSSL RFC 2253 form, serial, fingerprint, PEM", () => {
    const der = pemToDers(DN_CERT)[0];
    const pc = peerCertFromDer(der)!;
    assert.equal(
      pc.subject,
      'emailAddress=postmaster@example.com,CN=\\#client.example.com\\; x\\ ,OU=R\\C3\\A9seau \\"\\CE\\B1\\",UID=ops+OU=Mail,O=Example\\, Inc.,C=DE',
    );
    assert.equal(pc.issuer, "CN=mailgate test CA");
    assert.equal(pc.serial, "C07AD56B846B5BFF");
    assert.equal(pc.fingerprint, "5f0f5635d692f78113efe2c8bccec009789e1328");
    assert.equal(pc.pem, DN_CERT);
    assert.equal(peerCertFromDer(new Uint8Array([0x30, 0x03, 1, 2])), null);
  });

  test("own chain verification gives OpenSSL's reasons", () => {
    const der = pemToDers(DN_CERT)[0];
    const self = pemToDers(rd("selfsigned.pem"))[0];
    assert.equal(verifyLeaf(der, CA), null);
    assert.equal(verifyLeaf(der, CA, new Date("2200-01-01T00:00:00Z")), "certificate has expired");
    assert.equal(
      verifyLeaf(der, CA, new Date("2000-01-01T00:00:00Z")),
      "certificate is not yet valid",
    );
    assert.equal(verifyLeaf(self, CA), "self-signed certificate");
    assert.equal(verifyLeaf(self, rd("selfsigned.pem")), null); // trusted as given
    assert.equal(verifyLeaf(der, rd("other.pem")), "unable to verify the first certificate");
    assert.equal(verifyLeaf(der, undefined), "unable to verify the first certificate");
  });
});

// ---------------------------------------------------------------- process services

// ---------------------------------------------------------------- listen parameters

/** `ss` (iproute2) shows keep-alive timers and listen backlogs; absent = those checks are skipped. */
const HAS_SS = (() => {
  try {
    return spawnSync("ss", ["-V"]).status === 0;
  } catch {
    return false;
  }
})();
const NO_SS = HAS_SS ? false : "ss (iproute2) is not installed";

function ss(args: string[]): string {
  return spawnSync("ss", args, { encoding: "utf8" }).stdout ?? "";
}

/** A connection through the adapter: the server side of it, and the client socket. */
async function acceptOne(spec: ListenSpec, host = "127.0.0.1") {
  const accepted: Conn[] = [];
  const l = await runtime.listen(spec, (c) => accepted.push(c));
  const port = (l.addr as { port: number }).port;
  const c = nodeClient({ host, port });
  await within(5000, (async () => {
    while (accepted.length === 0) await sleep(10);
  })(), "accept");
  return { l, port, conn: accepted[0], client: c };
}

/** The keep-alive timer of the accepted (server) side of a loopback connection, or null. */
function keepaliveTimer(serverPort: number, clientPort: number): string | null {
  const out = ss(["-tno", "state", "established", `( sport = :${serverPort} and dport = :${clientPort} )`]);
  const m = /timer:\(keepalive,([^,]+),/.exec(out);
  return m ? m[1] : null;
}

describe(`${runtime.name} adapter: listen parameters`, () => {
  test("so_keepalive: on with the system timers, off, and (Bun) the idle time", { skip: NO_SS }, async () => {
    for (const [keepalive, want] of [
      [true, /min$/], // the system's 2 h
      [false, null],
      [{ idleSec: 30, intvlSec: null, cnt: null }, RUNTIME_SUPPORT[runtime.name].listen.keepaliveIdle ? /sec$/ : /min$/],
    ] as const) {
      const { l, port, conn, client } = await acceptOne({ kind: "tcp", host: "127.0.0.1", port: 0, keepalive });
      try {
        await sleep(50);
        const timer = keepaliveTimer(port, client.s.localPort!);
        if (want === null) assert.equal(timer, null, `keepalive ${JSON.stringify(keepalive)}`);
        else assert.match(timer ?? "none", want, `keepalive ${JSON.stringify(keepalive)}`);
      } finally {
        client.s.destroy();
        conn.destroy();
        l.close();
      }
    }
  });

  test("no so_keepalive: the socket is left as the system made it (no timer)", { skip: NO_SS }, async () => {
    const { l, port, conn, client } = await acceptOne({ kind: "tcp", host: "127.0.0.1", port: 0 });
    try {
      await sleep(50);
      assert.equal(keepaliveTimer(port, client.s.localPort!), null);
    } finally {
      client.s.destroy();
      conn.destroy();
      l.close();
    }
  });

  test("backlog: applied where the runtime can (Deno), else the runtime's own (Bun: 512)", { skip: NO_SS }, async () => {
    const l = await runtime.listen({ kind: "tcp", host: "127.0.0.1", port: 0, backlog: 37 }, (c) => c.destroy());
    try {
      const port = (l.addr as { port: number }).port;
      const line = ss(["-ltn", `( sport = :${port} )`]).split("\n").find((x) => x.includes(`:${port}`)) ?? "";
      const sendQ = Number(line.trim().split(/\s+/)[2]);
      assert.equal(sendQ, RUNTIME_SUPPORT[runtime.name].listen.backlog ? 37 : 512, line);
    } finally {
      l.close();
    }
  });

  test("[::] with ipv6only and 0.0.0.0 on the same port: both open, each family to its own listen", async () => {
    const got6: Conn[] = [];
    const got4: Conn[] = [];
    let l6;
    try {
      l6 = await runtime.listen({ kind: "tcp", host: "::", port: 0, ipv6only: true }, (c) => got6.push(c));
    } catch {
      return; // no IPv6 on this host: nothing to check
    }
    const port = (l6.addr as { port: number }).port;
    const l4 = await runtime.listen({ kind: "tcp", host: "0.0.0.0", port }, (c) => got4.push(c));
    try {
      assert.deepEqual(l4.addr, { family: "ipv4", address: "0.0.0.0", port });
      const a = nodeClient({ host: "127.0.0.1", port });
      const b = nodeClient({ host: "::1", port });
      await within(5000, (async () => {
        while (got4.length + got6.length < 2) await sleep(10);
      })(), "two accepts");
      assert.equal(got4.length, 1);
      assert.equal(got6.length, 1);
      assert.equal(got4[0].remote.family, "ipv4");
      assert.equal(got6[0].remote.family, "ipv6");
      for (const c of [...got4, ...got6]) c.destroy();
      a.s.destroy();
      b.s.destroy();
      // The IPv4 listen closes; [::] stays IPv6-only.
      l4.close();
      const c = nodeClient({ host: "127.0.0.1", port });
      await c.until(() => c.ended);
      assert.equal(c.text, "");
      await sleep(50);
      assert.equal(got4.length + got6.length, 2, "an IPv4 client reached a listener after its listen closed");
    } finally {
      l4.close();
      l6.close();
    }
  });

  test("[::] with ipv6only alone: IPv4 clients are not served; without ipv6only the socket is dual-stack", async () => {
    const got: Conn[] = [];
    let l6;
    try {
      l6 = await runtime.listen({ kind: "tcp", host: "::", port: 0, ipv6only: true }, (c) => got.push(c));
    } catch {
      return; // no IPv6 on this host
    }
    try {
      const port = (l6.addr as { port: number }).port;
      const c = nodeClient({ host: "127.0.0.1", port });
      // Bun: refused; Deno (no ipv6only option): accepted and closed at once.
      await c.until(() => c.ended);
      await sleep(50);
      assert.equal(got.length, 0);
      const d = nodeClient({ host: "::1", port });
      await within(5000, (async () => {
        while (got.length === 0) await sleep(10);
      })(), "IPv6 accept");
      d.s.destroy();
      got[0].destroy();
    } finally {
      l6.close();
    }
  });
});

// ---------------------------------------------------------------- TLS settings

const SET = new URL("../fixtures/tls_settings/", import.meta.url).pathname;
const rs = (f: string) => fs.readFileSync(SET + f, "utf8");
const gc = () => (globalThis as { Bun?: { gc?(force: boolean): void } }).Bun?.gc?.(true);

/** A TLS server on the adapter: every connection gets startTls(opts), then "* OK" (or its TlsInfo). */
async function tlsServer(opts: TlsServerOptions) {
  const infos: (import("../../lib/runtime/types.ts").TlsInfo | Error)[] = [];
  const l = await runtime.listen({ kind: "tcp", host: "127.0.0.1", port: 0 }, (c) => {
    c.attach({ data() {}, drain() {}, end() {}, close() {} });
    c.startTls(opts).then((info) => {
      infos.push(info);
      c.write(enc.encode("* OK\r\n"));
    }, (e) => infos.push(e));
  });
  return { l, port: (l.addr as { port: number }).port, infos };
}

/** Node (OpenSSL) is the reference TLS client for resumption (see resume_client.mjs). */
const HAS_NODE = (() => {
  try {
    return spawnSync("node", ["--version"]).status === 0;
  } catch {
    return false;
  }
})();
const NO_NODE = HAS_NODE ? false : "node is not installed (the reference TLS client)";

interface Probe {
  reused?: boolean;
  cipher?: string;
  protocol?: string;
  error?: string;
}

/** Connections in sequence by the Node client, each offering the previous session. */
function nodeProbe(args: Record<string, unknown>, gapsMs: number[]): Promise<Probe[]> {
  return within(20000, new Promise<Probe[]>((resolve, reject) => {
    const p = spawn("node", [SET + "resume_client.mjs", JSON.stringify({ ca: CA, ...args, gapsMs })], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "", err = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (err += d));
    // Meanwhile collect garbage here (the server side), as a quiet server would.
    const timer = gapsMs.some((g) => g > 0) ? setInterval(gc, 200) : null;
    p.on("exit", (code) => {
      if (timer) clearInterval(timer);
      if (code !== 0) reject(new Error(`node client failed: ${err}`));
      else resolve(out.trim().split("\n").map((l) => JSON.parse(l) as Probe));
    });
  }), "node TLS client");
}

async function resumes(opts: TlsServerOptions, version: "TLSv1.2" | "TLSv1.3", gapMs = 0): Promise<boolean> {
  const srv = await tlsServer(opts);
  try {
    const [a, b] = await nodeProbe({ port: srv.port, maxVersion: version }, [gapMs]);
    assert.equal(a.error, undefined);
    assert.equal(a.reused, false);
    assert.equal(b.error, undefined);
    return b.reused === true;
  } finally {
    srv.l.close();
  }
}

describe(`${runtime.name} adapter: TLS session and cipher settings`, () => {
  const caps = RUNTIME_SUPPORT[runtime.name].tls;
  let n = 0;
  const opts = (extra: Partial<TlsServerOptions>) => serverTls({ cacheKey: `settings-${n++}`, alpn: "imap", ...extra });

  for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
    test(`${version}: tickets on resume; tickets off without a cache resume only where tickets can be turned off`, { skip: NO_NODE }, async () => {
      assert.equal(await resumes(opts({}), version), true);
      assert.equal(await resumes(opts({ sessionTickets: true, sessionCache: "shared" }), version), true);
      for (const cache of ["none", "off"] as const) {
        assert.equal(await resumes(opts({ sessionTickets: false, sessionCache: cache }), version), !caps.resumptionOff, cache);
      }
      // No server-side cache on either runtime: tickets stay on so that these resume.
      for (const cache of ["builtin", "shared"] as const) {
        assert.equal(await resumes(opts({ sessionTickets: false, sessionCache: cache }), version), true, cache);
      }
    });
  }

  test("a server's ticket key outlives its connections (Bun: the context is kept)", { skip: NO_NODE }, async () => {
    assert.equal(await resumes(opts({}), "TLSv1.3", 1500), true);
  });

  test("ssl_session_timeout: an expired session is not resumed where the runtime applies it", { skip: NO_NODE }, async () => {
    assert.equal(await resumes(opts({ sessionTimeout: 1 }), "TLSv1.2", 2200), !caps.sessionTimeout);
  });

  test("ssl_ciphers and ssl_prefer_server_ciphers where the runtime applies them", { skip: NO_NODE }, async () => {
    const AES256 = "ECDHE-RSA-AES256-GCM-SHA384", AES128 = "ECDHE-RSA-AES128-GCM-SHA256";
    // The client prefers AES256.
    const client = { maxVersion: "TLSv1.2", ciphers: `${AES256}:${AES128}` } as const;
    const pick = async (o: Partial<TlsServerOptions>) => {
      const srv = await tlsServer(opts(o));
      try {
        const [h] = await nodeProbe({ port: srv.port, ...client }, []);
        assert.equal(h.error, undefined);
        return h.cipher;
      } finally {
        srv.l.close();
      }
    };
    assert.equal(await pick({ ciphers: AES128 }), caps.ciphers ? AES128 : AES256);
    assert.equal(await pick({ ciphers: `${AES128}:${AES256}` }), AES256);
    assert.equal(
      await pick({ ciphers: `${AES128}:${AES256}`, honorCipherOrder: true }),
      caps.preferServerCiphers ? AES128 : AES256,
    );
  });
});

/** A client-side stream over a TCP socket whose first write also carries `head` (one segment). */
class HeadFirstWrite extends Duplex {
  #sock: net.Socket;
  #head: Uint8Array | null;
  constructor(sock: net.Socket, head: Uint8Array) {
    super();
    this.#sock = sock;
    this.#head = head;
    sock.on("data", (d: Uint8Array) => this.push(d));
    sock.on("end", () => this.push(null));
    sock.on("error", () => {});
  }
  override _write(chunk: Uint8Array, _enc: string, cb: (e?: Error | null) => void) {
    const data = this.#head ? new Uint8Array([...this.#head, ...chunk]) : chunk;
    this.#head = null;
    this.#sock.write(data, cb);
  }
  override _read() {}
  override _final(cb: () => void) {
    this.#sock.end();
    cb();
  }
}

describe(`${runtime.name} adapter: startTls with bytes already read (PROXY header + ClientHello in one packet)`, () => {
  test("the prefix starts the TLS stream; data, backpressure, client certificate and EOF work over it", async () => {
    const srv = await listenLocal();
    try {
      const raw = net.connect({ host: "127.0.0.1", port: srv.port });
      await new Promise((r) => raw.once("connect", r));
      const t = tls.connect({
        socket: new HeadFirstWrite(raw, enc.encode("HEADER\r\n")) as unknown as net.Socket,
        servername: "localhost",
        ca: CA,
        cert: rd("client.pem"),
        key: rd("client.key"),
      });
      t.on("error", () => {});
      const conn = await srv.next();
      // The caller reads the header line; what follows it is TLS.
      let buf = new Uint8Array(0);
      const prefix = await within(5000, new Promise<Uint8Array>((resolve) => {
        conn.attach({
          data: (c) => {
            buf = new Uint8Array([...buf, ...c]);
            const i = dec.decode(buf).indexOf("\r\n");
            if (i >= 0) {
              conn.pause();
              resolve(buf.slice(i + 2));
            }
          },
          drain() {},
          end() {},
          close() {},
        });
      }), "header");
      assert.ok(prefix.length > 0, "the ClientHello came with the header");
      const info = await within(5000, conn.startTls(serverTls({ requestCert: true, ca: CA, alpn: "imap", cacheKey: "prefix" }), prefix));
      assert.equal(info.peerCert?.subject, "CN=client.example.com");
      assert.equal(info.verifyError, null);
      assert.equal(conn.tls, info);
      const sink = new Sink(conn);
      conn.resume();
      // 2 MiB each way.
      const big = fillPattern(new Uint8Array(2 * 1024 * 1024), 0);
      let got = 0;
      t.on("data", (d: Uint8Array) => (got += d.length));
      let off = 0;
      const pump = () => {
        while (off < big.length) {
          const ok = conn.write(big.subarray(off, off + 65536));
          off += 65536;
          if (!ok) return;
        }
      };
      conn.attach({
        data: (c) => (sink.bytes += c.length),
        drain: pump,
        end: () => sink.events.push("end"),
        close: () => sink.events.push("close"),
      });
      pump();
      t.write(big);
      await within(10000, (async () => {
        while (got < big.length || sink.bytes < big.length) await sleep(10);
      })(), "2 MiB each way");
      assert.equal(got, big.length);
      assert.equal(sink.bytes, big.length);
      t.end();
      await within(5000, (async () => {
        while (!sink.events.includes("close")) await sleep(10);
      })(), "close after the peer's end");
      assert.ok(sink.events.includes("end"));
      raw.destroy();
    } finally {
      srv.l.close();
    }
  });
});

describe(`${runtime.name} adapter: client certificate settings`, () => {
  // With ALPN set, as mailgate always does (Bun: per-upgrade options reset the verify mode).
  const cc = (extra: Partial<TlsServerOptions>) =>
    serverTls({ requestCert: true, ca: CA, alpn: "imap", cacheKey: `cc-${Math.random()}`, ...extra });

  async function verifyWith(opts: TlsServerOptions, cert: string, key: string): Promise<string | null> {
    const srv = await tlsServer(opts);
    try {
      const t = tls.connect({ host: "127.0.0.1", port: srv.port, servername: "localhost", ca: CA, cert, key });
      t.on("error", () => {});
      await within(5000, new Promise((r) => t.once("data", r)), "greeting");
      t.destroy();
      for (let i = 0; i < 100 && srv.infos.length === 0; i++) await sleep(10);
      const info = srv.infos[0];
      if (info instanceof Error) throw info;
      assert.ok(info.peerCert !== null);
      return info.verifyError;
    } finally {
      srv.l.close();
    }
  }

  test("ssl_trusted_certificate: trusted without being advertised", async () => {
    const cert = rs("client2.pem"), key = rs("client2.key");
    assert.equal(await verifyWith(cc({ trustedCa: rs("ca2.pem") }), cert, key), null);
    assert.equal(await verifyWith(cc({}), cert, key), "unable to verify the first certificate");
    // Only trusted CAs, none advertised.
    assert.equal(await verifyWith(cc({ ca: undefined, trustedCa: rs("ca2.pem") }), cert, key), null);
  });

  test("ssl_crl: a revoked certificate fails, others pass", async () => {
    const crl = rs("ca.crl");
    assert.equal(await verifyWith(cc({ crl }), rs("revoked.pem"), rs("revoked.key")), "certificate revoked");
    assert.equal(await verifyWith(cc({ crl }), rd("client.pem"), rd("client.key")), null);
  });

  test("ssl_verify_depth: one intermediate needs depth 1", async () => {
    const cert = rs("client3_chain.pem"), key = rs("client3.key");
    assert.equal(await verifyWith(cc({ verifyDepth: 0 }), cert, key), "certificate chain too long");
    assert.equal(await verifyWith(cc({ verifyDepth: 1 }), cert, key), null);
  });

  const HAS_OPENSSL = (() => {
    try {
      return spawnSync("openssl", ["version"]).status === 0;
    } catch {
      return false;
    }
  })();

  test("the CertificateRequest names ssl_client_certificate's CAs, not ssl_trusted_certificate's", {
    skip: HAS_OPENSSL ? false : "openssl is not installed",
  }, async () => {
    const srv = await tlsServer(cc({ trustedCa: rs("ca2.pem") }));
    try {
      const out = await new Promise<string>((resolve) => {
        const p = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${srv.port}`, "-tls1_2"], {
          stdio: ["pipe", "pipe", "pipe"],
        });
        let text = "";
        p.stdout!.on("data", (d) => (text += d));
        const t = setTimeout(() => p.kill("SIGKILL"), 5000);
        p.on("exit", () => {
          clearTimeout(t);
          resolve(text);
        });
        p.stdin!.end();
      });
      const names = /Acceptable client certificate CA names\n([\s\S]*?)\n[A-Z][a-z]/.exec(out)?.[1] ?? "";
      assert.match(names, /mailgate test CA/);
      assert.doesNotMatch(names, /trusted-only/);
    } finally {
      srv.l.close();
    }
  });
});

describe(`${runtime.name} runtime services`, () => {
  test("onSignal delivers a signal sent to this process", async () => {
    let hits = 0;
    runtime.onSignal("SIGWINCH", () => hits++);
    process.kill(process.pid, "SIGWINCH");
    for (let i = 0; i < 100 && hits === 0; i++) await sleep(10);
    assert.equal(hits, 1);
  });

  test("name, version, pid, args", () => {
    assert.equal(runtime.name, isBun ? "bun" : "deno");
    assert.match(runtime.version, /^\d+\.\d+\.\d+/);
    assert.equal(typeof runtime.pid, "number");
    assert.ok(runtime.pid > 0);
    assert.ok(Array.isArray(runtime.args()));
  });
});
