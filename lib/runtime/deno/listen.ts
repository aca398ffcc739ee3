// Runtime.listen for Deno: which node:net server a listen opens or joins,
// and the dual-stack port sharing that stands in for ipv6only.

import type * as net from "node:net";
import { readFileSync } from "node:fs";
import type { Conn, Listener, ListenSpec, SockAddr } from "../types.ts";
import type { NetConn } from "./net_conn.ts";
import { bareHost, ipAddr } from "../shared/sock_addr.ts";
import { type AcceptTarget, addrOf, closeServer, openServer, type OpenServer, portOf } from "./servers.ts";

/**
 * Deno's node:net has no working IPV6_V6ONLY (ipv6Only is ignored), and a
 * "::" socket is dual-stack (unless the bindv6only sysctl says otherwise).
 * On Linux a dual-stack socket holds the IPv4 port as well, so nginx's
 * usual pair `listen *:143; listen [::]:143;` (ipv6only=on by default)
 * would fail with "address in use". Instead, one dual-stack socket serves
 * both: IPv6 connections go to the [::] listen, IPv4 ones to the IPv4
 * listen of the same port whose address matches (else the IPv4 wildcard),
 * and an IPv4 connection nobody listens for is closed at once, which is as
 * close to "ipv6only" as Deno gets (accepted then closed, not refused).
 */
interface PortRoutes {
  v6: AcceptTarget | null;
  /** IPv4 listens riding on the shared socket, by address ("0.0.0.0" = wildcard). */
  v4: Map<string, AcceptTarget>;
}
interface PortShare extends PortRoutes {
  server: OpenServer;
}

/** Shared dual-stack sockets by port. */
const shares = new Map<number, PortShare>();

let v6onlyDefault: boolean | null = null;
/** net.ipv6.bindv6only: 1 makes every "::" socket IPv6-only already. */
function systemV6only(): boolean {
  if (v6onlyDefault === null) {
    try {
      v6onlyDefault = readFileSync("/proc/sys/net/ipv6/bindv6only", "utf8").trim() === "1";
    } catch {
      v6onlyDefault = false;
    }
  }
  return v6onlyDefault;
}

function inUse(what: string, detail = ""): Error {
  return Object.assign(new Error(`${what} is already open${detail}`), { code: "EADDRINUSE" });
}

function routeShared(routes: PortRoutes) {
  return (c: NetConn): AcceptTarget | null => {
    const local = c.local;
    if (local.family !== "ipv4") return routes.v6;
    return routes.v4.get(local.address) ?? routes.v4.get("0.0.0.0") ?? null;
  };
}

function sharedListener(share: PortShare, port: number, remove: () => void, addr: SockAddr): Listener {
  let closed = false;
  return {
    addr,
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      remove();
      if (share.v6 !== null || share.v4.size > 0) return Promise.resolve();
      if (shares.get(port) === share) shares.delete(port);
      return closeServer(share.server);
    },
  };
}

function tcpListenOptions(spec: ListenSpec & { kind: "tcp" }) {
  const opts: net.ListenOptions & { reusePort?: boolean } = { host: bareHost(spec.host), port: spec.port };
  if (spec.reusePort) opts.reusePort = true;
  if (spec.backlog !== undefined) opts.backlog = spec.backlog;
  return opts;
}

/** A "::" listen with ipv6only=on: the port's shared dual-stack socket, opened if needed. */
async function listenV6only(spec: ListenSpec & { kind: "tcp" }, target: AcceptTarget): Promise<Listener> {
  let share = spec.port !== 0 ? shares.get(spec.port) : undefined;
  if (share === undefined) {
    const routes: PortRoutes = { v6: null, v4: new Map() };
    let server: OpenServer;
    try {
      server = await openServer(tcpListenOptions(spec), routeShared(routes));
    } catch (e) {
      if ((e as { code?: string }).code !== "EADDRINUSE") throw e;
      // An IPv4 socket of ours on this port was opened first (only possible
      // on reload: planSockets opens "::" first): it cannot be shared now.
      throw inUse(
        `[::]:${spec.port}`,
        `; the deno runtime has no ipv6only option, so [::]:${spec.port} ` +
          `must be opened before any IPv4 address of port ${spec.port} (restart instead of reloading)`,
      );
    }
    share = Object.assign(routes, { server });
    shares.set(portOf(server), share);
  } else if (share.v6 !== null) {
    throw inUse(`[::]:${spec.port}`);
  }
  const s = share;
  s.v6 = target;
  return sharedListener(s, portOf(s.server), () => (s.v6 = null), addrOf(s.server));
}

export async function listen(spec: ListenSpec, onAccept: (c: Conn) => void): Promise<Listener> {
  const target: AcceptTarget = { onAccept, spec };
  if (spec.kind === "tcp") {
    const host = bareHost(spec.host);
    if (host === "::" && spec.ipv6only === true && !systemV6only()) return listenV6only(spec, target);
    // An IPv4 address of a port whose [::] socket is shared rides on it.
    const share = spec.port !== 0 && net4(host) ? shares.get(spec.port) : undefined;
    if (share !== undefined) {
      if (share.v4.has(host)) throw inUse(`${host}:${spec.port}`);
      share.v4.set(host, target);
      return sharedListener(share, spec.port, () => share.v4.delete(host), ipAddr(host, spec.port));
    }
  }
  const server = await openServer(
    spec.kind === "tcp" ? tcpListenOptions(spec) : { path: spec.path },
    () => target,
  );
  return { addr: addrOf(server), close: () => closeServer(server) };
}

/** An IPv4 literal (the addresses a shared dual-stack socket can serve). */
function net4(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}
