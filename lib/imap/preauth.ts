// The IMAP pre-authentication dialogue (imap.md §1-§7) as a pure state
// machine: bytes in, steps out. One command is handled per next() call,
// strictly in order; after an `auth` step the machine is suspended until
// authRefused() (or the driver takes the remaining input and hands over).

import type { ServerConfig } from "../config/types.ts";
import type { ClientStep, Credentials, PreauthContext, PreauthMachine } from "../core/machine.ts";
import { CLOSE, info, QUIT, type SaslWait, send } from "../core/steps.ts";
import { bytesToBinary, concatBytes } from "../core/bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../core/line_buffer.ts";
import {
  decodeCramMd5,
  decodeExternal,
  decodeLoginValue,
  decodePlain,
  encodeBase64,
  saslMechanism,
  saslResponseOfWords,
} from "../core/sasl.ts";
import { type ImapLine, ImapParser, TOO_LONG_LOG_HEAD } from "./parser.ts";
import { MAX_LOGGED_WORD, redactCommand } from "../core/redact.ts";
import {
  IMAP_GREETING,
  IMAP_LITERAL_CONTINUATION,
  IMAP_PASSWORD_CHALLENGE,
  IMAP_PLAIN_CHALLENGE,
  IMAP_UNTAGGED,
  IMAP_USERNAME_CHALLENGE,
  imapBad,
  imapCapabilityLine,
  imapCramChallenge,
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
  #phase: Phase = "command";
  #sasl: SaslWait = "plain";
  /** Tag of the LOGIN / AUTHENTICATE in progress (replies, Credentials.tag). */
  #authTag = "";
  #loginUser = "";
  #salt: string | null = null;
  #errors = 0;
  /** The driver pushed more than the buffer may hold: input was lost. */
  #overflow = false;

  constructor(ctx: PreauthContext) {
    this.#config = ctx.config;
    this.#makeSalt = ctx.makeSalt;
    this.#tls = ctx.tls;
    this.#input = new LineBuffer(ctx.config.imapClientBuffer + READ_CHUNK_SLACK);
    this.#parser = new ImapParser(ctx.config.imapClientBuffer);
    this.#capability = {
      plain: imapCapabilityLine(ctx.config, false),
      tls: imapCapabilityLine(ctx.config, true),
    };
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
      const head = redactCommand(bytesToBinary(this.#input.view().subarray(0, TOO_LONG_LOG_HEAD)), sasl ? 0 : 2, MAX_LOGGED_WORD);
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
        return sasl ? this.#saslAnswer(r.line) : this.#command(r.line);
    }
  }

  tlsStarted(): void {
    this.#tls = true;
    if (this.#phase === "tls") this.#phase = "command";
  }

  authRefused(message: string, _errorCode: string | null): Uint8Array {
    this.#phase = "command";
    return imapNo(this.#authTag, message);
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
        return this.#auth(tag, "plain", user, pass, null);
      }
      case "AUTHENTICATE":
        return this.#authenticate(tag, line.args);
      default:
        return [send(imapBad(tag))]; // unreachable: the parser knows the commands
    }
  }

  #starttlsOnly(): boolean {
    return this.#config.starttls === "only" && !this.#tls;
  }

  #enabled(method: ServerConfig["imapAuth"][number]): boolean {
    return this.#config.imapAuth.includes(method);
  }

  #authenticate(tag: string, args: string[]): ClientStep[] {
    if (this.#starttlsOnly() || args.length === 0) return [send(imapBad(tag))];
    const n = args.length;
    switch (saslMechanism(args[0])) {
      case "plain":
        if (n === 1) return this.#challenge(tag, "plain", IMAP_PLAIN_CHALLENGE);
        if (n === 2) return this.#plain(tag, args[1]);
        break;
      case "login":
        if (n === 1) return this.#challenge(tag, "login-user", IMAP_USERNAME_CHALLENGE);
        if (n === 2) return this.#loginUserName(tag, args[1]);
        break;
      case "cram-md5":
        if (n === 1 && this.#enabled("cram-md5")) {
          this.#salt ??= this.#makeSalt();
          return this.#challenge(tag, "cram-md5", imapCramChallenge(encodeBase64(this.#salt)));
        }
        break;
      case "external":
        // Product: the initial-response form is refused too when disabled.
        if (!this.#enabled("external")) break;
        if (n === 1) return this.#challenge(tag, "external", IMAP_USERNAME_CHALLENGE);
        if (n === 2) return this.#external(tag, args[1]);
        break;
    }
    return [send(imapBad(tag))];
  }

  #challenge(tag: string, wait: SaslWait, line: Uint8Array): ClientStep[] {
    this.#authTag = tag;
    this.#sasl = wait;
    this.#phase = "sasl";
    return [send(line)];
  }

  /** The client's answer to a challenge (a tag-less line). */
  #saslAnswer(line: ImapLine): ClientStep[] {
    const tag = this.#authTag;
    this.#phase = "command"; // unless a further challenge follows
    const answer = saslResponseOfWords(line.args, line.exactlyStar);
    // Product: a line of exactly "*" cancels (tagged BAD, not counted).
    if (answer.kind !== "value") return [send(imapBad(tag))];
    const value = answer.value;
    switch (this.#sasl) {
      case "plain":
        return this.#plain(tag, value);
      case "login-user":
        return this.#loginUserName(tag, value);
      case "login-pass": {
        const pass = decodeLoginValue(value);
        if (!pass.ok) return this.#decodeError(tag, pass.log);
        return this.#auth(tag, "plain", this.#loginUser, pass.value, null);
      }
      case "cram-md5": {
        const c = decodeCramMd5(value);
        if (!c.ok) return this.#decodeError(tag, c.log);
        return this.#auth(tag, "cram-md5", c.user, c.pass, this.#salt);
      }
      case "external":
        return this.#external(tag, value);
    }
  }

  #plain(tag: string, b64: string): ClientStep[] {
    const c = decodePlain(b64);
    if (!c.ok) return this.#decodeError(tag, c.log);
    return this.#auth(tag, "plain", c.user, c.pass, null);
  }

  #loginUserName(tag: string, b64: string): ClientStep[] {
    const user = decodeLoginValue(b64);
    // Product: tagged BAD here too (nginx sends it untagged).
    if (!user.ok) return this.#decodeError(tag, user.log);
    this.#loginUser = user.value;
    return this.#challenge(tag, "login-pass", IMAP_PASSWORD_CHALLENGE);
  }

  #external(tag: string, b64: string): ClientStep[] {
    const id = decodeExternal(b64);
    if (!id.ok) return this.#decodeError(tag, id.log);
    // Auth-Pass is always empty for EXTERNAL (product decision).
    return this.#auth(tag, "external", id.value, "", null);
  }

  /** Decoding errors: tagged BAD, back to the initial state, not counted. */
  #decodeError(tag: string, log: string): ClientStep[] {
    this.#phase = "command";
    return [info(log), send(imapBad(tag))];
  }

  #auth(
    tag: string,
    method: Credentials["method"],
    user: string,
    pass: string,
    salt: string | null,
  ): ClientStep[] {
    this.#authTag = tag;
    this.#phase = "auth";
    return [{ kind: "auth", creds: { method, user, pass, salt, tag } }];
  }
}
