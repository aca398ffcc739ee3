// loadConfig: reads the main file (and -g string, and includes), runs every
// directive through the table as it is read (so the first error reported is
// the one nginx would report), then applies the end-of-mail checks and
// builds the typed Config.

import { readFileSync, realpathSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { dirname, resolve } from "node:path";
import type { Ctx, Directive, DirectiveSpec, LoadState } from "./directive.ts";
import { argsFit, fail, once, warn } from "./directive.ts";
import { COMMAND_LINE_LOC, ConfigError, sysErrorText } from "./errors.ts";
import { FOREIGN_DIRECTIVES, notAllowedHere } from "./foreign_directives.ts";
import { expandGlob, hasGlobChars } from "./glob.ts";
import { Level, ServerLevel } from "./level.ts";
import { Lexer } from "./lexer.ts";
import { finishMail } from "./mail_checks.ts";
import { finishAuthHttp } from "./auth_http_hosts.ts";
import { MAIL_DIRECTIVES } from "./mail_directives.ts";
import { MAIN_DIRECTIVES } from "./main_directives.ts";
import type { Config, Loc, MailConfig } from "./types.ts";
import { defaultLookup, type HostLookup } from "./url.ts";

export interface LoadOptions {
  /** Main configuration file, absolute or relative to the working directory. */
  file: string;
  /** Prefix directory (-p) for pid / error_log / access_log relative paths. */
  prefix: string;
  /** The -g string: extra main-context simple directives. */
  globals?: string;
  /** Host name lookup (tests inject one; default node:dns lookup). */
  lookup?: HostLookup;
  /** Default server_name (default: os.hostname() lower-cased). */
  hostname?: string;
}

/** Every directive name the product knows, with its contexts and handler. */
export const DIRECTIVES: Record<string, DirectiveSpec> = { ...MAIN_DIRECTIVES, ...MAIL_DIRECTIVES };

export const DEFAULT_WORKER_CONNECTIONS = 512;

export function ignoredBlockMessage(name: string): string {
  return `"${name}" block is ignored: mailgate proxies mail only`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class Loader {
  readonly seen: { name: string; args: string[]; loc: Loc }[] = [];
  readonly files: { path: string; text: string }[] = [];
  /** Real paths of the files being parsed right now (include recursion guard). */
  private readonly reading: string[] = [];
  private eventsSeen = false;
  mailConfig: MailConfig | null = null;

  constructor(readonly st: LoadState, readonly hostname: string) {}

  /** Reads a file for parsing; `from` is the include directive (null for the main file). */
  readFile(path: string, from: Loc | null): Uint8Array {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new ConfigError(`open() "${path}" failed ${sysErrorText(e)}`, from);
    }
    this.files.push({ path, text: decoder.decode(bytes) });
    return bytes;
  }

  async parseFile(path: string, ctx: Ctx, from: Loc | null): Promise<void> {
    let real = path;
    try {
      real = realpathSync(path);
    } catch {
      // readFile reports the failure in nginx's words.
    }
    if (this.reading.includes(real)) {
      throw new ConfigError(`recursive include of "${path}"`, from);
    }
    const bytes = this.readFile(path, from);
    this.reading.push(real);
    try {
      await this.parseBody(new Lexer(bytes, path), "file", ctx);
    } finally {
      this.reading.pop();
    }
  }

  async parseGlobals(text: string): Promise<void> {
    await this.parseBody(new Lexer(encoder.encode(text), null), "param", "main");
  }

  /** ngx_conf_parse: directives until end of file (`file`, `param`) or the closing `}` (`block`). */
  async parseBody(lx: Lexer, kind: "file" | "block" | "param", ctx: Ctx): Promise<void> {
    for (;;) {
      const t = lx.next();
      if (t.kind === "close") {
        if (kind !== "block") throw new ConfigError('unexpected "}"', lx.loc(t.line));
        return;
      }
      if (t.kind === "eof") {
        if (kind === "block") {
          throw new ConfigError('unexpected end of file, expecting "}"', lx.loc(t.line));
        }
        return;
      }
      const loc = lx.loc(t.line);
      if (t.end === "{" && kind === "param") {
        throw new ConfigError("block directives are not supported in -g option", loc);
      }
      const d: Directive = { name: t.args[0], args: t.args.slice(1), loc, ctx };
      await this.dispatch(d, t.end, lx);
    }
  }

  async dispatch(d: Directive, end: ";" | "{", lx: Lexer): Promise<void> {
    this.seen.push({ name: d.name, args: d.args, loc: d.loc });
    const spec = Object.hasOwn(DIRECTIVES, d.name) ? DIRECTIVES[d.name] : undefined;
    if (!spec) {
      fail(
        d,
        FOREIGN_DIRECTIVES.has(d.name) ? notAllowedHere(d.name) : `unknown directive "${d.name}"`,
      );
    }
    if (!spec.contexts.includes(d.ctx)) fail(d, notAllowedHere(d.name));
    if (!spec.block && end !== ";") fail(d, `directive "${d.name}" is not terminated by ";"`);
    if (spec.block && end !== "{") fail(d, `directive "${d.name}" has no opening "{"`);
    if (!argsFit(spec.args, d.args.length)) {
      fail(d, `invalid number of arguments in "${d.name}" directive`);
    }

    if (spec.block) return this.openBlock(d, lx);
    if (d.name === "include") return this.include(d);
    await spec.handle!(d, this.st);
  }

  async include(d: Directive): Promise<void> {
    const path = resolve(this.st.configDir, d.args[0]);
    const files = hasGlobChars(path) ? expandGlob(path) : [path];
    for (const f of files) await this.parseFile(f, d.ctx, d.loc);
  }

  async openBlock(d: Directive, lx: Lexer): Promise<void> {
    const st = this.st;
    switch (d.name) {
      case "events":
        once(d, st);
        this.eventsSeen = true;
        return this.parseBody(lx, "block", "events");
      case "http":
      case "stream":
        once(d, st);
        skipBlock(lx);
        warn(st, ignoredBlockMessage(d.name), d.loc);
        return;
      case "mail": {
        if (st.mail) fail(d, `"mail" directive is duplicate`);
        const mail = new Level(d.loc);
        st.mail = mail;
        await this.parseBody(lx, "block", "mail");
        this.mailConfig = finishMail(st, mail, this.hostname);
        await finishAuthHttp(this.mailConfig, st);
        return;
      }
      case "server": {
        const srv = new ServerLevel(d.loc);
        st.servers.push(srv);
        st.server = srv;
        await this.parseBody(lx, "block", "server");
        st.server = null;
        if (srv.listens.length === 0) {
          throw new ConfigError(`no "listen" is defined for server`, srv.loc);
        }
        return;
      }
    }
    throw new Error(`no block handler for "${d.name}"`);
  }

  get hasEvents(): boolean {
    return this.eventsSeen;
  }
}

/** Reads an ignored block for syntax only: tokens, quoting, balanced braces. */
function skipBlock(lx: Lexer): void {
  let depth = 1;
  for (;;) {
    const t = lx.next();
    if (t.kind === "eof") {
      throw new ConfigError('unexpected end of file, expecting "}"', lx.loc(t.line));
    }
    if (t.kind === "close") {
      if (--depth === 0) return;
    } else if (t.end === "{") {
      depth++;
    }
  }
}

export async function loadConfig(opts: LoadOptions): Promise<Config> {
  const file = resolve(opts.file);
  const prefix = resolve(opts.prefix);
  const st: LoadState = {
    configFile: file,
    configDir: dirname(file),
    prefix,
    lookup: opts.lookup ?? defaultLookup,
    warnings: [],
    main: {
      workerProcesses: 1,
      daemon: true,
      pid: null,
      errorLogs: [],
      workerConnections: DEFAULT_WORKER_CONNECTIONS,
      workerShutdownTimeout: null,
    },
    mainSeen: new Set(),
    mail: null,
    server: null,
    servers: [],
    listenAddrs: new Set(),
    shmZones: new Map(),
  };
  const loader = new Loader(st, opts.hostname ?? osHostname().toLowerCase());

  // nginx applies -g before reading the file, so a file directive that
  // repeats a -g one is the duplicate.
  if (opts.globals) await loader.parseGlobals(opts.globals);
  await loader.parseFile(file, "main", null);
  if (!loader.hasEvents) throw new ConfigError('no "events" section in configuration', null);

  const m = st.main;
  return {
    file,
    prefix,
    workerProcesses: m.workerProcesses,
    daemon: m.daemon,
    pid: m.pid,
    // Decision: without error_log the foreground product logs errors to stderr.
    errorLogs: m.errorLogs.length > 0
      ? m.errorLogs
      : [{ target: "stderr", level: "error", loc: { file, line: 0 } }],
    workerConnections: m.workerConnections,
    workerShutdownTimeout: m.workerShutdownTimeout,
    mail: loader.mailConfig,
    warnings: st.warnings,
    seen: loader.seen,
    files: loader.files,
  };
}

export { COMMAND_LINE_LOC, ConfigError };
export { formatConfigError, formatConfigWarning } from "./errors.ts";
