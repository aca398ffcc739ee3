// The `listen` directive (directives.md §3): address forms, port ranges,
// parameters with their nginx error strings, protocol autodetection by
// well-known port and the mail-wide duplicate address check.

import { type Directive, fail, type LoadState, warn } from "./directive.ts";
import type { ListenAddress, ListenConfig, Protocol } from "./types.ts";
import { parseNumber, parseSec, parseSize } from "./units.ts";
import { formatIp, formatIpPort, isWildcard, parseUrl, resolveHost } from "./url.ts";

/** Ports that imply a protocol when a server has no `protocol` directive. */
export const WELL_KNOWN_PORTS: Record<number, Protocol> = {
  143: "imap",
  993: "imap",
  110: "pop3",
  995: "pop3",
  25: "smtp",
  465: "smtp",
  587: "smtp",
};

/** Addresses each server block listens on (the per-server duplicate check). */
const serverAddrs = new WeakMap<object, Set<string>>();

export const MULTIPATH_WARNING = "multipath is not supported on this platform, ignored";

export async function handleListen(d: Directive, st: LoadState): Promise<void> {
  const srv = st.server;
  if (!srv) throw new Error("listen outside server");
  const value = d.args[0];
  const where = `in "${value}" of the "listen" directive`;
  const r = parseUrl(value, { listen: true });
  if ("err" in r) fail(d, `${r.err} ${where}`);
  const u = r.ok;

  const targets: { address: ListenAddress; text: string }[] = [];
  let firstPort = 0;
  if (u.kind === "unix") {
    targets.push({ address: { kind: "unix", path: u.path }, text: `unix:${u.path}` });
  } else {
    // A TCP listener without a port would bind an ephemeral one; refuse it.
    if (u.noPort) fail(d, `invalid port ${where}`);
    const ips = await resolveHost(u.host, u.literal, st.lookup);
    if (!ips) fail(d, `host not found ${where}`);
    firstPort = u.port;
    for (const ip of ips) {
      for (let p = u.port; p <= u.lastPort; p++) {
        targets.push({
          address: { kind: "tcp", host: formatIp(ip), port: p, wildcard: isWildcard(ip) },
          text: formatIpPort(ip, p),
        });
      }
    }
  }

  if (srv.protocol === null && srv.detectedProtocol === null && firstPort in WELL_KNOWN_PORTS) {
    srv.detectedProtocol = WELL_KNOWN_PORTS[firstPort];
  }

  const opts: Omit<ListenConfig, "address" | "loc"> = {
    ssl: false,
    proxyProtocol: false,
    bind: false,
    backlog: null,
    rcvbuf: null,
    sndbuf: null,
    ipv6only: null,
    multipath: false,
    soKeepalive: null,
  };
  for (const p of d.args.slice(1)) {
    if (p === "bind") {
      opts.bind = true;
    } else if (p.startsWith("backlog=")) {
      const n = parseNumber(p.slice(8));
      if (n === null || n === 0) fail(d, `invalid backlog "${p}"`);
      opts.backlog = n;
      opts.bind = true;
    } else if (p.startsWith("rcvbuf=") || p.startsWith("sndbuf=")) {
      const n = parseSize(p.slice(7));
      const which = p.slice(0, 6) as "rcvbuf" | "sndbuf";
      if (n === null) fail(d, `invalid ${which} "${p}"`);
      opts[which] = n;
      opts.bind = true;
    } else if (p.startsWith("ipv6only=o")) {
      const rest = p.slice(10);
      if (rest === "n") opts.ipv6only = true;
      else if (rest === "ff") opts.ipv6only = false;
      else fail(d, `invalid ipv6only flags "${p.slice(9)}"`);
      opts.bind = true;
    } else if (p === "ssl") {
      opts.ssl = true;
      srv.hasListenSsl = true;
      srv.sslModeLoc = d.loc;
    } else if (p.startsWith("so_keepalive=")) {
      opts.soKeepalive = parseKeepalive(d, p.slice(13));
      opts.bind = true;
    } else if (p === "proxy_protocol") {
      opts.proxyProtocol = true;
    } else if (p === "multipath") {
      opts.multipath = true;
      opts.bind = true;
      warn(st, MULTIPATH_WARNING, d.loc);
    } else {
      fail(d, `invalid parameter "${p}"`);
    }
  }

  // One server may not repeat an address; several servers may share one
  // when they have server_names (SNI; checked by config/server_names.ts).
  const mine = serverAddrs.get(srv) ?? new Set<string>();
  serverAddrs.set(srv, mine);
  for (const t of targets) {
    if (mine.has(t.text)) fail(d, `duplicate "${t.text}" address and port pair`);
    mine.add(t.text);
    st.listenAddrs.add(t.text);
    srv.listens.push({ loc: d.loc, address: t.address, ...opts });
  }
}

/** `on`, `off` or `[idle]:[intvl]:[cnt]` (idle/intvl seconds-times, cnt a number). */
function parseKeepalive(d: Directive, v: string): ListenConfig["soKeepalive"] {
  if (v === "on") return true;
  if (v === "off") return false;
  const bad = (): never => fail(d, `invalid so_keepalive value: "${v}"`);
  const c1 = v.indexOf(":");
  const idleText = c1 < 0 ? v : v.slice(0, c1);
  const rest = c1 < 0 ? "" : v.slice(c1 + 1);
  const c2 = rest.indexOf(":");
  const intvlText = c2 < 0 ? rest : rest.slice(0, c2);
  const cntText = c2 < 0 ? "" : rest.slice(c2 + 1);
  const idle = idleText === "" ? null : parseSec(idleText) ?? bad();
  const intvl = intvlText === "" ? null : parseSec(intvlText) ?? bad();
  const cnt = cntText === "" ? null : parseNumber(cntText) ?? bad();
  if (!idle && !intvl && !cnt) bad();
  return { idle, intvl, cnt };
}
