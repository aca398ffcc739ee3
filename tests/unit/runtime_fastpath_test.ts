// The adapters' fast paths, checked where they could go wrong (deno.ts under
// `deno test -A --unstable-net`, bun.ts under `bun test`; loopback only):
// * Deno: a chunk written on from inside another connection's data handler
//   is queued without a copy (the reader lends its buffer): bytes stay
//   intact, and the reader goes on once the write is done or dropped;
// * destroy() is an ordinary close: the peer gets everything already
//   written, then a clean EOF (Bun used to reset: ECONNRESET);
// * Bun reads addresses on demand: they are right, also after the close.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import type { Conn, ConnEvents, Runtime } from "../../lib/runtime/types.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const adapterPath = isBun ? "../../lib/runtime/bun/mod.ts" : "../../lib/runtime/deno/mod.ts";
const { runtime } = (await import(adapterPath)) as { runtime: Runtime };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every 5 ms, at most `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(5);
  }
}

function patternByte(i: number): number {
  return (i ^ (i >>> 8) ^ (i >>> 16) ^ (i >>> 24)) & 0xff;
}

/** A loopback listener whose accepted conns come out of next(). */
async function listenLocal() {
  const queue: Conn[] = [];
  const l = await runtime.listen({ kind: "tcp", host: "127.0.0.1", port: 0 }, (c) => queue.push(c));
  return {
    l,
    port: (l.addr as { port: number }).port,
    next: async () => {
      await until(() => queue.length > 0, 5000, "accept");
      return queue.shift()!;
    },
  };
}

/** A node:net peer that records what it reads and how the stream ended. */
function peer(port: number) {
  const s = net.connect({ host: "127.0.0.1", port });
  const got: Buffer[] = [];
  const st = { bytes: 0, ended: false, closed: false, error: null as string | null };
  s.on("data", (d: Buffer) => {
    got.push(d);
    st.bytes += d.length;
  });
  s.on("end", () => (st.ended = true));
  s.on("close", () => (st.closed = true));
  s.on("error", (e: NodeJS.ErrnoException) => (st.error = e.code ?? e.message));
  const connected = new Promise<void>((r) => s.once("connect", () => r()));
  return { s, got, st, connected, all: () => Buffer.concat(got) };
}

/**
 * Writes to `c` (whose peer does not read) until the kernel buffers are full
 * and write() stays blocked: no drain for 100 ms. Returns the bytes queued.
 * Bounded at 64 MiB.
 */
async function fillUntilStuck(c: Conn): Promise<number> {
  let drained = true;
  c.attach(quiet({ drain: () => (drained = true) }));
  const block = new Uint8Array(1024 * 1024);
  let total = 0;
  while (total < 64 * 1024 * 1024) {
    if (drained) {
      drained = false;
      while (c.write(block)) total += block.length;
      total += block.length;
    }
    await sleep(100);
    if (!drained) return total;
  }
  throw new Error("the peer's buffers never filled up");
}

const quiet = (over: Partial<ConnEvents> = {}): ConnEvents => ({
  data() {},
  drain() {},
  end() {},
  close() {},
  ...over,
});

describe(`${runtime.name} adapter: write of another connection's chunk`, () => {
  test("1 MiB forwarded chunk by chunk from a data handler, into a blocked conn, arrives intact", async () => {
    // a -> [A ==data handler==> B] -> b: what the relay does, without the relay.
    // B starts blocked (b does not read), so forwarded chunks wait in B's
    // queue while A could read on: a buffer reused too early shows here.
    const srv = await listenLocal();
    const a = peer(srv.port);
    await a.connected;
    const A = await srv.next();
    const b = peer(srv.port);
    await b.connected;
    const B = await srv.next();
    b.s.pause();
    const filler = await fillUntilStuck(B);
    let forwarded = 0;
    A.attach(quiet({
      data(chunk) {
        forwarded += chunk.length;
        if (!B.write(chunk)) A.pause();
      },
    }));
    B.attach(quiet({ drain: () => A.resume() }));
    const total = 1 << 20;
    const src = Buffer.alloc(total);
    for (let i = 0; i < total; i++) src[i] = patternByte(i);
    for (let off = 0; off < total; off += 4096) a.s.write(src.subarray(off, off + 4096));
    await sleep(100);
    b.s.resume();
    await until(() => b.st.bytes >= filler + total, 10_000, "all bytes forwarded");
    assert.equal(forwarded, total);
    assert.ok(b.all().subarray(filler).equals(src), "bytes arrive unchanged and in order");
    A.destroy();
    B.destroy();
    a.s.destroy();
    b.s.destroy();
    await srv.l.close();
  });

  test("a forwarded chunk waiting in a blocked conn is not overwritten by the source's next reads", async () => {
    const srv = await listenLocal();
    const a = peer(srv.port);
    await a.connected;
    const A = await srv.next();
    const b = peer(srv.port);
    await b.connected;
    const B = await srv.next();
    b.s.pause();
    const filler = await fillUntilStuck(B);
    const first = "first message, forwarded";
    const second = "SECOND MESSAGE, only counted";
    let seen = 0;
    let forwarded = false;
    // Forwards the first chunk, then only counts: it never writes to B again
    // (so no pause is needed) and A may go on reading as far as the adapter lets it.
    A.attach(quiet({
      data(chunk) {
        seen += chunk.length;
        if (!forwarded) {
          forwarded = true;
          B.write(chunk);
        }
      },
    }));
    a.s.write(first);
    await until(() => seen >= first.length, 5000, "first message");
    a.s.write(second);
    await sleep(100);
    b.s.resume();
    await until(() => b.st.bytes >= filler + first.length, 10_000, "B flushes");
    assert.equal(b.all().subarray(filler).toString("latin1"), first);
    await until(() => seen >= first.length + second.length, 5000, "A reads on");
    A.destroy();
    B.destroy();
    a.s.destroy();
    b.s.destroy();
    await srv.l.close();
  });

  test("the destination is destroyed while it holds a forwarded chunk: the source reads on", async () => {
    const srv = await listenLocal();
    const a = peer(srv.port);
    await a.connected;
    const A = await srv.next();
    const b = peer(srv.port);
    await b.connected;
    const B = await srv.next();
    // b never reads: fill B's socket until its writes are stuck, so that
    // the next write stays queued in B.
    b.s.pause();
    await fillUntilStuck(B);
    let seen = 0;
    let forwarding = true;
    A.attach(quiet({
      data(chunk) {
        seen += chunk.length;
        if (forwarding) {
          forwarding = false;
          B.write(chunk); // queued behind the blocked bytes
        }
      },
    }));
    a.s.write("first chunk");
    await until(() => seen > 0, 5000, "first chunk");
    assert.equal(forwarding, false);
    B.destroy(); // drops B's queue, and with it the chunk A lent
    await sleep(20);
    a.s.write("more after the destroy");
    await until(
      () => seen >= "first chunk".length + "more after the destroy".length,
      5000,
      "A reads on",
    );
    A.destroy();
    a.s.destroy();
    b.s.destroy();
    await srv.l.close();
  });

  test("the source is destroyed while its chunk is queued elsewhere: the chunk still goes out whole", async () => {
    const srv = await listenLocal();
    const a = peer(srv.port);
    await a.connected;
    const A = await srv.next();
    const b = peer(srv.port);
    await b.connected;
    const B = await srv.next();
    b.s.pause();
    const queued = await fillUntilStuck(B);
    const msg = "forwarded after the source closed";
    A.attach(quiet({
      data(chunk) {
        B.write(chunk);
        A.destroy(); // the source goes away while B still holds its chunk
      },
    }));
    a.s.write(msg);
    await sleep(50);
    b.s.resume();
    await until(() => b.st.bytes >= queued + msg.length, 10_000, "B flushes everything");
    assert.equal(b.all().subarray(queued).toString("latin1"), msg);
    B.destroy();
    a.s.destroy();
    b.s.destroy();
    await srv.l.close();
  });
});

describe(`${runtime.name} adapter: destroy() and addresses`, () => {
  test("destroy() after a write: the peer reads the bytes, then a clean EOF (no reset)", async () => {
    const srv = await listenLocal();
    const p = peer(srv.port);
    await p.connected;
    const c = await srv.next();
    c.attach(quiet());
    c.write(new TextEncoder().encode("* BYE\r\n"));
    await sleep(20); // the adapter has handed the bytes to the kernel
    c.destroy();
    await until(() => p.st.closed, 5000, "peer close");
    assert.equal(p.all().toString("latin1"), "* BYE\r\n");
    assert.equal(p.st.error, null);
    assert.ok(p.st.ended, "the peer saw EOF");
    await srv.l.close();
  });

  test("addresses of accepted and connected conns, also when first asked after the close", async () => {
    const srv = await listenLocal();
    const closed: Conn[] = [];
    const client = await runtime.connect({ kind: "tcp", host: "127.0.0.1", port: srv.port });
    const server = await srv.next();
    // The client conn: nothing asked yet; close it, then ask.
    client.attach(quiet({ close: () => closed.push(client) }));
    server.attach(quiet());
    const serverRemote = server.remote; // read while open, as the session does
    client.destroy();
    await until(() => closed.length === 1, 5000, "client close");
    assert.deepEqual(client.remote, { family: "ipv4", address: "127.0.0.1", port: srv.port });
    assert.equal(serverRemote.family, "ipv4");
    // The listener is not a wildcard: the accepted conn's local address is known without asking.
    server.destroy();
    await sleep(10);
    assert.deepEqual(server.local, { family: "ipv4", address: "127.0.0.1", port: srv.port });
    assert.deepEqual(server.remote, serverRemote);
    await srv.l.close();
  });
});
