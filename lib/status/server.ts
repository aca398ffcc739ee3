// status_listen: the HTTP/1.1 endpoint for /metrics, /status.json and the
// status page (/), over the runtime's listen(). Small and bounded: at most
// MAX_CONNS connections, heads of MAX_HEAD bytes, no bodies, an idle
// keep-alive connection closed after IDLE_MS; bad requests get 400 (431,
// 505) and a close, unknown paths 404, other methods 405.

import { OPENMETRICS_TYPE, render, TEXT_TYPE, wantsOpenMetrics } from "../metrics/exposition.ts";
import type { FamilySnapshot } from "../metrics/registry.ts";
import { REAL_TIMERS, type Timers } from "../proxy/timers.ts";
import type { Conn, Listener, ListenSpec, Runtime } from "../runtime/types.ts";
import { formatResponse, type HttpRequest, RequestReader } from "./http.ts";
import { STATUS_PAGE } from "./page.ts";
import type { StatusJson } from "./status_json.ts";
import type { History, Sample } from "./history.ts";

export const MAX_CONNS = 32;
export const IDLE_MS = 30_000;

export interface StatusSource {
  metrics(): FamilySnapshot[];
  status(): StatusJson;
  /** The page's history, sampled while a listener is open (absent in unit tests). */
  sample?: () => Sample;
  history?: History;
}

import type { StatusAddress } from "../config/status_listen.ts";
export type { StatusAddress };

export function statusAddressText(a: StatusAddress): string {
  if (a.kind === "unix") return `unix:${a.path}`;
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const enc = new TextEncoder();
const PAGE_BYTES = enc.encode(STATUS_PAGE);
const PAGE_HEADERS: [string, string][] = [
  ["Content-Type", "text/html; charset=utf-8"],
  // The page loads nothing from anywhere; only its own inline code and /status.json.
  [
    "Content-Security-Policy",
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
  ],
];
const COMMON: [string, string][] = [["X-Content-Type-Options", "nosniff"]];
const ROUTES = new Set(["/", "/metrics", "/status.json"]);

/** The answer to one request: status, headers, body. Pure, for the unit tests too. */
export function route(
  req: HttpRequest,
  source: StatusSource,
): { status: number; headers: [string, string][]; body: Uint8Array } {
  const text = (status: number, body: string, extra: [string, string][] = []) => ({
    status,
    headers: [["Content-Type", "text/plain; charset=utf-8"], ...extra] as [string, string][],
    body: enc.encode(body),
  });
  if (!ROUTES.has(req.path)) return text(404, "not found\n");
  if (req.method !== "GET" && req.method !== "HEAD") {
    return text(405, "method not allowed\n", [["Allow", "GET, HEAD"]]);
  }
  if (req.path === "/metrics") {
    const om = wantsOpenMetrics(req.headers.get("accept"));
    return {
      status: 200,
      headers: [["Content-Type", om ? OPENMETRICS_TYPE : TEXT_TYPE]],
      body: enc.encode(render(source.metrics(), om)),
    };
  }
  if (req.path === "/status.json") {
    return {
      status: 200,
      headers: [["Content-Type", "application/json"]],
      body: enc.encode(JSON.stringify(source.status())),
    };
  }
  return { status: 200, headers: PAGE_HEADERS, body: PAGE_BYTES };
}

export class StatusServer {
  readonly #runtime: Runtime;
  readonly #source: StatusSource;
  readonly #timers: Timers;
  readonly #listeners = new Map<string, Listener>();
  readonly #conns = new Set<Conn>();

  constructor(runtime: Runtime, source: StatusSource, timers: Timers = REAL_TIMERS) {
    this.#runtime = runtime;
    this.#source = source;
    this.#timers = timers;
  }

  /** Opens the addresses not open yet and closes those no longer listed (a reload). */
  async apply(addresses: readonly StatusAddress[]): Promise<void> {
    const want = new Map(addresses.map((a) => [statusAddressText(a), a]));
    for (const [key, l] of this.#listeners) {
      if (!want.has(key)) {
        this.#listeners.delete(key);
        await l.close();
      }
    }
    for (const [key, a] of want) {
      if (this.#listeners.has(key)) continue;
      const spec: ListenSpec = a.kind === "unix" ? a : { kind: "tcp", host: a.host, port: a.port };
      this.#listeners.set(key, await this.#runtime.listen(spec, (c) => this.#accept(c)));
    }
    const { history, sample } = this.#source;
    if (history && sample) {
      if (this.#listeners.size > 0) history.start(sample);
      else history.stop();
    }
  }

  addresses(): string[] {
    return [...this.#listeners.keys()];
  }

  async close(): Promise<void> {
    const ls = [...this.#listeners.values()];
    this.#listeners.clear();
    this.#source.history?.stop();
    await Promise.all(ls.map((l) => l.close()));
    for (const c of this.#conns) c.destroy();
  }

  #accept(conn: Conn): void {
    if (this.#conns.size >= MAX_CONNS) {
      conn.destroy();
      return;
    }
    this.#conns.add(conn);
    const reader = new RequestReader();
    const timers = this.#timers;
    let idle: unknown = null;
    let closing = false;
    /** Answers waiting for a drain (pipelined requests behind a full socket). */
    const queue: Uint8Array[] = [];
    let blocked = false;
    const arm = () => {
      if (idle !== null) timers.clear(idle);
      idle = timers.set(() => conn.destroy(), IDLE_MS);
    };
    const flush = () => {
      while (!blocked && queue.length > 0) {
        if (!conn.write(queue.shift()!)) {
          blocked = true;
          conn.pause();
        }
      }
      if (!blocked && closing) conn.end();
    };
    arm();
    conn.attach({
      data: (chunk) => {
        if (closing) return;
        arm();
        for (const r of reader.push(chunk)) {
          if (r.kind === "error") {
            const body = enc.encode(`${r.reason}\n`);
            queue.push(
              formatResponse(r.status, [["Content-Type", "text/plain; charset=utf-8"]], body, {
                head: false,
                keepAlive: false,
              }),
            );
            closing = true;
            break;
          }
          const req = r.request;
          const res = route(req, this.#source);
          queue.push(formatResponse(res.status, [...COMMON, ...res.headers], res.body, {
            head: req.method === "HEAD",
            keepAlive: req.keepAlive,
          }));
          if (!req.keepAlive) {
            closing = true;
            break;
          }
        }
        flush();
      },
      drain: () => {
        blocked = false;
        conn.resume();
        flush();
      },
      end: () => {},
      close: () => {
        if (idle !== null) timers.clear(idle);
        this.#conns.delete(conn);
      },
    });
  }
}
