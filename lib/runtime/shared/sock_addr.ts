// SockAddr construction shared by the adapters.

import type { SockAddr } from "../types.ts";

/**
 * An IP socket address as mailgate reports it. Dual-stack ("::") listeners
 * see IPv4 clients as "::ffff:a.b.c.d"; those are reported as plain IPv4.
 */
export function ipAddr(address: string, port: number): SockAddr {
  if (address.startsWith("::ffff:") && address.indexOf(".") > 0) {
    return { family: "ipv4", address: address.slice(7), port };
  }
  return { family: address.includes(":") ? "ipv6" : "ipv4", address, port };
}

export function unixAddr(path: string | null | undefined): SockAddr {
  return { family: "unix", path: path ?? "" };
}

/** "[::1]" -> "::1": Bun fails on bracketed IPv6 literals (platform-notes Q1). */
export function bareHost(host: string): string {
  return host.length > 1 && host[0] === "[" && host[host.length - 1] === "]"
    ? host.slice(1, -1)
    : host;
}

/** "0.0.0.0", "::" and other all-zero spellings: connections may arrive on any local address. */
export function isWildcard(host: string): boolean {
  return /^[0:.]*$/.test(host);
}
