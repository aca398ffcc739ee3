// freenginx's mail limit_conn (README "Protection"): after the auth service
// says OK and before the backend is dialed, each of the server's limits
// counts the session under its zone's key value; one over its limit refuses
// the session (or, in dry run, only logs). The counts live in the shared
// store under `mailgate:lc:<zone>:<value>`, so with `shared_store` they span
// every instance and worker; without it they are per process.
//
// A crashed instance cannot decrement what it counted, so every key expires
// (KEY_TTL_MS) unless refreshed: the process holding a key pushes its expiry
// forward every third of the TTL while any of its sessions hold it, and
// re-adds its own counts if the key vanished (Redis flushed or restarted).
// A crashed instance's counts therefore go away at most KEY_TTL_MS after the
// last refresh of that key — but a key some live session keeps refreshing
// keeps the dead counts with it until all its holders are gone.

import type { LimitConnConfig, LimitConnKey } from "../config/limit_conn_directives.ts";
import type { Protocol } from "../config/types.ts";
import type { SharedStore } from "../store/types.ts";
import type { Timers } from "../proxy/timers.ts";
import { REAL_TIMERS } from "../proxy/timers.ts";
import { countLimitConnRefused } from "../metrics/mail_metrics.ts";
import type { LogLevel } from "../config/types.ts";
import { imapTooManyConnections } from "../imap/replies.ts";
import { POP3_TOO_MANY_CONNECTIONS } from "../pop3/replies.ts";
import { SMTP_TOO_MANY_CONNECTIONS } from "../smtp/replies.ts";
import { LocalStore } from "../store/local.ts";
import { chooseStore } from "./store_choice.ts";

export const KEY_TTL_MS = 60_000;
/** freenginx skips (and logs) key values longer than this. */
const MAX_KEY_BYTES = 255;

/** What the keys are evaluated from. */
export interface LimitConnVars {
  /** $remote_addr: the client address (after a trusted PROXY header). */
  remoteAddr: string;
  /** $remote_user: the login name the client gave. */
  remoteUser: string;
  /** The auth_http answer's headers, as received (none for the auth table). */
  authHeaders: readonly (readonly [string, string])[] | null;
}

export type LimitConnLog = (level: LogLevel, message: string) => void;

/** The outcome for one session: let through with a release to call at its end, or refused. */
export type LimitConnOutcome = { ok: true; release: () => void } | { ok: false };

const NOTHING_HELD = () => {};

/** $auth_http_x_user: header X-User, compared lower-case with dashes as underscores. */
export function authHeaderValue(headers: LimitConnVars["authHeaders"], name: string): string {
  if (headers === null) return "";
  for (const [h, v] of headers) {
    if (h.length === name.length && h.toLowerCase().replaceAll("-", "_") === name) return v;
  }
  return "";
}

export function keyValue(key: LimitConnKey, vars: LimitConnVars): string {
  switch (key.kind) {
    case "remote_user":
      return vars.remoteUser;
    case "remote_addr":
      return vars.remoteAddr;
    case "auth_http":
      return authHeaderValue(vars.authHeaders, key.header);
  }
}

/** The refusal line, then the session closes (freenginx sets s->quit). */
export function tooManyConnections(protocol: Protocol, tag: string | undefined): Uint8Array {
  switch (protocol) {
    case "imap":
      return imapTooManyConnections(tag ?? "*");
    case "pop3":
      return POP3_TOO_MANY_CONNECTIONS;
    case "smtp":
      return SMTP_TOO_MANY_CONNECTIONS;
  }
}

export interface LimitConnOptions {
  config: LimitConnConfig;
  store: SharedStore;
  timers?: Timers;
  ttlMs?: number;
}

export class LimitConn {
  readonly #o: LimitConnOptions;
  readonly #ttl: number;
  readonly #timers: Timers;
  /** Store keys this process's sessions hold, with how many hold each. */
  readonly #held = new Map<string, number>();
  #refresh: unknown = null;

  constructor(o: LimitConnOptions) {
    this.#o = o;
    this.#ttl = o.ttlMs ?? KEY_TTL_MS;
    this.#timers = o.timers ?? REAL_TIMERS;
  }

  /** How many of this process's sessions hold `key` (tests). */
  heldCount(key: string): number {
    return this.#held.get(key) ?? 0;
  }

  async acquire(vars: LimitConnVars, log: LimitConnLog): Promise<LimitConnOutcome> {
    const { limits, dryRun, logLevel } = this.#o.config;
    const mine: string[] = [];
    const releaseMine = () => {
      for (const k of mine.splice(0)) this.#release(k);
    };
    for (const limit of limits) {
      const value = keyValue(limit.zone.key, vars);
      if (value === "") continue; // an empty value is not counted
      if (value.length > MAX_KEY_BYTES) {
        log(
          "error",
          `the value of the "${limit.zone.text}" key is more than ${MAX_KEY_BYTES} bytes: "${value}"`,
        );
        continue;
      }
      const key = `mailgate:lc:${limit.zone.name}:${value}`;
      const n = await this.#o.store.incr(key, this.#ttl);
      this.#hold(key);
      mine.push(key);
      if (n > limit.conn) {
        log(
          logLevel,
          `limiting connections${dryRun ? ", dry run," : ""} by zone "${limit.zone.name}"`,
        );
        // As freenginx: the session's counts are dropped either way, so a
        // dry-run session over the limit goes through uncounted.
        releaseMine();
        if (!dryRun) countLimitConnRefused(limit.zone.name);
        return dryRun ? { ok: true, release: NOTHING_HELD } : { ok: false };
      }
    }
    if (mine.length === 0) return { ok: true, release: NOTHING_HELD };
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        releaseMine();
      },
    };
  }

  #hold(key: string): void {
    this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
    if (this.#refresh === null) this.#schedule();
  }

  #release(key: string): void {
    const n = (this.#held.get(key) ?? 1) - 1;
    if (n <= 0) this.#held.delete(key);
    else this.#held.set(key, n);
    void this.#o.store.decr(key); // never rejects (store contract)
    if (this.#held.size === 0 && this.#refresh !== null) {
      this.#timers.clear(this.#refresh);
      this.#refresh = null;
    }
  }

  #schedule(): void {
    this.#refresh = this.#timers.set(() => {
      this.#refresh = null;
      void this.#refreshAll();
      if (this.#held.size > 0) this.#schedule();
    }, Math.max(1, Math.floor(this.#ttl / 3)));
  }

  async #refreshAll(): Promise<void> {
    const store = this.#o.store;
    for (const [key, count] of [...this.#held]) {
      if (await store.expire(key, this.#ttl)) continue;
      // The key vanished (flushed, restarted, or a fallback to local state):
      // put back what this process's sessions still hold.
      const still = this.#held.get(key) ?? 0;
      for (let i = 0; i < Math.min(count, still); i++) await store.incr(key, this.#ttl);
    }
  }
}

/** Without shared_store the zones are per process: one local store for every server. */
const PROCESS_COUNTS = new LocalStore();

/** A server's limits over the process's store (MailProxy.store) when it is shared_store's, else the process's own. */
export function createLimitConn(
  config: LimitConnConfig,
  store: (() => SharedStore) | undefined,
): LimitConn {
  return new LimitConn({ config, store: chooseStore(store, PROCESS_COUNTS) });
}
