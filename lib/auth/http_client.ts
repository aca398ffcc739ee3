// The AuthService over auth_http (auth_http.md §1, §4 WAIT): one new
// connection per request, HTTP/1.0, no keep-alive (as nginx does), the
// connection closed as soon as the response header block is complete.
//
// Not part of the pure core: it owns a socket and timers. Every path out of
// a request (answer, parse error, peer close, timeout) destroys its Conn.

import { describeSocketError } from "../core/errno.ts";
import type { AuthHttpUrl, ServerConfig } from "../config/types.ts";
import type { Conn, ConnectSpec } from "../runtime/types.ts";
import { authServerName, buildAuthRequest } from "./http_request.ts";
import { AUTH_LOG, type AuthDecision, AuthResponseParser, decideAuth } from "./http_response.ts";
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

export interface HttpAuthOptions {
  url: AuthHttpUrl;
  /** auth_http_header lines, in configuration order. */
  headers: readonly (readonly [string, string])[];
  /** auth_http_timeout in milliseconds. */
  timeoutMs: number;
  connect(spec: ConnectSpec): Promise<Conn>;
  /** Default MAX_AUTH_WAIT_ROUNDS. */
  maxWaitRounds?: number;
}

/** The auth_http AuthService of a server block (its auth_http must be set). */
export function httpAuthServiceFor(
  server: ServerConfig,
  connect: (spec: ConnectSpec) => Promise<Conn>,
): AuthService {
  if (server.authHttp === null) throw new Error("httpAuthServiceFor: server has no auth_http");
  return createHttpAuthService({
    url: server.authHttp,
    headers: server.authHttpHeaders,
    timeoutMs: server.authHttpTimeoutMs,
    connect,
  });
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

  /** One request on one new connection. */
  function ask(req: AuthRequest): Promise<AuthDecision> {
    const request = buildAuthRequest(opts.url, req, opts.headers);
    return new Promise((resolve) => {
      let settled = false;
      let conn: Conn | null = null;
      // auth_http_timeout's two limits (connect+send, and the complete
      // response header) both start now and have the same length, so one
      // deadline covers both.
      const timer = setTimeout(
        () => finish({ kind: "error", log: AUTH_LOG.timedOut(name) }),
        opts.timeoutMs,
      );
      const parser = new AuthResponseParser();

      function finish(result: AuthDecision, peerClosed = false): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (conn !== null && !peerClosed) conn.destroy();
        conn = null;
        resolve(result);
      }

      opts.connect(target).then((c) => {
        if (settled) {
          c.destroy(); // timed out while connecting
          return;
        }
        conn = c;
        try {
          c.attach({
            data(chunk) {
              if (settled) return;
              const r = parser.feed(chunk);
              if (r.kind === "done") finish(decideAuth(r.headers, req, name));
              else if (r.kind === "error") {
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
              finish({ kind: "error", log: AUTH_LOG.closedEarly(name) });
            },
            close(err) {
              const log = err
                ? AUTH_LOG.ioFailed(describeSocketError(err))
                : AUTH_LOG.closedEarly(name);
              finish({ kind: "error", log }, true);
            },
          });
          // One small write; nothing follows it, so backpressure never matters.
          c.write(request);
        } catch (err) {
          // An adapter that throws instead of reporting close(): still one result, conn destroyed.
          finish({ kind: "error", log: AUTH_LOG.ioFailed(describeSocketError(err)) });
        }
      }, (err: unknown) => {
        finish({ kind: "error", log: AUTH_LOG.connectFailed(name, describeSocketError(err)) });
      });
    });
  }

  return {
    async authenticate(req: AuthRequest): Promise<AuthResult> {
      let current = req;
      for (let round = 1;; round++) {
        const d = await ask(current);
        if (d.kind !== "wait") return d;
        if (round >= maxRounds) return { kind: "error", log: AUTH_LOG.tooManyWaits(name, round) };
        if (d.waitSec > 0) await new Promise((r) => setTimeout(r, d.waitSec * 1000));
        // Same request again (same attempt number); Auth-User/Auth-Pass of
        // the WAIT answer replace the values sent.
        if (d.user !== null || d.pass !== null) {
          current = {
            ...current,
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
