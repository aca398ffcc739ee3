// The AuthService over auth_http (auth_http.md §1, §4 WAIT): by default one
// new connection per request, HTTP/1.0, no keep-alive (as nginx does), the
// connection closed as soon as the response header block is complete. With
// auth_http_keepalive N (mailgate's extension) requests say HTTP/1.1 and up
// to N idle connections are kept when the answer's framing allows it.
//
// Not part of the pure core: it owns a socket and timers. Every path out of
// a request (answer, parse error, peer close, timeout) destroys its Conn.

import { describeSocketError } from "../core/errno.ts";
import type { AuthHttpUrl, ServerConfig } from "../config/types.ts";
import type { Conn, ConnectSpec, TlsClientOptions } from "../runtime/types.ts";
import type { HostAddresses } from "../resolver/host_addresses.ts";
import { resolveErrorText } from "../resolver/client_host.ts";
import { authServerName, buildAuthRequest } from "./http_request.ts";
import { AUTH_LOG, type AuthDecision, AuthResponseParser, decideAuth } from "./http_response.ts";
import { authHttpRoute, RefusedBackendHint } from "./route_notice.ts";
import type { AuthRequest, AuthResult, AuthService } from "./types.ts";

/**
 * Most `Auth-Status: WAIT` answers mailgate follows for one set of
 * credentials; nginx has no bound, so a misbehaving auth server could keep a
 * session (and its client) waiting forever.
 */
export const MAX_AUTH_WAIT_ROUNDS = 100;

/**
 * The adapter's own connect timeout is set this much later than
 * auth_http_timeout so that our timer always fires first and the log reads
 * `timed out` (the adapter still abandons a hung connect shortly after).
 */
const CONNECT_TIMEOUT_SLACK_MS = 1000;

/**
 * Kept-alive connections idle longer than this are not reused (an auth
 * server usually drops them sooner; nginx's upstream keepalive_timeout is
 * 60 s).
 */
export const KEEPALIVE_IDLE_MS = 60_000;

export interface HttpAuthOptions {
  url: AuthHttpUrl;
  /** auth_http_header lines, in configuration order. */
  headers: readonly (readonly [string, string])[];
  /** auth_http_timeout in milliseconds. */
  timeoutMs: number;
  connect(spec: ConnectSpec): Promise<Conn>;
  /** Default MAX_AUTH_WAIT_ROUNDS. */
  maxWaitRounds?: number;
  /**
   * auth_http_keepalive (mailgate extension): how many idle connections to
   * keep for later requests; 0 (default) is nginx's one connection per
   * request.
   */
  keepalive?: number;
  /** An idle connection older than this is closed instead of reused. Default KEEPALIVE_IDLE_MS. */
  keepaliveIdleMs?: number;
  /** https:// (auth_http_ssl_*): TLS from byte 0 with these options. */
  tls?: TlsClientOptions;
  /**
   * The resolver's name lookup, for a URL whose host is looked up per
   * connection (target.host ""; auth_http by name with a `resolver`).
   */
  lookupHost?: (name: string) => Promise<HostAddresses>;
  /** Called once by close(): releases what the service was given (its resolver). */
  onClose?: () => void;
}

/** The auth_http AuthService of a server block (its auth_http must be set). */
export function httpAuthServiceFor(
  server: ServerConfig,
  connect: (spec: ConnectSpec) => Promise<Conn>,
  resolver?: { lookupHost(name: string): Promise<HostAddresses>; close?(): void },
): AuthService {
  if (server.authHttp === null) throw new Error("httpAuthServiceFor: server has no auth_http");
  return createHttpAuthService({
    url: server.authHttp,
    headers: server.authHttpHeaders,
    timeoutMs: server.authHttpTimeoutMs,
    keepalive: server.authHttpKeepalive,
    connect,
    tls: server.authHttp.tls ? authHttpTls(server) : undefined,
    lookupHost: resolver ? (name) => resolver.lookupHost(name) : undefined,
    onClose: resolver?.close ? () => resolver.close!() : undefined,
  });
}

/**
 * TLS options of an https:// auth_http: the name written in the URL is sent
 * as SNI and verified; an IP literal sends no SNI (RFC 6066 §3) and is
 * verified as the address. Files were read at load (authHttpSsl.pem).
 */
export function authHttpTls(server: ServerConfig): TlsClientOptions {
  const p = server.authHttpSsl;
  const o: TlsClientOptions = { servername: server.authHttp?.name || null, verify: p.verify };
  if (p.pem?.ca !== undefined) o.ca = p.pem.ca;
  if (p.pem?.cert !== undefined) {
    o.cert = p.pem.cert;
    o.key = p.pem.key;
  }
  return o;
}

export function createHttpAuthService(opts: HttpAuthOptions): AuthService {
  const name = authServerName(opts.url);
  const maxRounds = opts.maxWaitRounds ?? MAX_AUTH_WAIT_ROUNDS;
  const target: ConnectSpec = opts.url.target.kind === "unix"
    ? {
      kind: "unix",
      path: opts.url.target.path,
      timeoutMs: opts.timeoutMs + CONNECT_TIMEOUT_SLACK_MS,
    }
    : {
      kind: "tcp",
      host: opts.url.target.host,
      port: opts.url.target.port,
      timeoutMs: opts.timeoutMs + CONNECT_TIMEOUT_SLACK_MS,
    };
  if (opts.tls) target.tls = opts.tls;
  /** The name to look up before each new connection (auth_http by name with a resolver), or null. */
  const lookupName = target.kind === "tcp" && target.host === "" ? opts.url.name ?? null : null;

  /** Where a new connection goes: the fixed target, or the name's first address now. */
  async function destination(): Promise<ConnectSpec | string> {
    if (lookupName === null || target.kind !== "tcp") return target;
    if (!opts.lookupHost) return AUTH_LOG.notResolved(name, 0, "no resolver");
    const r = await opts.lookupHost(lookupName);
    if (!r.ok) return AUTH_LOG.notResolved(name, r.code, resolveErrorText(r.code));
    // nginx uses the first address of a name; the resolver's cache keeps it steady.
    return { ...target, host: r.addresses[0] };
  }

  const keepalive = opts.keepalive ?? 0;
  const idleMs = opts.keepaliveIdleMs ?? KEEPALIVE_IDLE_MS;
  /** auth_http_keepalive: idle connections, most recently used last. */
  const pool: { conn: Conn; since: number }[] = [];
  let closed = false;

  /** A connection whose answer was complete and reusable: keep it, or close it when the pool is full. */
  function release(conn: Conn): void {
    const now = Date.now();
    // The oldest are first: close those idle too long (no timer per connection).
    while (pool.length > 0 && now - pool[0].since >= idleMs) pool.shift()!.conn.destroy();
    if (closed || pool.length >= keepalive) return conn.destroy();
    const idle = { conn, since: now };
    const forget = () => {
      const i = pool.indexOf(idle);
      if (i >= 0) pool.splice(i, 1);
    };
    // Nothing may arrive on an idle connection: a byte, an end or an error retires it.
    const retire = () => {
      forget();
      conn.destroy();
    };
    conn.attach({ data: retire, drain() {}, end: retire, close: forget });
    pool.push(idle);
  }

  /** The most recently used idle connection that is not too old, or null. */
  function takeIdle(): Conn | null {
    const now = Date.now();
    for (let idle = pool.pop(); idle !== undefined; idle = pool.pop()) {
      if (now - idle.since < idleMs) return idle.conn;
      idle.conn.destroy();
    }
    return null;
  }

  /** One request: on an idle kept-alive connection if there is one, else on a new connection. */
  function ask(req: AuthRequest): Promise<AuthDecision> {
    const request = buildAuthRequest(opts.url, req, opts.headers, keepalive > 0);
    return new Promise((resolve) => {
      let settled = false;
      let conn: Conn | null = null;
      // auth_http_timeout's two limits (connect+send, and the complete
      // response header) both start now and have the same length, so one
      // deadline covers both (a retry after a stale kept-alive connection
      // included).
      const timer = setTimeout(
        () => finish({ kind: "error", log: AUTH_LOG.timedOut(name) }),
        opts.timeoutMs,
      );

      function finish(result: AuthDecision, peerClosed = false, reuse = false): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (conn !== null && !peerClosed) {
          if (reuse) release(conn);
          else conn.destroy();
        }
        conn = null;
        resolve(result);
      }

      /**
       * Sends the request on `c`. `pooled`: c was kept alive from an earlier
       * request, so the server may have closed it meanwhile; if it ends
       * before answering anything the request goes once more on a new
       * connection (nothing was answered, so nothing was decided).
       */
      function send(c: Conn, pooled: boolean): void {
        conn = c;
        const parser = new AuthResponseParser();
        let answered = false;
        const stale = () => {
          c.destroy();
          conn = null;
          connectNew();
        };
        try {
          c.attach({
            data(chunk) {
              if (settled || conn !== c) return;
              answered = true;
              const r = parser.feed(chunk);
              if (r.kind === "done") {
                finish(decideAuth(r.headers, req, name, parser.other), false, keepalive > 0 && parser.reusable());
              } else if (r.kind === "error") {
                const log = r.reason === "invalid-response"
                  ? AUTH_LOG.invalidResponse(name)
                  : r.reason === "invalid-header"
                  ? AUTH_LOG.invalidHeader(name)
                  : AUTH_LOG.tooBig(name);
                finish({ kind: "error", log });
              }
            },
            drain() {},
            end() {
              if (settled || conn !== c) return;
              if (pooled && !answered) return stale();
              finish({ kind: "error", log: AUTH_LOG.closedEarly(name) });
            },
            close(err) {
              if (settled || conn !== c) return;
              if (pooled && !answered) return stale();
              const log = err
                ? AUTH_LOG.ioFailed(describeSocketError(err))
                : AUTH_LOG.closedEarly(name);
              finish({ kind: "error", log }, true);
            },
          });
          // One small write; nothing follows it, so backpressure never matters.
          c.write(request);
        } catch (err) {
          if (pooled && !answered) return stale();
          // An adapter that throws instead of reporting close(): still one result, conn destroyed.
          finish({ kind: "error", log: AUTH_LOG.ioFailed(describeSocketError(err)) });
        }
      }

      function connectNew(): void {
        destination().then((spec) => {
          if (settled) return; // timed out while resolving
          if (typeof spec === "string") return finish({ kind: "error", log: spec });
          opts.connect(spec).then((c) => {
            if (settled) {
              c.destroy(); // timed out while connecting
              return;
            }
            send(c, false);
          }, (err: unknown) => {
            finish({ kind: "error", log: AUTH_LOG.connectFailed(name, describeSocketError(err)) });
          });
        });
      }

      const idle = keepalive > 0 ? takeIdle() : null;
      if (idle !== null) send(idle, true);
      else connectNew();
    });
  }

  const hint = new RefusedBackendHint(authHttpRoute(opts.url.raw));
  return {
    route: hint.route.text,
    explainRefused: (upstream) => hint.next(upstream),
    close(): void {
      if (!closed) opts.onClose?.();
      closed = true;
      for (const idle of pool.splice(0)) idle.conn.destroy();
    },
    async authenticate(req: AuthRequest): Promise<AuthResult> {
      let current = req;
      for (let round = 1;; round++) {
        const d = await ask(current);
        // After a WAIT the answer depends on that exchange: the auth cache must not keep it.
        if (d.kind !== "wait") {
          return round > 1 && d.kind !== "error" ? { ...d, uncacheable: true } : d;
        }
        if (round >= maxRounds) return { kind: "error", log: AUTH_LOG.tooManyWaits(name, round) };
        if (d.waitSec > 0) await new Promise((r) => setTimeout(r, d.waitSec * 1000));
        // Same request again (same attempt number); Auth-User/Auth-Pass of
        // the WAIT answer replace the values sent.
        if (d.user !== null || d.pass !== null) {
          current = {
            ...current,
            waitUser: d.user ?? current.waitUser ?? null,
            waitPass: d.pass ?? current.waitPass ?? null,
            creds: {
              ...current.creds,
              user: d.user ?? current.creds.user,
              pass: d.pass ?? current.creds.pass,
            },
          };
        }
      }
    },
  };
}

export { describeSocketError } from "../core/errno.ts";
