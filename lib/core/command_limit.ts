// max_commands (freenginx 1.25.5+, ngx_mail_core_module): at most N
// commands before authentication. As freenginx's ngx_mail_read_command
// counts them: every line that parsed as a command (SASL answers included),
// never an invalid line (those count toward max_errors instead) nor an IMAP
// literal's continuation; the count is per session and never reset. One
// over the limit gets the protocol's invalid-command reply, then the close.

import type { ClientStep } from "./machine.ts";
import { CLOSE, info, send } from "./steps.ts";

/** freenginx's default: no well-behaved client needs more than a few. */
export const DEFAULT_MAX_COMMANDS = 1000;

/** freenginx's info-level line. */
export const LOG_TOO_MANY_COMMANDS = "client sent too many commands";

export class CommandLimit {
  #count = 0;
  constructor(readonly max: number) {}

  /** One more command; true once the count passes the limit. */
  exceeded(): boolean {
    return ++this.#count > this.max;
  }
}

/** The steps that end a session over the limit: log, invalid-command reply, close. */
export function tooManyCommands(invalidReply: Uint8Array): ClientStep[] {
  return [info(LOG_TOO_MANY_COMMANDS), send(invalidReply), CLOSE];
}
