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
// Unlike nginx, stages 2 and 3 are skipped when the backend's EHLO reply
// does not advertise XCLIENT: nginx sends XCLIENT regardless, and a backend
// that does not offer it (e.g. Postfix without smtpd_authorized_xclient_hosts)
// answers 550, which fails every login.

import type { BackendContext, BackendLogin, BackendStep, SmtpState } from "../core/machine.ts";
import { bytesToBinary } from "../core/bytes.ts";
import { ReplyReader } from "../core/reply_reader.ts";
import {
  BACKEND_AUTH_CODES,
  BACKEND_GREETING_CODES,
  BACKEND_HELO_CODES,
  BACKEND_MAIL_CODES,
  BACKEND_XCLIENT_CODES,
  LOG_NO_PASSWORD,
  logUpstreamInvalid,
  logUpstreamTooLong,
  SMTP_AUTH_SUCCESS,
  SMTP_INTERNAL_ERROR,
  smtpBackendAuthPlain,
  smtpBackendHeloClient,
  smtpBackendHeloServer,
  smtpBackendReplay,
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
}

const NO_SMTP_STATE: SmtpState = { helo: "", esmtp: false, from: "", to: "" };
const HYPHEN = 0x2d;
/** An EHLO reply line naming the XCLIENT extension (`250-XCLIENT NAME ADDR ...`). */
const XCLIENT_LINE = /(^|\n)\d{3}[- ]XCLIENT( |\r|$)/im;
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
    stages.push({
      send: ctx.pass === null ? "no-password" : smtpBackendAuthPlain(ctx.user, ctx.pass),
      accept: BACKEND_AUTH_CODES,
    });
  }
  return stages;
}

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
  #stage = 0;
  #finished = false;
  /** The backend's EHLO reply listed the XCLIENT extension. */
  #xclient = false;

  constructor(ctx: BackendContext) {
    this.#passError = ctx.config.proxyPassErrorMessage;
    this.#plan = plan(ctx);
    this.#reader = new ReplyReader(ctx.config.proxyBuffer);
  }

  /** Backend STARTTLS lands with the backend-TLS extension (issue #4). */
  tlsStarted(): BackendStep[] {
    return [];
  }

  push(chunk: Uint8Array): BackendStep[] {
    if (this.#finished) return [];
    this.#reader.push(chunk);
    const steps: BackendStep[] = [];
    // One line per round; bounded by the lines held.
    while (!this.#finished) {
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
    const accept = this.#plan[this.#stage].accept;
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
    this.#reader.endReply();
    this.#stage++;
    while (this.#stage < this.#plan.length && this.#plan[this.#stage].needsXclient && !this.#xclient) this.#stage++;
    if (this.#stage === this.#plan.length) {
      this.#finished = true;
      return { kind: "done", toClient: SMTP_AUTH_SUCCESS };
    }
    const send = this.#plan[this.#stage].send;
    if (send === "no-password") return this.#fail(SMTP_INTERNAL_ERROR, "error", LOG_NO_PASSWORD);
    // Only stage 0 sends nothing, and it is never entered from here.
    return { kind: "send", data: send! };
  }

  #fail(toClient: Uint8Array, level: "info" | "error", message: string): BackendStep {
    this.#finished = true;
    return { kind: "fail", toClient, log: { level, message } };
  }
}
