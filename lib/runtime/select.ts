// Picks the runtime adapter once, by dynamic import, so the other runtime's
// code is never loaded. The only runtime detection in mailgate: everything
// else asks the Runtime object it is handed (name, support).

import type { Runtime } from "./types.ts";

export async function loadRuntime(): Promise<Runtime> {
  return typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
    ? (await import("./bun/mod.ts")).runtime
    : (await import("./deno/mod.ts")).runtime;
}
