// Opens the listening sockets of a configuration and hands each accepted
// connection to a Session of the server it belongs to.
//
// Address selection follows nginx (directives.md, listen): per port, when a
// wildcard listen exists only the wildcard socket and explicitly bound
// sockets are opened; a connection on the wildcard socket belongs to the
// server whose listen address equals the connection's local address, else
// to the server owning the wildcard listen.
//
// Reload keeps every socket whose address is unchanged (no gap, no second
// bind), opens new ones and closes the ones gone; sessions already running
// keep the settings they started with.

import { LocalStore } from "../store/local.ts";
import type { SharedStore } from "../store/types.ts";
import { createLimitConn, type LimitConn } from "../protect/limit_conn.ts";
import { lstatSync, unlinkSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { Config, ListenConfig, ServerConfig } from "../config/types.ts";
import type { AuthService } from "../auth/types.ts";
import { ErrorLog } from "../log/error_log.ts";
import { AccessLog } from "../log/access_log.ts";
import type { Conn, Listener, ListenSpec, Runtime, TlsClientOptions, TlsServerOptions } from "../runtime/types.ts";
import { makeBackendTls } from "./backend_tls.ts";
import { describeSocketError } from "../core/errno.ts";
import { createResolver, type Resolver } from "../resolver/resolver.ts";

/**
 * Resolvers by configuration, shared by servers and kept across reloads
 * (their caches too): a reload that does not change `resolver` opens no new
 * sockets, and sessions still running on an old configuration keep a
 * working resolver.
 */
const resolvers = new Map<string, Resolver>();
/**
 * Users of each resolver: proxies whose applied configuration has it, plus
 * sessions running with it. A resolver no configuration uses any more is
 * closed (sockets, timers, cache) once its last session is done.
 */
const resolverUsers = new Map<Resolver, number>();

function sharedResolver(server: ServerConfig, runtime: Runtime): Resolver {
  const r = server.resolver!;
  const key = JSON.stringify([r.servers, r.validMs, r.ipv4, r.ipv6, server.resolverTimeoutMs]);
  let res = resolvers.get(key);
  if (!res) {
    res = createResolver(runtime, r, server.resolverTimeoutMs);
    resolvers.set(key, res);
  }
  return res;
}

function useResolver(r: Resolver): void {
  resolverUsers.set(r, (resolverUsers.get(r) ?? 0) + 1);
}

function releaseResolver(r: Resolver): void {
  const n = (resolverUsers.get(r) ?? 1) - 1;
  if (n > 0) resolverUsers.set(r, n);
  else resolverUsers.delete(r);
  pruneResolvers();
}

/** Closes the resolvers nobody uses: released ones, and ones built for a reload that failed. */
function pruneResolvers(): void {
  for (const [key, r] of resolvers) {
    if (resolverUsers.has(r)) continue;
    resolvers.delete(key);
    r.close();
  }
}
import { PROTOCOLS, type ProtocolModule } from "./protocols.ts";
import { Session, type SniBlock } from "./session.ts";
import { selectServerByName } from "../tls/server_names.ts";
import { serverTlsOptions } from "./tls_options.ts";
import { createAuthService } from "./auth_service.ts";
import { interfaceAddresses, OwnAddresses, type OwnListener } from "./own_addresses.ts";

/** Per-server state built once per configuration (re)load. */
export interface ServerRuntime {
  server: ServerConfig;
  protocol: ProtocolModule;
  log: ErrorLog;
  auth: AuthService;
  tls: TlsServerOptions | null;
  accessLog: AccessLog | null;
  backendTls: ((addr: string) => TlsClientOptions) | null;
  resolver: Resolver | null;
  /** freenginx limit_conn, null when the server has none. */
  limitConn: LimitConn | null;
}

interface Entry {
  listen: ListenConfig;
  srv: ServerRuntime;
  /**
   * Several servers on this very address (told apart by SNI): all of them,
   * the default first, in file order; null for the usual one.
   */
  group: Entry[] | null;
  /** The group's SNI chooser, made at the first connection. */
  sni?: (name: string | null) => SniBlock;
}

interface Socket {
  key: string;
  spec: ListenSpec;
  /** Listen entries served by this socket; replaced in place on reload. */
  entries: Entry[];
  listener: Listener | null;
}

export function listenKey(l: ListenConfig): string {
  const a = l.address;
  if (a.kind === "unix") return `unix:${a.path}`;
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const familyPort = (host: string, port: number) => `${host.includes(":") ? 6 : 4}/${port}`;

/** The socket a listen entry opens: address plus its socket options. */
export function listenSpec(l: ListenConfig): ListenSpec {
  const a = l.address;
  if (a.kind === "unix") return { kind: "unix", path: a.path };
  const spec: ListenSpec = { kind: "tcp", host: a.host, port: a.port };
  if (l.backlog !== null) spec.backlog = l.backlog;
  // nginx: ipv6only defaults to on for [::], so `*:143` and `[::]:143` coexist.
  if (a.host === "::") spec.ipv6only = l.ipv6only ?? true;
  const k = l.soKeepalive;
  if (k !== null) {
    spec.keepalive = typeof k === "boolean" ? k : { idleSec: k.idle, intvlSec: k.intvl, cnt: k.cnt };
  }
  return spec;
}

/**
 * Opening order: "::" sockets before the IPv4 sockets of the same port.
 * The Deno adapter has no ipv6only option and serves such IPv4 addresses
 * from the [::] socket, which must therefore exist first.
 */
function openOrder(a: Socket, b: Socket): number {
  const v6 = (s: Socket) => (s.spec.kind === "tcp" && s.spec.host === "::" ? 0 : 1);
  return v6(a) - v6(b);
}

/** Groups listen entries into the sockets to open. */
export function planSockets(servers: ServerRuntime[]): Socket[] {
  const sockets = new Map<string, Socket>();
  const all: Entry[] = servers.flatMap((srv) =>
    srv.server.listens.map((listen): Entry => ({ listen, srv, group: null }))
  );
  // Servers sharing one address (SNI, config/server_names.ts): one group each.
  const groups = new Map<string, Entry[]>();
  for (const e of all) {
    const k = listenKey(e.listen);
    const g = groups.get(k);
    if (g) {
      g.push(e);
      e.group = g;
      g[0].group = g;
    } else groups.set(k, [e]);
  }
  const wild = new Map<string, Socket>();
  const add = (e: Entry): Socket => {
    const key = listenKey(e.listen);
    const had = sockets.get(key);
    if (had) {
      had.entries.push(e); // a later server of a group: never picked by address
      return had;
    }
    const spec = listenSpec(e.listen);
    const s: Socket = { key, spec, entries: [e], listener: null };
    sockets.set(s.key, s);
    return s;
  };
  for (const e of all) {
    const a = e.listen.address;
    if (a.kind === "tcp" && a.wildcard) {
      const k = familyPort(a.host, a.port);
      const s = add(e);
      if (!wild.has(k)) wild.set(k, s);
    }
  }
  for (const e of all) {
    const a = e.listen.address;
    if (a.kind === "tcp" && a.wildcard) continue;
    const w = a.kind === "tcp" && !e.listen.bind ? wild.get(familyPort(a.host, a.port)) : undefined;
    if (w) w.entries.push(e);
    else add(e);
  }
  return [...sockets.values()].sort(openOrder);
}

/** The entry of a socket that an accepted connection belongs to. */
function pick(sock: Socket, conn: Conn): Entry {
  if (sock.entries.length === 1) return sock.entries[0];
  const local = conn.local;
  if (local.family !== "unix") {
    for (const e of sock.entries) {
      const a = e.listen.address;
      if (a.kind === "tcp" && !a.wildcard && a.host === local.address) return e;
    }
  }
  return sock.entries[0];
}

/** The settings of a group's block that SNI can choose. */
function sniBlock(e: Entry): SniBlock {
  const srv = e.srv;
  return {
    server: srv.server,
    listen: e.listen,
    protocol: srv.protocol,
    log: srv.log,
    auth: srv.auth,
    tls: srv.tls,
    accessLog: srv.accessLog,
    resolver: srv.resolver,
    backendTls: srv.backendTls,
    limitConn: srv.limitConn,
  };
}

/** The SNI chooser of a group (nginx's server_name precedence, tls/server_names.ts). */
function sniChooser(group: Entry[]): (name: string | null) => SniBlock {
  const names = group.map((e) => e.srv.server.serverNames);
  const blocks = group.map(sniBlock);
  return (name) => blocks[selectServerByName(names, name)];
}

/** Builds per-server state; throws one clear line on a problem (unreadable certificate...). */
export async function buildServerRuntimes(
  config: Config,
  runtime: Runtime,
  mainLog: ErrorLog,
  /** The process's store (MailProxy.store), for the auth cache and login limits. */
  store?: () => SharedStore,
): Promise<ServerRuntime[]> {
  const out: ServerRuntime[] = [];
  for (const server of config.mail?.servers ?? []) {
    const protocol = PROTOCOLS[server.protocol];
    if (!protocol) continue; // reported at start-up as not built yet
    const log = server.errorLogs ? new ErrorLog(server.errorLogs, runtime.pid, runtime) : mainLog;
    out.push({
      server,
      protocol,
      log,
      auth: await createAuthService(server, runtime, undefined, { warn: (m) => log.warn(m), store }),
      tls: serverTlsOptions(server, server.protocol),
      accessLog: server.accessLog ? new AccessLog(server.accessLog) : null,
      backendTls: makeBackendTls(server.proxySsl),
      // SMTP client hosts, and Auth-Server host names for every protocol.
      resolver: server.resolver ? sharedResolver(server, runtime) : null,
      limitConn: server.limitConn ? createLimitConn(server.limitConn, store) : null,
    });
  }
  return out;
}

export class MailProxy {
  readonly sessions = new Set<Session>();
  #runtime: Runtime;
  #sockets = new Map<string, Socket>();
  #maxConnections: number;
  #idleWaiters: (() => void)[] = [];
  /** What backend dials must not connect to: our listeners, updated by apply(). */
  readonly own = new OwnAddresses();
  /** Resolvers of the applied configuration (one use each, see resolverUsers). */
  #resolvers = new Set<Resolver>();
  /**
   * The process's shared store (lib/store/): Redis with `shared_store`,
   * else process-local. Set by serve.ts at start and on reload; for the
   * auth cache and login limits.
   */
  store: SharedStore = new LocalStore();

  #reusePort: boolean;

  /** reusePort: several worker processes listen on the same ports (worker_processes > 1). */
  constructor(runtime: Runtime, maxConnections: number, reusePort = false) {
    this.#runtime = runtime;
    this.#maxConnections = maxConnections;
    this.#reusePort = reusePort;
  }

  /**
   * Makes the open sockets match `servers`: keeps unchanged addresses (their
   * new connections get the new settings), opens new ones, closes removed
   * ones. On a bind failure nothing changes and one clear line is thrown.
   */
  async apply(servers: ServerRuntime[], maxConnections = this.#maxConnections): Promise<void> {
    const planned = planSockets(servers);
    const before = new Set<AuthService>();
    for (const s of this.#sockets.values()) for (const e of s.entries) before.add(e.srv.auth);
    const opened: Socket[] = [];
    try {
      for (const s of planned) {
        if (this.#sockets.has(s.key)) continue;
        if (s.spec.kind === "unix") removeStaleSocket(s.spec.path);
        try {
          const sock = s;
          const spec = this.#reusePort && s.spec.kind === "tcp" ? { ...s.spec, reusePort: true } : s.spec;
          s.listener = await this.#runtime.listen(spec, (conn) => this.#accept(sock, conn));
        } catch (e) {
          throw new Error(`bind() to ${s.key} failed (${describeSocketError(e)})`);
        }
        opened.push(s);
      }
    } catch (e) {
      for (const s of opened) s.listener?.close();
      throw e;
    }
    const next = new Map<string, Socket>();
    for (const s of planned) {
      const old = this.#sockets.get(s.key);
      if (old) {
        old.entries = s.entries; // same listener, new settings
        next.set(s.key, old);
      } else next.set(s.key, s);
    }
    // The servers' previous auth services are replaced: their kept-alive
    // auth_http connections go (requests in flight still finish).
    for (const srv of servers) before.delete(srv.auth);
    for (const auth of before) auth.close?.();
    for (const [key, s] of this.#sockets) if (!next.has(key)) closeSocket(s);
    this.#sockets = next;
    this.own.update(ownListeners(next.values()), machineAddresses());
    // New uses first, so a resolver kept across the reload never drops to none.
    const resolversNow = new Set<Resolver>();
    for (const srv of servers) if (srv.resolver) resolversNow.add(srv.resolver);
    for (const r of resolversNow) useResolver(r);
    for (const r of this.#resolvers) releaseResolver(r);
    this.#resolvers = resolversNow;
    pruneResolvers();
    this.#maxConnections = maxConnections;
  }

  /** Bound addresses, as "host:port" keys (tests and logs). */
  addresses(): string[] {
    return [...this.#sockets.keys()];
  }

  #accept(sock: Socket, conn: Conn): void {
    const e = pick(sock, conn);
    if (this.sessions.size >= this.#maxConnections) {
      e.srv.log.error(`${this.#maxConnections} worker_connections are not enough`);
      conn.destroy();
      return;
    }
    // With SNI the session may move to another block of the group: every
    // resolver the group uses stays in use until the session is over.
    const resolvers = new Set<Resolver>();
    for (const g of e.group ?? [e]) if (g.srv.resolver) resolvers.add(g.srv.resolver);
    for (const r of resolvers) useResolver(r);
    const session = new Session({
      runtime: this.#runtime,
      server: e.srv.server,
      listen: e.listen,
      protocol: e.srv.protocol,
      log: e.srv.log,
      auth: e.srv.auth,
      accessLog: e.srv.accessLog,
      backendTls: e.srv.backendTls,
      resolver: e.srv.resolver,
      tls: e.srv.tls,
      limitConn: e.srv.limitConn,
      own: this.own,
      sni: e.group ? (e.sni ??= sniChooser(e.group)) : null,
      onDone: (s) => {
        if (this.sessions.delete(s)) for (const r of resolvers) releaseResolver(r);
        if (this.sessions.size === 0) {
          const w = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const f of w) f();
        }
      },
    }, conn);
    this.sessions.add(session);
    session.start();
  }

  /** Stops accepting new connections (sessions continue); resolves when every socket is closed. */
  async stopAccepting(): Promise<void> {
    const closing = [...this.#sockets.values()].map(closeSocket);
    this.#sockets.clear();
    await Promise.all(closing);
  }

  /** Resolves when no session is left. */
  idle(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Closes every session now. */
  abortAll(): void {
    for (const s of [...this.sessions]) s.abort();
  }
}

/** The TCP sockets' addresses, with the port each one really got (port 0 in tests). */
function ownListeners(sockets: Iterable<Socket>): OwnListener[] {
  const out: OwnListener[] = [];
  for (const s of sockets) {
    if (s.spec.kind !== "tcp") continue;
    const bound = s.listener?.addr;
    const port = s.spec.port !== 0 ? s.spec.port : bound && bound.family !== "unix" ? bound.port : 0;
    out.push({ host: s.spec.host, port, ipv6only: s.spec.ipv6only });
  }
  return out;
}

/**
 * The machine's interface addresses, read at start and at each reload (an
 * address added in between is known from the next reload on). If they
 * cannot be read, loopback and the listeners' own addresses are still
 * checked.
 */
function machineAddresses(): string[] {
  try {
    return interfaceAddresses(networkInterfaces());
  } catch {
    return [];
  }
}

async function closeSocket(s: Socket): Promise<void> {
  const l = s.listener;
  s.listener = null;
  await l?.close();
  if (s.spec.kind === "unix") removeStaleSocket(s.spec.path);
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to remove
  }
}
