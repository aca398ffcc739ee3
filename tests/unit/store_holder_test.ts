// lib/store/holder.ts: one store per process across reloads — kept when the
// shared_store settings are unchanged, replaced (the old one closed) when
// they change, local without shared_store.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { SharedStoreConfig } from "../../lib/config/shared_store.ts";
import { StoreHolder } from "../../lib/store/holder.ts";
import { LocalStore } from "../../lib/store/local.ts";
import { parseRedisUrl } from "../../lib/store/redis_url.ts";
import { RedisStore } from "../../lib/store/shared.ts";
import type { Conn, ConnectSpec } from "../../lib/runtime/types.ts";

function config(url: string, timeoutMs = 100): SharedStoreConfig {
  const target = parseRedisUrl(url);
  assert.ok(typeof target !== "string");
  return { target, timeoutMs };
}

describe("StoreHolder", () => {
  test("kept on an unchanged reload, replaced and closed on a change", async () => {
    const connects: ConnectSpec[] = [];
    // Connections are refused: the holder's behaviour does not depend on Redis answering.
    const connect = (spec: ConnectSpec): Promise<Conn> => {
      connects.push(spec);
      return Promise.reject(new Error("refused"));
    };
    const holder = new StoreHolder(connect, () => {});
    const local = holder.apply(null);
    assert.ok(local instanceof LocalStore);
    assert.equal(holder.apply(null), local);
    const a = holder.apply(config("redis://127.0.0.1:6379"));
    assert.ok(a instanceof RedisStore);
    assert.equal(holder.apply(config("redis://127.0.0.1:6379")), a, "same settings: same store");
    const b = holder.apply(config("redis://127.0.0.1:6379/1"));
    assert.notEqual(b, a);
    const c = holder.apply(config("redis://127.0.0.1:6379/1", 200));
    assert.notEqual(c, b, "a new timeout makes a new store");
    await new Promise((r) => setTimeout(r, 50));
    const before = connects.length;
    await new Promise((r) => setTimeout(r, 400));
    // Only the current store keeps trying to reconnect; a and b were closed.
    const hosts = connects.slice(before).map((s) => JSON.stringify(s));
    assert.ok(hosts.length >= 1 && hosts.length <= 3, `reconnects: ${hosts.length}`);
    holder.close();
    const closedAt = connects.length;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(connects.length, closedAt, "closed: no more reconnects");
  });
});
