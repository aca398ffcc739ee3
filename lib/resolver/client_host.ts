// The SMTP client-host value (spec smtp.md §2): PTR of the client address,
// then a forward lookup of that name that must lead back to the address.
// No sockets or timers here: the lookups go through the `Lookup` function
// the resolver supplies, so this logic is tested with scripted outcomes too.

import { parseIPv4, parseIPv6 } from "../core/ip.ts";
import { formatAddress, TYPE_A, TYPE_AAAA, TYPE_PTR } from "./dns_message.ts";

export const HOST_UNAVAILABLE = "[UNAVAILABLE]";
export const HOST_TEMPUNAVAIL = "[TEMPUNAVAIL]";

export interface ClientHostResult {
  /** The verified name (no trailing dot), `[UNAVAILABLE]` or `[TEMPUNAVAIL]`. */
  host: string;
  log: { level: "error" | "info"; message: string } | null;
}

// Failure codes, numbered as nginx logs them: DNS rcodes, ETIMEDOUT for no
// answer in time. A malformed or unusable answer is reported as a format
// error (nginx would ignore it and log a timeout later). CLOSED means the
// resolver was shut down (reload) and is not worth a log line.
export const RESOLVE_FORMERR = 1;
export const RESOLVE_SERVFAIL = 2;
export const RESOLVE_NXDOMAIN = 3;
export const RESOLVE_TIMEDOUT = 110;
export const RESOLVE_CLOSED = -1;

/** ngx_resolver_strerror. */
export function resolveErrorText(code: number): string {
  switch (code) {
    case 1:
      return "Format error";
    case 2:
      return "Server failure";
    case 3:
      return "Host not found";
    case 4:
      return "Unimplemented";
    case 5:
      return "Operation refused";
    case RESOLVE_TIMEDOUT:
      return "Operation timed out";
    default:
      return "Unknown error";
  }
}

/**
 * One lookup's outcome: the record values (names for PTR, canonical address
 * text for A/AAAA), or a failure code. NXDOMAIN and an empty answer are both
 * RESOLVE_NXDOMAIN, as in nginx.
 */
export type LookupResult = { ok: true; values: string[] } | { ok: false; code: number };

/** Resolves (name, type) through the configured name servers; never rejects. */
export type Lookup = (name: string, type: number) => Promise<LookupResult>;

/**
 * Address bytes (4 or 16) of a client address string, or null. An
 * IPv4-mapped IPv6 address (dual-stack listener) is its IPv4 address, so
 * the PTR is asked under in-addr.arpa and compared with A records.
 */
export function parseClientAddress(ip: string): Uint8Array | null {
  const v4 = parseIPv4(ip);
  if (v4) return v4;
  const zone = ip.indexOf("%");
  const v6 = parseIPv6(zone >= 0 ? ip.slice(0, zone) : ip);
  if (!v6) return null;
  const mapped = v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

/** `d.c.b.a.in-addr.arpa`, or 32 reversed nibbles under `ip6.arpa`. */
export function ptrName(addr: Uint8Array): string {
  if (addr.length === 4) return `${addr[3]}.${addr[2]}.${addr[1]}.${addr[0]}.in-addr.arpa`;
  let s = "";
  for (let i = 15; i >= 0; i--) {
    s += (addr[i] & 0xf).toString(16) + "." + (addr[i] >> 4).toString(16) + ".";
  }
  return s + "ip6.arpa";
}

/** Non-empty, ASCII letters, digits, "-" and "." only (nginx 1.29.7). */
export function isValidHostName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
      c === 0x2d || c === 0x2e;
    if (!ok) return false;
  }
  return true;
}

function failed(subject: string, code: number): ClientHostResult {
  const host = code === RESOLVE_NXDOMAIN ? HOST_UNAVAILABLE : HOST_TEMPUNAVAIL;
  if (code === RESOLVE_CLOSED) return { host, log: null };
  const message = `${subject} could not be resolved (${code}: ${resolveErrorText(code)})`;
  return { host, log: { level: "error", message } };
}

function safeLookup(lookup: Lookup, name: string, type: number): Promise<LookupResult> {
  // A throwing lookup is a bug, but it must not leave a session waiting.
  return Promise.resolve().then(() => lookup(name, type)).catch(() => ({
    ok: false,
    code: RESOLVE_SERVFAIL,
  }));
}

export async function lookupClientHost(
  ip: string,
  lookup: Lookup,
  opts: { ipv4: boolean; ipv6: boolean },
): Promise<ClientHostResult> {
  const addr = parseClientAddress(ip);
  if (!addr) return failed(ip, RESOLVE_FORMERR);
  const ptr = await safeLookup(lookup, ptrName(addr), TYPE_PTR);
  if (!ptr.ok) return failed(ip, ptr.code);
  const name = ptr.values[0];
  if (!isValidHostName(name)) {
    return {
      host: HOST_TEMPUNAVAIL,
      log: { level: "error", message: `${ip} resolved to invalid host name "${name}"` },
    };
  }
  return await confirmForward(ip, formatAddress(addr), name, lookup, opts);
}

/**
 * A and AAAA (as configured) in parallel. The first answer holding the
 * client address settles it, without waiting for the other type (which may
 * be slow to fail); otherwise every answer is needed to tell "no match"
 * (UNAVAILABLE) from "could not tell" (TEMPUNAVAIL).
 */
function confirmForward(
  ip: string,
  want: string,
  name: string,
  lookup: Lookup,
  opts: { ipv4: boolean; ipv6: boolean },
): Promise<ClientHostResult> {
  const types: number[] = [];
  if (opts.ipv4) types.push(TYPE_A);
  if (opts.ipv6) types.push(TYPE_AAAA);
  if (types.length === 0) return Promise.resolve({ host: HOST_UNAVAILABLE, log: null });
  return new Promise((resolve) => {
    const results: LookupResult[] = [];
    let settled = false;
    for (const type of types) {
      safeLookup(lookup, name, type).then((r) => {
        if (settled) return;
        if (r.ok && r.values.includes(want)) {
          settled = true;
          resolve({ host: name, log: null });
          return;
        }
        results.push(r);
        if (results.length < types.length) return;
        settled = true;
        resolve(judgeMismatch(ip, name, results));
      });
    }
  });
}

function judgeMismatch(ip: string, name: string, results: LookupResult[]): ClientHostResult {
  let sawAddresses = false;
  for (const r of results) {
    if (r.ok) sawAddresses = true;
    else if (r.code !== RESOLVE_NXDOMAIN) return failed(`"${name}"`, r.code);
  }
  if (!sawAddresses) return failed(`"${name}"`, RESOLVE_NXDOMAIN);
  // nginx says nothing here; a line at info tells the operator why.
  return {
    host: HOST_UNAVAILABLE,
    log: { level: "info", message: `"${name}" does not resolve to ${ip}` },
  };
}
