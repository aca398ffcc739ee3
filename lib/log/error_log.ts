// nginx-shaped error log: levels, targets and the line format of
// directives.md §12:
//   2024/05/01 12:00:00 [info] 4242#0: *17 message, client: 192.0.2.7, server: 0.0.0.0:143, login: "alice", upstream: 198.51.100.1:143
// Lines are written synchronously (as nginx does), so a crash never loses the
// line that explains it. Passwords are never handed to this module.

import { LOG_LEVELS, type LogLevel, type LogTarget } from "../config/types.ts";
import { sendSyslog, type SyslogTransport } from "./syslog.ts";
import { openLogFile, writeSafe } from "./files.ts";
import { recordError } from "../status/recent_errors.ts";

const WARN = LOG_LEVELS.indexOf("warn");

export { reopenLogFiles } from "./files.ts";

export function levelIndex(level: LogLevel): number {
  return LOG_LEVELS.indexOf(level);
}

/** What a session adds after its messages. */
export interface LogContext {
  /** Connection number, printed as `*N`. */
  conn: number;
  client: string;
  /** ` using starttls` is appended to the client address after STARTTLS. */
  starttls?: boolean;
  server: string;
  login?: string;
  upstream?: string;
  /** Printed as ` while <action>`. */
  action?: string;
}

interface Sink {
  level: number;
  write(line: string, level: number): void;
}

function fileSink(path: string, level: number): Sink {
  const write = openLogFile(path);
  return { level, write: (line) => write(line + "\n") };
}

const pad2 = (n: number) => (n < 10 ? "0" : "") + n;

/** `YYYY/MM/DD HH:MM:SS` in local time, cached per second. */
let stampSecond = -1;
let stampText = "";
export function timestamp(now = Date.now()): string {
  const sec = Math.floor(now / 1000);
  if (sec !== stampSecond) {
    const d = new Date(now);
    stampText = `${d.getFullYear()}/${pad2(d.getMonth() + 1)}/${pad2(d.getDate())} ` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    stampSecond = sec;
  }
  return stampText;
}

export function formatContext(ctx: LogContext): string {
  let s = "";
  if (ctx.action) s += ` while ${ctx.action}`;
  s += `, client: ${ctx.client}${ctx.starttls ? " using starttls" : ""}, server: ${ctx.server}`;
  if (ctx.login !== undefined) s += `, login: "${ctx.login}"`;
  if (ctx.upstream !== undefined) s += `, upstream: ${ctx.upstream}`;
  return s;
}

export class ErrorLog {
  readonly #sinks: Sink[];
  readonly #pid: number;
  /** Most verbose level any sink wants; cheap early-out before formatting. */
  readonly #max: number;

  /** `transport`: the runtime's UDP sockets, needed when a target is syslog. */
  constructor(targets: LogTarget[], pid: number, transport: SyslogTransport | null = null) {
    this.#pid = pid;
    this.#sinks = targets.map((t) => makeSink(t, transport));
    this.#max = this.#sinks.reduce((m, s) => Math.max(m, s.level), -1);
  }

  enabled(level: LogLevel): boolean {
    return levelIndex(level) <= this.#max;
  }

  log(level: LogLevel, message: string, ctx?: LogContext): void {
    const li = levelIndex(level);
    // warn and worse also go to the status page's ring (lib/status), logged or not.
    if (li > this.#max && li > WARN) return;
    const conn = ctx ? `*${ctx.conn} ` : "";
    const suffix = ctx && level !== "debug" ? formatContext(ctx) : "";
    const line = `${timestamp()} [${level}] ${this.#pid}#0: ${conn}${message}${suffix}`;
    if (li <= WARN) recordError(line);
    for (const s of this.#sinks) if (li <= s.level) s.write(line, li);
  }

  error(message: string, ctx?: LogContext) {
    this.log("error", message, ctx);
  }
  warn(message: string, ctx?: LogContext) {
    this.log("warn", message, ctx);
  }
  notice(message: string, ctx?: LogContext) {
    this.log("notice", message, ctx);
  }
  info(message: string, ctx?: LogContext) {
    this.log("info", message, ctx);
  }
  debug(message: string, ctx?: LogContext) {
    this.log("debug", message, ctx);
  }
}

function makeSink(t: LogTarget, transport: SyslogTransport | null): Sink {
  const level = levelIndex(t.level);
  if (t.target === "stderr") {
    return { level, write: (line) => writeSafe(2, line + "\n") };
  }
  if (t.target.startsWith("syslog:")) {
    const spec = t.target;
    if (!transport) throw new Error(`error log "${spec}" made without the runtime's UDP sockets`);
    return { level, write: (line, li) => sendSyslog(transport, spec, li, line) };
  }
  if (t.target.startsWith("memory:")) {
    // nginx's memory log exists in debug builds only; accepted, discarded.
    return { level, write: () => {} };
  }
  return fileSink(t.target, level);
}
