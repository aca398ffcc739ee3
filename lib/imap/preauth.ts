// The IMAP pre-authentication dialogue (imap.md §1-§7) as a pure state
// machine: bytes in, steps out. One command is handled per next() call,
// strictly in order; after an `auth` step the machine is suspended until
// authRefused() (or the driver takes the remaining input and hands over).

import type { ServerConfig } from "../config/types.ts";
import type { AuthRefusal, ClientStep, PreauthContext, PreauthMachine } from "../core/machine.ts";
import { CLOSE, info, QUIT, refusal, send } from "../core/steps.ts";
import { bytesToBinary, concatBytes } from "../core/bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../core/line_buffer.ts";
import { saslResponseOfWords } from "../core/sasl.ts";
import { type SaslCredentials, SaslExchange, type SaslStep } from "../core/sasl_exchange.ts";
import { type ImapLine, ImapParser, TOO_LONG_LOG_HEAD } from "./parser.ts";
import { type IdField, idFields } from "./id.ts";
import { MAX_LOGGED_WORD, redactCommand } from "../core/redact.ts";
import { CommandLimit, DEFAULT_MAX_COMMANDS, tooManyCommands } from "../core/command_limit.ts";
import {
  IMAP_GREETING,
  IMAP_LITERAL_CONTINUATION,
  IMAP_UNTAGGED,
  imapBad,
  imapCapabilityLine,
  imapChallenge,
  imapIdLine,
  imapLogout,
  imapNo,
  imapOk,
  LOG_TOO_MANY_INVALID,
  logTooLongCommand,
} from "./replies.ts";

export function createImapPreauth(ctx: PreauthContext): PreauthMachine {
  return new ImapPreauth(ctx);
}

/**
 * command: reading tagged commands; sasl: waiting for the answer to a
 * challenge; auth: suspended on an auth request; tls: waiting for the
 * STARTTLS handshake; closed: a close step was returned.
 */
type Phase = "command" | "sasl" | "auth" | "tls" | "closed";

class ImapPreauth implements PreauthMachine {
  readonly #config: ServerConfig;
  readonly #makeSalt: () => string;
  #tls: boolean;
  readonly #input: LineBuffer;
  readonly #parser: ImapParser;
  readonly #capability: { plain: Uint8Array; tls: Uint8Array };
  /** The `* ID ...` line (imap_id), built once. */
  readonly #idLine: Uint8Array;
  /** The fields of the client's last ID (Credentials.imapId). */
  #clientId: IdField[] = [];
  #phase: Phase = "command";
  readonly #sasl: SaslExchange;
  /** Tag of the LOGIN / AUTHENTICATE in progress (replies, Credentials.tag). */
  #authTag = "";
  #salt: string | null = null;
  #errors = 0;
  readonly #commands: CommandLimit;
  /** The driver pushed more than the buffer may hold: input was lost. */
  #overflow = false;

  constructor(ctx: PreauthContext) {
    this.#config = ctx.config;
    this.#makeSalt = ctx.makeSalt;
    this.#tls = ctx.tls;
    this.#sasl = new SaslExchange({
      enabled: ctx.config.imapAuth,
      salt: () => (this.#salt ??= this.#makeSalt()),
    }, ctx.saslMechanisms);
    this.#input = new LineBuffer(ctx.config.imapClientBuffer + READ_CHUNK_SLACK);
    this.#parser = new ImapParser(ctx.config.imapClientBuffer);
    this.#capability = {
      plain: imapCapabilityLine(ctx.config, false),
      tls: imapCapabilityLine(ctx.config, true),
    };
    this.#idLine = imapIdLine(ctx.config);
    this.#commands = new CommandLimit(ctx.config.maxCommands ?? DEFAULT_MAX_COMMANDS);
  }

  greeting(): Uint8Array {
    return IMAP_GREETING;
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
      this.#phase = "closed";
      // Tag and command word only: the rest may be a password.
      const head = redactCommand(
        bytesToBinary(this.#input.view().subarray(0, TOO_LONG_LOG_HEAD)),
        sasl ? 0 : 2,
        MAX_LOGGED_WORD,
      );
      return [
        info(logTooLongCommand(head)),
        send(imapBad(sasl ? this.#authTag : IMAP_UNTAGGED)),
        CLOSE,
      ];
    }
    const r = this.#parser.parse(this.#input, sasl ? "response" : "command");
    switch (r.kind) {
      case "more":
        return [];
      case "continuation":
        return [send(IMAP_LITERAL_CONTINUATION)];
      case "tooLong":
        // §2.2: not counted toward max_errors; the connection closes anyway.
        this.#phase = "closed";
        return [
          info(logTooLongCommand(redactCommand(r.head, sasl ? 0 : 2, MAX_LOGGED_WORD))),
          send(imapBad(sasl ? this.#authTag : r.tag ?? IMAP_UNTAGGED)),
          CLOSE,
        ];
      case "invalid":
        return this.#invalidLine(sasl ? this.#authTag : r.tag ?? IMAP_UNTAGGED, r.closeAfter);
      case "line":
        if (this.#commands.exceeded()) {
          this.#phase = "closed";
          return tooManyCommands(imapBad(sasl ? this.#authTag : r.line.tag ?? IMAP_UNTAGGED));
        }
        return sasl ? this.#saslAnswer(r.line) : this.#command(r.line);
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

  // ---- §2.1 ------------------------------------------------------------

  #invalidLine(tag: string, closeAfter: boolean): ClientStep[] {
    this.#errors++;
    this.#phase = "command"; // an invalid SASL answer abandons the exchange
    const steps: ClientStep[] = [];
    const tooMany = this.#errors >= this.#config.maxErrors;
    if (tooMany) steps.push(info(LOG_TOO_MANY_INVALID));
    steps.push(send(imapBad(tag)));
    if (tooMany || closeAfter) {
      this.#phase = "closed";
      steps.push(CLOSE);
    }
    return steps;
  }

  // ---- §5 commands -------------------------------------------------------

  #command(line: ImapLine): ClientStep[] {
    const tag = line.tag ?? "";
    switch (line.command) {
      case "CAPABILITY": {
        const list = this.#tls ? this.#capability.tls : this.#capability.plain;
        return [send(concatBytes([list, imapOk(tag)]))];
      }
      case "NOOP":
        return [send(imapOk(tag))];
      case "LOGOUT":
        this.#phase = "closed";
        return [send(imapLogout(tag)), QUIT];
      case "STARTTLS":
        if (this.#tls || this.#config.starttls === "off") return [send(imapBad(tag))];
        // Anything pipelined after STARTTLS is plaintext injection: drop it.
        this.#input.clear();
        this.#parser.reset();
        this.#phase = "tls";
        return [send(imapOk(tag)), { kind: "starttls" }];
      case "LOGIN": {
        const [user, pass] = line.args;
        if (this.#starttlsOnly() || line.args.length !== 2 || user === "") {
          return [send(imapBad(tag))];
        }
        return this.#auth(tag, { method: "plain", user, pass, salt: null });
      }
      case "AUTHENTICATE":
        return this.#authenticate(tag, line.args);
      case "ID": {
        // RFC 2971 before login, whatever imap_capabilities lists; a list
        // of the wrong shape or over a limit is a counted error.
        const fields = idFields(line.args, line.kinds ?? []);
        if (fields === null) return this.#invalidLine(tag, false);
        // The last ID wins: what the backend hears is what the client said last.
        this.#clientId = fields;
        return [send(concatBytes([this.#idLine, imapOk(tag)]))];
      }
      default:
        return [send(imapBad(tag))]; // unreachable: the parser knows the commands
    }
  }

  #starttlsOnly(): boolean {
    return this.#config.starttls === "only" && !this.#tls;
  }

  #authenticate(tag: string, args: string[]): ClientStep[] {
    if (this.#starttlsOnly() || args.length === 0) return [send(imapBad(tag))];
    this.#authTag = tag;
    return this.#saslStep(this.#sasl.start(args));
  }

  /** The client's answer to a challenge (a tag-less line). */
  #saslAnswer(line: ImapLine): ClientStep[] {
    return this.#saslStep(this.#sasl.answer(saslResponseOfWords(line.args, line.exactlyStar)));
  }

  /** The protocol's answer to each SASL step; every reply carries the AUTHENTICATE tag. */
  #saslStep(step: SaslStep): ClientStep[] {
    this.#phase = "command"; // unless a challenge follows
    const tag = this.#authTag;
    switch (step.kind) {
      case "challenge":
        this.#phase = "sasl";
        return [send(imapChallenge(step.payload))];
      case "credentials":
        return this.#auth(tag, step.creds);
      case "decodeError":
        // Product: tagged BAD for a bad LOGIN user name too (nginx sends it untagged).
        return [info(step.log), send(imapBad(tag))];
      case "malformed":
        // XOAUTH2 / OAUTHBEARER: tagged BAD, counted toward max_errors.
        return [info(step.log), ...this.#invalidLine(tag, false)];
      case "refused":
        return this.#refusal(step.refusal);
      default:
        // Unsupported mechanism; product: a line of exactly "*" cancels
        // (tagged BAD, not counted).
        return [send(imapBad(tag))];
    }
  }

  #refusal(r: AuthRefusal): ClientStep[] {
    this.#phase = r.close ? "closed" : "command";
    return refusal(imapNo(this.#authTag, r.message), r.close);
  }

  #auth(tag: string, creds: SaslCredentials): ClientStep[] {
    this.#authTag = tag;
    this.#phase = "auth";
    return [{ kind: "auth", creds: { ...creds, tag, imapId: this.#clientId } }];
  }
}
