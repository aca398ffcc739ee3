// lib/core/bounded_map.ts: never more than its size, the least recently
// used entry goes first, and get/getOrSet count as use.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { BoundedMap } from "../../lib/core/bounded_map.ts";

describe("BoundedMap", () => {
  test("holds at most its size; the oldest goes first", () => {
    const m = new BoundedMap<string, number>(3);
    for (const [i, k] of ["a", "b", "c", "d", "e"].entries()) m.set(k, i);
    assert.equal(m.size, 3);
    assert.deepEqual([...m.keys()], ["c", "d", "e"]);
    assert.equal(m.get("a"), undefined);
    assert.equal(m.get("e"), 4);
  });

  test("get makes an entry the most recently used", () => {
    const m = new BoundedMap<string, number>(2);
    m.set("a", 1).set("b", 2);
    assert.equal(m.get("a"), 1);
    m.set("c", 3); // b, not a, goes
    assert.deepEqual([...m.keys()], ["a", "c"]);
    assert.equal(m.has("b"), false);
  });

  test("set of a present key replaces it without evicting another", () => {
    const m = new BoundedMap<string, number>(2);
    m.set("a", 1).set("b", 2).set("a", 10);
    assert.deepEqual([...m.keys()], ["b", "a"]);
    assert.equal(m.get("a"), 10);
    assert.equal(m.size, 2);
  });

  test("getOrSet makes once per key while it stays", () => {
    const m = new BoundedMap<string, number>(2);
    let made = 0;
    const make = () => ++made;
    assert.equal(m.getOrSet("a", make), 1);
    assert.equal(m.getOrSet("a", make), 1);
    m.getOrSet("b", make);
    m.getOrSet("c", make); // a goes
    assert.equal(m.getOrSet("a", make), 4);
    assert.equal(made, 4);
  });

  test("undefined values are kept, delete and clear", () => {
    const m = new BoundedMap<string, number | undefined>(2);
    m.set("u", undefined);
    assert.equal(m.has("u"), true);
    assert.equal(m.getOrSet("u", () => 5), undefined);
    assert.equal(m.delete("u"), true);
    m.set("x", 1);
    m.clear();
    assert.equal(m.size, 0);
  });

  test("a size below 1 is refused", () => {
    assert.throws(() => new BoundedMap(0), RangeError);
    assert.throws(() => new BoundedMap(Number.NaN), RangeError);
  });

  test("many inserts stay bounded", () => {
    const m = new BoundedMap<number, number>(100);
    for (let i = 0; i < 10_000; i++) m.set(i, i);
    assert.equal(m.size, 100);
    assert.equal([...m.keys()][0], 9900);
  });
});
