// A scriptable DNS server on 127.0.0.1 (UDP and TCP on the same port) for
// resolver tests. It parses queries and builds answers with its own small
// codec (not lib/resolver's), so a bug there cannot hide in both. A handler
// decides per query: answer (any rcode, records with or without name
// compression, raw RDATA such as zero-length PTR data, TC over UDP only,
// delayed, forged id or question), several packets, or never answer.

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";

export const A = 1;
export const CNAME = 5;
export const PTR = 12;
export const AAAA = 28;
export const DNAME = 39;
export const NOERROR = 0;
export const SERVFAIL = 2;
export const NXDOMAIN = 3;
export const REFUSED = 5;

const TYPE_NAMES: Record<number, string> = {
  1: "A",
  5: "CNAME",
  12: "PTR",
  28: "AAAA",
  39: "DNAME",
};
/** A TCP client sending more than this without a complete query is dropped. */
const MAX_TCP_BUFFER = 70000;
const MAX_BIND_TRIES = 20;

export interface SeenQuery {
  id: number;
  /** The question name as sent (no trailing dot). */
  name: string;
  type: number;
  cls: number;
  transport: "udp" | "tcp";
  from: { address: string; port: number };
  raw: Uint8Array;
}

export interface FakeRecord {
  /** Owner name; default the question name. */
  owner?: string;
  type: number;
  ttl?: number;
  /** A name (PTR, CNAME, DNAME) or an address (A, AAAA). */
  data?: string;
  /** Exact RDATA bytes instead of `data` (e.g. zero length). */
  rdata?: Uint8Array;
}

export interface Reply {
  rcode?: number;
  answers?: FakeRecord[];
  /** Name compression (default true). */
  compress?: boolean;
  /** Over UDP send only a header+question with TC set; TCP gets the full reply. */
  truncateUdp?: boolean;
  delayMs?: number;
  /** Forgeries: another id, or another question name. */
  id?: number;
  questionName?: string;
  /** Send exactly these bytes. */
  raw?: Uint8Array;
}

/** null: never answer; an array: several packets, in order. */
export type Handler = (q: SeenQuery) => Reply | Reply[] | null;

/** Handler from a table keyed "name TYPE" (e.g. "a.example.net A"); other queries get `fallback`. */
export function zone(
  table: Record<string, Reply | Reply[] | null>,
  fallback: Reply | null = {},
): Handler {
  const lower = new Map(Object.entries(table).map(([k, v]) => [k.toLowerCase(), v]));
  return (q) => {
    const key = `${q.name} ${TYPE_NAMES[q.type] ?? q.type}`.toLowerCase();
    return lower.has(key) ? lower.get(key)! : fallback;
  };
}

// ------------------------------------------------------------------ codec

function parseQuery(
  buf: Uint8Array,
): { id: number; name: string; type: number; cls: number } | null {
  if (buf.length < 17) return null;
  const labels: string[] = [];
  let p = 12;
  for (let hops = 0; hops < 128; hops++) {
    if (p >= buf.length) return null;
    const len = buf[p];
    if (len === 0) {
      p++;
      if (p + 4 > buf.length) return null;
      return {
        id: (buf[0] << 8) | buf[1],
        name: labels.join("."),
        type: (buf[p] << 8) | buf[p + 1],
        cls: (buf[p + 2] << 8) | buf[p + 3],
      };
    }
    if (len > 63 || p + 1 + len > buf.length) return null;
    labels.push(String.fromCharCode(...buf.subarray(p + 1, p + 1 + len)));
    p += 1 + len;
  }
  return null;
}

function addressBytes(text: string): number[] {
  if (text.includes(".") && !text.includes(":")) return text.split(".").map(Number);
  const [head, tail = ""] = text.split("::");
  const words = (s: string) => (s === "" ? [] : s.split(":").map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = words(tail);
  const all = text.includes("::") ? [...h, ...new Array(8 - h.length - t.length).fill(0), ...t] : h;
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

class Writer {
  readonly bytes: number[] = [];
  readonly #suffixes = new Map<string, number>();
  constructor(readonly compress: boolean) {}

  u16(v: number) {
    this.bytes.push((v >> 8) & 0xff, v & 0xff);
  }
  u32(v: number) {
    this.u16(Math.floor(v / 65536));
    this.u16(v % 65536);
  }
  name(name: string, compress = this.compress) {
    const labels = name === "" ? [] : name.split(".");
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join(".").toLowerCase();
      const at = this.#suffixes.get(suffix);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.bytes.length < 0x3fff) this.#suffixes.set(suffix, this.bytes.length);
      this.bytes.push(labels[i].length, ...Array.from(labels[i], (c) => c.charCodeAt(0)));
    }
    this.bytes.push(0);
  }
}

/** The reply packet for `q` (also used by tests to forge packets). */
export function buildReply(q: SeenQuery, r: Reply, transport: "udp" | "tcp"): Uint8Array {
  if (r.raw) return r.raw;
  const truncated = transport === "udp" && r.truncateUdp === true;
  const answers = truncated ? [] : r.answers ?? [];
  const w = new Writer(r.compress ?? true);
  w.u16(r.id ?? q.id);
  w.u16(0x8180 | (truncated ? 0x0200 : 0) | (r.rcode ?? NOERROR));
  w.u16(1);
  w.u16(answers.length);
  w.u16(0);
  w.u16(0);
  const qname = r.questionName ?? q.name;
  w.name(qname);
  w.u16(q.type);
  w.u16(q.cls);
  for (const rr of answers) {
    w.name(rr.owner ?? qname);
    w.u16(rr.type);
    w.u16(1);
    w.u32(rr.ttl ?? 3600);
    const lenAt = w.bytes.length;
    w.u16(0);
    if (rr.rdata) w.bytes.push(...rr.rdata);
    else if (rr.type === A || rr.type === AAAA) w.bytes.push(...addressBytes(rr.data ?? ""));
    else w.name(rr.data ?? "", rr.type === DNAME ? false : undefined); // RFC 6672: DNAME target never compressed
    const len = w.bytes.length - lenAt - 2;
    w.bytes[lenAt] = len >> 8;
    w.bytes[lenAt + 1] = len & 0xff;
  }
  return new Uint8Array(w.bytes);
}

// ------------------------------------------------------------------ server

export class FakeDns {
  readonly host = "127.0.0.1";
  readonly queries: SeenQuery[] = [];
  handler: Handler;
  port = 0;
  #udp: UdpSocket | null = null;
  #tcp: Server | null = null;
  readonly #conns = new Set<Socket>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(handler: Handler) {
    this.handler = handler;
  }

  static async start(handler: Handler): Promise<FakeDns> {
    const f = new FakeDns(handler);
    for (let i = 0; i < MAX_BIND_TRIES; i++) {
      if (await f.#tryBind()) return f;
    }
    throw new Error("fake DNS: no free UDP+TCP port pair");
  }

  /** Queries seen, optionally only those for `name` and/or `type`. */
  count(name?: string, type?: number): number {
    return this.queries.filter((q) =>
      (name === undefined || q.name.toLowerCase() === name.toLowerCase()) &&
      (type === undefined || q.type === type)
    ).length;
  }

  /** Sends `packet` from this server's UDP port, unasked (forgery tests). */
  sendUdp(packet: Uint8Array, port: number, address: string): Promise<void> {
    const udp = this.#udp;
    if (!udp) return Promise.reject(new Error("fake DNS stopped"));
    return new Promise((resolve) => udp.send(packet, port, address, () => resolve()));
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const c of this.#conns) c.destroy();
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = null;
    this.#tcp = null;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }

  async #tryBind(): Promise<boolean> {
    const udp = createSocket("udp4");
    udp.on("message", (msg: Uint8Array, rinfo: RemoteInfo) => this.#onUdp(udp, msg, rinfo));
    udp.on("error", () => {});
    await new Promise<void>((r) => udp.bind(0, this.host, () => r()));
    const port = udp.address().port;
    const tcp = createServer((c) => this.#onTcp(c));
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen(port, this.host, () => resolve(true));
    });
    if (!ok) {
      await new Promise<void>((r) => udp.close(() => r()));
      return false;
    }
    this.#udp = udp;
    this.#tcp = tcp;
    this.port = port;
    return true;
  }

  #record(
    raw: Uint8Array,
    transport: "udp" | "tcp",
    from: { address: string; port: number },
  ): SeenQuery | null {
    const p = parseQuery(raw);
    if (!p) return null;
    const q: SeenQuery = { ...p, transport, from, raw: raw.slice() };
    this.queries.push(q);
    return q;
  }

  #plan(q: SeenQuery, send: (b: Uint8Array) => void): void {
    const decided = this.handler(q);
    if (decided === null) return;
    for (const r of Array.isArray(decided) ? decided : [decided]) {
      const packet = buildReply(q, r, q.transport);
      if (!r.delayMs) {
        send(packet);
        continue;
      }
      const t = setTimeout(() => {
        this.#timers.delete(t);
        send(packet);
      }, r.delayMs);
      this.#timers.add(t);
    }
  }

  #onUdp(udp: UdpSocket, msg: Uint8Array, rinfo: RemoteInfo): void {
    const q = this.#record(msg, "udp", { address: rinfo.address, port: rinfo.port });
    if (!q) return;
    this.#plan(q, (b) => {
      if (this.#udp === udp) udp.send(b, rinfo.port, rinfo.address);
    });
  }

  #onTcp(c: Socket): void {
    this.#conns.add(c);
    c.on("close", () => this.#conns.delete(c));
    c.on("error", () => {});
    let buf = new Uint8Array(0);
    c.on("data", (d: Uint8Array) => {
      const next = new Uint8Array(buf.length + d.length);
      next.set(buf);
      next.set(d, buf.length);
      buf = next;
      if (buf.length > MAX_TCP_BUFFER) {
        c.destroy();
        return;
      }
      while (buf.length >= 2) {
        const len = (buf[0] << 8) | buf[1];
        if (buf.length < 2 + len) return;
        const q = this.#record(buf.subarray(2, 2 + len), "tcp", {
          address: c.remoteAddress ?? "",
          port: c.remotePort ?? 0,
        });
        buf = buf.slice(2 + len);
        if (!q) continue;
        this.#plan(q, (b) => {
          if (c.destroyed) return;
          c.write(new Uint8Array([b.length >> 8, b.length & 0xff, ...b]));
        });
      }
    });
  }
}
