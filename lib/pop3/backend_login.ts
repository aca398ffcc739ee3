// POP3 backend login (pop3.md §9) as a pure machine: backend bytes in,
// steps out. Always USER/PASS, whatever the client used:
//
//   B: +OK ...     P: USER <user>
//   B: +OK ...     P: PASS <password>
//   B: +OK ...     -> this reply and anything after it goes to the client
//
// With backend TLS by STARTTLS (mailgate extension, ctx.backendTls
// "starttls") the greeting is followed by an upgrade and a fresh CAPA:
//
//   B: +OK ...     P: STLS
//   B: +OK ...     -> "starttls" step; every byte after this line is dropped
//   (TLS handshake; tlsStarted())
//                  P: CAPA
//   B: +OK ... <capability lines> .    (or -ERR: CAPA is optional, go on)
//                  P: USER <user> ... as above
//
// With proxy_pop3_xclient on (mailgate extension), a backend that offers
// XCLIENT (in a "+OK [XCLIENT]" greeting, as Dovecot greets a trusted
// proxy, or as a line of its CAPA list) hears the client's address first;
// anything but +OK to it fails the login, as in Dovecot's proxy:
//
//   B: +OK ...     P: CAPA            (no CAPA when the greeting says [XCLIENT];
//                                      Dovecot 2.3 lists XCLIENT only there)
//   B: +OK ... XCLIENT ... .            P: XCLIENT ADDR=<ip> PORT=<port> SESSION=*<n> TTL=4
//   B: +OK ...     P: USER <user> ... as above
//
// With proxy_oauth_passthrough on (mailgate extension) and a client that
// signed in with XOAUTH2 or OAUTHBEARER, the backend is logged in to with
// the same mechanism and the token (lib/core/oauth_passthrough.ts) instead
// of USER/PASS. CAPA is always read first; no `SASL ... <mechanism>` line
// (or -ERR to CAPA) is an internal error, never a USER/PASS fallback:
//
//   B: +OK ...     P: CAPA
//   B: +OK ... SASL PLAIN XOAUTH2 ... .     P: AUTH XOAUTH2 <base64>
//   B: +OK ...     -> this reply and anything after it goes to the client
//
// A backend that refuses the token with RFC 7628's error challenge gets
// the dummy response, and its -ERR is a failed login like a refused PASS:
//
//   B: + eyJzdGF0dXMiOi...  P: AQ==
//   B: -ERR ...    -> login failed
//
// A reply to STLS other than +OK fails the login (never a plaintext
// fallback). Neither it nor the CAPA reply is ever passed to the client,
// whatever proxy_pass_error_message says: they answer the proxy's
// commands, not the client's.
//
// Each reply is one CRLF-terminated line of at most proxy_buffer bytes
// (lib/core/reply_reader.ts) and must start with "+OK"; the multi-line CAPA
// reply is bounded as a whole.

import type { BackendContext, BackendLogin, BackendStep, ForwardInfo } from "../core/machine.ts";
import { bytesToBinary } from "../core/bytes.ts";
import { ReplyReader } from "../core/reply_reader.ts";
import {
  logUpstreamNoMechanism,
  OAUTH_DUMMY_RESPONSE,
  type OauthLogin,
  oauthPassthrough,
} from "../core/oauth_passthrough.ts";
import {
  BACKEND_ERR_PREFIX,
  BACKEND_LIST_END,
  BACKEND_OK_PREFIX,
  BACKEND_SASL_CAPA,
  BACKEND_XCLIENT_CAPA,
  BACKEND_XCLIENT_GREETING,
  logUpstreamInvalid,
  logUpstreamNoStarttls,
  logUpstreamTooLong,
  POP3_BACKEND_CAPA,
  POP3_BACKEND_STLS,
  POP3_INTERNAL_ERROR,
  pop3BackendAuth,
  pop3BackendPass,
  pop3BackendSaslResponse,
  pop3BackendUser,
  pop3BackendXclient,
} from "./replies.ts";

export function createPop3BackendLogin(ctx: BackendContext): BackendLogin {
  return new Pop3BackendLogin(ctx);
}

/**
 * Which backend reply is awaited. "tls": the upgrade was asked for and
 * nothing is read until tlsStarted(). "capaList": the lines of a CAPA
 * reply, up to its ".".
 */
type Stage =
  | "greeting"
  | "stls"
  | "tls"
  | "capa"
  | "capaList"
  | "xclient"
  | "auth"
  | "user"
  | "pass"
  | "finished";

function startsWith(data: Uint8Array, from: number, to: number, prefix: string): boolean {
  if (to - from < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (data[from + i] !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/** The CAPA line's first word is XCLIENT (any case). */
function isXclientCapa(data: Uint8Array, from: number, cr: number): boolean {
  const n = BACKEND_XCLIENT_CAPA.length;
  if (cr - from < n || (cr - from > n && data[from + n] !== 0x20)) return false;
  for (let i = 0; i < n; i++) {
    if ((data[from + i] & 0xdf) !== BACKEND_XCLIENT_CAPA.charCodeAt(i)) return false;
  }
  return true;
}

/** The CAPA line is `SASL ...` (any case) and lists `mechanism` (upper case). */
function isSaslCapaWith(data: Uint8Array, from: number, cr: number, mechanism: string): boolean {
  const words = bytesToBinary(data.subarray(from, cr)).toUpperCase().split(" ");
  return words[0] === BACKEND_SASL_CAPA && words.includes(mechanism, 1);
}

function isListEnd(data: Uint8Array, from: number, cr: number): boolean {
  return cr - from === BACKEND_LIST_END.length && startsWith(data, from, cr, BACKEND_LIST_END);
}

class Pop3BackendLogin implements BackendLogin {
  readonly #user: string;
  readonly #pass: string;
  readonly #passErrorMessage: boolean;
  readonly #reader: ReplyReader;
  /** Upgrade to TLS with STLS before logging in. */
  readonly #starttls: boolean;
  #stage: Stage = "greeting";
  /** proxy_pop3_xclient on: what the backend is told, if it offers XCLIENT. */
  readonly #forward: ForwardInfo | null;
  /** The backend offered XCLIENT (greeting or CAPA). */
  #offersXclient = false;
  /** proxy_oauth_passthrough: the client's mechanism and the payload to log in with. */
  readonly #oauth: OauthLogin | null;
  /** The backend's CAPA listed the client's token mechanism. */
  #offersMechanism = false;
  /** The RFC 7628 error challenge was answered: the next reply is the final answer. */
  #dummySent = false;

  constructor(ctx: BackendContext) {
    this.#user = ctx.user;
    // The auth layer guarantees a password for POP3 (Auth-Pass or the client's).
    this.#pass = ctx.pass ?? "";
    this.#passErrorMessage = ctx.config.proxyPassErrorMessage;
    this.#reader = new ReplyReader(ctx.config.proxyBuffer);
    this.#starttls = ctx.backendTls === "starttls";
    this.#forward = ctx.config.proxyPop3Xclient ? ctx.forward ?? null : null;
    this.#oauth = oauthPassthrough(ctx);
  }

  tlsStarted(): BackendStep[] {
    if (this.#stage !== "tls") return [];
    this.#offersMechanism = false; // only what CAPA says over TLS counts
    this.#stage = "capa";
    return [{ kind: "send", data: POP3_BACKEND_CAPA }];
  }

  push(chunk: Uint8Array): BackendStep[] {
    // "tls": plaintext that raced the upgrade; it is never parsed.
    if (this.#stage === "finished" || this.#stage === "tls") return [];
    this.#reader.push(chunk);
    const steps: BackendStep[] = [];
    // One line per round; bounded by the lines held. (#reply may finish
    // the login or ask for TLS; TS cannot see that through the call.)
    for (;;) {
      const stage = this.#stage as Stage;
      if (stage === "finished" || stage === "tls") break;
      const r = this.#reader.nextLine();
      if (r.kind === "more") break;
      if (r.kind === "tooLong") {
        steps.push(this.#tooLong(r.text));
        break;
      }
      const step = this.#reply(r.start, r.cr);
      if (step !== null) steps.push(step);
    }
    return steps;
  }

  /** Handles the complete line data()[from, cr); null while a CAPA list is read. */
  #reply(from: number, cr: number): BackendStep | null {
    const data = this.#reader.data();
    switch (this.#stage) {
      case "stls":
        if (!startsWith(data, from, cr, BACKEND_OK_PREFIX)) {
          return this.#internal(logUpstreamNoStarttls(bytesToBinary(data.subarray(from, cr))));
        }
        // Plaintext injection defence: whatever followed the +OK line was
        // sent before TLS and is dropped unread.
        this.#reader.take();
        this.#stage = "tls";
        return { kind: "starttls" };
      case "capa":
        if (startsWith(data, from, cr, BACKEND_OK_PREFIX)) {
          // The list lines stay held: the whole reply counts toward the bound.
          this.#stage = "capaList";
          return null;
        }
        if (!startsWith(data, from, cr, BACKEND_ERR_PREFIX)) {
          return this.#internal(logUpstreamInvalid(bytesToBinary(data.subarray(from, cr))));
        }
        return this.#afterCapa();
      case "capaList":
        // Only the line "." ends the list (".." is a stuffed line).
        if (isListEnd(data, from, cr)) return this.#afterCapa();
        if (isXclientCapa(data, from, cr)) this.#offersXclient = true;
        if (this.#oauth !== null && isSaslCapaWith(data, from, cr, this.#oauth.mechanism)) {
          this.#offersMechanism = true;
        }
        return null;
      case "xclient":
        if (!startsWith(data, from, cr, BACKEND_OK_PREFIX)) {
          return this.#internal(logUpstreamInvalid(bytesToBinary(data.subarray(from, cr))));
        }
        return this.#sendLogin();
      case "auth":
        if (startsWith(data, from, cr, BACKEND_OK_PREFIX)) break; // logged in: as after PASS
        if (!this.#dummySent && startsWith(data, from, cr, "+")) {
          // RFC 7628 §3.2.2 error challenge: the token was refused. The
          // dummy response ends the exchange; the -ERR that follows fails
          // the login (the challenge itself is never passed on).
          this.#dummySent = true;
          this.#reader.endReply();
          return { kind: "send", data: pop3BackendSaslResponse(OAUTH_DUMMY_RESPONSE) };
        }
        return this.#invalid(data, from, cr);
    }
    if (!startsWith(data, from, cr, BACKEND_OK_PREFIX)) return this.#invalid(data, from, cr);
    switch (this.#stage) {
      case "greeting":
        // Dovecot says [XCLIENT] only in its greeting (not in CAPA), and its
        // own proxy keeps that through STLS: so does mailgate.
        if (this.#forward !== null && startsWith(data, from, cr, BACKEND_XCLIENT_GREETING)) {
          this.#offersXclient = true;
        }
        if (this.#starttls) {
          this.#reader.endReply();
          this.#stage = "stls";
          return { kind: "send", data: POP3_BACKEND_STLS };
        }
        if (this.#oauth !== null || (this.#forward !== null && !this.#offersXclient)) {
          this.#reader.endReply();
          this.#stage = "capa";
          return { kind: "send", data: POP3_BACKEND_CAPA };
        }
        return this.#afterCapa();
      case "user":
        this.#reader.endReply();
        this.#stage = "pass";
        return { kind: "send", data: pop3BackendPass(this.#pass) };
      default:
        // The reply to PASS, unchanged, and anything the backend sent after it.
        this.#stage = "finished";
        return { kind: "done", toClient: this.#reader.take() };
    }
  }

  /** Capabilities known: XCLIENT if asked for and offered, else the login. */
  #afterCapa(): BackendStep {
    if (this.#forward === null || !this.#offersXclient) return this.#sendLogin();
    this.#reader.endReply();
    this.#stage = "xclient";
    return { kind: "send", data: pop3BackendXclient(this.#forward) };
  }

  /** The current reply is done with: USER, or AUTH with the client's token mechanism. */
  #sendLogin(): BackendStep {
    const oauth = this.#oauth;
    if (oauth !== null) {
      if (!this.#offersMechanism) return this.#internal(logUpstreamNoMechanism(oauth.mechanism));
      this.#reader.endReply();
      this.#stage = "auth";
      return { kind: "send", data: pop3BackendAuth(oauth.mechanism, oauth.b64) };
    }
    this.#reader.endReply();
    this.#stage = "user";
    return { kind: "send", data: pop3BackendUser(this.#user) };
  }

  /** A failure the client hears of only as an internal error. */
  #internal(message: string): BackendStep {
    this.#stage = "finished";
    return { kind: "fail", toClient: POP3_INTERNAL_ERROR, log: { level: "error", message } };
  }

  #invalid(data: Uint8Array, from: number, cr: number): BackendStep {
    this.#stage = "finished";
    const message = logUpstreamInvalid(bytesToBinary(data.subarray(from, cr)));
    if (!this.#passErrorMessage) {
      return { kind: "fail", toClient: POP3_INTERNAL_ERROR, log: { level: "error", message } };
    }
    // The backend's own reply as received (e.g. "-ERR [IN-USE] mailbox locked").
    return { kind: "fail", toClient: this.#reader.take(), log: { level: "info", message } };
  }

  #tooLong(text: string): BackendStep {
    this.#stage = "finished";
    return {
      kind: "fail",
      toClient: POP3_INTERNAL_ERROR,
      log: { level: "error", message: logUpstreamTooLong(text) },
    };
  }
}
