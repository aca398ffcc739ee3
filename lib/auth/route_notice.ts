// Where logins are routed, in words a newcomer can act on: the start-up
// notice of each server, and the one-time hint when a backend refuses the
// connection. A fresh install routes every user to 127.0.0.1:143 (the
// shipped conf/users.table); when no IMAP server listens there, the first
// login gets `internal server error`, and these lines say why and what to
// change. (nginx names neither; its error line alone is kept unchanged.)

import { describeSocketError, ERRNO } from "../core/errno.ts";
import type { AuthTable, AuthTableEntry } from "./table.ts";
import type { AuthService } from "./types.ts";

/** Backends listed by name in a table's route; the rest are counted. */
export const ROUTE_BACKENDS_LISTED = 4;

/** Where a service's routes come from, and the route as the start-up notice prints it. */
export interface Route {
  /** `auth table <file>` or `auth_http <url>`. */
  source: string;
  /** source, and for a table its distinct backends: `auth table <file> (backends a, b)`. */
  text: string;
}

/** A table's route: its distinct backends in file order, the first ROUTE_BACKENDS_LISTED by name. */
export function tableRoute(table: AuthTable): Route {
  const source = `auth table ${table.file}`;
  const entries: AuthTableEntry[] = [...table.users.values(), ...table.domains.values()];
  if (table.any !== null) entries.push(table.any);
  entries.sort((a, b) => a.line - b.line);
  const backends = [...new Set(entries.map((e) => e.backendName))];
  if (backends.length === 0) return { source, text: `${source} (no entries: every login is refused)` };
  const shown = backends.slice(0, ROUTE_BACKENDS_LISTED).join(", ");
  const more = backends.length - ROUTE_BACKENDS_LISTED;
  const noun = backends.length === 1 ? "backend" : "backends";
  return { source, text: `${source} (${noun} ${shown}${more > 0 ? ` and ${more} more` : ""})` };
}

/** auth_http's route: the backends are whatever the auth service answers. */
export function authHttpRoute(rawUrl: string): Route {
  const source = `auth_http ${rawUrl}`;
  return { source, text: source };
}

/** The start-up notice of one server: `routing imap on 127.0.0.1:1143 by <route>`. */
export function routeNotice(protocol: string, addresses: readonly string[], route: string): string {
  return `routing ${protocol} on ${addresses.join(" ")} by ${route}`;
}

/**
 * The hint after the first `connect() to <backend> failed (111: Connection
 * refused)`: nothing listens at the backend, a set-up problem rather than a
 * passing failure, so it is said once per auth service.
 */
export function refusedBackendHint(upstream: string, source: string): string {
  return `backend ${upstream} refused the connection: no mail server listens there, so logins ` +
    `routed to it fail with an internal server error; start one there, or change the route (${source})`;
}

/** The once-per-service rule for refusedBackendHint: the hint the first time, null afterwards. */
export class RefusedBackendHint {
  #said = false;

  constructor(readonly route: Route) {}

  next(upstream: string): string | null {
    if (this.#said) return null;
    this.#said = true;
    return refusedBackendHint(upstream, this.route.source);
  }
}

const REFUSED = `${ERRNO.ECONNREFUSED[0]}: ${ERRNO.ECONNREFUSED[1]}`;

/**
 * After a backend connect failed with `err`: the auth service's one-time
 * hint when the backend refused the connection, else null.
 */
export function refusedHintFor(auth: AuthService, upstream: string, err: unknown): string | null {
  if (describeSocketError(err) !== REFUSED) return null;
  return auth.explainRefused?.(upstream) ?? null;
}
