// Runs the shared store through a runtime's real adapter, in a process of
// its own, so a test under Deno can drive the Bun adapter too:
//   deno run -A tests/helpers/redis_driver.ts URL KEY COUNT
//   bun tests/helpers/redis_driver.ts URL KEY COUNT
// Waits (bounded) until connected, sends COUNT increments of KEY at once
// (pipelined), prints one JSON line {runtime, state, values, logs}, exits.

import process from "node:process";
import { loadRuntime } from "../../lib/runtime/select.ts";
import { parseRedisUrl } from "../../lib/store/redis_url.ts";
import { RedisStore } from "../../lib/store/shared.ts";

const [url, key, countText] = process.argv.slice(2);
const runtime = await loadRuntime();
const target = parseRedisUrl(url);
if (typeof target === "string") throw new Error(target);
const logs: string[] = [];
const store = new RedisStore({
  target,
  connect: (spec) => runtime.connect(spec),
  log: (level, msg) => logs.push(`${level}: ${msg}`),
  timeoutMs: 2000,
});
const deadline = Date.now() + 10_000;
while (store.state !== "shared" && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 10));
}
const state = store.state;
const values = await Promise.all(
  Array.from({ length: Number(countText) }, () => store.incr(key, 60_000)),
);
store.close();
console.log(JSON.stringify({ runtime: runtime.name, state, values, logs }));
process.exit(0);
