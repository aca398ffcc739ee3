// Tokenizer for the nginx configuration grammar (directives.md §1.1), a port
// of ngx_conf_read_token's state machine over bytes. It yields one directive
// (its words and terminator), a block end, or end of input per call; the line
// it reports is the line the scanner is on when it sees the terminator, which
// is the line nginx puts in its messages.

import { COMMAND_LINE_LOC, ConfigError } from "./errors.ts";
import type { Loc } from "./types.ts";

/** nginx's NGX_CONF_BUFFER: no single token may reach this many bytes. */
export const MAX_TOKEN_BYTES = 4096;

export type Token =
  | { kind: "directive"; args: string[]; end: ";" | "{"; line: number }
  | { kind: "close"; line: number }
  | { kind: "eof"; line: number };

const SP = 0x20, TAB = 0x09, CR = 0x0d, LF = 0x0a;
const SEMI = 0x3b, LBRACE = 0x7b, RBRACE = 0x7d, HASH = 0x23;
const BSLASH = 0x5c, DQUOTE = 0x22, SQUOTE = 0x27, DOLLAR = 0x24, RPAREN = 0x29;

const utf8 = new TextDecoder();

function isSpace(c: number): boolean {
  return c === SP || c === TAB || c === CR || c === LF;
}

export class Lexer {
  private pos = 0;
  /** Current line (1-based), advanced as LF bytes are consumed. */
  line = 1;

  /** `file` names the source in errors; null means the -g command line. */
  constructor(private readonly src: Uint8Array, readonly file: string | null) {}

  loc(line = this.line): Loc {
    return this.file === null ? COMMAND_LINE_LOC : { file: this.file, line };
  }

  private fail(message: string, line = this.line): never {
    throw new ConfigError(message, this.loc(line));
  }

  next(): Token {
    const b = this.src;
    const args: string[] = [];
    let lastSpace = true;
    let needSpace = false;
    let comment = false;
    let escaped = false;
    let dQuoted = false;
    let sQuoted = false;
    let variable = false;
    // Inside `${...}`: a `}` there belongs to the word, not to the block.
    let inBraceVar = false;
    let start = 0;
    let startLine = 1;

    for (;;) {
      if (this.pos >= b.length) {
        if (args.length > 0 || !lastSpace) {
          if (this.file === null) this.fail('unexpected end of parameter, expecting ";"');
          this.fail('unexpected end of file, expecting ";" or "}"');
        }
        return { kind: "eof", line: this.line };
      }
      if (!lastSpace && !needSpace && this.pos - start >= MAX_TOKEN_BYTES) {
        if (dQuoted || sQuoted) {
          const q = dQuoted ? '"' : "'";
          this.fail(`too long parameter, probably missing terminating "${q}" character`, startLine);
        }
        const head = utf8.decode(b.subarray(start, start + 10));
        this.fail(`too long parameter "${head}..." started`, startLine);
      }

      const ch = b[this.pos++];
      if (ch === LF) {
        this.line++;
        if (comment) comment = false;
      }
      if (comment) continue;
      if (escaped) {
        escaped = false;
        continue;
      }

      if (needSpace) {
        if (isSpace(ch)) {
          lastSpace = true;
          needSpace = false;
          continue;
        }
        if (ch === SEMI) return { kind: "directive", args, end: ";", line: this.line };
        if (ch === LBRACE) return { kind: "directive", args, end: "{", line: this.line };
        if (ch === RPAREN) {
          lastSpace = true;
          needSpace = false;
        } else {
          this.fail(`unexpected "${String.fromCharCode(ch)}"`);
        }
      }

      if (lastSpace) {
        if (isSpace(ch)) continue;
        start = this.pos - 1;
        startLine = this.line;
        inBraceVar = false;
        switch (ch) {
          case SEMI:
          case LBRACE:
            if (args.length === 0) this.fail(`unexpected "${String.fromCharCode(ch)}"`);
            return { kind: "directive", args, end: ch === SEMI ? ";" : "{", line: this.line };
          case RBRACE:
            if (args.length !== 0) this.fail('unexpected "}"');
            return { kind: "close", line: this.line };
          case HASH:
            comment = true;
            continue;
          case BSLASH:
            escaped = true;
            lastSpace = false;
            continue;
          case DQUOTE:
            start++;
            dQuoted = true;
            lastSpace = false;
            continue;
          case SQUOTE:
            start++;
            sQuoted = true;
            lastSpace = false;
            continue;
          case DOLLAR:
            variable = true;
            lastSpace = false;
            continue;
          default:
            lastSpace = false;
            continue;
        }
      }

      // Inside a word.
      if (ch === LBRACE && variable) {
        variable = false;
        inBraceVar = true;
        continue;
      }
      variable = false;
      if (ch === BSLASH) {
        escaped = true;
        continue;
      }
      if (ch === DOLLAR) {
        variable = true;
        continue;
      }

      let found = false;
      const end = this.pos - 1;
      if (dQuoted) {
        if (ch === DQUOTE) {
          dQuoted = false;
          needSpace = true;
          found = true;
        }
      } else if (sQuoted) {
        if (ch === SQUOTE) {
          sQuoted = false;
          needSpace = true;
          found = true;
        }
      } else if (ch === RBRACE && inBraceVar) {
        inBraceVar = false;
      } else if (isSpace(ch) || ch === SEMI || ch === LBRACE || ch === RBRACE) {
        lastSpace = true;
        found = true;
      }
      if (!found) continue;

      args.push(unescape(b, start, end));
      if (ch === SEMI) return { kind: "directive", args, end: ";", line: this.line };
      if (ch === LBRACE) return { kind: "directive", args, end: "{", line: this.line };
      if (ch === RBRACE) {
        // The word is complete; the `}` itself now closes nothing because a
        // directive is still open (nginx: `unexpected "}"`).
        this.fail('unexpected "}"');
      }
    }
  }
}

/** Copies b[from, to) undoing \" \' \\ \t \r \n; other backslashes stay. */
function unescape(b: Uint8Array, from: number, to: number): string {
  if (b.subarray(from, to).indexOf(BSLASH) < 0) return utf8.decode(b.subarray(from, to));
  const out: number[] = [];
  let i = from;
  while (i < to) {
    const c = b[i];
    if (c === BSLASH && i + 1 < to) {
      const n = b[i + 1];
      if (n === DQUOTE || n === SQUOTE || n === BSLASH) {
        out.push(n);
        i += 2;
        continue;
      }
      if (n === 0x74) {
        out.push(TAB);
        i += 2;
        continue;
      }
      if (n === 0x72) {
        out.push(CR);
        i += 2;
        continue;
      }
      if (n === 0x6e) {
        out.push(LF);
        i += 2;
        continue;
      }
    }
    out.push(c);
    i++;
  }
  return utf8.decode(Uint8Array.from(out));
}
