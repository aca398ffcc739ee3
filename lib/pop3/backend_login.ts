// POP3 backend login (pop3.md §9) as a pure machine: backend bytes in,
// steps out. Always USER/PASS, whatever the client used:
//
//   B: +OK ...     P: USER <user>
//   B: +OK ...     P: PASS <password>
//   B: +OK ...     -> this reply and anything after it goes to the client
//
// Each reply is one CRLF-terminated line of at most proxy_buffer bytes
// (lib/core/reply_reader.ts) and must start with "+OK".

import type { BackendContext, BackendLogin, BackendStep } from "../core/machine.ts";
import { bytesToBinary } from "../core/bytes.ts";
import { ReplyReader } from "../core/reply_reader.ts";
import {
  BACKEND_OK_PREFIX,
  logUpstreamInvalid,
  logUpstreamTooLong,
  POP3_INTERNAL_ERROR,
  pop3BackendPass,
  pop3BackendUser,
} from "./replies.ts";

export function createPop3BackendLogin(ctx: BackendContext): BackendLogin {
  return new Pop3BackendLogin(ctx);
}

/** Which backend reply is awaited. */
type Stage = "greeting" | "user" | "pass" | "finished";

function startsWith(data: Uint8Array, from: number, to: number, prefix: string): boolean {
  if (to - from < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (data[from + i] !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

class Pop3BackendLogin implements BackendLogin {
  readonly #user: string;
  readonly #pass: string;
  readonly #passErrorMessage: boolean;
  readonly #reader: ReplyReader;
  #stage: Stage = "greeting";

  constructor(ctx: BackendContext) {
    this.#user = ctx.user;
    // The auth layer guarantees a password for POP3 (Auth-Pass or the client's).
    this.#pass = ctx.pass ?? "";
    this.#passErrorMessage = ctx.config.proxyPassErrorMessage;
    this.#reader = new ReplyReader(ctx.config.proxyBuffer);
  }

  /** Backend STARTTLS lands with the backend-TLS extension (issue #4). */
  tlsStarted(): BackendStep[] {
    return [];
  }

  push(chunk: Uint8Array): BackendStep[] {
    if (this.#stage === "finished") return [];
    this.#reader.push(chunk);
    const steps: BackendStep[] = [];
    // One reply per round; bounded by the lines held. (#reply may finish
    // the login; TS cannot see that through the call.)
    while ((this.#stage as Stage) !== "finished") {
      const r = this.#reader.nextLine();
      if (r.kind === "more") break;
      if (r.kind === "tooLong") {
        steps.push(this.#tooLong(r.text));
        break;
      }
      steps.push(this.#reply(r.start, r.cr));
    }
    return steps;
  }

  /** Handles the complete reply line data()[from, cr). */
  #reply(from: number, cr: number): BackendStep {
    const data = this.#reader.data();
    if (!startsWith(data, from, cr, BACKEND_OK_PREFIX)) return this.#invalid(data, from, cr);
    switch (this.#stage) {
      case "greeting":
        this.#reader.endReply();
        this.#stage = "user";
        return { kind: "send", data: pop3BackendUser(this.#user) };
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
