// The POP3 pre-authentication dialogue (pop3.md §1-§8) as a pure state
// machine: bytes in, steps out. One line is handled per next() call,
// strictly in order; after an `auth` step the machine is suspended until
// authRefused() (or the driver takes the remaining input and hands over).

import type { ServerConfig } from "../config/types.ts";
import type { AuthRefusal, ClientStep, PreauthContext, PreauthMachine } from "../core/machine.ts";
import { CLOSE, info, QUIT, refusal, send } from "../core/steps.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../core/line_buffer.ts";
import { CommandLimit, DEFAULT_MAX_COMMANDS, tooManyCommands } from "../core/command_limit.ts";
import { MAX_LOGGED_WORD, redactCommand } from "../core/redact.ts";
import { type SaslCredentials, SaslExchange, type SaslStep } from "../core/sasl_exchange.ts";
import { LineFramer, parseCommandLine, parseResponseLine, type Pop3Command } from "./parser.ts";
import {
  LOG_TOO_MANY_INVALID,
  logTooLongCommand,
  POP3_COMMAND_BUFFER,
  POP3_INVALID_COMMAND,
  POP3_OK,
  pop3AuthMethods,
  type Pop3CapaLists,
  pop3CapaLists,
  pop3Challenge,
  pop3Err,
  pop3Greeting,
} from "./replies.ts";

export function createPop3Preauth(ctx: PreauthContext): PreauthMachine {
  return new Pop3Preauth(ctx);
}

/**
 * initial / user: the two command states of §4; sasl: waiting for the
 * answer to a challenge; auth: suspended on an auth request; tls: waiting
 * for the STLS handshake; closed: a close step was returned.
 */
type Phase = "initial" | "user" | "sasl" | "auth" | "tls" | "closed";

class Pop3Preauth implements PreauthMachine {
  readonly #config: ServerConfig;
  readonly #makeSalt: () => string;
  #tls: boolean;
  readonly #input: LineBuffer;
  readonly #framer: LineFramer;
  readonly #capa: Pop3CapaLists;
  readonly #authMethods: Uint8Array;
  #phase: Phase = "initial";
  readonly #sasl: SaslExchange;
  /** USER name (initial -> user state). */
  #user = "";
  #salt: string | null = null;
  #errors = 0;
  readonly #commands: CommandLimit;
  /** The driver pushed more than the buffer may hold: input was lost. */
  #overflow = false;

  constructor(ctx: PreauthContext) {
    this.#config = ctx.config;
    this.#commands = new CommandLimit(ctx.config.maxCommands ?? DEFAULT_MAX_COMMANDS);
    this.#makeSalt = ctx.makeSalt;
    this.#tls = ctx.tls;
    // CRAM-MD5's challenge is the greeting's salt.
    this.#sasl = new SaslExchange(
      { enabled: ctx.config.pop3Auth, salt: () => this.#saltOnce() },
      ctx.saslMechanisms,
    );
    // pop3_client_buffer (mailgate extension, default 4096 so a 4 KB
    // OAuth token fits); nginx's fixed 128 when a configuration leaves it out.
    const bound = ctx.config.pop3ClientBuffer ?? POP3_COMMAND_BUFFER;
    this.#framer = new LineFramer(bound);
    this.#input = new LineBuffer(bound + READ_CHUNK_SLACK);
    this.#capa = pop3CapaLists(ctx.config);
    this.#authMethods = pop3AuthMethods(ctx.config);
  }

  greeting(): Uint8Array {
    // §1: the salt exists only when a method needs it, and is made now.
    return pop3Greeting(this.#needsSalt() ? this.#saltOnce() : null);
  }

  push(chunk: Uint8Array): void {
    // Plaintext that arrives between STARTTLS and the handshake is injection
    // (CVE-2011-0411 class): never kept, never executed.
    if (this.#phase === "tls") return;
    if (!this.#input.push(chunk)) this.#overflow = true;
  }

  next(): ClientStep[] {
    const phase = this.#phase;
    if (phase !== "initial" && phase !== "user" && phase !== "sasl") return [];
    const framed = this.#overflow
      ? this.#framer.tooLong(this.#input)
      : this.#framer.next(this.#input);
    switch (framed.kind) {
      case "more":
        return [];
      case "tooLong":
        // Not counted toward max_errors; the connection closes anyway. Only
        // the command word is logged (a SASL line is all credentials).
        this.#phase = "closed";
        return [
          info(
            logTooLongCommand(
              redactCommand(framed.head, phase === "sasl" ? 0 : 1, MAX_LOGGED_WORD),
            ),
          ),
          send(POP3_INVALID_COMMAND),
          CLOSE,
        ];
      case "line":
        this.#input.consume(framed.length);
        return phase === "sasl" ? this.#saslAnswer(framed.text) : this.#commandLine(framed.text);
    }
  }

  tlsStarted(): void {
    this.#tls = true;
    if (this.#phase === "tls") this.#phase = "initial";
  }

  authRefused(r: AuthRefusal): ClientStep[] {
    return this.#saslStep(this.#sasl.refuse(r));
  }

  takeInput(): Uint8Array {
    this.#framer.reset();
    return this.#input.take();
  }

  // ---- §3 ----------------------------------------------------------------

  /** Back to the initial state: USER forgotten, SASL exchange abandoned. */
  #toInitial(): void {
    this.#phase = "initial";
    this.#user = "";
  }

  /** A handler refusal: -ERR, back to the initial state, not counted. */
  #refuse(): ClientStep[] {
    this.#toInitial();
    return [send(POP3_INVALID_COMMAND)];
  }

  /** An invalid line (§2): -ERR, back to the initial state, counted. */
  #invalidLine(): ClientStep[] {
    this.#toInitial();
    this.#errors++;
    if (this.#errors < this.#config.maxErrors) return [send(POP3_INVALID_COMMAND)];
    this.#phase = "closed";
    return [info(LOG_TOO_MANY_INVALID), send(POP3_INVALID_COMMAND), CLOSE];
  }

  #tooManyCommands(): ClientStep[] {
    this.#phase = "closed";
    return tooManyCommands(POP3_INVALID_COMMAND);
  }

  // ---- §4 ----------------------------------------------------------------

  #commandLine(text: string): ClientStep[] {
    const line = parseCommandLine(text);
    if (line.kind === "invalid") return this.#invalidLine();
    if (this.#commands.exceeded()) return this.#tooManyCommands();
    return this.#phase === "user"
      ? this.#userState(line.command, line.args)
      : this.#initialState(line.command, line.args);
  }

  #initialState(command: Pop3Command, args: string[]): ClientStep[] {
    switch (command) {
      case "USER":
        if (this.#starttlsOnly() || args.length !== 1) return this.#refuse();
        this.#user = args[0];
        this.#phase = "user";
        return [send(POP3_OK)];
      case "APOP":
        if (this.#starttlsOnly() || args.length !== 2 || !this.#enabled("apop")) {
          return this.#refuse();
        }
        return this.#auth({ method: "apop", user: args[0], pass: args[1], salt: this.#saltOnce() });
      case "AUTH":
        return this.#authCommand(args);
      case "CAPA":
        return [send(this.#capaList())];
      case "NOOP":
        return [send(POP3_OK)];
      case "STLS":
        if (this.#tls || this.#config.starttls === "off") return this.#refuse();
        // Anything pipelined after STLS is plaintext injection: drop it.
        this.#input.clear();
        this.#framer.reset();
        this.#phase = "tls";
        return [send(POP3_OK), { kind: "starttls" }];
      case "QUIT":
        return this.#quit();
      case "PASS":
        return this.#refuse();
    }
  }

  #userState(command: Pop3Command, args: string[]): ClientStep[] {
    switch (command) {
      case "PASS":
        if (args.length !== 1) return this.#refuse();
        return this.#auth({ method: "plain", user: this.#user, pass: args[0], salt: null });
      case "CAPA":
        // As nginx: the TLS-active list whatever the TLS state.
        return [send(this.#capa.full)];
      case "NOOP":
        return [send(POP3_OK)];
      case "QUIT":
        return this.#quit();
      default:
        return this.#refuse();
    }
  }

  #quit(): ClientStep[] {
    this.#phase = "closed";
    return [send(POP3_OK), QUIT];
  }

  #capaList(): Uint8Array {
    if (this.#tls || this.#config.starttls === "off") return this.#capa.full;
    return this.#config.starttls === "on" ? this.#capa.starttls : this.#capa.starttlsOnly;
  }

  #starttlsOnly(): boolean {
    return this.#config.starttls === "only" && !this.#tls;
  }

  #enabled(method: ServerConfig["pop3Auth"][number]): boolean {
    return this.#config.pop3Auth.includes(method);
  }

  #needsSalt(): boolean {
    return this.#enabled("apop") || this.#enabled("cram-md5");
  }

  /** The greeting salt; made once per connection (APOP, CRAM-MD5, Auth-Salt). */
  #saltOnce(): string {
    this.#salt ??= this.#makeSalt();
    return this.#salt;
  }

  // ---- §6, §7 --------------------------------------------------------------

  #authCommand(args: string[]): ClientStep[] {
    if (this.#starttlsOnly()) return this.#refuse();
    if (args.length === 0) return [send(this.#authMethods)];
    return this.#saslStep(this.#sasl.start(args));
  }

  /** The client's answer to a challenge. */
  #saslAnswer(text: string): ClientStep[] {
    if (this.#commands.exceeded()) return this.#tooManyCommands();
    return this.#saslStep(this.#sasl.answer(parseResponseLine(text)));
  }

  #saslStep(step: SaslStep): ClientStep[] {
    switch (step.kind) {
      case "challenge":
        this.#phase = "sasl";
        return [send(pop3Challenge(step.payload))];
      case "credentials":
        return this.#auth(step.creds);
      case "decodeError":
        // Info log, -ERR, back to the initial state, not counted.
        this.#toInitial();
        return [info(step.log), send(POP3_INVALID_COMMAND)];
      case "malformed":
        // XOAUTH2 / OAUTHBEARER: -ERR, counted toward max_errors.
        this.#toInitial();
        return [info(step.log), ...this.#invalidLine()];
      case "invalid":
        return this.#invalidLine();
      case "refused":
        return this.#refusal(step.refusal);
      default:
        // Unsupported mechanism; product: a line of exactly "*" cancels (no
        // auth request, not counted).
        return this.#refuse();
    }
  }

  #refusal(r: AuthRefusal): ClientStep[] {
    this.#toInitial();
    if (r.close) this.#phase = "closed";
    return refusal(pop3Err(r.message), r.close);
  }

  #auth(creds: SaslCredentials): ClientStep[] {
    this.#phase = "auth";
    return [{ kind: "auth", creds }];
  }
}
