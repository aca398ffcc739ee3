// Log text made from client input must never carry a password. Commands are
// logged only up to their command word (IMAP: tag and command; POP3/SMTP:
// the command), the rest replaced by "...", and control bytes escaped.

import { binaryToBytes, bytesText } from "./bytes.ts";

const MAX_HEAD = 64;

/**
 * The first `words` space-separated words of a command line (a binary
 * string), for logs. SASL response lines are pure credentials: pass
 * words = 0 to log nothing of them.
 */
export function redactCommand(line: string, words: number): string {
  let end = 0;
  let seen = 0;
  while (end < line.length && seen < words) {
    while (end < line.length && line[end] === " ") end++;
    while (end < line.length && line[end] !== " " && line[end] !== "\r" && line[end] !== "\n") end++;
    seen++;
  }
  end = Math.min(end, MAX_HEAD);
  const head = line.slice(0, end);
  const rest = line.slice(end).replace(/[\r\n]+$/, "");
  return escapeForLog(head) + (rest.length > 0 ? "..." : "");
}

/** Control bytes and '"' / '\' as \xNN, so a log line stays one line. */
export function escapeForLog(s: string): string {
  return s.replace(/[\x00-\x1f\x7f"\\]/g, (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));
}

/** A user name (binary string) as log text: UTF-8 decoded, control bytes escaped. */
export function loginForLog(user: string): string {
  return escapeForLog(bytesText(binaryToBytes(user)));
}
