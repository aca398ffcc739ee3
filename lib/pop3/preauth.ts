// The POP3 pre-authentication dialogue (pop3.md §1-§8) as a pure state
// machine: bytes in, steps out. One line is handled per next() call,
// strictly in order; after an `auth` step the machine is suspended until
// authRefused() (or the driver takes the remaining input and hands over).

import type { ServerConfig } from "../config/types.ts";
import type { ClientStep, Credentials, PreauthContext, PreauthMachine } from "../core/machine.ts";
import { CLOSE, info, QUIT, type SaslWait, send } from "../core/steps.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../core/line_buffer.ts";
import { MAX_LOGGED_WORD, redactCommand } from "../core/redact.ts";
import {
  decodeCramMd5,
  decodeExternal,
  decodeLoginValue,
  decodePlain,
  encodeBase64,
  saslMechanism,
} from "../core/sasl.ts";
import { LineFramer, parseCommandLine, parseResponseLine, type Pop3Command } from "./parser.ts";
import {
  LOG_TOO_MANY_INVALID,
  logTooLongCommand,
  POP3_COMMAND_BUFFER,
  POP3_INVALID_COMMAND,
  POP3_OK,
  POP3_PASSWORD_CHALLENGE,
  POP3_PLAIN_CHALLENGE,
  POP3_USERNAME_CHALLENGE,
  pop3AuthMethods,
  type Pop3CapaLists,
  pop3CapaLists,
  pop3CramChallenge,
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
  readonly #framer = new LineFramer(POP3_COMMAND_BUFFER);
  readonly #capa: Pop3CapaLists;
  readonly #authMethods: Uint8Array;
  #phase: Phase = "initial";
  #sasl: SaslWait = "plain";
  /** USER name (initial -> user state) or the LOGIN user name. */
  #user = "";
  #salt: string | null = null;
  #errors = 0;
  /** The driver pushed more than the buffer may hold: input was lost. */
  #overflow = false;

  constructor(ctx: PreauthContext) {
    this.#config = ctx.config;
    this.#makeSalt = ctx.makeSalt;
    this.#tls = ctx.tls;
    this.#input = new LineBuffer(POP3_COMMAND_BUFFER + READ_CHUNK_SLACK);
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
          info(logTooLongCommand(redactCommand(framed.head, phase === "sasl" ? 0 : 1, MAX_LOGGED_WORD))),
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

  authRefused(message: string, _errorCode: string | null): Uint8Array {
    this.#toInitial();
    return pop3Err(message);
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

  // ---- §4 ----------------------------------------------------------------

  #commandLine(text: string): ClientStep[] {
    const line = parseCommandLine(text);
    if (line.kind === "invalid") return this.#invalidLine();
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
        return this.#auth("apop", args[0], args[1], this.#saltOnce());
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
        return this.#auth("plain", this.#user, args[0], null);
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
    const n = args.length;
    if (n === 0) return [send(this.#authMethods)];
    switch (saslMechanism(args[0])) {
      case "plain":
        if (n === 1) return this.#challenge("plain", POP3_PLAIN_CHALLENGE);
        if (n === 2) return this.#plain(args[1]);
        break;
      case "login":
        if (n === 1) return this.#challenge("login-user", POP3_USERNAME_CHALLENGE);
        if (n === 2) return this.#loginUserName(args[1]);
        break;
      case "cram-md5":
        if (n === 1 && this.#enabled("cram-md5")) {
          return this.#challenge("cram-md5", pop3CramChallenge(encodeBase64(this.#saltOnce())));
        }
        break;
      case "external":
        // Product: the initial-response form is refused too when disabled.
        if (!this.#enabled("external")) break;
        if (n === 1) return this.#challenge("external", POP3_USERNAME_CHALLENGE);
        if (n === 2) return this.#external(args[1]);
        break;
    }
    return this.#refuse();
  }

  #challenge(wait: SaslWait, line: Uint8Array): ClientStep[] {
    this.#sasl = wait;
    this.#phase = "sasl";
    return [send(line)];
  }

  /** The client's answer to a challenge. */
  #saslAnswer(text: string): ClientStep[] {
    const answer = parseResponseLine(text);
    if (answer.kind === "invalid") return this.#invalidLine();
    // Product: a line of exactly "*" cancels (no auth request, not counted).
    if (answer.kind === "cancel") return this.#refuse();
    const value = answer.value;
    this.#phase = "initial"; // unless a further challenge follows
    switch (this.#sasl) {
      case "plain":
        return this.#plain(value);
      case "login-user":
        return this.#loginUserName(value);
      case "login-pass": {
        const pass = decodeLoginValue(value);
        if (!pass.ok) return this.#decodeError(pass.log);
        return this.#auth("plain", this.#user, pass.value, null);
      }
      case "cram-md5": {
        const c = decodeCramMd5(value);
        if (!c.ok) return this.#decodeError(c.log);
        return this.#auth("cram-md5", c.user, c.pass, this.#saltOnce());
      }
      case "external":
        return this.#external(value);
    }
  }

  #plain(b64: string): ClientStep[] {
    const c = decodePlain(b64);
    if (!c.ok) return this.#decodeError(c.log);
    return this.#auth("plain", c.user, c.pass, null);
  }

  #loginUserName(b64: string): ClientStep[] {
    const user = decodeLoginValue(b64);
    if (!user.ok) return this.#decodeError(user.log);
    this.#user = user.value;
    return this.#challenge("login-pass", POP3_PASSWORD_CHALLENGE);
  }

  #external(b64: string): ClientStep[] {
    const id = decodeExternal(b64);
    if (!id.ok) return this.#decodeError(id.log);
    // Auth-Pass is always empty for EXTERNAL (product decision).
    return this.#auth("external", id.value, "", null);
  }

  /** Decoding errors: info log, -ERR, back to the initial state, not counted. */
  #decodeError(log: string): ClientStep[] {
    this.#toInitial();
    return [info(log), send(POP3_INVALID_COMMAND)];
  }

  #auth(
    method: Credentials["method"],
    user: string,
    pass: string,
    salt: string | null,
  ): ClientStep[] {
    this.#phase = "auth";
    return [{ kind: "auth", creds: { method, user, pass, salt } }];
  }
}
