// shared_store, shared_store_password_file, shared_store_timeout (context
// mail): where the state N instances share lives (lib/store/). The URL and
// the password file are checked and read while loading, so `-t` reports a
// bad URL or an unreadable file at its FILE:LINE; the password is kept only
// in the typed config, never in a message.

import { readFileSync } from "node:fs";
import {
  argMsec,
  confPath,
  type Directive,
  type DirectiveSpec,
  fail,
  type LoadState,
} from "./directive.ts";
import { ConfigError } from "./errors.ts";
import type { Level } from "./level.ts";
import type { Loc } from "./types.ts";
import { parseRedisUrl, type RedisTarget } from "../store/redis_url.ts";
import { DEFAULT_STORE_TIMEOUT_MS } from "../store/shared.ts";

export interface SharedStoreConfig {
  target: RedisTarget;
  timeoutMs: number;
}

/** Redis's own limit on an AUTH argument is far larger; a password file is one short line. */
const MAX_PASSWORD_FILE = 4096;

function mailLevel(d: Directive, st: LoadState): Level {
  // contexts: ["mail"] keeps these out of server blocks; st.mail is set inside mail.
  if (st.mail === null) fail(d, `"${d.name}" directive is not allowed here`);
  return st.mail;
}

function handleSharedStore(d: Directive, st: LoadState): void {
  const lv = mailLevel(d, st);
  lv.setWith("shared_store", d.loc, () => {
    const t = parseRedisUrl(d.args[0]);
    if (typeof t === "string") fail(d, t);
    return t;
  });
}

function handlePasswordFile(d: Directive, st: LoadState): void {
  const lv = mailLevel(d, st);
  lv.setWith("shared_store_password_file", d.loc, () => {
    const path = confPath(st, d.args[0]);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      fail(d, `cannot read "shared_store_password_file" "${path}": ${(e as Error).message}`);
    }
    if (text.length > MAX_PASSWORD_FILE) {
      fail(d, `"shared_store_password_file" "${path}" is too long`);
    }
    // The first line, as ssl_password_file reads pass phrases; a trailing newline is not part of it.
    const password = text.split(/\r?\n/)[0];
    if (password === "") fail(d, `"shared_store_password_file" "${path}" is empty`);
    return password;
  });
}

function handleTimeout(d: Directive, st: LoadState): void {
  const lv = mailLevel(d, st);
  lv.setWith("shared_store_timeout", d.loc, () => {
    const ms = argMsec(d);
    if (ms <= 0) fail(d, `"shared_store_timeout" must be more than 0`);
    return ms;
  });
}

export const SHARED_STORE_DIRECTIVES: Record<string, DirectiveSpec> = {
  shared_store: { contexts: ["mail"], args: "take1", handle: handleSharedStore },
  shared_store_password_file: { contexts: ["mail"], args: "take1", handle: handlePasswordFile },
  shared_store_timeout: { contexts: ["mail"], args: "take1", handle: handleTimeout },
};

/** The store settings of the mail block, or null without `shared_store`. */
export function buildSharedStore(mail: Level): SharedStoreConfig | null {
  const url = mail.singles.shared_store;
  const file = mail.singles.shared_store_password_file;
  const timeout = mail.singles.shared_store_timeout;
  if (url === undefined) {
    const stray = file ?? timeout;
    if (stray !== undefined) {
      const name = file !== undefined ? "shared_store_password_file" : "shared_store_timeout";
      throw configError(`"${name}" is given without "shared_store"`, stray.loc);
    }
    return null;
  }
  let target = url.value;
  if (file !== undefined) {
    if (!target.bareCredential && target.password !== null) {
      throw configError(
        `"shared_store_password_file" and a password in "shared_store" cannot both be given`,
        file.loc,
      );
    }
    // redis://name@host with a password file: "name" is the user (ACL), not a password.
    const user = target.user ?? target.password;
    target = { ...target, user, password: file.value };
  }
  return { target, timeoutMs: timeout?.value ?? DEFAULT_STORE_TIMEOUT_MS };
}

function configError(message: string, loc: Loc): ConfigError {
  return new ConfigError(message, loc);
}
