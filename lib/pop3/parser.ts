// POP3 pre-authentication lines (pop3.md §2, §7): framing over the input
// buffer with the fixed 128-byte bound, the command-line syntax, and the
// SASL response-line rule. Pure functions plus one tiny resumable framer.
//
// A line is everything up to LF; one CR right before the LF is part of the
// line end, any other CR makes the line invalid (nginx's parser moves to
// "almost done" at CR and rejects anything but LF after it).

import { bytesToBinary } from "../core/bytes.ts";
import type { LineBuffer } from "../core/line_buffer.ts";
import { type SaslResponse, saslResponseOfLine } from "../core/sasl.ts";

export type Pop3Command = "USER" | "PASS" | "APOP" | "AUTH" | "CAPA" | "NOOP" | "STLS" | "QUIT";

const COMMANDS: ReadonlySet<string> = new Set<Pop3Command>([
  "USER",
  "PASS",
  "APOP",
  "AUTH",
  "CAPA",
  "NOOP",
  "STLS",
  "QUIT",
]);

/** §2: at most 3 arguments (and 3 words in a SASL response line). */
export const MAX_ARGS = 3;

const LF = 0x0a;
const COMMAND_WORD = /^[A-Za-z]{4}$/;

export type Framed =
  /** No LF yet and the line still fits: push more. */
  | { kind: "more" }
  /** No LF within the bound: `head` is the held start of the line (binary string). */
  | { kind: "tooLong"; head: string }
  /** `text`: the line with its LF (and the CR before it, if any) removed; `length`: bytes to consume. */
  | { kind: "line"; text: string; length: number };

/**
 * Finds complete lines in the input buffer. A line may take at most
 * `bound` bytes including its LF (nginx answers "too long" once its
 * fixed buffer is full without a complete command).
 */
export class LineFramer {
  readonly #bound: number;
  /** Bytes of the current line already known to hold no LF. */
  #scanned = 0;

  constructor(bound: number) {
    this.#bound = bound;
  }

  next(input: LineBuffer): Framed {
    const data = input.view();
    const limit = Math.min(data.length, this.#bound);
    const lf = data.subarray(0, limit).indexOf(LF, this.#scanned);
    if (lf < 0) {
      this.#scanned = limit;
      return data.length < this.#bound ? { kind: "more" } : this.tooLong(input);
    }
    this.#scanned = 0;
    const end = lf > 0 && data[lf - 1] === 0x0d ? lf - 1 : lf;
    return { kind: "line", text: bytesToBinary(data.subarray(0, end)), length: lf + 1 };
  }

  /** The "too long" answer for what is held (also used when input was lost). */
  tooLong(input: LineBuffer): Framed {
    return { kind: "tooLong", head: bytesToBinary(input.view().subarray(0, this.#bound)) };
  }

  /** The buffer was cleared or consumed behind the framer's back. */
  reset(): void {
    this.#scanned = 0;
  }
}

export type Pop3Line =
  | { kind: "command"; command: Pop3Command; args: string[] }
  /** §2 invalid line: counted toward max_errors. */
  | { kind: "invalid" };

const INVALID: Pop3Line = { kind: "invalid" };

/** §2 a command line (without its line end). */
export function parseCommandLine(text: string): Pop3Line {
  if (text.includes("\r")) return INVALID; // a CR not followed by LF
  let sp = text.indexOf(" ");
  if (sp < 0) sp = text.length;
  const word = text.slice(0, sp);
  if (!COMMAND_WORD.test(word)) return INVALID;
  const command = word.toUpperCase();
  if (!COMMANDS.has(command)) return INVALID;
  const rest = text.slice(sp);
  if (command === "USER" || command === "PASS") {
    // The single argument runs from its first non-space to the end of the
    // line, spaces included: names and passwords may contain spaces.
    const first = rest.search(/[^ ]/);
    return { kind: "command", command, args: first < 0 ? [] : [rest.slice(first)] };
  }
  const args = rest.split(" ").filter((w) => w !== "");
  if (args.length > MAX_ARGS) return INVALID;
  return { kind: "command", command: command as Pop3Command, args };
}

/** §7 a line answering a SASL challenge (without its line end). */
export function parseResponseLine(text: string): SaslResponse {
  if (text.includes("\r")) return { kind: "invalid" };
  return saslResponseOfLine(text, MAX_ARGS);
}
