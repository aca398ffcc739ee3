// What a soak run is asked to do and what it reports (tools/soak.ts).

import type { Target } from "../../tests/helpers/mailgate.ts";

export type Proto = "imap" | "pop3" | "smtp";

export interface SoakOptions {
  sessions: number;
  seconds: number;
  targets: Target[];
  protocols: Proto[];
  maxPayload: number;
  transfers: number;
  /** After the load: how long to watch mailgate's RSS settle (seconds). */
  settleSeconds: number;
  /** Run the backend inside this process (tests; small session counts). */
  inProcessBackend?: boolean;
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
}

export interface ProtoStats {
  sessions: number;
  failedSessions: number;
  transfers: number;
  bytesDown: number;
  bytesUp: number;
  /** Transfers that never completed (timeout). */
  lost: number;
  /** Connections closed before a transfer was complete. */
  truncated: number;
  /** Bytes that did not match the session's own payload. */
  crossed: number;
  /** Unexpected replies (refusals, internal errors). */
  errors: number;
}

export interface TargetResult {
  target: Target;
  concurrency: number;
  seconds: number;
  byProto: Record<Proto, ProtoStats>;
  rssStart: number;
  rssPeak: number;
  /** Peak RSS in the first and in the second half of the load (a leak grows; a plateau does not). */
  rssPeakFirstHalf: number;
  rssPeakSecondHalf: number;
  rssEnd: number;
  fdsStart: number;
  /** Most fds mailgate had open during the load. */
  fdsPeak: number;
  fdsEnd: number;
  /** First few failure descriptions. */
  failures: string[];
  /** mailgate error-log lines at [error] or worse, and the first few of them. */
  errorLines: number;
  errorSamples: string[];
}
