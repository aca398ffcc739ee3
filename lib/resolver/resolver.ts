// mailgate's own DNS stub resolver, used only for the SMTP client host
// (smtp.md §2). It talks to the configured name servers and nothing else:
// the runtimes' DNS APIs read /etc/hosts even with an explicit server
// (platform-notes Q6), nginx's resolver never does.
//
// UDP through one socket per address family per resolver, TCP (one
// connection per query) when an answer comes back truncated. Servers are
// used round-robin; an unanswered query is re-sent to the next server every
// resend interval until resolver_timeout. A response must match the query's
// id, its question and a server it was sent to, or it is ignored. Answers
// (positive and negative) are cached; identical lookups in flight share one
// query. Malformed or unusable answers fail the lookup at once (nginx
// ignores them and times out later; the outcome, TEMPUNAVAIL, is the same).

import type { Conn, DatagramSocket, DatagramSource, Runtime } from "../runtime/types.ts";
import { parseIPv4, parseIPv6 } from "../core/ip.ts";
import { BoundedMap } from "../core/bounded_map.ts";
import type { ResolverConfig } from "../config/types.ts";
import {
  type Answer,
  CLASS_IN,
  decodeMessage,
  decodeQuestion,
  encodeQuery,
  formatAddress,
  interpretAnswer,
  RCODE_NOERROR,
  sameName,
} from "./dns_message.ts";
import {
  type ClientHostResult,
  lookupClientHost,
  type LookupResult,
  RESOLVE_CLOSED,
  RESOLVE_FORMERR,
  RESOLVE_NXDOMAIN,
  RESOLVE_SERVFAIL,
  RESOLVE_TIMEDOUT,
} from "./client_host.ts";

import { type HostAddresses, lookupHostAddresses } from "./host_addresses.ts";

export type { ClientHostResult } from "./client_host.ts";
export type { HostAddresses } from "./host_addresses.ts";

/** Cached (name, type) answers per resolver; the oldest-used go first. */
export const MAX_CACHE_ENTRIES = 10000;
/** Queries in flight per resolver; beyond this a lookup fails at once. */
export const MAX_PENDING_QUERIES = 4096;
/** nginx re-sends an unanswered query every 5 s. */
export const MAX_RESEND_INTERVAL_MS = 5000;
/** nginx keeps NXDOMAIN / empty answers for 10 s unless valid= says otherwise. */
export const NEGATIVE_TTL_SEC = 10;
/** A lone CNAME in an answer is followed by a new query, at most this often. */
export const MAX_CNAME_HOPS = 8;
/** Timers may fire a little early by another clock's measure. */
const TIMER_SLACK_MS = 1;
const MAX_ID_TRIES = 32;

/** What the resolver needs of the runtime: UDP sockets, and TCP for truncated answers. */
export type DnsTransport = Pick<Runtime, "datagram" | "connect">;

export interface Resolver {
  lookupClientHost(ip: string): Promise<ClientHostResult>;
  /** A host name's addresses (A and AAAA as configured); never rejects. */
  lookupHost(name: string): Promise<HostAddresses>;
  /** Fails lookups in progress (TEMPUNAVAIL, no log), closes sockets, clears timers. */
  close(): void;
}

export interface ResolverOptions {
  /** Milliseconds, monotonic; defaults to performance.now (tests move it). */
  now?: () => number;
  /** Re-send interval; default min(5 s, timeout / 2). */
  resendMs?: number;
  maxCacheEntries?: number;
}

export function createResolver(
  transport: DnsTransport,
  config: ResolverConfig,
  timeoutMs: number,
  options: ResolverOptions = {},
): Resolver {
  const client = new DnsClient(transport, config, timeoutMs, options);
  const lookup = (name: string, type: number) => client.lookup(name, type);
  const opts = { ipv4: config.ipv4, ipv6: config.ipv6 };
  return {
    lookupClientHost: (ip) => lookupClientHost(ip, lookup, opts),
    lookupHost: (name) => lookupHostAddresses(name, lookup, opts),
    close: () => client.close(),
  };
}

/** What a finished query (or the cache) says about one (name, type). */
type Outcome =
  | { kind: "records"; values: string[] }
  | { kind: "cname"; target: string }
  | { kind: "negative" }
  | { kind: "error"; code: number };

interface Server {
  host: string;
  port: number;
  family: 4 | 6;
  /** Canonical "address port", to recognise where a datagram came from. */
  key: string;
}

interface Query {
  key: string;
  name: string;
  type: number;
  id: number;
  packet: Uint8Array;
  deadline: number;
  nextSendAt: number;
  timer: ReturnType<typeof setTimeout> | null;
  waiters: ((o: Outcome) => void)[];
  /** Servers this query went to over UDP; answers from anyone else are ignored. */
  sentTo: Set<string>;
  /** Index of the server last asked; -1 before the first send. */
  server: number;
  /** The TCP exchange for a truncated answer, once connected; "connecting" before. */
  tcp: Conn | "connecting" | null;
}

function canonicalAddress(host: string): { family: 4 | 6; text: string } | null {
  const v4 = parseIPv4(host);
  if (v4) return { family: 4, text: formatAddress(v4) };
  const v6 = parseIPv6(host);
  return v6 ? { family: 6, text: formatAddress(v6) } : null;
}

function randomId(): number {
  return crypto.getRandomValues(new Uint16Array(1))[0];
}

class DnsClient {
  readonly #transport: DnsTransport;
  readonly #servers: Server[] = [];
  readonly #timeoutMs: number;
  readonly #resendMs: number;
  readonly #validMs: number | null;
  readonly #now: () => number;
  readonly #cache: BoundedMap<string, { expires: number; outcome: Outcome }>;
  readonly #byKey = new Map<string, Query>();
  readonly #byId = new Map<number, Query>();
  #udp4: DatagramSocket | null = null;
  #udp6: DatagramSocket | null = null;
  #next = 0;
  #closed = false;

  constructor(transport: DnsTransport, config: ResolverConfig, timeoutMs: number, options: ResolverOptions) {
    this.#transport = transport;
    for (const s of config.servers) {
      // The configuration holds IP literals only (names are looked up there).
      const a = canonicalAddress(s.host);
      if (a) {
        this.#servers.push({
          host: s.host,
          port: s.port,
          family: a.family,
          key: `${a.text} ${s.port}`,
        });
      }
    }
    this.#timeoutMs = Math.max(1, timeoutMs);
    this.#resendMs = Math.max(
      1,
      options.resendMs ?? Math.min(MAX_RESEND_INTERVAL_MS, this.#timeoutMs / 2),
    );
    this.#validMs = config.validMs;
    this.#now = options.now ?? (() => performance.now());
    this.#cache = new BoundedMap(options.maxCacheEntries ?? MAX_CACHE_ENTRIES);
  }

  /** (name, type) with lone CNAMEs followed, all within one resolver_timeout. */
  async lookup(name: string, type: number): Promise<LookupResult> {
    const deadline = this.#now() + this.#timeoutMs;
    let current = name;
    for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
      const o = await this.#query(current, type, deadline);
      switch (o.kind) {
        case "records":
          return { ok: true, values: o.values };
        case "negative":
          return { ok: false, code: RESOLVE_NXDOMAIN };
        case "error":
          return { ok: false, code: o.code };
        case "cname":
          current = o.target;
      }
    }
    return { ok: false, code: RESOLVE_FORMERR };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of [...this.#byId.values()]) {
      this.#finish(q, { kind: "error", code: RESOLVE_CLOSED }, null);
    }
    this.#cache.clear();
    this.#udp4?.close();
    this.#udp6?.close();
    this.#udp4 = this.#udp6 = null;
  }

  #query(name: string, type: number, deadline: number): Promise<Outcome> {
    if (this.#closed) return Promise.resolve({ kind: "error", code: RESOLVE_CLOSED });
    const key = `${type} ${name.toLowerCase()}`;
    const cached = this.#cacheGet(key);
    if (cached) return Promise.resolve(cached);
    const inFlight = this.#byKey.get(key);
    if (inFlight) return new Promise((resolve) => inFlight.waiters.push(resolve));
    if (this.#now() >= deadline) return Promise.resolve({ kind: "error", code: RESOLVE_TIMEDOUT });
    if (this.#servers.length === 0 || this.#byId.size >= MAX_PENDING_QUERIES) {
      return Promise.resolve({ kind: "error", code: RESOLVE_SERVFAIL });
    }
    let id = randomId();
    for (let i = 0; i < MAX_ID_TRIES && this.#byId.has(id); i++) id = randomId();
    if (this.#byId.has(id)) return Promise.resolve({ kind: "error", code: RESOLVE_SERVFAIL });
    let packet: Uint8Array;
    try {
      packet = encodeQuery(id, name, type);
    } catch {
      return Promise.resolve({ kind: "error", code: RESOLVE_FORMERR });
    }
    return new Promise((resolve) => {
      const q: Query = {
        key,
        name,
        type,
        id,
        packet,
        deadline,
        nextSendAt: this.#now() + this.#resendMs,
        timer: null,
        waiters: [resolve],
        sentTo: new Set(),
        server: -1,
        tcp: null,
      };
      this.#byKey.set(key, q);
      this.#byId.set(id, q);
      this.#sendUdp(q);
      this.#schedule(q);
    });
  }

  // ------------------------------------------------------------ cache

  #cacheGet(key: string): Outcome | null {
    const e = this.#cache.get(key);
    if (!e) return null;
    if (e.expires > this.#now()) return e.outcome;
    this.#cache.delete(key);
    return null;
  }

  #cachePut(key: string, outcome: Outcome, ttlSec: number): void {
    const ms = this.#validMs ?? ttlSec * 1000;
    if (!(ms > 0)) return;
    this.#cache.set(key, { expires: this.#now() + ms, outcome });
  }

  // ------------------------------------------------------------ sending

  #udp(family: 4 | 6): DatagramSocket {
    const existing = family === 4 ? this.#udp4 : this.#udp6;
    if (existing) return existing;
    // Bound implicitly by the first send: a fresh ephemeral port per resolver.
    // Lost datagrams and ICMP errors are dropped: the resend timer moves on.
    const s = this.#transport.datagram({ family, onMessage: (msg, from) => this.#onDatagram(msg, from) });
    if (family === 4) this.#udp4 = s;
    else this.#udp6 = s;
    return s;
  }

  /** As nginx: a query starts at the resolver's round-robin position and each re-send moves it on. */
  #sendUdp(q: Query): void {
    if (q.server < 0) {
      q.server = this.#next;
      this.#next = (this.#next + 1) % this.#servers.length;
    } else {
      q.server = (q.server + 1) % this.#servers.length;
    }
    const server = this.#servers[q.server];
    q.sentTo.add(server.key);
    const s = this.#udp(server.family);
    try {
      s.ref();
      s.send(q.packet, server.port, server.host);
    } catch {
      // The socket died under us: forget it, the next send makes a new one.
      if (this.#udp4 === s) this.#udp4 = null;
      if (this.#udp6 === s) this.#udp6 = null;
      s.close();
    }
  }

  #schedule(q: Query): void {
    const at = Math.min(q.nextSendAt, q.deadline);
    q.timer = setTimeout(() => this.#tick(q), Math.max(TIMER_SLACK_MS, at - this.#now()));
  }

  #tick(q: Query): void {
    q.timer = null;
    const t = this.#now();
    if (t >= q.deadline - TIMER_SLACK_MS) {
      this.#finish(q, { kind: "error", code: RESOLVE_TIMEDOUT }, null);
      return;
    }
    if (t >= q.nextSendAt - TIMER_SLACK_MS) {
      // While a TCP exchange is open it gets the rest of the time.
      if (!q.tcp) this.#sendUdp(q);
      q.nextSendAt = t + this.#resendMs;
    }
    this.#schedule(q);
  }

  #startTcp(q: Query, server: Server): void {
    q.tcp = "connecting";
    // Connecting counts against the query's own deadline, like the rest.
    const timeoutMs = Math.max(1, q.deadline - this.#now());
    this.#transport.connect({ kind: "tcp", host: server.host, port: server.port, timeoutMs }).then(
      (conn) => this.#tcpExchange(q, conn),
      // No answer over TCP: UDP re-sends resume at the next tick.
      () => {
        if (q.tcp === "connecting") q.tcp = null;
      },
    );
  }

  #tcpExchange(q: Query, conn: Conn): void {
    // The query was settled (answered, timed out, closed) while connecting.
    if (q.tcp !== "connecting" || this.#byId.get(q.id) !== q) {
      conn.destroy();
      return;
    }
    q.tcp = conn;
    const chunks: Uint8Array[] = [];
    let got = 0;
    conn.attach({
      // Two length bytes, then the message (at most 65535 bytes, so bounded).
      // The chunk is only valid during the call (ConnEvents.data): copied.
      data: (d) => {
        chunks.push(d.slice());
        got += d.length;
        if (got < 2) return;
        const all = chunks.length === 1 ? chunks[0] : concat(chunks, got);
        chunks.length = 0;
        chunks.push(all);
        const len = (all[0] << 8) | all[1];
        if (got < 2 + len) return;
        conn.destroy();
        if (q.tcp === conn) q.tcp = null;
        this.#onResponse(all.subarray(2, 2 + len), q, null);
      },
      drain: () => {},
      end: () => {},
      close: () => {
        // No answer over TCP: UDP re-sends resume at the next tick.
        if (q.tcp === conn) q.tcp = null;
      },
    });
    const framed = new Uint8Array(2 + q.packet.length);
    framed[0] = q.packet.length >> 8;
    framed[1] = q.packet.length & 0xff;
    framed.set(q.packet, 2);
    conn.write(framed);
  }

  // ------------------------------------------------------------ receiving

  #onDatagram(msg: Uint8Array, source: DatagramSource): void {
    const from = canonicalAddress(source.address);
    if (!from) return;
    const key = `${from.text} ${source.port}`;
    const server = this.#servers.find((s) => s.key === key);
    if (server) this.#onResponse(msg, null, server);
  }

  /** `expected` is the query a TCP connection belongs to; `server` is the UDP sender. */
  #onResponse(buf: Uint8Array, expected: Query | null, server: Server | null): void {
    let head;
    try {
      head = decodeQuestion(buf);
    } catch {
      return; // cannot even be matched to a query
    }
    const { header, question } = head;
    const q = this.#byId.get(header.id);
    if (!q || (expected !== null && q !== expected)) return;
    if (server !== null && !q.sentTo.has(server.key)) return;
    if (!header.qr || header.opcode !== 0 || header.qdcount !== 1 || question === null) return;
    if (question.type !== q.type || question.cls !== CLASS_IN || !sameName(question.name, q.name)) {
      return;
    }
    if (server !== null && header.tc && header.rcode === RCODE_NOERROR) {
      if (!q.tcp) this.#startTcp(q, server);
      return;
    }
    let answer: Answer;
    try {
      answer = interpretAnswer(decodeMessage(buf), q.name, q.type);
    } catch {
      this.#finish(q, { kind: "error", code: RESOLVE_FORMERR }, null);
      return;
    }
    switch (answer.kind) {
      case "records":
        return this.#finish(q, { kind: "records", values: answer.values }, answer.ttl);
      case "cname":
        return this.#finish(q, { kind: "cname", target: answer.target }, answer.ttl);
      case "nxdomain":
      case "nodata":
        return this.#finish(q, { kind: "negative" }, NEGATIVE_TTL_SEC);
      case "rcode":
        return this.#finish(q, { kind: "error", code: answer.rcode }, null);
      case "unusable":
        return this.#finish(q, { kind: "error", code: RESOLVE_FORMERR }, null);
    }
  }

  /** Settles a query: every waiter gets the outcome; `ttlSec` null = do not cache. */
  #finish(q: Query, outcome: Outcome, ttlSec: number | null): void {
    if (this.#byId.get(q.id) !== q) return;
    this.#byId.delete(q.id);
    this.#byKey.delete(q.key);
    if (q.timer !== null) clearTimeout(q.timer);
    q.timer = null;
    if (q.tcp !== null && q.tcp !== "connecting") q.tcp.destroy();
    q.tcp = null;
    if (ttlSec !== null && !this.#closed) this.#cachePut(q.key, outcome, ttlSec);
    if (this.#byId.size === 0) {
      // Idle sockets must not keep the process alive.
      this.#udp4?.unref();
      this.#udp6?.unref();
    }
    for (const w of q.waiters) w(outcome);
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}
