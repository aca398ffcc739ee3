// listen ... so_keepalive=on|off|idle:intvl:cnt -> the one setKeepAlive call
// each runtime offers for an accepted connection. Neither runtime can set
// the probe interval or count (Bun pins them to 1 s and 10 whenever it sets
// the idle time; Deno's node:net sets only the idle time), so start-up warns
// about what is dropped (capabilities.ts).

import type { KeepaliveSpec } from "../types.ts";

export interface KeepaliveCall {
  enable: boolean;
  /** TCP_KEEPIDLE in milliseconds, when one is configured and settable. */
  delayMs?: number;
}

/** null: leave the socket as the system made it (no so_keepalive). */
export function keepaliveCall(
  k: KeepaliveSpec | undefined,
  idleSettable: boolean,
): KeepaliveCall | null {
  if (k === undefined) return null;
  if (typeof k === "boolean") return { enable: k };
  if (idleSettable && k.idleSec !== null && k.idleSec > 0) {
    return { enable: true, delayMs: k.idleSec * 1000 };
  }
  return { enable: true };
}
