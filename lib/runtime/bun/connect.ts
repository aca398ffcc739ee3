// Outgoing connections with Bun.connect (TCP or unix, plain or implicit
// TLS), bounded by the connect timeout, which also covers the handshake.

import type { Conn, ConnectSpec, TlsInfo } from "../types.ts";
import { bunApi, type BunSocketHandlers } from "./api_types.ts";
import { bareHost, ipAddr } from "../shared/sock_addr.ts";
import { type AddrHints, BunConn, CONN_HANDLERS } from "./conn.ts";
import { clientTlsOptions } from "./tls_contexts.ts";

function describe(spec: ConnectSpec): string {
  return spec.kind === "tcp" ? `${spec.host}:${spec.port}` : `unix:${spec.path}`;
}

/** socket.data of a connection that is still being opened. */
interface PendingConnect {
  abandoned: boolean;
  addrs: AddrHints;
  host: string | null;
  tls: boolean;
  conn: BunConn | null;
  handshake: Promise<TlsInfo> | null;
}

const CONNECT_HANDLERS: BunSocketHandlers = {
  ...CONN_HANDLERS,
  open(s) {
    const p = s.data as PendingConnect;
    if (p.abandoned) {
      s.terminate();
      return;
    }
    // The conn (and its handshake promise) exist before any other event
    // for this socket can arrive.
    p.conn = new BunConn(s, p.addrs, p.host);
    if (p.tls) {
      p.handshake = p.conn._awaitClientHandshake();
      p.handshake.catch(() => {}); // awaited by connect(), unless it gave up
    }
  },
  connectError() {/* reported by the Bun.connect promise */},
};

export async function connect(spec: ConnectSpec): Promise<Conn> {
  const bun = bunApi();
  const pending: PendingConnect = {
    abandoned: false,
    addrs: spec.kind === "unix"
      ? { unixPath: spec.path, local: null, remote: null }
      : { unixPath: null, local: null, remote: ipAddr(bareHost(spec.host), spec.port) },
    host: spec.kind === "tcp" ? bareHost(spec.host) : null,
    tls: spec.tls !== undefined,
    conn: null,
    handshake: null,
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = spec.timeoutMs === undefined ? null : new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      pending.abandoned = true;
      // Reject first: Promise.race must see the timeout, not the close.
      reject(new Error(`connect to ${describe(spec)} timed out`));
      pending.conn?.destroy();
    }, spec.timeoutMs);
  });
  const opening = bun.connect({
    ...(spec.kind === "tcp" ? { hostname: pending.host!, port: spec.port } : { unix: spec.path }),
    allowHalfOpen: true,
    tls: spec.tls ? clientTlsOptions(spec.tls, pending.host) : undefined,
    data: pending,
    socket: CONNECT_HANDLERS,
  });
  // If the timeout wins, a late success is closed by open() and a late
  // failure must not become an unhandled rejection.
  opening.catch(() => {});
  try {
    const s = await (timeout ? Promise.race([opening, timeout]) : opening);
    const conn = pending.conn;
    if (conn === null) {
      s.terminate();
      throw new Error(`connect to ${describe(spec)} failed: socket not opened`);
    }
    if (pending.handshake !== null) {
      await (timeout ? Promise.race([pending.handshake, timeout]) : pending.handshake);
    }
    return conn;
  } catch (e) {
    pending.abandoned = true;
    pending.conn?.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
