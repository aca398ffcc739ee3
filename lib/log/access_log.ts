// mailgate extension: one line per session, written when it ends.
//
//   2026/11/22 12:00:00 imap client=192.0.2.7:51234 server=127.0.0.1:143 login="alice"
//     upstream=198.51.100.1:143 tls=starttls in=1843 out=90211 time=12.345 outcome=proxied
//
// (one line). Fields, always in this order:
//   date time    local time the session ended (error_log's format)
//   protocol     imap | pop3 | smtp
//   client=      client address:port (after a trusted PROXY header)
//   server=      the listen address:port it arrived on
//   login=       the user, quoted, control bytes and '"' escaped as \xNN; "-" if none
//   upstream=    backend address:port; "-" if none
//   tls=         no | ssl | starttls
//   in= out=     bytes read from / written to the client over the whole session
//   time=        session duration in seconds, millisecond precision
//   outcome=     proxied | refused | auth-error | backend-error | timeout |
//                rejected | quit | closed | shutdown
// Passwords never appear.

import { timestamp } from "./error_log.ts";
import { openLogFile } from "./files.ts";

export type Outcome =
  /** Logged in and relayed until one side closed. */
  | "proxied"
  /** The auth service refused the credentials (last attempt). */
  | "refused"
  /** The auth service failed (unreachable, timeout, bad answer). */
  | "auth-error"
  /** The backend could not be reached or refused the login. */
  | "backend-error"
  /** timeout / proxy_timeout expired. */
  | "timeout"
  /** Closed by mailgate for bad input: max_errors, too long, certificate, early talker. */
  | "rejected"
  /** The client said LOGOUT / QUIT before logging in. */
  | "quit"
  /** The client went away before logging in. */
  | "closed"
  /** Cut by a fast stop or the shutdown timeout. */
  | "shutdown";

export interface AccessRecord {
  protocol: string;
  client: string;
  server: string;
  login: string | null;
  upstream: string | null;
  tls: "no" | "ssl" | "starttls";
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  outcome: Outcome;
}

export function formatAccess(r: AccessRecord, now = Date.now()): string {
  const login = r.login === null ? "-" : `"${r.login}"`;
  return `${timestamp(now)} ${r.protocol} client=${r.client} server=${r.server} login=${login} ` +
    `upstream=${r.upstream ?? "-"} tls=${r.tls} in=${r.bytesIn} out=${r.bytesOut} ` +
    `time=${(r.durationMs / 1000).toFixed(3)} outcome=${r.outcome}\n`;
}

export class AccessLog {
  readonly #write: (text: string) => void;
  constructor(path: string) {
    this.#write = openLogFile(path);
  }
  log(r: AccessRecord): void {
    this.#write(formatAccess(r));
  }
}
