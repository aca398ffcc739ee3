// Main- and events-context directives (directives.md §2), the block
// openers, and `include`. Directives that only matter to a multi-process
// nginx are validated like nginx does, then ignored with a warning.

import {
  type ArgCount,
  argEnum,
  argFlag,
  argMsec,
  argNumber,
  type Ctx,
  type Directive,
  type DirectiveSpec,
  fail,
  type LoadState,
  once,
  prefixPath,
  warn,
} from "./directive.ts";
import { parseErrorLog } from "./error_log.ts";
import { handleMailErrorLog } from "./mail_directives.ts";
import { parseNumber, parseOffset } from "./units.ts";

const MAIN: readonly Ctx[] = ["main"];
const EVENTS: readonly Ctx[] = ["events"];

function main(args: ArgCount, handle: DirectiveSpec["handle"]): DirectiveSpec {
  return { contexts: MAIN, args, handle };
}

function events(args: ArgCount, handle: DirectiveSpec["handle"]): DirectiveSpec {
  return { contexts: EVENTS, args, handle };
}

export function ignoredMessage(name: string): string {
  return `"${name}" directive is ignored`;
}

/** Accepted for nginx compatibility, checked, then ignored with a warning. */
function ignored(
  args: ArgCount,
  check?: (d: Directive, st: LoadState) => void,
  single = true,
): DirectiveSpec {
  return main(args, (d, st) => {
    if (single) once(d, st);
    check?.(d, st);
    warn(st, ignoredMessage(d.name), d.loc);
  });
}

/** Events-module settings with no meaning for mailgate: checked, then dropped silently. */
function eventsIgnored(
  args: ArgCount,
  check?: (d: Directive) => void,
  single = true,
): DirectiveSpec {
  return events(args, (d, st) => {
    if (single) once(d, st);
    check?.(d);
  });
}

function priority(d: Directive): void {
  const v = d.args[0];
  if (parseNumber(v.startsWith("-") ? v.slice(1) : v) === null) {
    fail(d, `"${d.name}" directive invalid number`);
  }
}

export const MAIN_DIRECTIVES: Record<string, DirectiveSpec> = {
  include: { contexts: ["main", "events", "mail", "server"], args: "take1" },
  events: { contexts: MAIN, args: "noargs", block: true },
  mail: { contexts: MAIN, args: "noargs", block: true },
  http: { contexts: MAIN, args: "noargs", block: true },
  stream: { contexts: MAIN, args: "noargs", block: true },

  worker_processes: main("take1", (d, st) => {
    once(d, st);
    const v = d.args[0];
    if (v === "auto") {
      st.main.workerProcesses = "auto";
      return;
    }
    const n = parseNumber(v);
    if (n === null) fail(d, `"worker_processes" directive invalid value`);
    st.main.workerProcesses = n;
  }),
  daemon: main("flag", (d, st) => {
    once(d, st);
    st.main.daemon = argFlag(d);
  }),
  master_process: main("flag", (d, st) => {
    once(d, st);
    argFlag(d);
  }),
  pid: main("take1", (d, st) => {
    once(d, st);
    st.main.pid = prefixPath(st, d.args[0]);
  }),
  error_log: {
    contexts: ["main", "mail", "server"],
    args: "1more",
    handle: (d, st) => {
      if (d.ctx === "main") st.main.errorLogs.push(parseErrorLog(d, st));
      else handleMailErrorLog(d, st);
    },
  },
  worker_shutdown_timeout: main("take1", (d, st) => {
    once(d, st);
    st.main.workerShutdownTimeout = argMsec(d);
  }),

  user: ignored("take12"),
  worker_rlimit_nofile: ignored("take1", (d) => void argNumber(d)),
  worker_rlimit_core: ignored("take1", (d) => {
    if (parseOffset(d.args[0]) === null) fail(d, `"${d.name}" directive invalid value`);
  }),
  worker_priority: ignored("take1", priority),
  worker_cpu_affinity: ignored("1more"),
  working_directory: ignored("take1"),
  timer_resolution: ignored("take1", (d) => void argMsec(d)),
  lock_file: ignored("take1"),
  debug_points: ignored("take1", (d) => void argEnum(d, ["stop", "abort"])),
  env: ignored("take1", undefined, false),
  load_module: ignored("take1", undefined, false),
  thread_pool: ignored("take23", undefined, false),
  pcre_jit: ignored("flag", (d) => void argFlag(d)),

  worker_connections: events("take1", (d, st) => {
    once(d, st);
    const n = parseNumber(d.args[0]);
    if (n === null) fail(d, `invalid number "${d.args[0]}"`);
    st.main.workerConnections = n;
  }),
  use: eventsIgnored("take1"),
  multi_accept: eventsIgnored("flag", (d) => void argFlag(d)),
  accept_mutex: eventsIgnored("flag", (d) => void argFlag(d)),
  accept_mutex_delay: eventsIgnored("take1", (d) => void argMsec(d)),
  debug_connection: eventsIgnored("take1", undefined, false),
  worker_aio_requests: eventsIgnored("take1", (d) => void argNumber(d)),
};
