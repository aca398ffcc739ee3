// IP literals: parsing and printing, for every part of mailgate that reads
// an address as text (listen and set_real_ip_from in the configuration, the
// PROXY protocol, the resolver, the auth table, auth_http's Auth-Server).
//
// Two readings exist on purpose:
// - nginx-lax, where mailgate must accept what nginx accepts:
//   ngx_inet_addr reads `010.1..2` as 10.1.0.2 (parseIPv4, parseNginxAddr);
// - strict, for mailgate's own formats (the auth table), where a typo should
//   be an error rather than a different address (isStrictIpv4, isStrictIpv6).
// Pure: no runtime API.

/** Dotted quad as ngx_inet_addr reads it: exactly three dots, decimal octets ≤ 255, empty octets 0. */
export function parseIPv4(s: string): Uint8Array | null {
  const out = new Uint8Array(4);
  let octet = 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (octet > 255) return null;
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      octet = octet * 10 + (c - 0x30);
      continue;
    }
    if (c === 0x2e && n < 3) {
      out[n++] = octet;
      octet = 0;
      continue;
    }
    return null;
  }
  if (n !== 3 || octet > 255 || s.length === 0) return null;
  out[3] = octet;
  return out;
}

/**
 * Dotted quad written plainly: four decimal octets ≤ 255 without leading
 * zeros (the C library's inet_aton, behind a runtime's connect, reads
 * `010` as octal 8).
 */
export function isStrictIpv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 &&
    parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/**
 * IPv6 text without brackets or zone (RFC 4291: hex groups, at most one
 * `::`, optionally ending in a dotted quad, read by ngx_inet_addr as nginx
 * does). Returns the 16 bytes, or null.
 */
export function parseIPv6(s: string): Uint8Array | null {
  return ipv6Bytes(s, parseIPv4);
}

/** parseIPv6, with a dotted-quad tail that must be strict (isStrictIpv4). */
export function isStrictIpv6(s: string): boolean {
  return ipv6Bytes(s, (t) => isStrictIpv4(t) ? parseIPv4(t) : null) !== null;
}

function ipv6Bytes(s: string, v4: (s: string) => Uint8Array | null): Uint8Array | null {
  if (s.length === 0 || s.length > 45) return null;
  const out = new Uint8Array(16);
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const words: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (i === items.length - 1 && it.includes(".")) {
        const quad = v4(it);
        if (!quad) return null;
        words.push(quad[0] * 256 + quad[1], quad[2] * 256 + quad[3]);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return null;
      words.push(parseInt(it, 16));
    }
    return words;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  // A dotted quad is only allowed at the very end.
  if (halves.length === 2 && halves[0].includes(".")) return null;
  const count = head.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return null;
  const words = [...head, ...new Array(8 - count).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    out[i * 2] = words[i] >> 8;
    out[i * 2 + 1] = words[i] & 0xff;
  }
  return out;
}

/**
 * An address literal (no brackets, port or zone) as nginx's ngx_parse_addr
 * reads it, as the text to connect to, or null. IPv4 is nginx's lax reading
 * returned as the canonical dotted quad; 255.255.255.255 is refused (it is
 * ngx_inet_addr's INADDR_NONE). IPv6 must be strict and is returned as
 * given: the runtime's connect reads the text again.
 */
export function parseNginxAddr(s: string): string | null {
  const v4 = parseIPv4(s);
  if (v4 !== null) {
    const text = formatIPv4(v4);
    return text === "255.255.255.255" ? null : text;
  }
  return isStrictIpv6(s) ? s : null;
}

export function formatIPv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** ngx_inet6_ntop: longest run (≥ 2) of zero words compressed, v4-mapped tail dotted. */
export function formatIPv6(p: Uint8Array): string {
  let zero = -1, last = -1, max = 1, n = 0;
  for (let i = 0; i < 16; i += 2) {
    if (p[i] || p[i + 1]) {
      if (max < n) {
        zero = last;
        max = n;
      }
      n = 0;
      continue;
    }
    if (n++ === 0) last = i;
  }
  if (max < n) {
    zero = last;
    max = n;
  }
  let out = "";
  let end = 16;
  if (zero === 0) {
    if (
      (max === 5 && p[10] === 0xff && p[11] === 0xff) || max === 6 ||
      (max === 7 && p[14] !== 0 && p[15] !== 1)
    ) {
      end = 12;
    }
    out += ":";
  }
  for (let i = 0; i < end; i += 2) {
    if (i === zero) {
      out += ":";
      i += (max - 1) * 2;
      continue;
    }
    out += (p[i] * 256 + p[i + 1]).toString(16);
    if (i < 14) out += ":";
  }
  if (end === 12) out += `${p[12]}.${p[13]}.${p[14]}.${p[15]}`;
  return out;
}

export interface Cidr {
  kind: "cidr";
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

/**
 * `addr` or `addr/bits` (ngx_ptocidr). `hostBits` reports that bits beyond
 * the prefix were set (nginx warns "low address bits ... are meaningless");
 * they are cleared in the result.
 */
export function parseCidr(s: string): { cidr: Cidr; hostBits: boolean } | null {
  const slash = s.indexOf("/");
  const addr = slash < 0 ? s : s.slice(0, slash);
  let family: 4 | 6;
  let bytes = parseIPv6(addr);
  if (bytes) {
    family = 6;
  } else {
    bytes = parseIPv4(addr);
    if (!bytes) return null;
    family = 4;
  }
  const width = bytes.length * 8;
  if (slash < 0) return { cidr: { kind: "cidr", family, bytes, prefix: width }, hostBits: false };
  const bits = s.slice(slash + 1);
  if (!/^[0-9]+$/.test(bits)) return null;
  const prefix = Number(bits);
  if (prefix > width) return null;
  let hostBits = false;
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((bytes[i] & ~mask & 0xff) !== 0) hostBits = true;
    bytes[i] &= mask;
  }
  return { cidr: { kind: "cidr", family, bytes, prefix }, hostBits };
}
