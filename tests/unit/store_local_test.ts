// lib/store/local.ts: counters, TTL expiry on an injected clock, the bound
// on keys, and set-if-absent keeping the first value.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LocalStore } from "../../lib/store/local.ts";

function clocked(max = 100): { store: LocalStore; advance(ms: number): void } {
  let now = 1_000_000;
  return { store: new LocalStore(max, () => now), advance: (ms) => (now += ms) };
}

describe("LocalStore", () => {
  test("incr counts from 1 and the window is fixed at creation", async () => {
    const { store, advance } = clocked();
    assert.equal(await store.incr("k", 1000), 1);
    advance(600);
    assert.equal(await store.incr("k", 1000), 2);
    advance(399);
    assert.equal(await store.incr("k", 1000), 3);
    advance(1); // 1000 ms after the first increment
    assert.equal(await store.get("k"), null);
    assert.equal(await store.incr("k", 1000), 1);
  });

  test("decr never goes below 0 and deletes at 0", async () => {
    const { store } = clocked();
    assert.equal(await store.decr("c"), 0);
    await store.incr("c", 60_000);
    await store.incr("c", 60_000);
    assert.equal(await store.decr("c"), 1);
    assert.equal(await store.decr("c"), 0);
    assert.equal(store.size, 0);
    assert.equal(await store.decr("c"), 0);
  });

  test("set/get with TTL; expire renews; del removes", async () => {
    const { store, advance } = clocked();
    await store.set("a", "v", 100);
    assert.equal(await store.get("a"), "v");
    advance(99);
    assert.equal(await store.expire("a", 100), true);
    advance(99);
    assert.equal(await store.get("a"), "v");
    advance(1);
    assert.equal(await store.get("a"), null);
    assert.equal(await store.expire("a", 100), false);
    await store.set("b", "w", 100);
    await store.del("b");
    assert.equal(await store.get("b"), null);
  });

  test("setIfAbsent keeps the first value; without TTL it stays", async () => {
    const { store, advance } = clocked();
    assert.equal(await store.setIfAbsent("secret", "first"), "first");
    assert.equal(await store.setIfAbsent("secret", "second"), "first");
    advance(365 * 86_400_000);
    assert.equal(await store.get("secret"), "first");
    assert.equal(await store.setIfAbsent("t", "x", 10), "x");
    advance(10);
    assert.equal(await store.setIfAbsent("t", "y", 10), "y");
  });

  test("bounded: a flood of keys keeps at most max, least recently used first out", async () => {
    const { store } = clocked(50);
    for (let i = 0; i < 10_000; i++) await store.incr(`ip:${i}`, 60_000);
    assert.equal(store.size, 50);
    assert.equal(await store.get("ip:9999"), "1");
    assert.equal(await store.get("ip:0"), null);
  });

  test("state is local", () => {
    assert.equal(new LocalStore().state, "local");
  });
});
