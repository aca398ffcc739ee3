// Configuration errors and warnings in nginx's shape. `message` is the bare
// text; the location is appended only when formatting, so callers that build
// "... for server in <file>:<line>" messages pass the server's loc instead of
// baking it into the text.

import type { ConfigWarning, Loc } from "./types.ts";

/** Pseudo file name for directives given with -g; formats as "in command line". */
export const COMMAND_LINE = "command line";

/** The loc given to every directive that came from the -g string. */
export const COMMAND_LINE_LOC: Loc = Object.freeze({ file: COMMAND_LINE, line: 0 });

export class ConfigError extends Error {
  readonly loc: Loc | null;
  readonly commandLine: boolean;

  constructor(message: string, loc: Loc | null) {
    super(message);
    this.name = "ConfigError";
    this.commandLine = loc !== null && isCommandLine(loc);
    this.loc = loc;
  }
}

export function isCommandLine(loc: Loc): boolean {
  return loc.line === 0 && loc.file === COMMAND_LINE;
}

function suffix(loc: Loc | null): string {
  if (loc === null) return "";
  if (isCommandLine(loc)) return " in command line";
  return ` in ${loc.file}:${loc.line}`;
}

/** `<message> in <file>:<line>`, `<message> in command line`, or `<message>`. */
export function formatConfigError(e: ConfigError): string {
  return e.message + suffix(e.loc);
}

/** Same shape for start-up `[warn]` lines. */
export function formatConfigWarning(w: ConfigWarning): string {
  return w.message + suffix(w.loc);
}

/** nginx-style "(<errno>: <strerror>)" for a failed file operation. */
export function sysErrorText(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  const known = typeof code === "string" ? ERRNO_TEXT[code] : undefined;
  if (known) return `(${known[0]}: ${known[1]})`;
  return `(${typeof code === "string" ? code : "error"}: ${(e as Error)?.message ?? String(e)})`;
}

/** Linux errno numbers and strerror texts for the failures a config read can hit. */
const ERRNO_TEXT: Record<string, [number, string]> = {
  EPERM: [1, "Operation not permitted"],
  ENOENT: [2, "No such file or directory"],
  EIO: [5, "Input/output error"],
  EACCES: [13, "Permission denied"],
  ENOTDIR: [20, "Not a directory"],
  EISDIR: [21, "Is a directory"],
  EMFILE: [24, "Too many open files"],
  ENAMETOOLONG: [36, "File name too long"],
  ELOOP: [40, "Too many levels of symbolic links"],
};
