// Picks a server's auth service: the built-in table (mailgate's extension)
// when `auth_table` is set, else nginx's auth_http.

import type { ServerConfig } from "../config/types.ts";
import type { AuthService } from "../auth/types.ts";
import { httpAuthServiceFor } from "../auth/http_client.ts";
import { createTableAuthService, loadAuthTable } from "../auth/table.ts";
import { routeNotice } from "../auth/route_notice.ts";
import { authHttpResolvesAtRun } from "../config/auth_http_hosts.ts";
import { createResolver } from "../resolver/resolver.ts";
import type { Runtime } from "../runtime/types.ts";
import { listenKey, type ServerRuntime } from "./server.ts";
import { readFile } from "node:fs/promises";
import type { SharedStore } from "../store/types.ts";
import { LocalStore } from "../store/local.ts";
import { AuthCache, MIN_SECRET_BYTES } from "../protect/cache.ts";
import { LoginLimits } from "../protect/limits.ts";
import { protectAuthService } from "../protect/guard.ts";
import { chooseStore } from "../protect/store_choice.ts";

/** What the protection layer needs from its server (README "Protection"). */
export interface ProtectHooks {
  /** The server's error log at warn level (lockouts). */
  warn(message: string): void;
  /** The process's store (MailProxy.store): used when it is `shared_store`'s, else the server's own. */
  store?: () => SharedStore;
}

/** Tables are read once per (re)load and shared by the servers naming the same file. */
export async function createAuthService(
  server: ServerConfig,
  runtime: Runtime,
  tables = new Map<string, Promise<AuthService>>(),
  hooks?: ProtectHooks,
): Promise<AuthService> {
  const svc = await createPlainAuthService(server, runtime, tables);
  return hooks ? await protect(svc, server, hooks) : svc;
}

/**
 * The auth cache and the login limits in front of the service, when any is
 * configured. With `shared_store` they live in it; without, each server
 * keeps its own (a reload starts them empty), the cache's bounded to
 * auth_cache_size entries.
 */
async function protect(svc: AuthService, server: ServerConfig, hooks: ProtectHooks): Promise<AuthService> {
  const p = server.protect;
  if (!p) return svc;
  const caching = p.cacheTtlMs > 0 || p.cacheNegativeTtlMs > 0;
  if (!caching && p.failLimitIp === null && p.failLimitUser === null) return svc;
  let secret: Uint8Array | null = null;
  if (caching && p.cacheSecretFile !== null) {
    secret = new Uint8Array(await readFile(p.cacheSecretFile).catch((e: Error) => {
      throw new Error(`cannot read "auth_cache_secret" file "${p.cacheSecretFile}": ${e.message}`);
    }));
    if (secret.length < MIN_SECRET_BYTES) {
      throw new Error(`"auth_cache_secret" file "${p.cacheSecretFile}" holds fewer than ${MIN_SECRET_BYTES} bytes`);
    }
  }
  const cache = new AuthCache({
    ttlMs: p.cacheTtlMs,
    negativeTtlMs: p.cacheNegativeTtlMs,
    scope: `${server.protocol}|${server.serverName}|${server.authHttp?.raw ?? server.authTable ?? ""}`,
    secret,
    store: chooseStore(hooks.store, new LocalStore(p.cacheSize)),
  });
  const limits = new LoginLimits({
    ip: p.failLimitIp,
    user: p.failLimitUser,
    store: chooseStore(hooks.store, new LocalStore()),
    warn: hooks.warn,
  });
  return protectAuthService(svc, cache, limits);
}

async function createPlainAuthService(
  server: ServerConfig,
  runtime: Runtime,
  tables: Map<string, Promise<AuthService>>,
): Promise<AuthService> {
  if (server.authTable) {
    const path = server.authTable;
    let svc = tables.get(path);
    if (!svc) {
      svc = loadAuthTable(path).then(createTableAuthService);
      tables.set(path, svc);
    }
    return await svc;
  }
  if (!server.authHttp) throw new Error(`no "auth_http" is defined for server in ${server.loc.file}:${server.loc.line}`);
  // auth_http by name with a resolver: a resolver of its own, closed with the service.
  const resolver = authHttpResolvesAtRun(server) && server.resolver !== null
    ? createResolver(runtime, server.resolver, server.resolverTimeoutMs)
    : undefined;
  return httpAuthServiceFor(server, (spec) => runtime.connect(spec), resolver);
}

/** The start-up notice lines: one per server whose auth service says where it routes. */
export function routeNotices(servers: readonly ServerRuntime[]): string[] {
  const out: string[] = [];
  for (const s of servers) {
    if (s.auth.route === undefined) continue;
    out.push(routeNotice(s.server.protocol, s.server.listens.map(listenKey), s.auth.route));
  }
  return out;
}
