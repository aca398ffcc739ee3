// Address/URL parsing shared by listen, auth_http, resolver and syslog
// (a port of ngx_parse_url's rules and error strings). Host names are not
// resolved here; resolveHost() does that with node:dns, only for names that
// are not IP literals.

import { nodeDns } from "../runtime/builtins.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../core/ip.ts";

/** sizeof(sockaddr_un.sun_path) on Linux, including the terminating NUL. */
export const UNIX_PATH_MAX = 108;

export interface IpAddr {
  family: 4 | 6;
  bytes: Uint8Array;
}

export type ParsedUrl =
  | { kind: "unix"; path: string; uri: string }
  | {
    kind: "inet";
    /** Host as written (IPv6 keeps its brackets, as nginx's u.host does). */
    host: string;
    /** The address when the host is an IP literal (or `*`); null = needs a lookup. */
    literal: IpAddr | null;
    port: number;
    /** Last port of a range (listen only); equals port when there is no range. */
    lastPort: number;
    noPort: boolean;
    uri: string;
  };

export interface UrlOptions {
  listen?: boolean;
  uriPart?: boolean;
  defaultPort?: number;
}

export type UrlResult = { ok: ParsedUrl } | { err: string };

/** Parses a port; null when not 1..65535 digits. */
function port(s: string): number | null {
  if (!/^[0-9]+$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

export function parseUrl(url: string, o: UrlOptions = {}): UrlResult {
  if (url.length >= 5 && url.slice(0, 5).toLowerCase() === "unix:") return parseUnix(url, o);
  if (url.startsWith("[")) return parseInet6(url, o);
  return parseInet(url, o);
}

function parseUnix(url: string, o: UrlOptions): UrlResult {
  let path = url.slice(5);
  let uri = "";
  if (o.uriPart) {
    const colon = path.indexOf(":");
    if (colon >= 0) {
      uri = path.slice(colon + 1);
      path = path.slice(0, colon);
    }
  }
  if (path.length === 0) return { err: "no path in the unix domain socket" };
  if (new TextEncoder().encode(path).length + 1 > UNIX_PATH_MAX) {
    return { err: "too long path in the unix domain socket" };
  }
  return { ok: { kind: "unix", path, uri } };
}

/** Parses `<port>` or `<port>-<last>` (listen); returns an error string or the pair. */
function portRange(text: string, listen: boolean): { port: number; last: number } | string {
  let first = text;
  let last = 0;
  if (listen) {
    const dash = text.indexOf("-");
    if (dash >= 0) {
      const l = port(text.slice(dash + 1));
      if (l === null) return "invalid port";
      last = l;
      first = text.slice(0, dash);
    }
  }
  const p = port(first);
  if (p === null) return "invalid port";
  if (last && p > last) return "invalid port range";
  return { port: p, last: last || p };
}

function parseInet(url: string, o: UrlOptions): UrlResult {
  let last = url.length;
  let colon = url.indexOf(":");
  let uriAt = url.indexOf("/");
  const args = url.indexOf("?");
  if (args >= 0 && (uriAt < 0 || args < uriAt)) uriAt = args;
  let uri = "";
  if (uriAt >= 0) {
    if (o.listen || !o.uriPart) return { err: "invalid host" };
    uri = url.slice(uriAt);
    last = uriAt;
    if (uriAt < colon) colon = -1;
  }

  let p = o.defaultPort ?? 0;
  let lastPort = p;
  let noPort = false;
  let hostEnd = last;
  if (colon >= 0) {
    const r = portRange(url.slice(colon + 1, last), !!o.listen);
    if (typeof r === "string") return { err: r };
    p = r.port;
    lastPort = r.last;
    hostEnd = colon;
  } else {
    if (uriAt < 0 && o.listen) {
      // A bare value is tried as a port (or port range) on the wildcard address.
      const text = url.slice(0, last);
      if (/^[0-9]+(-[0-9]*)?$/.test(text) && !text.endsWith("-")) {
        const r = portRange(text, true);
        if (typeof r === "string") return { err: r };
        return {
          ok: {
            kind: "inet",
            host: "*",
            literal: { family: 4, bytes: new Uint8Array(4) },
            port: r.port,
            lastPort: r.last,
            noPort: false,
            uri: "",
          },
        };
      }
    }
    noPort = true;
  }

  const host = url.slice(0, hostEnd);
  if (host.length === 0) return { err: "no host" };
  let literal: IpAddr | null = null;
  if (o.listen && host === "*") {
    literal = { family: 4, bytes: new Uint8Array(4) };
  } else {
    const v4 = parseIPv4(host);
    if (v4) literal = { family: 4, bytes: v4 };
  }
  return { ok: { kind: "inet", host, literal, port: p, lastPort: lastPort || p, noPort, uri } };
}

function parseInet6(url: string, o: UrlOptions): UrlResult {
  const close = url.indexOf("]");
  if (close < 0) return { err: "invalid host" };
  let last = url.length;
  let uri = "";
  const slash = url.indexOf("/", close + 1);
  if (slash >= 0) {
    if (o.listen || !o.uriPart) return { err: "invalid host" };
    uri = url.slice(slash);
    last = slash;
  }
  let p = o.defaultPort ?? 0;
  let lastPort = p;
  let noPort = true;
  if (close + 1 < last) {
    if (url[close + 1] !== ":") return { err: "invalid host" };
    const r = portRange(url.slice(close + 2, last), !!o.listen);
    if (typeof r === "string") return { err: r };
    p = r.port;
    lastPort = r.last;
    noPort = false;
  }
  const inner = url.slice(1, close);
  if (inner.length === 0) return { err: "no host" };
  const bytes = parseIPv6(inner);
  if (!bytes) return { err: "invalid IPv6 address" };
  return {
    ok: {
      kind: "inet",
      host: url.slice(0, close + 1),
      literal: { family: 6, bytes },
      port: p,
      lastPort: lastPort || p,
      noPort,
      uri,
    },
  };
}

export function formatIp(a: IpAddr): string {
  return a.family === 4 ? formatIPv4(a.bytes) : formatIPv6(a.bytes);
}

/** `1.2.3.4:25`, `[::1]:25` (ngx_sock_ntop with port). */
export function formatIpPort(a: IpAddr, p: number): string {
  return a.family === 4 ? `${formatIPv4(a.bytes)}:${p}` : `[${formatIPv6(a.bytes)}]:${p}`;
}

export function isWildcard(a: IpAddr): boolean {
  return a.bytes.every((b) => b === 0);
}

/** Resolves a host name to every address (deduplicated, resolver order). */
export type HostLookup = (host: string) => Promise<IpAddr[]>;

export const defaultLookup: HostLookup = async (host) => {
  const found = await nodeDns().promises.lookup(host, { all: true });
  const out: IpAddr[] = [];
  const seen = new Set<string>();
  for (const r of found) {
    const a = r.family === 6 ? parseIPv6(r.address) : parseIPv4(r.address);
    if (!a) continue;
    const ip: IpAddr = { family: r.family === 6 ? 6 : 4, bytes: a };
    const key = formatIp(ip);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(ip);
  }
  return out;
};

/** Literal or looked-up addresses; null when the name does not resolve. */
export async function resolveHost(
  host: string,
  literal: IpAddr | null,
  lookup: HostLookup,
): Promise<IpAddr[] | null> {
  if (literal) return [literal];
  try {
    const found = await lookup(host);
    return found.length > 0 ? found : null;
  } catch {
    return null;
  }
}
