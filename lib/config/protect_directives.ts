// Protection directives: freenginx's max_commands, and mailgate's auth cache
// and failed-login limits (README "Protection"). Contexts mail and server.

import {
  argNumber,
  confPathSlot,
  type Directive,
  type DirectiveSpec,
  fail,
  level,
  type LoadState,
  mailSpec,
  msecSlot,
} from "./directive.ts";
import type { Effective } from "./merge.ts";
import type { FailLimit, ProtectConfig } from "./types.ts";
import { parseMsec, parseNumber } from "./units.ts";

export const PROTECT_DEFAULTS = {
  /** freenginx's default. */
  maxCommands: 1000,
  authCacheSize: 10000,
} as const;

/** auth_fail_limit_ip / auth_fail_limit_user N TIME. */
function failLimit(name: "auth_fail_limit_ip" | "auth_fail_limit_user"): DirectiveSpec {
  return mailSpec("take2", (d: Directive, st: LoadState) => {
    level(st).setWith(name, d.loc, (): FailLimit => {
      const count = parseNumber(d.args[0]);
      if (count === null || count < 1) fail(d, `"${name}" directive invalid number "${d.args[0]}"`);
      const windowMs = parseMsec(d.args[1]);
      if (windowMs === null || windowMs < 1000) {
        fail(d, `"${name}" directive invalid time "${d.args[1]}", it must be at least 1s`);
      }
      return { count, windowMs };
    });
  });
}

export const PROTECT_DIRECTIVES: Record<string, DirectiveSpec> = {
  max_commands: mailSpec(
    "take1",
    (d, st) => level(st).setWith("max_commands", d.loc, () => argNumber(d)),
  ),
  auth_cache_ttl: msecSlot("auth_cache_ttl"),
  auth_cache_negative_ttl: msecSlot("auth_cache_negative_ttl"),
  auth_cache_size: mailSpec("take1", (d, st) =>
    level(st).setWith("auth_cache_size", d.loc, () => {
      const n = argNumber(d);
      if (n < 1) fail(d, `"auth_cache_size" must be at least 1`);
      return n;
    })),
  auth_cache_secret: confPathSlot("auth_cache_secret"),
  auth_fail_limit_ip: failLimit("auth_fail_limit_ip"),
  auth_fail_limit_user: failLimit("auth_fail_limit_user"),
};

export function buildProtect(e: Effective): ProtectConfig {
  return {
    cacheTtlMs: e.get("auth_cache_ttl", 0),
    cacheNegativeTtlMs: e.get("auth_cache_negative_ttl", 0),
    cacheSize: e.get("auth_cache_size", PROTECT_DEFAULTS.authCacheSize),
    cacheSecretFile: e.get("auth_cache_secret", null),
    failLimitIp: e.get("auth_fail_limit_ip", null),
    failLimitUser: e.get("auth_fail_limit_user", null),
  };
}
