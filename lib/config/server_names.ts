// mailgate extension: several server blocks on one listen address, told
// apart by the TLS client's SNI (README, "SNI"). nginx's mail module refuses
// a second server on an address ("duplicate ... address and port pair");
// mailgate allows it when every block sharing the address names itself
// with server_name in its own block, so a configuration written for nginx
// that repeats an address by mistake still fails the same way.

import { ConfigError } from "./errors.ts";
import { type Directive, fail, level, type LoadState, warn } from "./directive.ts";
import type { ServerLevel } from "./level.ts";
import type { ListenConfig, ServerConfig } from "./types.ts";
import { validServerName } from "../tls/server_names.ts";

/** server_name name ...: the first is the greeting/SASL name; all select the block by SNI. */
export function handleServerName(d: Directive, st: LoadState): void {
  for (const n of d.args) {
    if (n.startsWith("~")) fail(d, `regular expression server names are not supported: "${n}"`);
    if (!validServerName(n)) fail(d, `invalid server name "${n}"`);
  }
  // One string slot (inherited from mail{} like nginx's); names hold no spaces.
  level(st).set("server_name", d.args.join(" "), d.loc);
}

/** The names of a server_name value (lower-cased, as nginx compares them). */
export function splitServerNames(v: string): string[] {
  return v.split(" ").filter((n) => n !== "").map((n) => n.toLowerCase());
}

function addrKey(l: ListenConfig): string {
  const a = l.address;
  if (a.kind === "unix") return `unix:${a.path}`;
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * Checks listen addresses shared by several servers: each must have its own
 * server_name, the same protocol and the same ssl / proxy_protocol on that
 * address (they share one socket); a name given by two of them is nginx's
 * "conflicting server name" warning (the later block never gets it).
 */
export function checkSharedListens(st: LoadState, levels: ServerLevel[], servers: ServerConfig[]): void {
  const byAddr = new Map<string, { i: number; l: ListenConfig }[]>();
  servers.forEach((s, i) => {
    for (const l of s.listens) {
      const k = addrKey(l);
      const list = byAddr.get(k) ?? [];
      list.push({ i, l });
      byAddr.set(k, list);
    }
  });
  for (const [addr, list] of byAddr) {
    if (list.length < 2) continue;
    const first = list[0];
    const seen = new Set<string>();
    for (const { i, l } of list) {
      if (!levels[i].has("server_name")) {
        throw new ConfigError(`duplicate "${addr}" address and port pair`, list[list.length - 1].l.loc);
      }
      const s = servers[i];
      if (s.protocol !== servers[first.i].protocol) {
        throw new ConfigError(`servers of different protocols on "${addr}"`, l.loc);
      }
      if (l.ssl !== first.l.ssl || l.proxyProtocol !== first.l.proxyProtocol) {
        throw new ConfigError(`different "ssl" or "proxy_protocol" parameters on "${addr}"`, l.loc);
      }
      for (const n of s.serverNames) {
        if (seen.has(n)) warn(st, `conflicting server name "${n}" on ${addr}, ignored`, l.loc);
        seen.add(n);
      }
    }
  }
}
