// One listening node:net server per socket the adapter opens: accepted
// connections wrapped as NetConn and handed to their target, and the
// server registered with the descriptor guard (fd_guard.ts), which may
// close it and open it again.

import type * as net from "node:net";
import type { Conn, ListenSpec, SockAddr } from "../types.ts";
import { nodeNet } from "../builtins.ts";
import { NetConn } from "./net_conn.ts";
import { ipAddr, isWildcard, unixAddr } from "../shared/sock_addr.ts";
import { keepaliveCall } from "../shared/keepalive.ts";
import { countSocket, guardServer, type Reopenable, unguardServer } from "./fd_guard.ts";

/** Where accepted connections go, with the listen's per-connection options. */
export interface AcceptTarget {
  onAccept: (c: Conn) => void;
  spec: ListenSpec;
}

function deliver(target: AcceptTarget, conn: NetConn): void {
  if (target.spec.kind === "tcp") {
    const ka = keepaliveCall(target.spec.keepalive, true);
    if (ka !== null) conn.setKeepAlive(ka.enable, ka.delayMs);
  }
  try {
    target.onAccept(conn);
  } catch (e) {
    conn.destroy();
    console.error("mailgate: accept handler failed:", e);
  }
}

/** A listening server of this adapter, with what it takes to open it again. */
export interface OpenServer extends Reopenable {
  options: net.ListenOptions & { reusePort?: boolean };
  route: (c: NetConn) => AcceptTarget | null;
}

/**
 * A listening node:net server; `route` picks the target of each connection
 * (null: close it). Rejects with the bind error (code EADDRINUSE, ...).
 */
export async function openServer(
  options: net.ListenOptions & { reusePort?: boolean },
  route: (c: NetConn) => AcceptTarget | null,
): Promise<OpenServer> {
  const server = await createServer(options, route);
  // Listening again must take the same port, not a new ephemeral one.
  const a = server.address();
  if (a !== null && typeof a === "object") options = { ...options, port: a.port };
  const s: OpenServer = { server, options, route, closed: false, reopen: () => createServer(s.options, s.route) };
  guardServer(s);
  return s;
}

function createServer(
  options: net.ListenOptions & { reusePort?: boolean },
  route: (c: NetConn) => AcceptTarget | null,
): Promise<net.Server> {
  const unixPath = options.path;
  // Every connection accepted on a specific address has that local address:
  // known without a getsockname per connection (set once listening).
  let local: SockAddr | undefined;
  const server = nodeNet().createServer({ allowHalfOpen: true }, (sock: net.Socket) => {
    countSocket(sock);
    const conn = new NetConn(sock, null, { unixLocal: unixPath, local });
    const target = route(conn);
    if (target === null) conn.destroy();
    else deliver(target, conn);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options, () => {
      server.off("error", reject);
      const a = server.address();
      if (a !== null && typeof a === "object" && !isWildcard(a.address)) local = ipAddr(a.address, a.port);
      server.on("error", () => {}); // a failed accept; see above for EMFILE
      resolve(server);
    });
  });
}

export function addrOf(s: OpenServer): SockAddr {
  const o = s.options;
  return o.path !== undefined ? unixAddr(o.path) : ipAddr(o.host ?? "", portOf(s));
}

/** The port a TCP server listens on (openServer made options.port the real one). */
export function portOf(s: OpenServer): number {
  return s.options.port ?? 0;
}

export function closeServer(s: OpenServer): Promise<void> {
  if (s.closed) return Promise.resolve();
  s.closed = true;
  unguardServer(s);
  // close() stops accepting at once; its callback would wait for every
  // accepted connection to end, which a reload must not.
  try {
    s.server?.close();
  } catch { /* already closed */ }
  s.server = null;
  return Promise.resolve();
}
