// The addresses mailgate itself listens on, so that a backend dial never
// connects to mailgate (issue 13): an auth answer naming one of our own
// listeners would otherwise make mailgate log in to itself, which asks the
// auth service again, which names the same listener... (nginx has this
// loop; each round costs a connection and an auth request).
//
// A listener bound to a specific address matches that address. A wildcard
// listener (0.0.0.0, [::]) accepts on every local address of its family
// (both families for [::] with ipv6only=off), so it matches the machine's
// own addresses - taken from the interfaces at start and at each reload -
// plus all of loopback and the unspecified address itself (a connect() to
// 0.0.0.0 or :: reaches the local host). IPv4-mapped IPv6 addresses count
// as the IPv4 address they carry.

import { parseIPv4, parseIPv6 } from "../core/ip.ts";
import type { SockAddr } from "../runtime/types.ts";

/** One listening TCP socket: its address (as bound, port resolved) and whether it takes IPv4 on "::". */
export interface OwnListener {
  host: string;
  port: number;
  /** For a "::" listener: false when it also accepts IPv4 (dual-stack). */
  ipv6only?: boolean;
}

type Family = 4 | 6;

/** A canonical address key ("4:7f000001", "6:...") or null for a non-literal. */
function addrKey(host: string): { family: Family; key: string; bytes: Uint8Array } | null {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const v4 = parseIPv4(bare);
  if (v4) return { family: 4, key: `4:${hex(v4)}`, bytes: v4 };
  const pct = bare.indexOf("%"); // zone id of a link-local address
  const v6 = parseIPv6(pct >= 0 ? bare.slice(0, pct) : bare);
  if (!v6) return null;
  if (isMappedV4(v6)) {
    const b = v6.subarray(12);
    return { family: 4, key: `4:${hex(b)}`, bytes: b };
  }
  return { family: 6, key: `6:${hex(v6)}`, bytes: v6 };
}

function isMappedV4(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

/** Loopback (127/8, ::1) or unspecified (0.0.0.0, ::): always the local host. */
function alwaysLocal(a: { family: Family; bytes: Uint8Array }): boolean {
  if (a.family === 4) return a.bytes[0] === 127 || isZero(a.bytes);
  return isZero(a.bytes.subarray(0, 15)) && (a.bytes[15] === 1 || a.bytes[15] === 0);
}

function listenerText(l: OwnListener): string {
  return l.host.includes(":") ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

export class OwnAddresses {
  /** "port/addrKey" -> listener text, for specifically bound listeners. */
  #exact = new Map<string, string>();
  /** "port/family" -> listener text, for wildcard listeners. */
  #wild = new Map<string, string>();
  /** Keys of the machine's interface addresses. */
  #machine = new Set<string>();

  /**
   * Replaces the sets: the TCP listeners now open, and the machine's
   * interface addresses (os.networkInterfaces(), flattened).
   */
  update(listeners: OwnListener[], machineAddrs: string[]): void {
    this.#exact.clear();
    this.#wild.clear();
    this.#machine.clear();
    for (const a of machineAddrs) {
      const k = addrKey(a);
      if (k) this.#machine.add(k.key);
    }
    for (const l of listeners) {
      const k = addrKey(l.host);
      if (!k) continue;
      const text = listenerText(l);
      if (!isZero(k.bytes)) {
        this.#exact.set(`${l.port}/${k.key}`, text);
        continue;
      }
      this.#wild.set(`${l.port}/${k.family}`, text);
      if (k.family === 6 && l.ipv6only === false && !this.#wild.has(`${l.port}/4`)) {
        this.#wild.set(`${l.port}/4`, text);
      }
    }
  }

  /** The listener (as "host:port") that a connection to host:port would reach, or null. */
  listenerFor(host: string, port: number): string | null {
    const k = addrKey(host);
    if (!k) return null;
    const exact = this.#exact.get(`${port}/${k.key}`);
    if (exact !== undefined) return exact;
    const local = alwaysLocal(k) || this.#machine.has(k.key);
    if (!local) return null;
    const wild = this.#wild.get(`${port}/${k.family}`);
    if (wild !== undefined) return wild;
    // connect() to the unspecified address reaches a listener on loopback too.
    if (isZero(k.bytes)) {
      const lo = k.family === 4 ? "4:7f000001" : `6:${"00".repeat(15)}01`;
      return this.#exact.get(`${port}/${lo}`) ?? null;
    }
    return null;
  }
}

/** Flattens os.networkInterfaces() (or anything shaped like it) to address strings. */
export function interfaceAddresses(
  ifaces: Record<string, { address: string }[] | undefined>,
): string[] {
  const out: string[] = [];
  for (const list of Object.values(ifaces)) for (const i of list ?? []) out.push(i.address);
  return out;
}

/** The listener address a runtime reports, as an OwnListener (null for unix sockets). */
export function ownListener(addr: SockAddr, ipv6only?: boolean): OwnListener | null {
  if (addr.family === "unix") return null;
  return ipv6only === undefined ? { host: addr.address, port: addr.port } : { host: addr.address, port: addr.port, ipv6only };
}
