// The latency load's command per protocol and how its reply ends: each reply
// arrives in several writes from the lean backend (backend.ts), the way a
// real server's RETR or FETCH does, so a proxy that leaves Nagle on shows
// the client's delayed ACK (~40 ms) per command.

import type { Proto } from "./dialog.ts";
import { DOWN_TRAILER, imapDown, LATENCY_DOWN_BYTES, POP3_RETR, RETR_END, SMTP_RCPT } from "./wire.ts";

export function latencyCommand(proto: Proto): { line: string; end: string } {
  switch (proto) {
    case "imap":
      return { line: imapDown(LATENCY_DOWN_BYTES), end: DOWN_TRAILER };
    case "pop3":
      return { line: POP3_RETR, end: `\r\n${RETR_END}` };
    case "smtp":
      return { line: SMTP_RCPT, end: "\r\n" };
  }
}
