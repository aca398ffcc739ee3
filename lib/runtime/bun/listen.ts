// Listening with Bun.listen: one handler object per listener, whose open()
// makes each accepted socket a BunConn.

import type { Conn, Listener, ListenSpec, SockAddr } from "../types.ts";
import { bunApi, type BunSocketHandlers } from "./api_types.ts";
import { bareHost, ipAddr, isWildcard, unixAddr } from "../shared/sock_addr.ts";
import { keepaliveCall } from "../shared/keepalive.ts";
import { type AddrHints, BunConn, CONN_HANDLERS } from "./conn.ts";

// async: a bind error becomes a rejection.
// deno-lint-ignore require-await
export async function listen(spec: ListenSpec, onAccept: (c: Conn) => void): Promise<Listener> {
  const bun = bunApi();
  // Bun sets the idle time (and then pins interval 1 s, count 10).
  const ka = spec.kind === "tcp" ? keepaliveCall(spec.keepalive, true) : null;
  const hints: AddrHints = {
    unixPath: spec.kind === "unix" ? spec.path : null,
    local: null,
    remote: null,
  };
  const handlers: BunSocketHandlers = {
    ...CONN_HANDLERS,
    open(s) {
      const conn = new BunConn(s, hints, null);
      if (ka !== null) conn._setKeepAlive(ka.enable, ka.delayMs);
      try {
        onAccept(conn);
      } catch (e) {
        conn.destroy();
        console.error("mailgate: accept handler failed:", e);
      }
    },
  };
  // backlog has no Bun option (always 512); ipv6only maps to ipv6Only
  // (planSockets sets it for "::" unless the listen says ipv6only=off).
  const server = spec.kind === "tcp"
    ? bun.listen({
      hostname: bareHost(spec.host),
      port: spec.port,
      reusePort: spec.reusePort === true,
      ipv6Only: spec.ipv6only === true,
      allowHalfOpen: true,
      socket: handlers,
    })
    : bun.listen({ unix: spec.path, allowHalfOpen: true, socket: handlers });
  const addr: SockAddr = spec.kind === "tcp"
    ? ipAddr(server.hostname, server.port)
    : unixAddr(spec.path);
  // Set before the first accept (open() runs on a later event-loop turn).
  if (spec.kind === "tcp" && !isWildcard(bareHost(spec.host))) hints.local = addr;
  let closed = false;
  return {
    addr,
    close() {
      if (!closed) {
        closed = true;
        server.stop(false);
      }
      return Promise.resolve();
    },
  };
}
