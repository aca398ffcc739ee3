// Mail directives that name network peers: auth_http (directives.md §4),
// resolver (§3) and set_real_ip_from (§10). Host names are resolved here,
// at load time, as nginx does.

import { type Directive, fail, level, type LoadState, warn } from "./directive.ts";
import { parseCidr } from "../core/ip.ts";
import type { RealIpFrom } from "./level.ts";
import type { AuthHttpUrl, ResolverConfig } from "./types.ts";
import { parseSec } from "./units.ts";
import { formatIp, parseUrl, resolveHost } from "./url.ts";

export const AUTH_HTTP_DEFAULT_PORT = 80;
/** https:// (mailgate extension) defaults to HTTPS's port. */
export const AUTH_HTTPS_DEFAULT_PORT = 443;
export const RESOLVER_DEFAULT_PORT = 53;

/**
 * The optional scheme of an auth_http value: nginx strips `http://`;
 * `https://` is mailgate's extension (auth_http_ssl_*).
 */
const AUTH_HTTP_SCHEME = /^(https?):\/\//i;

/**
 * Parses auth_http. A host name is not looked up here: which way it is
 * resolved depends on the server's merged `resolver`, known only after the
 * whole mail block (auth_http_hosts.ts).
 */
export function handleAuthHttp(d: Directive, st: LoadState): void {
  const raw = d.args[0];
  const scheme = AUTH_HTTP_SCHEME.exec(raw);
  const tls = scheme !== null && scheme[1].toLowerCase() === "https";
  const url = scheme ? raw.slice(scheme[0].length) : raw;
  const r = parseUrl(url, {
    uriPart: true,
    defaultPort: tls ? AUTH_HTTPS_DEFAULT_PORT : AUTH_HTTP_DEFAULT_PORT,
  });
  if ("err" in r) fail(d, `${r.err} in auth_http "${url}"`);
  const u = r.ok;
  let value: AuthHttpUrl;
  if (u.kind === "unix") {
    value = {
      raw,
      target: { kind: "unix", path: u.path },
      hostHeader: "localhost",
      uri: u.uri || "/",
      tls,
      name: null,
      loc: d.loc,
    };
  } else {
    value = {
      raw,
      target: { kind: "tcp", host: u.literal ? formatIp(u.literal) : "", port: u.port },
      hostHeader: u.host,
      uri: u.uri || "/",
      tls,
      name: u.literal ? null : u.host,
      loc: d.loc,
    };
  }
  level(st).set("auth_http", value, d.loc);
}

export async function handleResolver(d: Directive, st: LoadState): Promise<void> {
  const lv = level(st);
  if (lv.has("resolver")) fail(d, `"resolver" directive is duplicate`);
  if (d.args[0] === "off") {
    lv.set("resolver", null, d.loc);
    return;
  }
  const cfg: ResolverConfig = { servers: [], validMs: null, ipv4: true, ipv6: true, loc: d.loc };
  for (const a of d.args) {
    if (a.startsWith("valid=")) {
      const s = parseSec(a.slice(6));
      if (s === null) fail(d, `invalid parameter: ${a}`);
      cfg.validMs = s * 1000;
      continue;
    }
    if (a.startsWith("ipv4=") || a.startsWith("ipv6=")) {
      const v = a.slice(5);
      if (v !== "on" && v !== "off") fail(d, `invalid parameter: ${a}`);
      cfg[a.startsWith("ipv4") ? "ipv4" : "ipv6"] = v === "on";
      continue;
    }
    const r = parseUrl(a, { defaultPort: RESOLVER_DEFAULT_PORT });
    if ("err" in r) fail(d, `${r.err} in resolver "${a}"`);
    const u = r.ok;
    if (u.kind === "unix") fail(d, `invalid host in resolver "${a}"`);
    const ips = await resolveHost(u.host, u.literal, st.lookup);
    if (!ips) fail(d, `host not found in resolver "${a}"`);
    for (const ip of ips) cfg.servers.push({ host: formatIp(ip), port: u.port });
  }
  if (!cfg.ipv4 && !cfg.ipv6) fail(d, `"ipv4" and "ipv6" cannot both be "off"`);
  if (cfg.servers.length === 0) fail(d, "no name servers defined");
  lv.set("resolver", cfg, d.loc);
}

export async function handleSetRealIpFrom(d: Directive, st: LoadState): Promise<void> {
  const v = d.args[0];
  const lv = level(st);
  if (v === "unix:") {
    lv.append("set_real_ip_from", [{ kind: "unix" }], d.loc);
    return;
  }
  const c = parseCidr(v);
  if (c) {
    if (c.hostBits) warn(st, `low address bits of ${v} are meaningless`, d.loc);
    lv.append("set_real_ip_from", [c.cidr], d.loc);
    return;
  }
  const ips = await resolveHost(v, null, st.lookup);
  if (!ips) fail(d, `host not found in set_real_ip_from "${v}"`);
  const items: RealIpFrom[] = ips.map((ip) => ({
    kind: "cidr",
    family: ip.family,
    bytes: ip.bytes,
    prefix: ip.family === 4 ? 32 : 128,
  }));
  lv.append("set_real_ip_from", items, d.loc);
}
