// Push parser for IMAP pre-authentication command lines (imap.md §2, §3):
// `tag SP command [SP argument]* CRLF` with atoms, quoted strings and
// {n} / {n+} literals, plus the tag-less SASL response lines that follow an
// AUTHENTICATE challenge (same argument syntax, no tag or command word).
//
// The parser is resumable and linear: every byte of a line is examined once,
// whatever the chunking, and the state between calls is a handful of
// numbers. The line being parsed always starts at offset 0 of the input
// buffer (complete lines are consumed from it), so offsets stay valid while
// the buffer compacts or grows. Quoted strings are unescaped in place (the
// unescaped text is never longer than the escaped one), so no argument is
// built byte by byte.
//
// ID (RFC 2971) is the one command whose argument is a list: for it the
// parser also yields "(" and ")" as tokens and ends an atom at ")", takes up
// to MAX_ID_TOKENS tokens, and records each token's kind; lib/imap/id.ts
// checks the list's shape.

import { bytesToBinary } from "../core/bytes.ts";
import type { LineBuffer } from "../core/line_buffer.ts";
import { MAX_ID_TOKENS, TOKEN_ATOM, TOKEN_CLOSE, TOKEN_OPEN, TOKEN_STRING } from "./id.ts";

export type ImapCommand = "CAPABILITY" | "NOOP" | "LOGOUT" | "STARTTLS" | "LOGIN" | "AUTHENTICATE" | "ID";

const COMMANDS: readonly ImapCommand[] = [
  "CAPABILITY",
  "NOOP",
  "LOGOUT",
  "STARTTLS",
  "LOGIN",
  "AUTHENTICATE",
  "ID",
];

/** §2: a tag is at most 32 characters. */
export const MAX_TAG_LENGTH = 32;
/** §2: at most 3 arguments (and 3 words in a SASL response line). */
export const MAX_ARGS = 3;
/** Longest recognised command word ("AUTHENTICATE"); anything longer is unknown. */
const MAX_COMMAND_LENGTH = 12;
/** How much of a too-long command goes into the info log line. */
export const TOO_LONG_LOG_HEAD = 256;

/** A complete, syntactically valid line. */
export interface ImapLine {
  /** The tag ("" when the line started with a space); null for a SASL response line. */
  tag: string | null;
  /** null for a SASL response line. */
  command: ImapCommand | null;
  /** Argument values as binary strings (quoted strings unescaped, literals verbatim). */
  args: string[];
  /** SASL response line consisting of exactly `*` (cancel). */
  exactlyStar: boolean;
  /** ID only: each token's kind (TOKEN_* in id.ts); "(" and ")" are tokens with args "". */
  kinds?: number[];
}

export type ParseResult =
  /** The line is incomplete; push more input. */
  | { kind: "more" }
  /** A synchronising literal was announced: send `+ OK`, then parse on. */
  | { kind: "continuation" }
  | { kind: "line"; line: ImapLine }
  /**
   * §2.1: the line was skipped up to its LF. `tag` null if none was parsed.
   * closeAfter: it ended in a {n+} announcement, so what follows cannot be
   * told apart from literal data.
   */
  | { kind: "invalid"; tag: string | null; closeAfter: boolean }
  /** §2.2: the command cannot complete within the buffer. */
  | { kind: "tooLong"; tag: string | null; head: string };

/** "command": a tagged command line; "response": the answer to a SASL challenge. */
export type LineMode = "command" | "response";

const SP = 0x20, CR = 0x0d, LF = 0x0a, DQUOTE = 0x22, BACKSLASH = 0x5c, STAR = 0x2a;
const LBRACE = 0x7b, RBRACE = 0x7d, PLUS = 0x2b, ZERO = 0x30, NINE = 0x39;
const LPAREN = 0x28, RPAREN = 0x29;

// Parser states.
const S_START = 0; // before the first byte of a line
const S_TAG = 1;
const S_SP_CMD = 2; // spaces between tag and command
const S_CMD = 3;
const S_SP_ARG = 4; // spaces before an argument (or the line end)
const S_ATOM = 5;
const S_QUOTED = 6;
const S_BACKSLASH = 7; // inside a quoted string, after `\`
const S_LIT_LEN = 8; // after `{`
const S_LIT_PLUS = 9; // after `{n+`
const S_LIT_CLOSE = 10; // after `}`: the line must end here
const S_LIT_CR = 11; // after `}` CR
const S_LIT_DATA = 12;
const S_AFTER_LIT = 13; // literal data read: SP or line end required
const S_ALMOST = 14; // after CR: LF required
const S_SKIP = 15; // invalid line: skipping to LF

// Tracker for "the skipped line ends in {n+}" (S_SKIP).
const T_NONE = 0, T_DIGITS = 1, T_PLUS = 2, T_CLOSE = 3, T_CR = 4;

const MORE: ParseResult = { kind: "more" };
const CONTINUATION: ParseResult = { kind: "continuation" };

function isLetter(ch: number): boolean {
  const l = ch | 0x20;
  return l >= 0x61 && l <= 0x7a;
}

function isTagChar(ch: number): boolean {
  return isLetter(ch) || (ch >= ZERO && ch <= NINE) || ch === 0x2d || ch === 0x2e || ch === 0x5f;
}

function nextTail(tail: number, ch: number): number {
  if (ch === LBRACE) return T_DIGITS;
  if (tail === T_DIGITS && ch >= ZERO && ch <= NINE) return T_DIGITS;
  if (tail === T_DIGITS && ch === PLUS) return T_PLUS;
  if (tail === T_PLUS && ch === RBRACE) return T_CLOSE;
  if (tail === T_CLOSE && ch === CR) return T_CR;
  return T_NONE;
}

function matchCommand(data: Uint8Array, start: number, end: number): ImapCommand | null {
  for (const name of COMMANDS) {
    if (name.length !== end - start) continue;
    let i = 0;
    while (i < name.length && (data[start + i] & 0xdf) === name.charCodeAt(i)) i++;
    if (i === name.length) return name;
  }
  return null;
}

export class ImapParser {
  /** imap_client_buffer: the most bytes one command (with literals) may take. */
  readonly #cap: number;
  #state = S_START;
  #pos = 0; // next byte to examine, relative to the line start
  #response = false;
  #tag: string | null = null;
  #cmdStart = 0;
  #command: ImapCommand | null = null;
  /** The command is ID: parentheses are tokens. */
  #list = false;
  #maxArgs = MAX_ARGS;
  #argc = 0;
  readonly #argStart = new Int32Array(MAX_ID_TOKENS);
  readonly #argEnd = new Int32Array(MAX_ID_TOKENS);
  readonly #kind = new Uint8Array(MAX_ID_TOKENS);
  #write = 0; // in-place unescape position inside a quoted string
  #litLen = 0;
  #litSync = true;
  #tail = T_NONE;

  constructor(cap: number) {
    this.#cap = cap;
  }

  /** Forgets a partly parsed line (its bytes were dropped, e.g. at STARTTLS). */
  reset(): void {
    this.#state = S_START;
  }

  /**
   * Parses on from where the previous call stopped. `mode` matters only at
   * the start of a line. Complete and invalid lines are consumed from input.
   */
  parse(input: LineBuffer, mode: LineMode): ParseResult {
    const data = input.view();
    if (this.#state === S_START) this.#begin(mode);
    const limit = Math.min(data.length, this.#cap);
    let p = this.#pos;
    while (p < limit) {
      const ch = data[p];
      switch (this.#state) {
        case S_TAG:
          if (ch === SP) {
            this.#tag = bytesToBinary(data.subarray(0, p));
            this.#state = S_SP_CMD;
          } else if (p >= MAX_TAG_LENGTH || !isTagChar(ch)) {
            this.#state = S_SKIP;
            continue; // look at this byte again as part of the skipped line
          }
          break;

        case S_SP_CMD:
          if (isLetter(ch)) {
            this.#cmdStart = p;
            this.#state = S_CMD;
          } else if (ch !== SP) {
            this.#state = S_SKIP;
            continue;
          }
          break;

        case S_CMD:
          if (isLetter(ch) && p - this.#cmdStart < MAX_COMMAND_LENGTH) break;
          if (ch === SP || ch === CR || ch === LF) {
            this.#command = matchCommand(data, this.#cmdStart, p);
          }
          if (this.#command === null) {
            this.#state = S_SKIP;
            continue;
          }
          if (this.#command === "ID") {
            this.#list = true;
            this.#maxArgs = MAX_ID_TOKENS;
          }
          if (ch === LF) return this.#done(input, data, p);
          this.#state = ch === SP ? S_SP_ARG : S_ALMOST;
          break;

        case S_SP_ARG:
          if (ch === SP) break;
          if (ch === CR) {
            this.#state = S_ALMOST;
            break;
          }
          if (ch === LF) return this.#done(input, data, p);
          if (this.#argc === this.#maxArgs) {
            this.#state = S_SKIP;
            continue;
          }
          if (this.#list && (ch === LPAREN || ch === RPAREN)) {
            this.#argStart[this.#argc] = this.#argEnd[this.#argc] = p;
            this.#kind[this.#argc++] = ch === LPAREN ? TOKEN_OPEN : TOKEN_CLOSE;
          } else if (ch === DQUOTE) {
            this.#kind[this.#argc] = TOKEN_STRING;
            this.#argStart[this.#argc] = this.#write = p + 1;
            this.#state = S_QUOTED;
          } else if (ch === LBRACE) {
            this.#kind[this.#argc] = TOKEN_STRING;
            this.#litLen = 0;
            this.#litSync = true;
            this.#state = S_LIT_LEN;
          } else {
            this.#kind[this.#argc] = TOKEN_ATOM;
            this.#argStart[this.#argc] = p;
            this.#state = S_ATOM;
          }
          break;

        case S_ATOM:
          if (this.#list && ch === RPAREN) {
            this.#argEnd[this.#argc++] = p;
            this.#state = S_SP_ARG;
            continue; // the ")" is a token of its own
          }
          if (ch === SP || ch === CR || ch === LF) {
            this.#argEnd[this.#argc++] = p;
            if (ch === LF) return this.#done(input, data, p);
            this.#state = ch === SP ? S_SP_ARG : S_ALMOST;
          }
          break;

        case S_QUOTED:
          if (ch === DQUOTE || ch === CR || ch === LF) {
            // A CR/LF before the closing quote ends the argument and the
            // line; no quoted state is carried into the next line.
            this.#argEnd[this.#argc++] = this.#write;
            if (ch === LF) return this.#done(input, data, p);
            this.#state = ch === DQUOTE ? S_SP_ARG : S_ALMOST;
          } else if (ch === BACKSLASH) {
            this.#state = S_BACKSLASH;
          } else {
            data[this.#write++] = ch;
          }
          break;

        case S_BACKSLASH:
          if (ch === CR || ch === LF) {
            this.#state = S_SKIP;
            continue;
          }
          data[this.#write++] = ch;
          this.#state = S_QUOTED;
          break;

        case S_LIT_LEN:
          if (ch >= ZERO && ch <= NINE) {
            // Clamped: anything >= cap cannot fit anyway (and cannot overflow).
            this.#litLen = Math.min(this.#litLen * 10 + (ch - ZERO), this.#cap);
          } else if (ch === PLUS) {
            this.#litSync = false;
            this.#state = S_LIT_PLUS;
          } else if (ch === RBRACE) {
            this.#state = S_LIT_CLOSE;
          } else {
            this.#state = S_SKIP;
            continue;
          }
          break;

        case S_LIT_PLUS:
          if (ch !== RBRACE) {
            this.#state = S_SKIP;
            continue;
          }
          this.#state = S_LIT_CLOSE;
          break;

        case S_LIT_CLOSE:
        case S_LIT_CR:
          if (ch === CR && this.#state === S_LIT_CLOSE) {
            this.#state = S_LIT_CR;
            break;
          }
          if (ch !== LF) {
            this.#state = S_SKIP;
            continue;
          } else {
            // The literal data starts after this LF.
            const start = p + 1;
            // At least one byte (the LF) must follow the data.
            if (start + this.#litLen + 1 > this.#cap) return this.#tooLong(data);
            this.#argStart[this.#argc] = start;
            this.#argEnd[this.#argc++] = start + this.#litLen;
            this.#state = this.#litLen > 0 ? S_LIT_DATA : S_AFTER_LIT;
            p = start;
            if (this.#litSync) {
              this.#pos = p;
              return CONTINUATION;
            }
            continue;
          }

        case S_LIT_DATA: {
          const end = this.#argEnd[this.#argc - 1];
          if (end > limit) {
            p = limit;
            continue;
          }
          p = end;
          this.#state = S_AFTER_LIT;
          continue;
        }

        case S_AFTER_LIT:
          if (ch === LF) return this.#done(input, data, p);
          if (this.#list && ch === RPAREN) {
            this.#state = S_SP_ARG;
            continue;
          }
          if (ch === SP) this.#state = S_SP_ARG;
          else if (ch === CR) this.#state = S_ALMOST;
          else {
            this.#state = S_SKIP;
            continue;
          }
          break;

        case S_ALMOST:
          if (ch === LF) return this.#done(input, data, p);
          this.#state = S_SKIP; // a lone CR
          continue;

        case S_SKIP:
          if (ch === LF) {
            const closeAfter = this.#tail === T_CLOSE || this.#tail === T_CR;
            const tag = this.#tag;
            input.consume(p + 1);
            this.#state = S_START;
            return { kind: "invalid", tag, closeAfter };
          }
          this.#tail = nextTail(this.#tail, ch);
          break;
      }
      p++;
    }
    if (p >= this.#cap) return this.#tooLong(data);
    this.#pos = p;
    return MORE;
  }

  #begin(mode: LineMode): void {
    this.#response = mode === "response";
    this.#state = this.#response ? S_SP_ARG : S_TAG;
    this.#pos = 0;
    this.#tag = null;
    this.#command = null;
    this.#list = false;
    this.#maxArgs = MAX_ARGS;
    this.#argc = 0;
    this.#tail = T_NONE;
  }

  #done(input: LineBuffer, data: Uint8Array, lf: number): ParseResult {
    const args: string[] = [];
    for (let i = 0; i < this.#argc; i++) {
      args.push(bytesToBinary(data.subarray(this.#argStart[i], this.#argEnd[i])));
    }
    // An atom "*" at offset 0 that the line end follows directly.
    const exactlyStar = this.#response && this.#argc === 1 && this.#argStart[0] === 0 &&
      this.#argEnd[0] === 1 && data[0] === STAR && (data[1] === CR || data[1] === LF);
    const line: ImapLine = { tag: this.#tag, command: this.#command, args, exactlyStar };
    if (this.#list) line.kinds = Array.from(this.#kind.subarray(0, this.#argc));
    input.consume(lf + 1);
    this.#state = S_START;
    return { kind: "line", line };
  }

  #tooLong(data: Uint8Array): ParseResult {
    const head = bytesToBinary(
      data.subarray(0, Math.min(data.length, this.#cap, TOO_LONG_LOG_HEAD)),
    );
    const tag = this.#tag;
    this.#state = S_START;
    return { kind: "tooLong", tag, head };
  }
}
