// tests/helpers/stop_all.ts: every thing is stopped, in order, the ones
// never started are skipped, and the first failure is reported after all.

import { test } from "node:test";
import assert from "node:assert/strict";
import { stopAll } from "../helpers/stop_all.ts";

test("stopAll stops everything in order, skips the unstarted, rethrows the first failure", async () => {
  const order: string[] = [];
  const ok = (n: string) => ({ stop: async () => void order.push(n) });
  const bad = (n: string) => ({
    stop: () => {
      order.push(n);
      throw new Error(n);
    },
  });
  await assert.rejects(stopAll(ok("a"), undefined, bad("x"), null, bad("y"), ok("b")), /^Error: x$/);
  assert.deepEqual(order, ["a", "x", "y", "b"]);
  await stopAll();
});
