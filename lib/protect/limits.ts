// Failed-login limits (mailgate extension, README "Protection"):
// auth_fail_limit_ip N TIME and auth_fail_limit_user N TIME. Failures are
// counted in fixed windows through SharedStore.incr (the first failure opens
// a window of TIME, atomic across instances with `shared_store`); once a
// window holds N failures, that address or user is refused without asking
// the auth service until the window ends. A successful login clears the
// user's count (not the address's: one good account must not reopen an
// address that is guessing at others).

import { Buffer } from "node:buffer";
import { nodeCrypto } from "../runtime/builtins.ts";
import { formatIPv4, formatIPv6, parseIPv6 } from "../core/ip.ts";
import type { FailLimit } from "../config/types.ts";
import type { SharedStore } from "../store/types.ts";
import { lockoutIp, lockoutUser } from "../metrics/mail_metrics.ts";

export interface LoginLimitsOptions {
  ip: FailLimit | null;
  user: FailLimit | null;
  store: SharedStore;
  /** The error log's warn: once per lockout, with the address or user, never a password. */
  warn(message: string): void;
}

export type Lockout = { by: "ip" | "user" } | null;

/**
 * The address a limit counts: IPv4 as is, IPv6 by its /64 (one customer's
 * network, which hands out addresses at will), IPv4-mapped IPv6 as IPv4.
 */
export function limitAddress(ip: string): string {
  if (!ip.includes(":") || ip === "unix:") return ip;
  const b = parseIPv6(ip);
  if (b === null) return ip;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return formatIPv4(b.subarray(12));
  const net = new Uint8Array(16);
  net.set(b.subarray(0, 8));
  return formatIPv6(net) + "/64";
}

/** User names are compared case-folded (as most mail stores treat them). */
export function limitUser(user: string): string {
  return user.toLowerCase();
}

export class LoginLimits {
  readonly #o: LoginLimitsOptions;

  constructor(o: LoginLimitsOptions) {
    this.#o = o;
  }

  get enabled(): boolean {
    return this.#o.ip !== null || this.#o.user !== null;
  }

  /** Whether the address or the user is locked out now. */
  async locked(clientIp: string, user: string): Promise<Lockout> {
    const { ip, user: u, store } = this.#o;
    const [ipCount, userCount] = await Promise.all([
      ip ? store.get(ipKey(ip, clientIp)) : null,
      u ? store.get(userKey(u, user)) : null,
    ]);
    if (ip && ipCount !== null && Number(ipCount) >= ip.count) return { by: "ip" };
    if (u && userCount !== null && Number(userCount) >= u.count) return { by: "user" };
    return null;
  }

  /** One more failed login; warns when this failure starts a lockout. */
  async failed(clientIp: string, user: string): Promise<void> {
    const { ip, user: u, store } = this.#o;
    const [ipCount, userCount] = await Promise.all([
      ip ? store.incr(ipKey(ip, clientIp), ip.windowMs) : 0,
      u ? store.incr(userKey(u, user), u.windowMs) : 0,
    ]);
    // Exactly N: the one failure that locks (later ones are refused before
    // they are counted), so one line per lockout across all instances.
    if (ip && ipCount === ip.count) {
      lockoutIp.inc();
      this.#o.warn(
        `${ip.count} failed logins from ${limitAddress(clientIp)} within ${
          seconds(ip.windowMs)
        }: ` +
          `address locked out until the window ends`,
      );
    }
    if (u && userCount === u.count) {
      lockoutUser.inc();
      this.#o.warn(
        `${u.count} failed logins for user "${printable(limitUser(user))}" within ${
          seconds(u.windowMs)
        }: ` +
          `user locked out until the window ends`,
      );
    }
  }

  /** A successful login: the user's failures are forgotten. */
  async succeeded(user: string): Promise<void> {
    if (this.#o.user) await this.#o.store.del(userKey(this.#o.user, user));
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

/** A user name as the log may print it: bytes outside printable ASCII escaped, bounded. */
function printable(s: string): string {
  const t = s.length > 64 ? s.slice(0, 64) + "..." : s;
  return t.replace(
    /[^\x20-\x7e]|["\\]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

// One key per address/user and window length: servers with the same
// window share counts (an attacker moving from IMAP to POP3 stays counted).
function ipKey(l: FailLimit, clientIp: string): string {
  return `mailgate:fail:ip:${l.windowMs}:${limitAddress(clientIp)}`;
}

/** The user name hashed: bounded keys, and no raw bytes in the store. */
function userKey(l: FailLimit, user: string): string {
  const h = nodeCrypto().createHash("sha256").update(Buffer.from(limitUser(user), "latin1")).digest(
    "hex",
  );
  return `mailgate:fail:user:${l.windowMs}:${h}`;
}
