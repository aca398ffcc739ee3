// The SMTP pre-authentication dialogue (smtp.md §4-§7) as a pure state
// machine: bytes in, steps out. One command is handled per next() call,
// strictly in order; after an `auth` step (AUTH exchange complete, or RCPT
// under `smtp_auth none`) the machine is suspended until authRefused() or
// the driver takes the remaining input and hands over. Host lookup, the
// greeting delay and its early-talker rejection belong to the driver.

import type { ServerConfig } from "../config/types.ts";
import type { AuthRefusal, ClientStep, PreauthContext, PreauthMachine } from "../core/machine.ts";
import { CLOSE, info, QUIT, refusal, send } from "../core/steps.ts";
import { bytesToBinary } from "../core/bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../core/line_buffer.ts";
import { CommandLimit, DEFAULT_MAX_COMMANDS, tooManyCommands } from "../core/command_limit.ts";
import { MAX_LOGGED_WORD, redactCommand } from "../core/redact.ts";
import { saslResponseOfLine } from "../core/sasl.ts";
import { type SaslCredentials, SaslExchange, type SaslStep } from "../core/sasl_exchange.ts";
import { MAX_ARGS, SmtpParser, TOO_LONG_LOG_HEAD } from "./parser.ts";
import {
  LOG_TOO_MANY_INVALID,
  logClientRejected,
  logTooLongCommand,
  SMTP_AUTH_REQUIRED,
  SMTP_BAD_SEQUENCE,
  SMTP_BYE,
  SMTP_INVALID_ARGUMENT,
  SMTP_INVALID_COMMAND,
  SMTP_OK,
  SMTP_START_TLS,
  smtpChallenge,
  smtpEhloReply,
  smtpGreeting,
  smtpHeloReply,
  smtpRefused,
} from "./replies.ts";

export function createSmtpPreauth(ctx: PreauthContext): PreauthMachine {
  return new SmtpPreauth(ctx);
}

/**
 * command: reading commands; sasl: waiting for the answer to a challenge;
 * auth: suspended on an auth request; tls: waiting for the STARTTLS
 * handshake; closed: a close step was returned.
 */
type Phase = "command" | "sasl" | "auth" | "tls" | "closed";

/** The command text from the command word to the end of its last argument. */
function commandText(line: string): string {
  let end = line.length;
  while (end > 0 && line.charCodeAt(end - 1) === 0x20) end--;
  return line.slice(0, end);
}

class SmtpPreauth implements PreauthMachine {
  readonly #config: ServerConfig;
  readonly #makeSalt: () => string;
  #tls: boolean;
  readonly #input: LineBuffer;
  readonly #parser: SmtpParser;
  readonly #ehlo: { plain: Uint8Array; tls: Uint8Array };
  readonly #helo: Uint8Array;
  #phase: Phase = "command";
  readonly #sasl: SaslExchange;
  #salt: string | null = null;
  #errors = 0;
  readonly #commands: CommandLimit;
  /** The driver pushed more than the buffer may hold: input was lost. */
  #overflow = false;
  // §6 session state replayed by the backend login / sent as Auth-SMTP-*.
  #heloArg = "";
  #esmtp = false;
  #from = "";
  #to = "";

  constructor(ctx: PreauthContext) {
    this.#config = ctx.config;
    this.#commands = new CommandLimit(ctx.config.maxCommands ?? DEFAULT_MAX_COMMANDS);
    this.#makeSalt = ctx.makeSalt;
    this.#tls = ctx.tls;
    this.#sasl = new SaslExchange({
      enabled: ctx.config.smtpAuth,
      salt: () => (this.#salt ??= this.#makeSalt()),
    }, ctx.saslMechanisms);
    this.#input = new LineBuffer(ctx.config.smtpClientBuffer + READ_CHUNK_SLACK);
    this.#parser = new SmtpParser(ctx.config.smtpClientBuffer);
    this.#ehlo = { plain: smtpEhloReply(ctx.config, false), tls: smtpEhloReply(ctx.config, true) };
    this.#helo = smtpHeloReply(ctx.config.serverName);
  }

  greeting(): Uint8Array {
    return smtpGreeting(this.#config.serverName);
  }

  push(chunk: Uint8Array): void {
    // Plaintext that arrives between STARTTLS and the handshake is injection
    // (CVE-2011-0411 class): never kept, never executed.
    if (this.#phase === "tls") return;
    if (!this.#input.push(chunk)) this.#overflow = true;
  }

  next(): ClientStep[] {
    if (this.#phase !== "command" && this.#phase !== "sasl") return [];
    const sasl = this.#phase === "sasl";
    if (this.#overflow) {
      return this.#tooLong(bytesToBinary(this.#input.view().subarray(0, TOO_LONG_LOG_HEAD)), sasl);
    }
    const r = this.#parser.parse(this.#input, sasl ? "response" : "command");
    switch (r.kind) {
      case "more":
        return [];
      case "tooLong":
        return this.#tooLong(r.head, sasl);
      case "invalid":
        return this.#invalidLine();
      case "response":
        if (!sasl) return [];
        if (this.#commands.exceeded()) return this.#tooManyCommands();
        return this.#saslAnswer(r.line);
      case "command":
        if (this.#commands.exceeded()) return this.#tooManyCommands();
        switch (r.command) {
          case "HELO":
          case "EHLO":
            return this.#hello(r.command === "EHLO", r.args);
          case "AUTH":
            return this.#authCommand(r.args);
          case "MAIL":
            return this.#mail(r.args, r.line, r.lineEnd);
          case "RCPT":
            return this.#rcpt(r.args, r.line);
          case "RSET":
            this.#from = this.#to = "";
            return [send(SMTP_OK)];
          case "NOOP":
            return [send(SMTP_OK)];
          case "QUIT":
            this.#phase = "closed";
            return [send(SMTP_BYE), QUIT];
          case "STARTTLS":
            return this.#starttls();
          case "VRFY":
          case "EXPN":
          case "HELP":
            return [send(SMTP_INVALID_COMMAND)]; // refused, not counted
        }
    }
  }

  tlsStarted(): void {
    this.#tls = true;
    if (this.#phase === "tls") this.#phase = "command";
  }

  authRefused(r: AuthRefusal): ClientStep[] {
    return this.#saslStep(this.#sasl.refuse(r));
  }

  takeInput(): Uint8Array {
    return this.#input.take();
  }

  // ---- §4 ----------------------------------------------------------------

  /** Not counted toward max_errors; the connection is closed anyway. */
  #tooLong(head: string, sasl: boolean): ClientStep[] {
    this.#phase = "closed";
    this.#input.clear();
    // The command word only; an AUTH answer is all credentials.
    return [
      info(logTooLongCommand(redactCommand(head, sasl ? 0 : 1, MAX_LOGGED_WORD))),
      send(SMTP_INVALID_COMMAND),
      CLOSE,
    ];
  }

  #tooManyCommands(): ClientStep[] {
    this.#phase = "closed";
    return tooManyCommands(SMTP_INVALID_COMMAND);
  }

  #invalidLine(): ClientStep[] {
    this.#errors++;
    this.#phase = "command"; // an invalid AUTH answer abandons the exchange
    if (this.#errors < this.#config.maxErrors) return [send(SMTP_INVALID_COMMAND)];
    this.#phase = "closed";
    return [info(LOG_TOO_MANY_INVALID), send(SMTP_INVALID_COMMAND), CLOSE];
  }

  // ---- §6 commands ---------------------------------------------------------

  #hello(esmtp: boolean, args: string[]): ClientStep[] {
    if (args.length !== 1) return [send(SMTP_INVALID_ARGUMENT)];
    this.#heloArg = args[0];
    this.#from = this.#to = "";
    if (!esmtp) return [send(this.#helo)];
    this.#esmtp = true; // permanently: the backend login replays EHLO
    return [send(this.#tls ? this.#ehlo.tls : this.#ehlo.plain)];
  }

  #mail(args: string[], line: string, lineEnd: string): ClientStep[] {
    if (!this.#enabled("none")) {
      return [info(logClientRejected(line + lineEnd)), send(SMTP_AUTH_REQUIRED)];
    }
    if (this.#from !== "") return [send(SMTP_BAD_SEQUENCE)];
    if (args.length === 0) return [send(SMTP_INVALID_ARGUMENT)];
    this.#from = commandText(line);
    return [send(SMTP_OK)];
  }

  #rcpt(args: string[], line: string): ClientStep[] {
    if (this.#from === "") return [send(SMTP_BAD_SEQUENCE)];
    if (args.length === 0) return [send(SMTP_INVALID_ARGUMENT)];
    this.#to = commandText(line);
    // No reply here: the backend's reply to the replayed RCPT is the answer.
    this.#phase = "auth";
    return [{
      kind: "auth",
      creds: {
        method: "none",
        user: "",
        pass: "",
        salt: null,
        smtp: { helo: this.#heloArg, esmtp: this.#esmtp, from: this.#from, to: this.#to },
      },
    }];
  }

  #starttls(): ClientStep[] {
    if (this.#tls || this.#config.starttls === "off") return [send(SMTP_INVALID_COMMAND)];
    this.#heloArg = this.#from = this.#to = "";
    // Anything pipelined after STARTTLS is plaintext injection: drop it.
    this.#input.clear();
    this.#parser.reset();
    this.#phase = "tls";
    return [send(SMTP_START_TLS), { kind: "starttls" }];
  }

  #enabled(method: ServerConfig["smtpAuth"][number]): boolean {
    return this.#config.smtpAuth.includes(method);
  }

  #authCommand(args: string[]): ClientStep[] {
    if (this.#config.starttls === "only" && !this.#tls) return [send(SMTP_INVALID_COMMAND)];
    if (args.length === 0) return [send(SMTP_INVALID_ARGUMENT)];
    return this.#saslStep(this.#sasl.start(args));
  }

  /** The client's answer to a challenge. */
  #saslAnswer(line: string): ClientStep[] {
    return this.#saslStep(this.#sasl.answer(saslResponseOfLine(line, MAX_ARGS)));
  }

  #saslStep(step: SaslStep): ClientStep[] {
    this.#phase = "command"; // unless a challenge follows
    switch (step.kind) {
      case "challenge":
        this.#phase = "sasl";
        return [send(smtpChallenge(step.payload))];
      case "credentials":
        return this.#auth(step.creds);
      case "decodeError":
        // 500, back to the initial state, not counted.
        return [info(step.log), send(SMTP_INVALID_COMMAND)];
      case "malformed":
        // XOAUTH2 / OAUTHBEARER: 500, counted toward max_errors.
        return [info(step.log), ...this.#invalidLine()];
      case "invalid":
        return this.#invalidLine();
      case "cancel":
        // Product: a line of exactly "*" cancels (RFC 4954), not counted.
        return [send(SMTP_INVALID_ARGUMENT)];
      case "refused":
        return this.#refusal(step.refusal);
      case "unsupported":
        return [send(SMTP_INVALID_COMMAND)]; // not counted
    }
  }

  /**
   * §7: HELO, MAIL and RCPT remembered before the attempt stay remembered
   * (as nginx; a `none` refusal keeps the RCPT too: a new RCPT replaces it,
   * RSET clears both).
   */
  #refusal(r: AuthRefusal): ClientStep[] {
    this.#phase = r.close ? "closed" : "command";
    return refusal(smtpRefused(r.message, r.errorCode), r.close);
  }

  #auth(creds: SaslCredentials): ClientStep[] {
    this.#phase = "auth";
    // The backend login replays HELO/EHLO (XCLIENT); MAIL/RCPT are only
    // part of `none` requests.
    const smtp = { helo: this.#heloArg, esmtp: this.#esmtp, from: "", to: "" };
    return [{ kind: "auth", creds: { ...creds, smtp } }];
  }
}
