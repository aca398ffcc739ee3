// The directive framework: what a directive looks like when a handler gets
// it, the load state handlers write into, and the argument parsers with
// nginx's generic error messages (directives.md §1.3, §1.5).

import { isAbsolute, resolve } from "node:path";
import { ConfigError } from "./errors.ts";
import type { Level, Lists, ServerLevel, Singles } from "./level.ts";
import type { ConfigWarning, Loc, LogTarget } from "./types.ts";
import { parseFlag, parseMsec, parseNumber, parseSec, parseSize } from "./units.ts";
import type { HostLookup } from "./url.ts";

export type Ctx = "main" | "events" | "mail" | "server";

/** nginx's argument-count classes (NGX_CONF_NOARGS, TAKE1, ...). */
export type ArgCount = "noargs" | "take1" | "take2" | "take12" | "take23" | "flag" | "1more";

export interface Directive {
  name: string;
  /** Context the directive appeared in. */
  ctx: Ctx;
  /** Arguments after the name. */
  args: string[];
  loc: Loc;
}

export interface DirectiveSpec {
  contexts: readonly Ctx[];
  args: ArgCount;
  /** Block directives are opened by load.ts; `handle` only validates arguments. */
  block?: boolean;
  handle?: (d: Directive, st: LoadState) => void | Promise<void>;
}

export interface MainSettings {
  workerProcesses: number | "auto";
  daemon: boolean;
  pid: string | null;
  errorLogs: LogTarget[];
  workerConnections: number;
  workerShutdownTimeout: number | null;
}

export interface LoadState {
  configFile: string;
  configDir: string;
  prefix: string;
  lookup: HostLookup;
  warnings: ConfigWarning[];
  main: MainSettings;
  /** Single-valued main/events directives already given (for "is duplicate"). */
  mainSeen: Set<string>;
  mail: Level | null;
  server: ServerLevel | null;
  servers: ServerLevel[];
  /** addr_text of every listen socket so far, across all servers. */
  listenAddrs: Set<string>;
  /** Shared session cache zones: name → size. */
  shmZones: Map<string, number>;
}

export function fail(d: Directive, message: string): never {
  throw new ConfigError(message, d.loc);
}

export function warn(st: LoadState, message: string, loc: Loc | null): void {
  st.warnings.push({ message, loc });
}

/** The level (server if inside one, else mail) a mail directive writes to. */
export function level(st: LoadState): Level {
  const l = st.server ?? st.mail;
  if (!l) throw new Error("mail directive outside mail block");
  return l;
}

/** Throws `"<name>" directive is duplicate` when a main-level setting repeats. */
export function once(d: Directive, st: LoadState): void {
  if (st.mainSeen.has(d.name)) fail(d, `"${d.name}" directive is duplicate`);
  st.mainSeen.add(d.name);
}

export function argFlag(d: Directive, v = d.args[0]): boolean {
  const f = parseFlag(v);
  if (f === null) {
    fail(d, `invalid value "${v}" in "${d.name}" directive, it must be "on" or "off"`);
  }
  return f;
}

export function argNumber(d: Directive): number {
  const n = parseNumber(d.args[0]);
  if (n === null) fail(d, `"${d.name}" directive invalid number`);
  return n;
}

export function argSize(d: Directive): number {
  const n = parseSize(d.args[0]);
  if (n === null) fail(d, `"${d.name}" directive invalid value`);
  return n;
}

export function argMsec(d: Directive): number {
  const n = parseMsec(d.args[0]);
  if (n === null) fail(d, `"${d.name}" directive invalid value`);
  return n;
}

export function argSec(d: Directive): number {
  const n = parseSec(d.args[0]);
  if (n === null) fail(d, `"${d.name}" directive invalid value`);
  return n;
}

/** Case-insensitive match against `values`; returns the canonical spelling. */
export function argEnum<T extends string>(d: Directive, values: readonly T[], v = d.args[0]): T {
  const l = v.toLowerCase();
  const found = values.find((x) => x.toLowerCase() === l);
  if (found === undefined) fail(d, `invalid value "${v}"`);
  return found;
}

/**
 * Method-list words (ngx_conf_set_bitmask_slot): unknown → error, a word
 * already given at this level → warning; the level's list grows in order.
 */
export function appendMethods<
  K extends keyof Lists & ("imap_auth" | "pop3_auth" | "smtp_auth" | "ssl_protocols"),
>(
  d: Directive,
  st: LoadState,
  key: K,
  allowed: readonly string[],
): void {
  const lv = level(st);
  const have: string[] = [...((lv.lists[key]?.value as string[] | undefined) ?? [])];
  const added: string[] = [];
  for (const w of d.args) {
    const canon = allowed.find((a) => a.toLowerCase() === w.toLowerCase());
    if (canon === undefined) fail(d, `invalid value "${w}"`);
    if (have.includes(canon)) {
      warn(st, `duplicate value "${w}"`, d.loc);
      continue;
    }
    have.push(canon);
    added.push(canon);
  }
  lv.append(key, added, d.loc);
}

/** Directive handlers that just store one typed value under their own name. */
type KeysOf<T> = { [K in keyof Singles]: Singles[K] extends T ? K : never }[keyof Singles];

export function flagSlot(name: KeysOf<boolean>): DirectiveSpec {
  return mailSpec("flag", (d, st) => level(st).setWith(name, d.loc, () => argFlag(d)));
}

export function msecSlot(name: KeysOf<number>): DirectiveSpec {
  return mailSpec("take1", (d, st) => level(st).setWith(name, d.loc, () => argMsec(d)));
}

export function sizeSlot(name: KeysOf<number>): DirectiveSpec {
  return mailSpec("take1", (d, st) => level(st).setWith(name, d.loc, () => argSize(d)));
}

export function numSlot(name: KeysOf<number>): DirectiveSpec {
  return mailSpec("take1", (d, st) => level(st).setWith(name, d.loc, () => argNumber(d)));
}

export function strSlot(name: KeysOf<string>): DirectiveSpec {
  return mailSpec("take1", (d, st) => level(st).set(name, d.args[0], d.loc));
}

/** A path relative to the configuration directory (kept absolute). */
export function confPathSlot(name: KeysOf<string>): DirectiveSpec {
  return mailSpec("take1", (d, st) => level(st).set(name, confPath(st, d.args[0]), d.loc));
}

export function mailSpec(args: ArgCount, handle: DirectiveSpec["handle"]): DirectiveSpec {
  return { contexts: ["mail", "server"], args, handle };
}

/** ssl_* / include paths: relative to the main configuration file's directory; `data:` kept. */
export function confPath(st: LoadState, p: string): string {
  if (p.startsWith("data:") || isAbsolute(p)) return p;
  return resolve(st.configDir, p);
}

/** pid / error_log / access_log paths: relative to the prefix directory. */
export function prefixPath(st: LoadState, p: string): string {
  return isAbsolute(p) ? p : resolve(st.prefix, p);
}

/** Does the argument count fit the class? (ngx_conf_handler's argument_number check) */
export function argsFit(kind: ArgCount, n: number): boolean {
  switch (kind) {
    case "noargs":
      return n === 0;
    case "take1":
    case "flag":
      return n === 1;
    case "take2":
      return n === 2;
    case "take12":
      return n === 1 || n === 2;
    case "take23":
      return n === 2 || n === 3;
    case "1more":
      return n >= 1;
  }
}
