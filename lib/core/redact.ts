// Log text made from client input must never carry a password. Commands are
// logged only up to their command word (IMAP: tag and command; POP3/SMTP:
// the command), the rest replaced by "...", and control bytes escaped.

import { binaryToBytes, bytesText } from "./bytes.ts";

const MAX_HEAD = 64;

/**
 * Longest word a "too long command" log line shows: an IMAP tag (at most 32
 * characters) or a command word. A longer first word is no command: a line
 * that fills the buffer with one long word is what SASL credentials look
 * like (e.g. a base64 AUTH PLAIN answer pipelined after a refused AUTH).
 */
export const MAX_LOGGED_WORD = 32;

/**
 * The first `words` space-separated words of a command line (a binary
 * string), for logs. SASL response lines are pure credentials: pass
 * words = 0 to log nothing of them. A word longer than `maxWord` ends the
 * shown part before it.
 */
export function redactCommand(line: string, words: number, maxWord = Infinity): string {
  let end = 0;
  let seen = 0;
  while (end < line.length && seen < words) {
    let stop = end;
    while (stop < line.length && line[stop] === " ") stop++;
    const start = stop;
    while (stop < line.length && line[stop] !== " " && line[stop] !== "\r" && line[stop] !== "\n") stop++;
    if (stop - start > maxWord) break;
    end = stop;
    seen++;
  }
  end = Math.min(end, MAX_HEAD);
  const head = line.slice(0, end);
  const rest = line.slice(end).replace(/[\r\n]+$/, "");
  return escapeForLog(head) + (rest.length > 0 ? "..." : "");
}

/** Control bytes and '"' / '\' as \xNN, so a log line stays one line. */
export function escapeForLog(s: string): string {
  // deno-lint-ignore no-control-regex -- matching control bytes is the point
  return s.replace(/[\x00-\x1f\x7f"\\]/g, (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));
}

/** A user name (binary string) as log text: UTF-8 decoded, control bytes escaped. */
export function loginForLog(user: string): string {
  return escapeForLog(bytesText(binaryToBytes(user)));
}
