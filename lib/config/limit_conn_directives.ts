// freenginx 1.29.0's ngx_mail_limit_conn_module: limit_conn_zone (context
// mail), limit_conn, limit_conn_dry_run, limit_conn_log_level (mail and
// server). The counting itself is lib/protect/limit_conn.ts.
//
// As freenginx, a key is one of three variables on its own ($remote_user,
// $remote_addr, $auth_http_<header>), not a complex value; the zone size is
// checked as freenginx checks it (at least 8 pages) but bounds nothing here:
// counts live in the shared store, which drops a key when it reaches 0.

import {
  argEnum,
  argFlag,
  type Directive,
  type DirectiveSpec,
  fail,
  level,
  type LoadState,
} from "./directive.ts";
import { ConfigError } from "./errors.ts";
import type { Effective } from "./merge.ts";
import type { Loc } from "./types.ts";
import { parseSize } from "./units.ts";

export type LimitConnLogLevel = "info" | "notice" | "warn" | "error";
export const LIMIT_CONN_LOG_LEVELS = ["info", "notice", "warn", "error"] as const;

/** What a zone counts by. `header`: the auth_http header name, lower-case, dashes as underscores. */
export type LimitConnKey =
  | { kind: "remote_user" }
  | { kind: "remote_addr" }
  | { kind: "auth_http"; header: string };

export interface LimitConnZone {
  name: string;
  /** The key as written (`$remote_user`), for messages. */
  text: string;
  key: LimitConnKey;
  loc: Loc;
}

/** One `limit_conn NAME N` as written (the zone is resolved when servers are built). */
export interface LimitConnRule {
  zone: string;
  conn: number;
  loc: Loc;
}

export interface LimitConnLimit {
  zone: LimitConnZone;
  conn: number;
}

export interface LimitConnConfig {
  limits: LimitConnLimit[];
  dryRun: boolean; // limit_conn_dry_run, default off
  logLevel: LimitConnLogLevel; // limit_conn_log_level, default error
}

/** freenginx: 8 pages of 4096 bytes. */
const MIN_ZONE_SIZE = 8 * 4096;

export function parseLimitConnKey(text: string): LimitConnKey | null {
  if (text === "$remote_user") return { kind: "remote_user" };
  if (text === "$remote_addr") return { kind: "remote_addr" };
  if (text.startsWith("$auth_http_")) {
    return { kind: "auth_http", header: text.slice("$auth_http_".length).toLowerCase() };
  }
  return null;
}

function limitConnZone(d: Directive, st: LoadState): void {
  const key = parseLimitConnKey(d.args[0]);
  if (key === null) fail(d, `invalid parameter "${d.args[0]}"`);
  const arg = d.args[1];
  if (!arg.startsWith("zone=")) fail(d, `invalid parameter "${arg}"`);
  const colon = arg.indexOf(":");
  if (colon < 0) fail(d, `invalid zone size "${arg}"`);
  const name = arg.slice(5, colon);
  const size = parseSize(arg.slice(colon + 1));
  if (size === null) fail(d, `invalid zone size "${arg}"`);
  if (size < MIN_ZONE_SIZE) fail(d, `zone "${arg}" is too small`);
  if (name === "") fail(d, `"limit_conn_zone" must have "zone" parameter`);
  const lv = level(st);
  const prev = lv.lists.limit_conn_zone?.value.find((z) => z.name === name);
  if (prev) fail(d, `limit_conn_zone "${name}" is already bound to key "${prev.text}"`);
  lv.append("limit_conn_zone", [{ name, text: d.args[0], key, loc: d.loc }], d.loc);
}

function limitConn(d: Directive, st: LoadState): void {
  const lv = level(st);
  const name = d.args[0];
  if (lv.lists.limit_conn?.value.some((r) => r.zone === name)) {
    fail(d, `"limit_conn" directive is duplicate`);
  }
  const n = /^[0-9]+$/.test(d.args[1]) ? Number(d.args[1]) : 0;
  if (n <= 0) fail(d, `invalid number of connections "${d.args[1]}"`);
  if (n > 65535) fail(d, `connection limit must be less 65536`);
  lv.append("limit_conn", [{ zone: name, conn: n, loc: d.loc }], d.loc);
}

export const LIMIT_CONN_DIRECTIVES: Record<string, DirectiveSpec> = {
  limit_conn_zone: { contexts: ["mail"], args: "take2", handle: limitConnZone },
  limit_conn: { contexts: ["mail", "server"], args: "take2", handle: limitConn },
  limit_conn_dry_run: {
    contexts: ["mail", "server"],
    args: "flag",
    handle: (d, st) => level(st).setWith("limit_conn_dry_run", d.loc, () => argFlag(d)),
  },
  limit_conn_log_level: {
    contexts: ["mail", "server"],
    args: "take1",
    handle: (d, st) =>
      level(st).setWith("limit_conn_log_level", d.loc, () => argEnum(d, LIMIT_CONN_LOG_LEVELS)),
  },
};

/**
 * The server's limits: its own limit_conn lines, else the mail level's
 * (a level with any limit_conn inherits none). null when there are none.
 */
export function buildLimitConn(e: Effective): LimitConnConfig | null {
  const rules = e.list("limit_conn")?.value ?? [];
  if (rules.length === 0) return null;
  const zones = e.mail.lists.limit_conn_zone?.value ?? [];
  const limits = rules.map((r): LimitConnLimit => {
    const zone = zones.find((z) => z.name === r.zone);
    // nginx finds this when it creates the zones: a zone named but never sized.
    if (!zone) throw new ConfigError(`zero size shared memory zone "${r.zone}"`, r.loc);
    return { zone, conn: r.conn };
  });
  return {
    limits,
    dryRun: e.get("limit_conn_dry_run", false),
    logLevel: e.get("limit_conn_log_level", "error"),
  };
}
