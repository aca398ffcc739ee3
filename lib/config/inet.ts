// IP literal parsing and printing as nginx does it (ngx_inet_addr,
// ngx_inet6_addr, ngx_inet6_ntop, ngx_ptocidr), for listen addresses,
// duplicate-address messages and set_real_ip_from.

/** Dotted quad (ngx_inet_addr: four decimal octets ≤ 255). */
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

/** IPv6 text without brackets, optionally ending in a dotted quad. */
export function parseIPv6(s: string): Uint8Array | null {
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
        const v4 = parseIPv4(it);
        if (!v4) return null;
        words.push(v4[0] * 256 + v4[1], v4[2] * 256 + v4[3]);
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

/** An IP literal (v4, or v6 with or without brackets) → family and bytes. */
export function parseIpLiteral(s: string): { family: 4 | 6; bytes: Uint8Array } | null {
  const v4 = parseIPv4(s);
  if (v4) return { family: 4, bytes: v4 };
  const bare = s.startsWith("[") && s.endsWith("]") ? s.slice(1, -1) : s;
  const v6 = parseIPv6(bare);
  return v6 ? { family: 6, bytes: v6 } : null;
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
