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

/** Tables are read once per (re)load and shared by the servers naming the same file. */
export async function createAuthService(
  server: ServerConfig,
  runtime: Runtime,
  tables = new Map<string, Promise<AuthService>>(),
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
