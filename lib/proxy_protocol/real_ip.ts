// set_real_ip_from (tls_and_proxy_protocol.md §7): whether the TCP peer may
// speak for the client, and the PROXY header's source as the new client.

import type { ServerConfig } from "../config/types.ts";
import type { SockAddr } from "../runtime/types.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../core/ip.ts";
import type { ProxyHeader } from "./reader.ts";

type RealIpEntry = ServerConfig["setRealIpFrom"][number];

/** ::ffff:0:0/96, the IPv4-mapped block, as its first 12 bytes. */
const V4_MAPPED_PREFIX = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff);
const V4_MAPPED_BITS = 96;

/**
 * Whether `peer` matches an entry of the server's set_real_ip_from list.
 * `unix:` matches every UNIX-socket peer. An IPv4 peer matches IPv4 CIDRs
 * and IPv6 CIDRs inside ::ffff:0:0/96 (IPv4-mapped, e.g. `::ffff:10.0.0.0/104`):
 * mailgate reports dual-stack IPv4 clients as plain IPv4 where nginx sees
 * them as mapped IPv6, so both spellings of a trusted IPv4 sender work. A
 * wider IPv6 CIDR such as `::/0` is about IPv6 and does not match IPv4 peers.
 */
export function realIpTrusted(peer: SockAddr, list: ServerConfig["setRealIpFrom"]): boolean {
  if (peer.family === "unix") return list.some((e) => e.kind === "unix");
  const ip = peerBytes(peer.address);
  if (ip === null) return false;
  for (const e of list) if (e.kind === "cidr" && entryMatches(e, ip)) return true;
  return false;
}

/** The peer as IPv4 bytes when it is IPv4 (or IPv4-mapped IPv6), else IPv6 bytes. */
function peerBytes(address: string): { v4: Uint8Array | null; v6: Uint8Array | null } | null {
  const v4 = parseIPv4(address);
  if (v4) return { v4, v6: null };
  const zone = address.indexOf("%"); // a link-local scope is not part of the address
  const v6 = parseIPv6(zone < 0 ? address : address.slice(0, zone));
  if (!v6) return null;
  if (prefixMatch(v6, V4_MAPPED_PREFIX, V4_MAPPED_BITS)) return { v4: v6.slice(12), v6: null };
  return { v4: null, v6 };
}

function entryMatches(
  e: Extract<RealIpEntry, { kind: "cidr" }>,
  ip: { v4: Uint8Array | null; v6: Uint8Array | null },
): boolean {
  if (e.family === 4) return ip.v4 !== null && prefixMatch(ip.v4, e.bytes, e.prefix);
  if (ip.v6 !== null) return prefixMatch(ip.v6, e.bytes, e.prefix);
  // An IPv4 peer against an IPv6 entry: only an entry inside the mapped block.
  if (ip.v4 === null || e.prefix < V4_MAPPED_BITS) return false;
  if (!prefixMatch(e.bytes, V4_MAPPED_PREFIX, V4_MAPPED_BITS)) return false;
  return prefixMatch(ip.v4, e.bytes.subarray(12), e.prefix - V4_MAPPED_BITS);
}

/**
 * The first `bits` bits of `addr` equal those of `net`. Bits of `net` past
 * the prefix are ignored, so an entry with host bits set still matches its
 * network (nginx clears them and warns at start-up).
 */
function prefixMatch(addr: Uint8Array, net: Uint8Array, bits: number): boolean {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (addr[i] !== net[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (addr[i] & mask) === (net[i] & mask);
}

/**
 * The PROXY header's source as the new client address (§7), or null when
 * it does not parse as IPv4/IPv6 (v1 addresses are only checked for their
 * characters). The text is re-printed as nginx does (ngx_sock_ntop), so
 * `010.0.0.1` becomes `10.0.0.1` and IPv6 is compressed; an IPv4-mapped
 * IPv6 source stays IPv6, as it does in nginx.
 */
export function proxyHeaderToAddr(h: ProxyHeader): SockAddr | null {
  const v4 = parseIPv4(h.srcAddr);
  if (v4) return { family: "ipv4", address: formatIPv4(v4), port: h.srcPort };
  const v6 = parseIPv6(h.srcAddr);
  if (v6) return { family: "ipv6", address: formatIPv6(v6), port: h.srcPort };
  return null;
}
