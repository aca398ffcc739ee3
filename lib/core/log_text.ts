// Log lines shared by the three protocols. Text that came from a client or
// a backend is escaped (escapeForLog) so one log line stays one line and
// cannot forge another; client commands arrive here already redacted.

import { escapeForLog } from "./redact.ts";

export const LOG_TOO_MANY_INVALID = "client sent too many invalid commands";

/** `head` is redactCommand()'s output (already escaped and cut after the command word). */
export function logTooLongCommand(head: string): string {
  return `client sent too long command "${head}"`;
}

/** A backend reply that did not match (binary, without its final CRLF). */
export function logUpstreamInvalid(reply: string): string {
  return `upstream sent invalid response: "${escapeForLog(reply)}"`;
}

/** mailgate's backend-TLS extension: the backend refused STARTTLS/STLS or does not offer it. */
export function logUpstreamNoStarttls(reply: string): string {
  return `upstream does not support STARTTLS: "${escapeForLog(reply)}"`;
}

export function logUpstreamTooLong(text: string): string {
  return `upstream sent too long response line: "${escapeForLog(text)}"`;
}
