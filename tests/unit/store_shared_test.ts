// lib/store/shared.ts + redis.ts over fake connections: answers come from
// "Redis" while it answers, from the local store when it does not (down,
// hanging, answering errors or garbage), every call within the timeout and
// never rejecting; the outage is logged once, its end once, and the client
// reconnects by itself.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { RedisStore } from "../../lib/store/shared.ts";
import { parseRedisUrl, type RedisTarget } from "../../lib/store/redis_url.ts";
import { RespParser } from "../../lib/store/resp.ts";
import { type FakeConn, fakeConnector } from "../helpers/fake_conn.ts";

type Mode = "ok" | "hang" | "garbage" | "error" | "refuse";

const enc = new TextEncoder();

/** A fake Redis: PING/AUTH/SELECT answered, GET says "remote", EVAL says 99. */
function fakeRedis() {
  const state = { mode: "ok" as Mode, commands: [] as string[][], servers: [] as FakeConn[] };
  const connector = fakeConnector((server) => {
    if (state.mode === "refuse") throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
    state.servers.push(server);
    const parser = new RespParser();
    server.attach({
      data(chunk) {
        for (const cmd of parser.push(chunk) as string[][]) {
          state.commands.push(cmd);
          const name = cmd[0].toUpperCase();
          if (state.mode === "garbage") server.write(enc.encode("?garbage\r\n"));
          else if (name === "PING") server.write(enc.encode("+PONG\r\n"));
          else if (name === "AUTH") {
            server.write(enc.encode(
              cmd.at(-1) === "right" ? "+OK\r\n" : "-WRONGPASS invalid username-password pair\r\n",
            ));
          } else if (state.mode === "hang") continue;
          else if (state.mode === "error") server.write(enc.encode("-OOM command not allowed\r\n"));
          else if (name === "GET") server.write(enc.encode("$6\r\nremote\r\n"));
          else if (name === "EVAL") server.write(enc.encode(":99\r\n"));
          else server.write(enc.encode("+OK\r\n"));
        }
      },
      drain() {},
      end() {},
      close() {},
    });
  });
  return { state, connect: connector.connect };
}

function target(url = "redis://127.0.0.1:6379"): RedisTarget {
  const t = parseRedisUrl(url);
  assert.ok(typeof t !== "string");
  return t;
}

function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > end) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

function setup(url?: string, timeoutMs = 50) {
  const redis = fakeRedis();
  const logs: string[] = [];
  const store = new RedisStore({
    target: target(url),
    connect: redis.connect,
    log: (level, msg) => logs.push(`${level}: ${msg}`),
    timeoutMs,
    stallMs: 300,
  });
  return { redis, logs, store };
}

describe("RedisStore fallback", () => {
  test("connected: answers come from Redis; state shared; connected notice once", async () => {
    const { logs, store } = setup();
    try {
      await until(() => store.state === "shared", "connected");
      assert.equal(await store.get("k"), "remote");
      assert.equal(await store.incr("k", 1000), 99);
      assert.deepEqual(logs, ["notice: shared store redis://127.0.0.1:6379 (db 0) connected"]);
    } finally {
      store.close();
    }
  });

  test("pipelined: several commands in flight, replies matched in order", async () => {
    const { redis, store } = setup();
    try {
      await until(() => store.state === "shared", "connected");
      const got = await Promise.all([
        store.get("a"),
        store.incr("b", 10),
        store.get("c"),
        store.setIfAbsent("d", "x"),
      ]);
      assert.deepEqual(got, ["remote", 99, "remote", "x"]);
      assert.deepEqual(redis.state.commands.slice(-4).map((c) => c[0]), [
        "GET",
        "EVAL",
        "GET",
        "EVAL",
      ]);
    } finally {
      store.close();
    }
  });

  test("Redis hangs: every call returns from the local store within the timeout", async () => {
    const { redis, store } = setup(undefined, 50);
    try {
      await until(() => store.state === "shared", "connected");
      redis.state.mode = "hang";
      await store.set("k", "local-value", 10_000);
      const started = Date.now();
      const got = await Promise.all([store.get("k"), store.incr("n", 1000), store.incr("n", 1000)]);
      const took = Date.now() - started;
      assert.deepEqual(got, ["local-value", 1, 2]);
      assert.ok(took < 50 + 1000, `took ${took} ms`);
    } finally {
      store.close();
    }
  });

  test("a stalled connection is dropped, logged once, and comes back", async () => {
    const { redis, logs, store } = setup(undefined, 20);
    try {
      await until(() => store.state === "shared", "connected");
      redis.state.mode = "hang";
      assert.equal(await store.get("x"), null);
      await until(() => store.state === "local", "stall detected");
      redis.state.mode = "ok";
      await until(() => store.state === "shared", "reconnected");
      assert.equal(await store.get("x"), "remote");
      assert.equal(logs.filter((l) => l.startsWith("error:")).length, 1, logs.join("\n"));
      assert.match(logs.find((l) => l.startsWith("error:"))!, /no reply for 300 ms/);
      assert.match(
        logs.at(-1)!,
        /^notice: shared store redis:\/\/127.0.0.1:6379 \(db 0\) reachable again/,
      );
    } finally {
      store.close();
    }
  });

  test("error replies are answered locally", async () => {
    const { redis, store } = setup();
    try {
      await until(() => store.state === "shared", "connected");
      redis.state.mode = "error";
      assert.equal(await store.incr("e", 1000), 1);
      assert.equal(await store.incr("e", 1000), 2);
      assert.equal(store.state, "shared", "an error reply is not an outage");
    } finally {
      store.close();
    }
  });

  test("connection lost: in-flight calls fail over at once; outage logged once while refused", async () => {
    const { redis, logs, store } = setup(undefined, 5000);
    try {
      await until(() => store.state === "shared", "connected");
      redis.state.mode = "hang";
      const pending = store.get("p");
      await until(() => redis.state.commands.at(-1)?.[0] === "GET", "GET sent");
      redis.state.mode = "refuse";
      const started = Date.now();
      redis.state.servers.at(-1)!.destroy();
      assert.equal(await pending, null);
      assert.ok(Date.now() - started < 1000, "not held until the 5 s timeout");
      await new Promise((r) => setTimeout(r, 700)); // several refused reconnects
      assert.equal(logs.filter((l) => l.startsWith("error:")).length, 1, logs.join("\n"));
      redis.state.mode = "ok";
      await until(() => store.state === "shared", "reconnected");
    } finally {
      store.close();
    }
  });

  test("garbage from Redis: protocol error, reconnect", async () => {
    const { redis, logs, store } = setup();
    try {
      await until(() => store.state === "shared", "connected");
      redis.state.mode = "garbage";
      assert.equal(await store.get("g"), null);
      await until(() => logs.some((l) => l.includes("protocol error")), "protocol error logged");
      redis.state.mode = "ok";
      await until(() => store.state === "shared", "reconnected");
    } finally {
      store.close();
    }
  });

  test("AUTH and SELECT come first; a wrong password is logged once without the password", async () => {
    const { redis, logs, store } = setup("redis://app:s3cr%40t@127.0.0.1:6379/3");
    try {
      await until(() => logs.length > 0, "a log line");
      // PING may not arrive: the client drops the connection at the AUTH error.
      assert.deepEqual(redis.state.commands.slice(0, 2), [["AUTH", "app", "s3cr@t"], [
        "SELECT",
        "3",
      ]]);
      assert.equal(store.state, "local");
      assert.equal(await store.incr("w", 1000), 1);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(logs.length, 1, logs.join("\n"));
      assert.match(
        logs[0],
        /^error: shared store redis:\/\/127.0.0.1:6379 unavailable \(connection set-up failed: WRONGPASS/,
      );
      assert.ok(!logs.join("").includes("s3cr"));
    } finally {
      store.close();
    }
    const ok = setup("redis://app:right@127.0.0.1:6379/3");
    try {
      await until(() => ok.store.state === "shared", "connected with the right password");
      assert.deepEqual(ok.redis.state.commands.slice(0, 3), [["AUTH", "app", "right"], [
        "SELECT",
        "3",
      ], ["PING"]]);
      assert.deepEqual(ok.logs, ["notice: shared store redis://127.0.0.1:6379 (db 3) connected"]);
    } finally {
      ok.store.close();
    }
  });

  test("close stops reconnecting; calls still answer locally", async () => {
    const { redis, store } = setup();
    await until(() => store.state === "shared", "connected");
    store.close();
    const n = redis.state.servers.length;
    assert.equal(await store.incr("z", 1000), 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(redis.state.servers.length, n);
    assert.equal(store.state, "local");
  });
});
