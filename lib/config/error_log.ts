// error_log <target> [level] (directives.md §12), as ngx_log_set_log and
// ngx_log_set_levels validate it. syslog targets are kept raw for the log
// layer but their parameters are checked here (ngx_syslog_process_conf).

import { type Directive, fail, type LoadState, prefixPath } from "./directive.ts";
import { LOG_LEVELS, type LogLevel, type LogTarget } from "./types.ts";
import { parseSize } from "./units.ts";
import { parseUrl } from "./url.ts";

/** nginx's debug_* masks; any of them means level debug. */
const DEBUG_LEVELS = [
  "debug_core",
  "debug_alloc",
  "debug_mutex",
  "debug_event",
  "debug_http",
  "debug_mail",
  "debug_stream",
];

const SYSLOG_FACILITIES = [
  "kern",
  "user",
  "mail",
  "daemon",
  "auth",
  "intern",
  "lpr",
  "news",
  "uucp",
  "clock",
  "authpriv",
  "ftp",
  "ntp",
  "audit",
  "alert",
  "cron",
  "local0",
  "local1",
  "local2",
  "local3",
  "local4",
  "local5",
  "local6",
  "local7",
];

/** nginx caps the syslog tag at 32 bytes. */
const SYSLOG_TAG_MAX = 32;

export function parseErrorLog(d: Directive, st: LoadState): LogTarget {
  const spec = d.args[0];
  let target: string;
  if (spec === "stderr") {
    target = "stderr";
  } else if (spec.startsWith("memory:")) {
    const size = parseSize(spec.slice(7));
    if (size === null || size === 0) fail(d, `invalid buffer size "${spec.slice(7)}"`);
    target = spec;
  } else if (spec.startsWith("syslog:")) {
    checkSyslog(d, spec.slice(7));
    target = spec;
  } else {
    target = prefixPath(st, spec);
  }
  return { target, level: parseLevels(d), loc: d.loc };
}

function parseLevels(d: Directive): LogLevel {
  let level: LogLevel | null = null;
  let debugMask = false;
  for (const w of d.args.slice(1)) {
    const main = LOG_LEVELS.find((l) => l === w);
    if (main !== undefined) {
      if (level !== null || debugMask) fail(d, `duplicate log level "${w}"`);
      level = main;
      continue;
    }
    if (DEBUG_LEVELS.includes(w)) {
      if (level !== null) fail(d, `invalid log level "${w}"`);
      debugMask = true;
      continue;
    }
    fail(d, `invalid log level "${w}"`);
  }
  return level ?? (debugMask ? "debug" : "error");
}

function checkSyslog(d: Directive, params: string): void {
  let server = false, facility = false, severity = false, tag = false;
  for (const p of params.split(",")) {
    if (p.startsWith("server=")) {
      if (server) fail(d, `duplicate syslog "${p}"`);
      server = true;
      const r = parseUrl(p.slice(7), { defaultPort: 514 });
      if ("err" in r) fail(d, `${r.err} in syslog server "${p.slice(7)}"`);
    } else if (p.startsWith("facility=")) {
      if (facility) fail(d, `duplicate syslog "${p}"`);
      facility = true;
      if (!SYSLOG_FACILITIES.includes(p.slice(9))) {
        fail(d, `unknown syslog facility "${p.slice(9)}"`);
      }
    } else if (p.startsWith("severity=")) {
      if (severity) fail(d, `duplicate syslog "${p}"`);
      severity = true;
      if (!LOG_LEVELS.includes(p.slice(9) as LogLevel)) {
        fail(d, `unknown syslog severity "${p.slice(9)}"`);
      }
    } else if (p.startsWith("tag=")) {
      if (tag) fail(d, `duplicate syslog "${p}"`);
      tag = true;
      const t = p.slice(4);
      if (t.length > SYSLOG_TAG_MAX) fail(d, `syslog tag length exceeds ${SYSLOG_TAG_MAX}`);
      if (!/^[A-Za-z0-9_]*$/.test(t)) {
        fail(d, `syslog "tag" only allows alphanumeric characters and underscore`);
      }
    } else if (p === "nohostname") {
      // accepted
    } else {
      fail(d, `unknown syslog parameter "${p}"`);
    }
  }
  if (!server) fail(d, "no syslog server specified");
}
