// mailgate extension: several server blocks on one listen address, told
// apart by the TLS client's SNI (README, "SNI"). nginx's mail module refuses
// a second server on an address ("duplicate ... address and port pair");
// mailgate allows it when every block sharing the address names itself
// with server_name in its own block, so a configuration written for nginx
// that repeats an address by mistake still fails the same way.

import { ConfigError } from "./errors.ts";
import { type Directive, fail, level, type LoadState, warn } from "./directive.ts";
import type { Level, ServerLevel } from "./level.ts";
import type { ListenConfig } from "./types.ts";
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
 * "conflicting server name" warning (the later block never gets it). Runs
 * first among the end-of-mail checks, so that a configuration nginx refuses
 * for its duplicate address is refused for it here too.
 */
export function checkSharedListens(st: LoadState, mail: Level, levels: ServerLevel[]): void {
  const byAddr = new Map<string, { lv: ServerLevel; l: ListenConfig }[]>();
  for (const lv of levels) {
    for (const l of lv.listens) {
      const k = addrKey(l);
      const list = byAddr.get(k) ?? [];
      list.push({ lv, l });
      byAddr.set(k, list);
    }
  }
  // `ssl on` (nginx <= 1.24, server or mail level) makes every listen ssl.
  const ssl = (lv: ServerLevel, l: ListenConfig) =>
    l.ssl || (lv.singles.ssl ?? mail.singles.ssl)?.value === true;
  const protocol = (lv: ServerLevel) => lv.protocol ?? lv.detectedProtocol;
  for (const [addr, list] of byAddr) {
    if (list.length < 2) continue;
    const first = list[0];
    if (list.some(({ lv }) => !lv.has("server_name"))) {
      throw new ConfigError(`duplicate "${addr}" address and port pair`, list[1].l.loc);
    }
    const seen = new Set<string>();
    for (const { lv, l } of list) {
      const p = protocol(lv);
      const p0 = protocol(first.lv);
      if (p !== null && p0 !== null && p !== p0) {
        throw new ConfigError(`servers of different protocols on "${addr}"`, l.loc);
      }
      if (ssl(lv, l) !== ssl(first.lv, first.l) || l.proxyProtocol !== first.l.proxyProtocol) {
        throw new ConfigError(`different "ssl" or "proxy_protocol" parameters on "${addr}"`, l.loc);
      }
      for (const n of splitServerNames(lv.singles.server_name!.value)) {
        if (seen.has(n)) warn(st, `conflicting server name "${n}" on ${addr}, ignored`, l.loc);
        seen.add(n);
      }
    }
  }
}
