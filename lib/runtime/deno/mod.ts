// The Deno adapter: node:net sockets (Deno's libuv-style loop) for every
// listener and outgoing connection, with node:tls as the TLS layer
// (net_conn.ts); Deno's own API only for signals, arguments and exit.
//
// Why not Deno.listen/Deno.connect, which the first versions used: under
// load their ops starve. In soaks at 7,920 concurrent sessions 0.2-3.5 %
// stalled for 30 s or more; tools/deno_stall_probe.ts reproduces it with a
// bare Deno.listen server (0.15-1.2 % at 7,900 connections, with and
// without listen-queue overflows), while the same Deno serving through
// node:net stalled none in four runs, served 38-50 % more sessions and
// holds no read buffer per idle connection.
// Deno's own TLS has no server STARTTLS, client certificates, SNI or peer
// certificate information either (platform-notes Q2).

import type * as net from "node:net";
import { readdirSync, readFileSync } from "node:fs";
import type { Conn, ConnectSpec, Listener, ListenSpec, Runtime, SignalName, SockAddr } from "../types.ts";
import { nodeNet } from "../builtins.ts";
import { NetConn } from "./net_conn.ts";
import { bareHost, ipAddr, isWildcard, unixAddr } from "../shared/sock_addr.ts";
import { keepaliveCall } from "../shared/keepalive.ts";
import { datagram } from "../shared/datagram.ts";
import { spawnSelf } from "../shared/spawn_self.ts";
import { RUNTIME_SUPPORT } from "../capabilities.ts";

// ---- listeners

/** Where accepted connections go, with the listen's per-connection options. */
interface AcceptTarget {
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

// ---- running out of file descriptors
//
// Deno's node:net stops accepting for good once an accept fails with
// EMFILE: no error event, and no further connection is taken even after
// descriptors are free again (measured on Deno 2.9.6; other Deno internals
// even panic on EMFILE). So the adapter never lets accepting run the
// process out of descriptors: it counts its sockets, and when only
// FD_RESERVE descriptors would be left it stops listening; once twice that
// many are free again it listens afresh. The reserve leaves room for the
// backend and auth connections of the sessions already accepted. Unlike
// nginx, which stops accepting for accept_mutex_delay and leaves clients
// queued, node:net cannot stop accepting without closing its socket, so
// clients queued meanwhile are reset, and new ones refused until then.

/** Sockets this adapter holds (connections, and connects in progress). */
let liveSockets = 0;
/** Soft RLIMIT_NOFILE (Linux /proc), Infinity where it cannot be read. */
const FD_LIMIT = readFdLimit();
/** Descriptors kept free: 4 at a limit of 256, 64 from a limit of 4,096 up. */
const FD_RESERVE = Math.min(64, Math.max(4, Math.floor(FD_LIMIT / 64)));
/** Descriptors that are not our sockets (files, the DNS socket, Deno's own). */
let fdBase = -1;
let fdBaseAt = 0;
/** Within this of the reserve, fdBase is counted afresh (at most every 100 ms). */
const FD_RECOUNT_ZONE = 16;
let acceptStopped = false;

function readFdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m !== null ? Number(m[1]) : Infinity;
  } catch {
    return Infinity;
  }
}

/** Descriptors not held by our sockets, from /proc (Linux); 0 where it cannot be read. */
function countFdBase(): void {
  try {
    fdBase = Math.max(0, readdirSync("/proc/self/fd").length - 1 - liveSockets); // -1: the listing's own
  } catch {
    fdBase = Math.max(fdBase, 0);
  }
  fdBaseAt = Date.now();
}

let recountPending = false;

function countSocket(sock: net.Socket): void {
  liveSockets++;
  sock.once("close", socketClosed);
  if (acceptStopped || FD_LIMIT === Infinity) return;
  if (fdBase < 0) countFdBase();
  checkFdHeadroom();
  // Near the reserve, count the real descriptors again, from a later task:
  // Deno accepts every ready connection before it reports the first, so
  // during that batch some open descriptors are not counted as sockets yet.
  if (
    !recountPending && liveSockets + fdBase >= FD_LIMIT - FD_RESERVE - FD_RECOUNT_ZONE &&
    Date.now() - fdBaseAt >= 100
  ) {
    recountPending = true;
    setTimeout(() => {
      recountPending = false;
      if (acceptStopped) return;
      countFdBase();
      checkFdHeadroom();
    }, 0);
  }
}

function checkFdHeadroom(): void {
  if (!acceptStopped && liveSockets + fdBase >= FD_LIMIT - FD_RESERVE) stopAccepting();
}

function socketClosed(): void {
  liveSockets--;
  if (acceptStopped && liveSockets + fdBase <= FD_LIMIT - 2 * FD_RESERVE) void startAccepting();
}

/** Every listening server, to be closed and opened again around descriptor exhaustion. */
interface OpenServer {
  /** null while accepting is stopped. */
  server: net.Server | null;
  options: net.ListenOptions & { reusePort?: boolean };
  route: (c: NetConn) => AcceptTarget | null;
  closed: boolean;
}
const openServers = new Set<OpenServer>();

function stopAccepting(): void {
  acceptStopped = true;
  console.error(
    `mailgate: ${liveSockets + fdBase} of ${FD_LIMIT} file descriptors in use: ` +
      `not accepting until ${2 * FD_RESERVE} are free`,
  );
  for (const s of openServers) {
    s.server?.close();
    s.server = null;
  }
}

async function startAccepting(): Promise<void> {
  acceptStopped = false;
  for (const s of openServers) {
    if (s.server !== null) continue;
    try {
      const fresh = await createServer(s.options, s.route);
      // Closed (a reload), or accepting stopped again, while it was opening.
      if (s.closed || s.server !== null || acceptStopped) fresh.close();
      else s.server = fresh;
    } catch (e) {
      console.error(`mailgate: listening again after running out of file descriptors failed: ${e}`);
    }
  }
}

/**
 * A listening node:net server; `route` picks the target of each connection
 * (null: close it). Rejects with the bind error (code EADDRINUSE, ...).
 */
async function openServer(
  options: net.ListenOptions & { reusePort?: boolean },
  route: (c: NetConn) => AcceptTarget | null,
): Promise<OpenServer> {
  const server = await createServer(options, route);
  // Listening again must take the same port, not a new ephemeral one.
  const a = server.address();
  if (a !== null && typeof a === "object") options = { ...options, port: a.port };
  const s: OpenServer = { server, options, route, closed: false };
  openServers.add(s);
  if (fdBase < 0 && FD_LIMIT !== Infinity) countFdBase();
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

function addrOf(s: OpenServer): SockAddr {
  const o = s.options;
  return o.path !== undefined ? unixAddr(o.path) : ipAddr(o.host ?? "", portOf(s));
}

/** The port a TCP server listens on (openServer made options.port the real one). */
function portOf(s: OpenServer): number {
  return s.options.port ?? 0;
}

function closeServer(s: OpenServer): Promise<void> {
  if (s.closed) return Promise.resolve();
  s.closed = true;
  openServers.delete(s);
  // close() stops accepting at once; its callback would wait for every
  // accepted connection to end, which a reload must not.
  try {
    s.server?.close();
  } catch { /* already closed */ }
  s.server = null;
  return Promise.resolve();
}

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

async function listen(spec: ListenSpec, onAccept: (c: Conn) => void): Promise<Listener> {
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

// ---- outgoing connections

function describe(spec: ConnectSpec): string {
  return spec.kind === "tcp" ? `${spec.host}:${spec.port}` : `unix:${spec.path}`;
}

function connectSocket(spec: ConnectSpec): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = spec.kind === "tcp"
      ? nodeNet().connect({ host: bareHost(spec.host), port: spec.port, allowHalfOpen: true })
      : nodeNet().connect({ path: spec.path, allowHalfOpen: true });
    countSocket(sock);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    if (spec.timeoutMs !== undefined) {
      timer = setTimeout(() => fail(new Error(`connect to ${describe(spec)} timed out`)), spec.timeoutMs);
    }
    sock.once("error", fail);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.off("error", fail);
      resolve(sock);
    });
  });
}

async function connect(spec: ConnectSpec): Promise<Conn> {
  const started = Date.now();
  const sock = await connectSocket(spec);
  const conn = new NetConn(
    sock,
    spec.kind === "tcp" ? spec.host : null,
    spec.kind === "unix" ? { unixRemote: spec.path } : { remote: ipAddr(bareHost(spec.host), spec.port) },
  );
  if (spec.tls) {
    // The handshake counts against the same connect timeout.
    const left = spec.timeoutMs !== undefined ? spec.timeoutMs - (Date.now() - started) : undefined;
    let timedOut = false;
    const timer = left !== undefined
      ? setTimeout(() => {
        timedOut = true;
        conn.destroy();
      }, Math.max(left, 0))
      : undefined;
    try {
      await conn.startTlsClient(spec.tls);
    } catch (e) {
      conn.destroy();
      if (timedOut) throw new Error(`connect to ${describe(spec)} timed out (TLS handshake)`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
  return conn;
}

// ---- the runtime

export const runtime: Runtime = {
  name: "deno",
  support: RUNTIME_SUPPORT.deno,
  version: Deno.version.deno,
  listen,
  connect,
  datagram,
  spawnSelf,
  onSignal(signal: SignalName, handler: () => void): void {
    // Note: on Deno, SIGUSR1 also starts the V8 inspector (platform-notes Q5).
    Deno.addSignalListener(signal, handler);
  },
  args: () => [...Deno.args],
  exit: (code: number): never => Deno.exit(code),
  pid: Deno.pid,
};
