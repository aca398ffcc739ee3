// SMTP backend login (smtp.md §8) as a pure machine: backend bytes in,
// steps out. The table of §8.1 becomes a plan fixed at creation: each stage
// sends one command (stage 0: nothing, the greeting is awaited) and accepts
// a set of reply codes:
//
//   0  -                                   220
//   1  EHLO|HELO <server_name>             250
//   2  XCLIENT ADDR= [LOGIN=] NAME=        220 / 250   (xclient on, backend advertises XCLIENT)
//   3  EHLO|HELO <client helo>             250         (as 2, and the client sent HELO/EHLO)
//   4a <client MAIL text>                  250         (none)
//   4b <client RCPT text>                  any -> its bytes go to the client
//   4c AUTH PLAIN <base64>                 235         (not none, proxy_smtp_auth on)
//
// An authenticated session ends with `235 2.0.0 OK` to the client.
//
// Replies are read whole (multi-line `NNN-` replies up to their `NNN `
// line) through ReplyReader, each bounded by proxy_buffer, so the outcome
// does not depend on how the backend's bytes are chunked. Only the first
// three characters of a reply are checked. Bytes a backend sends after a
// reply, before the proxy's next command, are taken as its next reply
// (nginx drops what arrived in the same read; a well-behaved backend sends
// nothing there).
//
// With backend TLS by STARTTLS (mailgate extension, ctx.backendTls
// "starttls") the greeting (stage 0) is followed by an upgrade, and then the
// plan above runs from stage 1 over TLS:
//
//   B: 220 ...            P: EHLO <server_name>
//   B: 250 ... STARTTLS   P: STARTTLS      (no STARTTLS line: fail)
//   B: 220 ...            -> "starttls" step; every byte after this reply is dropped
//   (TLS handshake; tlsStarted())
//                         P: stage 1 (EHLO|HELO <server_name>) ... as above
//
// The XCLIENT check (below) reads only the stage 1 reply, i.e. the one
// received over TLS. A failure before TLS is never passed to the client,
// whatever proxy_pass_error_message says: those replies answer the proxy's
// commands, not the client's.
//
// With proxy_oauth_passthrough on (mailgate extension), proxy_smtp_auth on
// and a client that signed in with XOAUTH2 or OAUTHBEARER, 4c is
// `AUTH <mechanism> <base64>` with the client's mechanism and the token
// (lib/core/oauth_passthrough.ts). The last EHLO reply (stage 1, or 3
// after XCLIENT) must list the mechanism on its AUTH line; if not, the
// login fails with an internal error, never an AUTH PLAIN fallback. An
// RFC 7628 error challenge (334) gets the dummy response `AQ==`, and the
// 535 that follows is a failed login like a refused AUTH PLAIN.
//
// Unlike nginx, stages 2 and 3 are skipped when the backend's EHLO reply
// does not advertise XCLIENT: nginx sends XCLIENT regardless, and a backend
// that does not offer it (e.g. Postfix without smtpd_authorized_xclient_hosts)
// answers 550, which fails every login.

import type { BackendContext, BackendLogin, BackendStep, SmtpState } from "../core/machine.ts";
import { bytesToBinary } from "../core/bytes.ts";
import { ReplyReader } from "../core/reply_reader.ts";
import {
  logUpstreamNoMechanism,
  OAUTH_DUMMY_RESPONSE,
  oauthPassthrough,
} from "../core/oauth_passthrough.ts";
import {
  BACKEND_AUTH_CODES,
  BACKEND_CHALLENGE_CODES,
  BACKEND_GREETING_CODES,
  BACKEND_HELO_CODES,
  BACKEND_MAIL_CODES,
  BACKEND_STARTTLS_CODES,
  BACKEND_XCLIENT_CODES,
  LOG_NO_PASSWORD,
  logUpstreamInvalid,
  logUpstreamNoStarttls,
  logUpstreamTooLong,
  SMTP_AUTH_SUCCESS,
  SMTP_BACKEND_STARTTLS,
  SMTP_INTERNAL_ERROR,
  smtpBackendAuthOauth,
  smtpBackendAuthPlain,
  smtpBackendHeloClient,
  smtpBackendHeloServer,
  smtpBackendReplay,
  smtpBackendSaslResponse,
  smtpBackendXclient,
} from "./replies.ts";

export function createSmtpBackendLogin(ctx: BackendContext): BackendLogin {
  return new SmtpBackendLogin(ctx);
}

/** One row of the plan. */
interface Stage {
  /** What to send on entering the stage; "no-password" fails instead (§8.1 last paragraph). */
  send: Uint8Array | "no-password" | null;
  /** Reply codes accepted; null: any reply, which goes to the client (4b). */
  accept: readonly string[] | null;
  /** Skipped unless the backend's EHLO reply listed XCLIENT. */
  needsXclient?: boolean;
  /** 4c with proxy_oauth_passthrough: the SASL mechanism the last EHLO reply must list. */
  mechanism?: string;
}

const NO_SMTP_STATE: SmtpState = { helo: "", esmtp: false, from: "", to: "" };
const HYPHEN = 0x2d;
/** An EHLO reply line naming the XCLIENT extension (`250-XCLIENT NAME ADDR ...`). */
const XCLIENT_LINE = /(^|\n)\d{3}[- ]XCLIENT( |\r|$)/im;
/** An EHLO reply line naming the STARTTLS extension (RFC 3207). */
const STARTTLS_LINE = /(^|\n)250[- ]STARTTLS( |\r|$)/i;
/** An EHLO reply line listing SASL mechanisms (`250-AUTH PLAIN XOAUTH2`; `AUTH=` is the old form). */
const AUTH_LINE = /(?:^|\n)250[- ]AUTH[ =]([^\r\n]*)/gi;

/** The mechanisms (upper-cased) of an EHLO reply's AUTH lines. */
function authMechanisms(reply: string): string[] {
  const out: string[] = [];
  for (const m of reply.matchAll(AUTH_LINE)) {
    for (const w of m[1].split(" ")) if (w !== "") out.push(w.toUpperCase());
  }
  return out;
}

/** A reply line is `NNN` then `-` (more lines follow) or anything else (last line). */
const CONTINUATION_AT = 3;

function plan(ctx: BackendContext): Stage[] {
  const config = ctx.config;
  const smtp = ctx.creds.smtp ?? NO_SMTP_STATE;
  const none = ctx.creds.method === "none";
  const stages: Stage[] = [{ send: null, accept: BACKEND_GREETING_CODES }];
  stages.push({
    send: smtpBackendHeloServer(config.xclient || smtp.esmtp, config.serverName),
    accept: BACKEND_HELO_CODES,
  });
  if (config.xclient) {
    const login = ctx.user !== "" && !config.proxySmtpAuth ? ctx.user : null;
    stages.push({
      send: smtpBackendXclient(ctx.clientAddr, login, ctx.clientHost),
      accept: BACKEND_XCLIENT_CODES,
      needsXclient: true,
    });
    if (smtp.helo !== "") {
      stages.push({
        send: smtpBackendHeloClient(smtp.esmtp, smtp.helo),
        accept: BACKEND_HELO_CODES,
        needsXclient: true,
      });
    }
  }
  if (none) {
    stages.push({ send: smtpBackendReplay(smtp.from), accept: BACKEND_MAIL_CODES });
    stages.push({ send: smtpBackendReplay(smtp.to), accept: null });
  } else if (config.proxySmtpAuth) {
    const oauth = oauthPassthrough(ctx);
    if (oauth !== null) {
      stages.push({
        send: smtpBackendAuthOauth(oauth.mechanism, oauth.b64),
        accept: BACKEND_AUTH_CODES,
        mechanism: oauth.mechanism,
      });
    } else {
      stages.push({
        send: ctx.pass === null ? "no-password" : smtpBackendAuthPlain(ctx.user, ctx.pass),
        accept: BACKEND_AUTH_CODES,
      });
    }
  }
  return stages;
}

/**
 * The upgrade before the plan (backend TLS by STARTTLS): "off" when it is
 * not used or done, "ehlo" / "starttls" while that reply is awaited, "tls"
 * from the go-ahead until tlsStarted().
 */
type Upgrade = "off" | "ehlo" | "starttls" | "tls";

function codeIs(data: Uint8Array, codes: readonly string[]): boolean {
  return codes.some((c) =>
    data.length >= 3 && data[0] === c.charCodeAt(0) && data[1] === c.charCodeAt(1) &&
    data[2] === c.charCodeAt(2)
  );
}

class SmtpBackendLogin implements BackendLogin {
  readonly #passError: boolean;
  readonly #plan: Stage[];
  readonly #reader: ReplyReader;
  readonly #serverName: string;
  /** Upgrade to TLS with STARTTLS once the greeting is in. */
  readonly #starttls: boolean;
  #upgrade: Upgrade = "off";
  #stage = 0;
  #finished = false;
  /** The backend's EHLO reply listed the XCLIENT extension. */
  #xclient = false;
  /** SASL mechanisms of the last EHLO reply (stage 1, or 3), upper-cased. */
  #authMechanisms: string[] = [];
  /** The RFC 7628 error challenge was answered: the next reply is the final answer. */
  #dummySent = false;

  constructor(ctx: BackendContext) {
    this.#passError = ctx.config.proxyPassErrorMessage;
    this.#plan = plan(ctx);
    this.#reader = new ReplyReader(ctx.config.proxyBuffer);
    this.#serverName = ctx.config.serverName;
    this.#starttls = ctx.backendTls === "starttls";
  }

  tlsStarted(): BackendStep[] {
    if (this.#upgrade !== "tls") return [];
    // The plan from stage 1, as on a fresh connection (RFC 3207 §4.2: the
    // client discards what it knew; the new EHLO reply is the one that counts).
    this.#upgrade = "off";
    this.#stage = 1;
    return [{ kind: "send", data: this.#plan[1].send as Uint8Array }];
  }

  push(chunk: Uint8Array): BackendStep[] {
    // "tls": plaintext that raced the upgrade; it is never parsed.
    if (this.#finished || this.#upgrade === "tls") return [];
    this.#reader.push(chunk);
    const steps: BackendStep[] = [];
    // One line per round; bounded by the lines held. (#reply may ask for
    // TLS; TS cannot see that through the call.)
    while (!this.#finished && (this.#upgrade as Upgrade) !== "tls") {
      const r = this.#reader.nextLine();
      if (r.kind === "more") break;
      if (r.kind === "tooLong") {
        steps.push(this.#fail(SMTP_INTERNAL_ERROR, "error", logUpstreamTooLong(r.text)));
        break;
      }
      const data = this.#reader.data();
      if (r.cr - r.start > CONTINUATION_AT && data[r.start + CONTINUATION_AT] === HYPHEN) continue;
      steps.push(this.#reply(data, r.cr));
    }
    return steps;
  }

  /** A complete reply: data[0, cr) plus its CRLF. */
  #reply(data: Uint8Array, cr: number): BackendStep {
    if (this.#upgrade !== "off") return this.#upgradeReply(data, cr);
    const stage = this.#plan[this.#stage];
    const accept = stage.accept;
    if (
      stage.mechanism !== undefined && !this.#dummySent && codeIs(data, BACKEND_CHALLENGE_CODES)
    ) {
      // RFC 7628 §3.2.2 error challenge: the token was refused. The dummy
      // response ends the exchange; the 535 that follows fails the login
      // (the challenge itself is never passed on).
      this.#dummySent = true;
      this.#reader.endReply();
      return { kind: "send", data: smtpBackendSaslResponse(OAUTH_DUMMY_RESPONSE) };
    }
    if (accept === null) {
      // 4b: the RCPT reply, whatever its code, as received.
      this.#finished = true;
      return { kind: "done", toClient: this.#reader.take() };
    }
    if (!codeIs(data, accept)) {
      const text = bytesToBinary(data.subarray(0, cr));
      // proxy_pass_error_message on: the backend's reply bytes, unchanged.
      if (this.#passError) return this.#fail(this.#reader.take(), "info", logUpstreamInvalid(text));
      return this.#fail(SMTP_INTERNAL_ERROR, "error", logUpstreamInvalid(text));
    }
    if (this.#stage === 1) this.#xclient = XCLIENT_LINE.test(bytesToBinary(data.subarray(0, cr)));
    if (accept === BACKEND_HELO_CODES) {
      this.#authMechanisms = authMechanisms(bytesToBinary(data.subarray(0, cr)));
    }
    this.#reader.endReply();
    if (this.#stage === 0 && this.#starttls) {
      this.#upgrade = "ehlo";
      return { kind: "send", data: smtpBackendHeloServer(true, this.#serverName) };
    }
    this.#stage++;
    while (this.#stage < this.#plan.length && this.#plan[this.#stage].needsXclient && !this.#xclient) this.#stage++;
    if (this.#stage === this.#plan.length) {
      this.#finished = true;
      return { kind: "done", toClient: SMTP_AUTH_SUCCESS };
    }
    const next = this.#plan[this.#stage];
    const send = next.send;
    if (send === "no-password") return this.#fail(SMTP_INTERNAL_ERROR, "error", LOG_NO_PASSWORD);
    if (next.mechanism !== undefined && !this.#authMechanisms.includes(next.mechanism)) {
      return this.#fail(SMTP_INTERNAL_ERROR, "error", logUpstreamNoMechanism(next.mechanism));
    }
    // Only stage 0 sends nothing, and it is never entered from here.
    return { kind: "send", data: send! };
  }

  /** A reply during the upgrade: to the EHLO, then to STARTTLS. */
  #upgradeReply(data: Uint8Array, cr: number): BackendStep {
    if (this.#upgrade === "ehlo") {
      const offered = codeIs(data, BACKEND_HELO_CODES) &&
        STARTTLS_LINE.test(bytesToBinary(data.subarray(0, cr)));
      if (!offered) return this.#noStarttls(data, cr);
      this.#reader.endReply();
      this.#upgrade = "starttls";
      return { kind: "send", data: SMTP_BACKEND_STARTTLS };
    }
    if (!codeIs(data, BACKEND_STARTTLS_CODES)) return this.#noStarttls(data, cr);
    // Plaintext injection defence: whatever followed the 220 reply was sent
    // before TLS and is dropped unread.
    this.#reader.take();
    this.#upgrade = "tls";
    return { kind: "starttls" };
  }

  #noStarttls(data: Uint8Array, cr: number): BackendStep {
    const reply = bytesToBinary(data.subarray(0, cr));
    return this.#fail(SMTP_INTERNAL_ERROR, "error", logUpstreamNoStarttls(reply));
  }

  #fail(toClient: Uint8Array, level: "info" | "error", message: string): BackendStep {
    this.#finished = true;
    return { kind: "fail", toClient, log: { level, message } };
  }
}
