// What the session driver asks of an auth service (auth_http, or mailgate's
// built-in table) and what it gets back.

import type { Protocol } from "../config/types.ts";
import type { Credentials } from "../core/machine.ts";
import type { TlsInfo } from "../runtime/types.ts";

export interface AuthRequest {
  protocol: Protocol;
  creds: Credentials;
  /** Auth-Login-Attempt: 1 for the first credentials of the session. */
  attempt: number;
  /** Client-IP: address text without port, or "unix:". */
  clientIp: string;
  /** Client-Host (SMTP only; null for IMAP/POP3). */
  clientHost: string | null;
  /** Addresses from a received PROXY header, if it carried any. */
  proxyProtocol: { srcAddr: string; srcPort: number; dstAddr: string; dstPort: number } | null;
  /** TLS state of the client connection. */
  tls: TlsInfo | null;
  /** ssl_verify_client of the server (Auth-SSL-Verify etc. only when not "off"). */
  verifyClient: "off" | "on" | "optional" | "optional_no_ca";
  passClientCert: boolean;
  /**
   * Auth-User / Auth-Pass of an earlier `Auth-Status: WAIT` answer
   * (auth_http.md §4 step 2): sent instead of the client's values in the
   * repeated request, for every method (also `none` and EXTERNAL, whose
   * own values are always sent empty), and used for the backend login.
   */
  waitUser?: string | null;
  waitPass?: string | null;
  /**
   * proxy_oauth_passthrough on: the backend validates the client's token,
   * so an answer without Auth-Pass logs in with the token itself.
   */
  oauthPassthrough?: boolean;
}

export type AuthResult =
  /**
   * Go ahead: log in to addr:port as user. `pass` is Auth-Pass from the
   * response, else the client's password when it is usable (not for
   * APOP/CRAM-MD5/EXTERNAL); null when neither exists (SMTP only - for
   * IMAP/POP3 that is an "error" result).
   */
  | {
    kind: "ok";
    addr: string;
    port: number;
    user: string;
    pass: string | null;
    backendName: string;
    /** Reached through an `Auth-Status: WAIT` answer: never kept by the auth cache. */
    uncacheable?: true;
    /** auth_http: the answer's other headers (limit_conn's $auth_http_<header>). */
    headers?: readonly (readonly [string, string])[];
  }
  /** Refused: tell the client `message`; waitSec > 0 keeps the session open after the delay. */
  | {
    kind: "refused";
    message: string;
    waitSec: number;
    errorCode: string | null;
    /** Auth-Error-SASL (strict base64): the RFC 7628 error challenge, for XOAUTH2 / OAUTHBEARER. */
    saslError?: string;
    /** Why, for mailgate's own log (info level) when the service knows more than the client is told. */
    log?: string;
    /** Reached through an `Auth-Status: WAIT` answer: never kept by the auth cache. */
    uncacheable?: true;
    /** Refused by a failed-login lockout, not by the auth service: the metrics' "limited" outcome. */
    limited?: true;
  }
  /** Internal problem: the client gets the internal-error reply. `log` is the error-level log line. */
  | { kind: "error"; log: string };

export interface AuthService {
  authenticate(req: AuthRequest): Promise<AuthResult>;
  /** Let go of kept connections (after a reload replaced this service); requests in flight finish. */
  close?(): void;
  /** Where logins are routed, for the start-up notice: `auth table <file> (backends ...)` or `auth_http <url>`. */
  readonly route?: string;
  /**
   * A backend this service named refused the connection (ECONNREFUSED): a
   * line that says so in plain words the first time, null afterwards
   * (route_notice.ts).
   */
  explainRefused?(upstream: string): string | null;
}
