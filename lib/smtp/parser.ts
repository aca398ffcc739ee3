// Push parser for SMTP pre-authentication lines (smtp.md §4): a command
// word, then up to 11 space-separated arguments, ended by LF or CR LF; and
// the answers to AUTH challenges, which are parsed like argument lists
// (sasl.ts saslResponseOfLine does the word splitting for those).
//
// SMTP lines have no literals, so a line is only looked at once its LF has
// arrived: the LF search resumes where it stopped (each byte is searched
// once, whatever the chunking), then the complete line is split in one pass.
// The line being parsed always starts at offset 0 of the input buffer
// (complete lines are consumed from it).

import { bytesToBinary } from "../core/bytes.ts";
import type { LineBuffer } from "../core/line_buffer.ts";

export type SmtpCommand =
  | "HELO"
  | "EHLO"
  | "AUTH"
  | "MAIL"
  | "RCPT"
  | "RSET"
  | "NOOP"
  | "QUIT"
  | "VRFY"
  | "EXPN"
  | "HELP"
  | "STARTTLS";

const COMMANDS: ReadonlySet<string> = new Set<SmtpCommand>([
  "HELO",
  "EHLO",
  "AUTH",
  "MAIL",
  "RCPT",
  "RSET",
  "NOOP",
  "QUIT",
  "VRFY",
  "EXPN",
  "HELP",
  "STARTTLS",
]);

/** §4: at most 11 arguments (and 11 words in an AUTH response line). */
export const MAX_ARGS = 11;
/** How much of a too-long line is kept for the (redacted) log line. */
export const TOO_LONG_LOG_HEAD = 256;

export type ParseResult =
  /** No complete line yet; push more input. */
  | { kind: "more" }
  /**
   * A valid command line. `line` is the line without its line end; since
   * the command word starts the line, the command text "from the command
   * word to the end of its last argument" is `line` without trailing spaces.
   */
  | { kind: "command"; command: SmtpCommand; args: string[]; line: string; lineEnd: string }
  /** An answer to an AUTH challenge, without its line end (not split yet). */
  | { kind: "response"; line: string }
  /** An invalid line (§4), consumed up to its LF. */
  | { kind: "invalid" }
  /** §4: no LF within smtp_client_buffer bytes. */
  | { kind: "tooLong"; head: string };

/** "command": a command line; "response": the answer to an AUTH challenge. */
export type LineMode = "command" | "response";

const SP = 0x20, CR = 0x0d, LF = 0x0a;
const MORE: ParseResult = { kind: "more" };
const INVALID: ParseResult = { kind: "invalid" };
const LETTERS = /^[A-Za-z]+$/;

export class SmtpParser {
  /** smtp_client_buffer: the most bytes one line (with its LF) may take. */
  readonly #cap: number;
  /** Where the LF search resumes (relative to the line start). */
  #scan = 0;

  constructor(cap: number) {
    this.#cap = cap;
  }

  /** Forgets a partly received line (its bytes were dropped, e.g. at STARTTLS). */
  reset(): void {
    this.#scan = 0;
  }

  /** Parses on from where the previous call stopped; complete and invalid lines are consumed. */
  parse(input: LineBuffer, mode: LineMode): ParseResult {
    const data = input.view();
    const bound = Math.min(data.length, this.#cap);
    let lf = -1;
    for (let i = this.#scan; i < bound; i++) {
      if (data[i] === LF) {
        lf = i;
        break;
      }
    }
    if (lf < 0) {
      this.#scan = bound;
      if (data.length < this.#cap) return MORE;
      this.#scan = 0;
      return {
        kind: "tooLong",
        head: bytesToBinary(data.subarray(0, Math.min(bound, TOO_LONG_LOG_HEAD))),
      };
    }
    this.#scan = 0;
    const crlf = lf > 0 && data[lf - 1] === CR;
    const end = crlf ? lf - 1 : lf;
    // A CR anywhere else is a lone CR: the line is invalid.
    const loneCr = data.subarray(0, end).indexOf(CR) >= 0;
    const line = loneCr ? "" : bytesToBinary(data.subarray(0, end));
    input.consume(lf + 1);
    if (loneCr) return INVALID;
    if (mode === "response") return { kind: "response", line };
    return parseCommand(line, crlf ? "\r\n" : "\n");
  }
}

function parseCommand(line: string, lineEnd: string): ParseResult {
  const sp = line.indexOf(" ");
  const word = sp < 0 ? line : line.slice(0, sp);
  // Letters only (an empty line, a leading space, digits... are invalid);
  // checked before upper-casing, which maps some non-ASCII letters to ASCII.
  if (!LETTERS.test(word)) return INVALID;
  const command = word.toUpperCase();
  if (!COMMANDS.has(command)) return INVALID;
  const args: string[] = [];
  let i = sp < 0 ? line.length : sp;
  while (i < line.length) {
    if (line.charCodeAt(i) === SP) {
      i++;
      continue;
    }
    if (args.length === MAX_ARGS) return INVALID;
    let j = line.indexOf(" ", i);
    if (j < 0) j = line.length;
    args.push(line.slice(i, j));
    i = j;
  }
  return { kind: "command", command: command as SmtpCommand, args, line, lineEnd };
}
