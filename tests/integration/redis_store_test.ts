// The shared store against a real redis-server (tests/helpers/redis.ts),
// through the real runtime adapters: this process's (Deno under `deno
// test`) and, for the cross-instance counter, a driver process under each
// runtime. Faults: Redis killed and restarted, flushed, a wrong password, a
// "Redis" that never answers and one that answers garbage. Every call must
// answer (locally if need be) without waiting much past shared_store_timeout.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { loadRuntime } from "../../lib/runtime/select.ts";
import type { Runtime } from "../../lib/runtime/types.ts";
import { parseRedisUrl } from "../../lib/store/redis_url.ts";
import { RedisStore } from "../../lib/store/shared.ts";
import { ROOT, startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts } from "../helpers/ports.ts";
import { redisAvailable, type RedisServer, startRedis } from "../helpers/redis.ts";

const avail = redisAvailable();
const TIMEOUT = 100;
/** A call may take the timeout plus scheduling on a loaded machine, never seconds. */
const CALL_BOUND = TIMEOUT + 900;

function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > end) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

function driver(
  runtime: "deno" | "bun",
  url: string,
  key: string,
  count: number,
): Promise<{ state: string; values: number[] }> {
  const bin = join(ROOT, "node_modules", ".bin", runtime);
  const script = join(ROOT, "tests", "helpers", "redis_driver.ts");
  const args = runtime === "deno"
    ? ["run", "-A", "--unstable-net", script, url, key, String(count)]
    : [script, url, key, String(count)];
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
    p.stderr!.on("data", (b: Uint8Array) => (err += new TextDecoder().decode(b)));
    p.once(
      "exit",
      (code) =>
        code === 0
          ? resolve(JSON.parse(out))
          : reject(new Error(`${runtime} driver exit ${code}: ${err}`)),
    );
  });
}

describe("shared store against redis-server", { skip: avail.ok ? false : avail.why }, () => {
  let runtime: Runtime;
  let redis: RedisServer;
  const stores: RedisStore[] = [];

  function store(url: string, logs: string[] = []): RedisStore {
    const t = parseRedisUrl(url);
    assert.ok(typeof t !== "string");
    const s = new RedisStore({
      target: t,
      connect: (spec) => runtime.connect(spec),
      log: (level, msg) => logs.push(`${level}: ${msg}`),
      timeoutMs: TIMEOUT,
    });
    stores.push(s);
    return s;
  }

  async function timed<T>(p: Promise<T>): Promise<T> {
    const started = Date.now();
    const v = await p;
    const took = Date.now() - started;
    assert.ok(took < CALL_BOUND, `a call took ${took} ms`);
    return v;
  }

  before(async () => {
    runtime = await loadRuntime();
    redis = await startRedis();
  });
  after(async () => {
    for (const s of stores) s.close();
    await redis?.stop();
  });

  test("counters are atomic across two instances, one under Deno and one under Bun, pipelined", async () => {
    const [a, b] = await Promise.all([
      driver("deno", redis.url, "race", 300),
      driver("bun", redis.url, "race", 300),
    ]);
    assert.equal(a.state, "shared");
    assert.equal(b.state, "shared");
    const all = [...a.values, ...b.values].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: 600 }, (_, i) => i + 1));
    assert.ok(Number(await redis.cli("PTTL", "race")) > 0, "the counter has an expiry");
  });

  test("TTL: entries and counters expire in Redis by themselves", async () => {
    const s = store(redis.url);
    await until(() => s.state === "shared", "connected");
    await s.set("ttl:v", "x", 200);
    assert.equal(await s.get("ttl:v"), "x");
    assert.equal(await s.incr("ttl:c", 200), 1);
    assert.equal(await s.incr("ttl:c", 200), 2);
    assert.equal(await s.setIfAbsent("ttl:secret", "first"), "first");
    assert.equal(await s.setIfAbsent("ttl:secret", "second"), "first");
    assert.equal(await redis.cli("PTTL", "ttl:secret"), "-1");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(await s.get("ttl:v"), null);
    assert.equal(await s.incr("ttl:c", 200), 1);
    assert.equal(await s.decr("ttl:c"), 0);
    assert.equal(await redis.cli("EXISTS", "ttl:c"), "0");
  });

  test("FLUSHALL: counters restart, nothing breaks", async () => {
    const s = store(redis.url);
    await until(() => s.state === "shared", "connected");
    await s.incr("f", 60_000);
    assert.equal(await s.incr("f", 60_000), 2);
    assert.equal(await redis.cli("FLUSHALL"), "OK");
    assert.equal(await s.decr("f"), 0, "a lost count does not go negative");
    assert.equal(await s.incr("f", 60_000), 1);
    assert.equal(s.state, "shared");
  });

  test("killed mid-way: local answers within the timeout, outage logged once; restarted: sharing resumes", async () => {
    const logs: string[] = [];
    const s = store(redis.url, logs);
    await until(() => s.state === "shared", "connected");
    assert.equal(await s.incr("k", 60_000), 1);
    await redis.kill();
    for (let i = 0; i < 5; i++) {
      assert.equal(await timed(s.incr("k", 60_000)), i + 1, "local count");
    }
    await until(() => logs.some((l) => l.startsWith("error:")), "outage logged");
    await new Promise((r) => setTimeout(r, 800)); // several failed reconnects
    assert.equal(logs.filter((l) => l.startsWith("error:")).length, 1, logs.join("\n"));
    await redis.restart();
    await until(() => s.state === "shared", "reconnected after restart", 10_000);
    assert.match(
      logs.at(-1)!,
      /^notice: shared store redis:\/\/127\.0\.0\.1:\d+ \(db 0\) reachable again/,
    );
    assert.equal(await s.incr("k", 60_000), 1, "Redis restarted empty (no persistence)");
    assert.equal(await redis.cli("GET", "k"), "1");
  });

  test("AUTH: the right password connects; a wrong one is logged once and answers locally", async () => {
    const secured = await startRedis({ password: "t0p-s3cret" });
    try {
      const good = store(`redis://:t0p-s3cret@127.0.0.1:${secured.port}/1`);
      await until(() => good.state === "shared", "connected with AUTH");
      await good.set("a", "b", 60_000);
      assert.equal(await secured.cli("-n", "1", "GET", "a"), "b");
      const logs: string[] = [];
      const bad = store(`redis://:wrong-pass@127.0.0.1:${secured.port}`, logs);
      await until(() => logs.length > 0, "auth failure logged");
      assert.equal(await timed(bad.incr("w", 60_000)), 1);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(logs.length, 1, logs.join("\n"));
      assert.match(logs[0], /^error: .*unavailable \(connection set-up failed: WRONGPASS/);
      assert.ok(!logs[0].includes("wrong-pass") && !logs[0].includes("t0p"));
      bad.close();
      good.close();
    } finally {
      await secured.stop();
    }
  });

  test("a 'Redis' that never answers, and one that answers garbage: every call returns in time", async () => {
    const sockets = new Set<Socket>();
    let garbageConnections = 0;
    const listen = (onConn: (s: Socket) => void) =>
      new Promise<Server>((resolve) => {
        const srv = createServer((sock) => {
          sockets.add(sock);
          sock.on("error", () => {});
          onConn(sock);
        });
        srv.listen(0, "127.0.0.1", () => resolve(srv));
      });
    const hang = await listen(() => {});
    const liar = await listen((sock) => {
      garbageConnections++;
      sock.write("HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    try {
      const port = (srv: Server) => (srv.address() as { port: number }).port;
      const hangLogs: string[] = [];
      const h = store(`redis://127.0.0.1:${port(hang)}`, hangLogs);
      const liarLogs: string[] = [];
      const l = store(`redis://127.0.0.1:${port(liar)}`, liarLogs);
      for (let i = 1; i <= 3; i++) {
        assert.equal(await timed(h.incr("h", 60_000)), i);
        assert.equal(await timed(l.incr("l", 60_000)), i);
      }
      await until(() => hangLogs.length > 0, "the hang is logged", 5000);
      assert.match(hangLogs[0], /unavailable \(connection set-up failed: no reply within/);
      await until(() => garbageConnections >= 2, "reconnect after the protocol error", 5000);
      assert.equal(liarLogs.length, 1, liarLogs.join("\n"));
      assert.match(liarLogs[0], /protocol error: unexpected reply type byte 0x48/);
      assert.equal(h.state, "local");
      assert.equal(l.state, "local");
      h.close();
      l.close();
    } finally {
      for (const s of sockets) s.destroy();
      hang.close();
      liar.close();
    }
  });

  test("mailgate with shared_store: one store per process, the start-up notice without the password", async () => {
    const secured = await startRedis({ password: "mg-p4ss" });
    try {
      for (const target of targets()) {
        const [port] = await freePorts(1);
        const conf = `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:9/auth;
  shared_store redis://127.0.0.1:${secured.port}/2;
  shared_store_password_file redis.pass;
  shared_store_timeout 200ms;
  server { listen 127.0.0.1:${port}; protocol imap; }
}
`;
        const mg = await startMailgate(target, conf, { "redis.pass": "mg-p4ss\n" });
        try {
          await mg.waitLog(
            new RegExp(`shared store redis://127\\.0\\.0\\.1:${secured.port} \\(db 2\\) connected`),
          );
          assert.ok(!mg.stderr().includes("mg-p4ss"), `${target}: the password is not logged`);
          assert.match(await secured.cli("CLIENT", "LIST"), /db=2/, `${target}: connected to db 2`);
        } finally {
          await mg.stop();
        }
      }
    } finally {
      await secured.stop();
    }
  });
});
