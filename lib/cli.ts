// nginx-compatible command line: -?hvVtTq, -s signal, -p prefix, -e file,
// -c file, -g directives. Flags may be combined (-tq) and a value may be
// glued to its flag (-cfile) or follow it, as in nginx.

import { NAME, VERSION } from "./version.ts";

export type SignalCommand = "stop" | "quit" | "reopen" | "reload";

export interface CliOptions {
  help: boolean;
  version: boolean;
  versionFull: boolean;
  test: boolean;
  dump: boolean;
  quiet: boolean;
  signal: SignalCommand | null;
  prefix: string | null;
  errorLog: string | null;
  conf: string | null;
  globals: string | null;
  /** mailgate extension: read a password on stdin, print its auth_table hash. */
  hashPassword: boolean;
}

export class CliError extends Error {}

const SIGNALS: readonly SignalCommand[] = ["stop", "quit", "reopen", "reload"];

export function parseCli(argv: string[]): CliOptions {
  const o: CliOptions = {
    help: false,
    version: false,
    versionFull: false,
    test: false,
    dump: false,
    quiet: false,
    signal: null,
    prefix: null,
    errorLog: null,
    conf: null,
    globals: null,
    hashPassword: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--hash-password") {
      o.hashPassword = true;
      continue;
    }
    if (!arg.startsWith("-") || arg.length < 2) throw new CliError(`invalid option: "${arg}"`);
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j];
      switch (c) {
        case "?":
        case "h":
          o.help = true;
          break;
        case "v":
          o.version = true;
          break;
        case "V":
          o.versionFull = true;
          break;
        case "t":
          o.test = true;
          break;
        case "T":
          o.test = true;
          o.dump = true;
          break;
        case "q":
          o.quiet = true;
          break;
        case "s":
        case "p":
        case "e":
        case "c":
        case "g": {
          let value = arg.slice(j + 1);
          if (value === "") {
            if (i + 1 >= argv.length) throw new CliError(`option "-${c}" requires ${ARG_NAME[c]}`);
            value = argv[++i];
          }
          if (c === "s") {
            if (!SIGNALS.includes(value as SignalCommand)) throw new CliError(`invalid option: "-s ${value}"`);
            o.signal = value as SignalCommand;
          } else if (c === "p") o.prefix = value;
          else if (c === "e") o.errorLog = value;
          else if (c === "c") o.conf = value;
          else o.globals = value;
          j = arg.length;
          break;
        }
        default:
          throw new CliError(`invalid option: "${arg.slice(j)}"`);
      }
    }
  }
  return o;
}

const ARG_NAME: Record<string, string> = {
  s: "signal name",
  p: "prefix path",
  e: "file name",
  c: "file name",
  g: "directives",
};

export const DEFAULT_CONF = "conf/mailgate.conf";

export function usage(): string {
  return `${NAME} version: ${NAME}/${VERSION}
Usage: ${NAME} [-?hvVtTq] [-s signal] [-p prefix]
             [-e filename] [-c filename] [-g directives]

Options:
  -?,-h         : this help
  -v            : show version and exit
  -V            : show version and build information then exit
  -t            : test configuration and exit
  -T            : test configuration, dump it and exit
  -q            : suppress non-error messages during configuration testing
  -s signal     : send signal to the running process: stop, quit, reopen, reload
  -p prefix     : set prefix path (default: the current directory)
  -e filename   : set start-up error log file (default: stderr)
  -c filename   : set configuration file (default: <prefix>/${DEFAULT_CONF})
  -g directives : set global directives out of configuration file
  --hash-password : read a password from stdin, print its auth_table scrypt hash
`;
}
