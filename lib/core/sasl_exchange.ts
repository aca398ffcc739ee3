// The SASL exchange shared by IMAP AUTHENTICATE, POP3 AUTH and SMTP AUTH
// (imap.md §5, pop3.md §7, smtp.md §6): the table of mechanisms and the
// state of one exchange. A protocol keeps only its framing: how a challenge
// is written ("+ " / "334 "), how a response line splits into words, and
// which reply answers each outcome.
//
// Adding a mechanism is one entry in SASL_MECHANISMS (plus its directive
// value in lib/config and its test): acceptance, capability lists and the
// exchange itself all read the table.

import type { Credentials } from "./machine.ts";
import {
  decodeBase64,
  decodeCramMd5,
  decodeExternal,
  decodeLoginValue,
  decodeOauthBearer,
  decodePlain,
  decodeXoauth2,
  encodeBase64,
  SASL_PASSWORD_CHALLENGE,
  SASL_USERNAME_CHALLENGE,
  type SaslBearer,
  type SaslResponse,
} from "./sasl.ts";

/** What a mechanism hands to the auth service. */
export type SaslCredentials = Pick<
  Credentials,
  "method" | "user" | "pass" | "salt" | "saslPayload"
>;

/** What a mechanism makes of one client response. */
export type MechanismStep =
  /** Send this challenge (base64 text, "" for an empty one) and wait for the answer. */
  | { kind: "challenge"; payload: string }
  /** The exchange is complete: ask the auth service. */
  | { kind: "credentials"; creds: SaslCredentials }
  /** The response did not decode: nginx's info-level log line; not counted. */
  | { kind: "decodeError"; log: string }
  /**
   * The payload is malformed (XOAUTH2 / OAUTHBEARER, strict): the log line
   * (info level, never quoting the payload), then the protocol's error
   * reply for an invalid line, counted toward max_errors.
   */
  | { kind: "malformed"; log: string };

/** What the session gives an exchange. */
export interface SaslSession {
  /** The protocol's *_auth directive values (imap_auth, pop3_auth, smtp_auth). */
  readonly enabled: readonly string[];
  /** The session's salt (made on first use, the same on every call). */
  salt(): string;
}

/** Per-exchange memory of a mechanism (what earlier rounds decoded). */
export interface MechanismMemo {
  /** 0 for the first response (or the initial response), then 1, 2, ... */
  round: number;
  user: string;
}

export interface SaslMechanism {
  /** As clients send it (matched case-insensitively) and capability lists show it. */
  name: string;
  /**
   * The *_auth directive value that lists it in capabilities. POP3 has no
   * `login` value: its `plain` lists LOGIN too (pop3/replies.ts).
   */
  directive: string;
  /** Accepted even when its directive value is not set (nginx: PLAIN and LOGIN). */
  alwaysAccepted: boolean;
  /** An initial response (RFC 4422 §4) is accepted with the command. */
  initialResponse: boolean;
  /** The first challenge, when the client gave no initial response. */
  challenge(session: SaslSession): string;
  /** One response (a base64 word). */
  respond(value: string, memo: MechanismMemo, session: SaslSession): MechanismStep;
  /**
   * Mechanisms that refuse with an error challenge (RFC 7628 §3.2.2): the
   * challenge payload made from what the auth service said, sent before the
   * final refusal once the client has answered it. Absent: a one-line refusal.
   */
  errorChallenge?(error: string): string;
  /**
   * The client's answer to the error challenge is acceptable (RFC 7628
   * §3.2.3: a dummy ^A; freenginx also takes an empty line). Absent: any
   * answer is. Refused: the answer is an invalid line and the refusal is
   * not sent (as freenginx).
   */
  acceptsDummy?(value: string): boolean;
}

function challenge(payload: string): MechanismStep {
  return { kind: "challenge", payload };
}

function credentials(
  method: Credentials["method"],
  user: string,
  pass: string,
  salt: string | null,
): MechanismStep {
  return { kind: "credentials", creds: { method, user, pass, salt } };
}

/** XOAUTH2 / OAUTHBEARER: user and bare token to the auth service, the decoded payload kept for a passthrough login. */
function bearerStep(method: "xoauth2" | "oauthbearer", c: SaslBearer): MechanismStep {
  if (!c.ok) return { kind: "malformed", log: c.log };
  return {
    kind: "credentials",
    creds: { method, user: c.user, pass: c.token, salt: null, saslPayload: c.payload },
  };
}

/** RFC 7628 §3.2.3 dummy reply: ^A (freenginx also accepts an empty answer). */
function dummyReply(value: string): boolean {
  const d = decodeBase64(value);
  return d === "" || d === "\x01";
}

/** The mechanisms, in the fixed order capability lists show them. */
export const SASL_MECHANISMS: readonly SaslMechanism[] = [
  {
    // base64 of `authzid NUL authcid NUL password`.
    name: "PLAIN",
    directive: "plain",
    alwaysAccepted: true,
    initialResponse: true,
    challenge: () => "",
    respond(value) {
      const c = decodePlain(value);
      return c.ok
        ? credentials("plain", c.user, c.pass, null)
        : { kind: "decodeError", log: c.log };
    },
  },
  {
    // "Username:", then "Password:"; Auth-Method plain.
    name: "LOGIN",
    directive: "login",
    alwaysAccepted: true,
    initialResponse: true,
    challenge: () => SASL_USERNAME_CHALLENGE,
    respond(value, memo) {
      const v = decodeLoginValue(value);
      if (!v.ok) return { kind: "decodeError", log: v.log };
      if (memo.round === 0) {
        memo.user = v.value;
        return challenge(SASL_PASSWORD_CHALLENGE);
      }
      return credentials("plain", memo.user, v.value, null);
    },
  },
  {
    // The salt is the challenge and goes to the auth service as Auth-Salt.
    name: "CRAM-MD5",
    directive: "cram-md5",
    alwaysAccepted: false,
    initialResponse: false,
    challenge: (session) => encodeBase64(session.salt()),
    respond(value, _memo, session) {
      const c = decodeCramMd5(value);
      return c.ok
        ? credentials("cram-md5", c.user, c.pass, session.salt())
        : { kind: "decodeError", log: c.log };
    },
  },
  {
    // Product: Auth-Pass is always empty; with the directive off, even the
    // initial-response form is refused.
    name: "EXTERNAL",
    directive: "external",
    alwaysAccepted: false,
    initialResponse: true,
    challenge: () => SASL_USERNAME_CHALLENGE,
    respond(value) {
      const id = decodeExternal(value);
      return id.ok
        ? credentials("external", id.value, "", null)
        : { kind: "decodeError", log: id.log };
    },
  },
  {
    // RFC 7628; the first challenge is empty. A refusal with Auth-Error-SASL
    // is the error challenge, its base64 sent as the auth service gave it.
    name: "OAUTHBEARER",
    directive: "oauthbearer",
    alwaysAccepted: false,
    initialResponse: true,
    challenge: () => "",
    respond: (value) => bearerStep("oauthbearer", decodeOauthBearer(value)),
    errorChallenge: (error) => error,
    acceptsDummy: dummyReply,
  },
  {
    // Google's XOAUTH2: as OAUTHBEARER, `user=` instead of the GS2 header.
    name: "XOAUTH2",
    directive: "xoauth2",
    alwaysAccepted: false,
    initialResponse: true,
    challenge: () => "",
    respond: (value) => bearerStep("xoauth2", decodeXoauth2(value)),
    errorChallenge: (error) => error,
    acceptsDummy: dummyReply,
  },
];

/** The mechanism names a protocol offers for its directive values, in table order. */
export function offeredMechanisms(
  enabled: readonly string[],
  mechanisms: readonly SaslMechanism[] = SASL_MECHANISMS,
  directiveOf: (m: SaslMechanism) => string = (m) => m.directive,
): string[] {
  return mechanisms.filter((m) => enabled.includes(directiveOf(m))).map((m) => m.name);
}

/** The auth service's refusal, as a pre-auth machine is given it. */
export interface AuthRefusal {
  /** Auth-Status (binary string), sent byte for byte. */
  message: string;
  /** Auth-Error-Code (SMTP), null if absent. */
  errorCode: string | null;
  /** For a mechanism with an error challenge: what the auth service said for it; null if nothing. */
  saslError: string | null;
  /** No Auth-Wait: the connection closes after the refusal. */
  close: boolean;
}

/** What the protocol does next: a mechanism step, or one of the exchange's own ends. */
export type SaslStep =
  | MechanismStep
  /** Unknown mechanism, one not enabled, or the wrong number of arguments (start only). */
  | { kind: "unsupported" }
  /** The client's answer was exactly "*" (product decision: abandon, not counted). */
  | { kind: "cancel" }
  /** The answer line had more words than the protocol allows (counted). */
  | { kind: "invalid" }
  /** Send the auth service's refusal now (after an error challenge was answered, if any). */
  | { kind: "refused"; refusal: AuthRefusal };

const UNSUPPORTED: SaslStep = { kind: "unsupported" };
const CANCEL: SaslStep = { kind: "cancel" };
const INVALID: SaslStep = { kind: "invalid" };

/** One session's SASL exchange: at most one in progress. */
export class SaslExchange {
  readonly #session: SaslSession;
  readonly #mechanisms: readonly SaslMechanism[];
  /** The mechanism waiting for an answer; null between exchanges. */
  #current: SaslMechanism | null = null;
  /** The mechanism whose credentials went to the auth service last. */
  #lastCredentials: SaslMechanism | null = null;
  /** The refusal to send once the client has answered an error challenge. */
  #refusal: AuthRefusal | null = null;
  /** The mechanism that sent that error challenge. */
  #errorChallenger: SaslMechanism | null = null;
  readonly #memo: MechanismMemo = { round: 0, user: "" };

  constructor(session: SaslSession, mechanisms: readonly SaslMechanism[] = SASL_MECHANISMS) {
    this.#session = session;
    this.#mechanisms = mechanisms;
  }

  /** The AUTH / AUTHENTICATE arguments (at least one): mechanism name, then the optional initial response. */
  start(args: readonly string[]): SaslStep {
    this.#reset();
    const name = args[0].toUpperCase();
    const m = this.#mechanisms.find((x) => x.name === name);
    if (m === undefined || args.length > 2) return UNSUPPORTED;
    if (!m.alwaysAccepted && !this.#session.enabled.includes(m.directive)) return UNSUPPORTED;
    this.#current = m;
    if (args.length === 1) return challenge(m.challenge(this.#session));
    if (!m.initialResponse) return this.#end(UNSUPPORTED);
    return this.#respond(m, args[1]);
  }

  /** The client's answer to the last challenge, split by the protocol's response-line rule. */
  answer(response: SaslResponse): SaslStep {
    if (this.#refusal !== null) {
      // RFC 7628 §3.2.2: the client's dummy answer, then the refusal.
      const refusal = this.#refusal;
      const m = this.#errorChallenger;
      this.#refusal = null;
      this.#errorChallenger = null;
      if (m?.acceptsDummy !== undefined && response.kind === "cancel") return this.#end(CANCEL);
      if (m?.acceptsDummy !== undefined && response.kind === "invalid") return this.#end(INVALID);
      if (
        m?.acceptsDummy !== undefined && response.kind === "value" &&
        !m.acceptsDummy(response.value)
      ) {
        return this.#end({
          kind: "malformed",
          log: `client sent invalid response to the error challenge in AUTH ${m.name} command`,
        });
      }
      return { kind: "refused", refusal };
    }
    const m = this.#current;
    // Not waiting (the machine left the exchange, e.g. on an invalid line): abandon.
    if (m === null) return CANCEL;
    if (response.kind === "cancel") return this.#end(CANCEL);
    if (response.kind === "invalid") return this.#end(INVALID);
    return this.#respond(m, response.value);
  }

  /**
   * The auth service refused the last credentials: the refusal now, or,
   * for a mechanism with an error challenge and an error to put in it, that
   * challenge (answer() then returns the refusal, whatever the client says).
   */
  refuse(refusal: AuthRefusal): SaslStep {
    const m = this.#lastCredentials;
    this.#lastCredentials = null;
    if (m?.errorChallenge === undefined || refusal.saslError === null) {
      return { kind: "refused", refusal };
    }
    this.#refusal = refusal;
    this.#errorChallenger = m;
    return challenge(m.errorChallenge(refusal.saslError));
  }

  #respond(m: SaslMechanism, value: string): SaslStep {
    const step = m.respond(value, this.#memo, this.#session);
    this.#memo.round++;
    if (step.kind === "credentials") this.#lastCredentials = m;
    return step.kind === "challenge" ? step : this.#end(step);
  }

  #end(step: SaslStep): SaslStep {
    this.#current = null;
    return step;
  }

  #reset(): void {
    this.#current = null;
    this.#lastCredentials = null;
    this.#refusal = null;
    this.#errorChallenger = null;
    this.#memo.round = 0;
    this.#memo.user = "";
  }
}
