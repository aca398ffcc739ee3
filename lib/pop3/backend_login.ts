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
  BACKEND_ERR_PREFIX,
  BACKEND_LIST_END,
  BACKEND_OK_PREFIX,
  BACKEND_XCLIENT_CAPA,
  BACKEND_XCLIENT_GREETING,
  logUpstreamInvalid,
  logUpstreamNoStarttls,
  logUpstreamTooLong,
  POP3_BACKEND_CAPA,
  POP3_BACKEND_STLS,
  POP3_INTERNAL_ERROR,
  pop3BackendPass,
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

  constructor(ctx: BackendContext) {
    this.#user = ctx.user;
    // The auth layer guarantees a password for POP3 (Auth-Pass or the client's).
    this.#pass = ctx.pass ?? "";
    this.#passErrorMessage = ctx.config.proxyPassErrorMessage;
    this.#reader = new ReplyReader(ctx.config.proxyBuffer);
    this.#starttls = ctx.backendTls === "starttls";
    this.#forward = ctx.config.proxyPop3Xclient ? ctx.forward ?? null : null;
  }

  tlsStarted(): BackendStep[] {
    if (this.#stage !== "tls") return [];
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
        return null;
      case "xclient":
        if (!startsWith(data, from, cr, BACKEND_OK_PREFIX)) {
          return this.#internal(logUpstreamInvalid(bytesToBinary(data.subarray(from, cr))));
        }
        return this.#sendUser();
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
        if (this.#forward !== null) {
          if (this.#offersXclient) return this.#afterCapa();
          this.#reader.endReply();
          this.#stage = "capa";
          return { kind: "send", data: POP3_BACKEND_CAPA };
        }
        return this.#sendUser();
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

  /** Capabilities known: XCLIENT if asked for and offered, else USER. */
  #afterCapa(): BackendStep {
    if (this.#forward === null || !this.#offersXclient) return this.#sendUser();
    this.#reader.endReply();
    this.#stage = "xclient";
    return { kind: "send", data: pop3BackendXclient(this.#forward) };
  }

  /** The current reply is done with: USER is next. */
  #sendUser(): BackendStep {
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
