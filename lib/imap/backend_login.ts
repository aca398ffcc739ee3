// IMAP backend login (imap.md §8) as a pure machine: backend bytes in,
// steps out. Always `LOGIN` with synchronising literals:
//
//   B: * OK ...            P: <tag> LOGIN {<ulen>}
//   B: + ...               P: <user> {<plen>}
//   B: + ...               P: <password>
//   B: [* ...]*  <tag> OK ...   -> everything after the password line goes to the client
//
// Replies are handled a complete CRLF-terminated line at a time, so the
// outcome does not depend on how the backend's bytes are chunked. Each
// reply (for the final one: all its untagged lines plus the tagged line)
// must complete within proxy_buffer bytes.

import type { BackendContext, BackendLogin, BackendStep } from "../core/machine.ts";
import { bytesToBinary } from "../core/bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../core/line_buffer.ts";
import {
  BACKEND_CONTINUATION_PREFIX,
  BACKEND_GREETING_PREFIX,
  BACKEND_UNTAGGED_PREFIX,
  backendTaggedOkPrefix,
  IMAP_INTERNAL_ERROR,
  imapBackendLogin,
  imapBackendPassword,
  imapBackendUser,
  logUpstreamInvalid,
  logUpstreamTooLong,
} from "./replies.ts";

export function createImapBackendLogin(ctx: BackendContext): BackendLogin {
  return new ImapBackendLogin(ctx);
}

/** Which backend reply is awaited. */
type Stage = "greeting" | "user" | "password" | "result" | "finished";

const CR = 0x0d, LF = 0x0a;

function startsWith(data: Uint8Array, from: number, to: number, prefix: string): boolean {
  if (to - from < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (data[from + i] !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

class ImapBackendLogin implements BackendLogin {
  readonly #ctx: BackendContext;
  readonly #tag: string;
  readonly #user: string;
  readonly #pass: string;
  readonly #limit: number;
  readonly #input: LineBuffer;
  #stage: Stage = "greeting";
  /** Start of the line being examined (after untagged lines of the final reply). */
  #lineStart = 0;
  /** Where the CRLF search resumes, so no byte is scanned twice. */
  #scan = 0;

  constructor(ctx: BackendContext) {
    this.#ctx = ctx;
    this.#tag = ctx.creds.tag ?? "";
    this.#user = ctx.user;
    this.#pass = ctx.pass ?? "";
    this.#limit = ctx.config.proxyBuffer;
    this.#input = new LineBuffer(this.#limit + READ_CHUNK_SLACK);
  }

  /** Backend STARTTLS lands with the backend-TLS extension (issue #4). */
  tlsStarted(): BackendStep[] {
    return [];
  }

  push(chunk: Uint8Array): BackendStep[] {
    if (this.#stage === "finished") return [];
    if (!this.#input.push(chunk)) return [this.#tooLong()];
    const steps: BackendStep[] = [];
    // Each round handles one complete line; bounded by the lines held.
    for (;;) {
      const data = this.#input.view();
      const limit = Math.min(data.length, this.#limit);
      const cr = this.#findCrlf(data, limit);
      if (cr < 0) {
        if (data.length >= this.#limit) steps.push(this.#tooLong());
        return steps;
      }
      const step = this.#line(data, this.#lineStart, cr);
      if (step) steps.push(step);
      // (#line may have finished the login; TS cannot see that through the call.)
      if ((this.#stage as Stage) === "finished") return steps;
    }
  }

  /** Offset of the CR of the first CRLF at or after the current line start, within limit; -1 if none. */
  #findCrlf(data: Uint8Array, limit: number): number {
    let i = Math.max(this.#scan, this.#lineStart);
    for (; i + 1 < limit; i++) {
      if (data[i] === CR && data[i + 1] === LF) return i;
    }
    this.#scan = i; // a trailing CR is looked at again with the next byte
    return -1;
  }

  /** Handles the complete line data[from, cr) (CRLF at cr). */
  #line(data: Uint8Array, from: number, cr: number): BackendStep | null {
    const end = cr + 2;
    switch (this.#stage) {
      case "greeting":
        if (!startsWith(data, from, cr, BACKEND_GREETING_PREFIX)) {
          return this.#invalid(data, from, cr);
        }
        this.#advance(end, "user");
        return { kind: "send", data: imapBackendLogin(this.#tag, this.#user.length) };
      case "user":
        if (!startsWith(data, from, cr, BACKEND_CONTINUATION_PREFIX)) {
          return this.#invalid(data, from, cr);
        }
        this.#advance(end, "password");
        return { kind: "send", data: imapBackendUser(this.#user, this.#pass.length) };
      case "password":
        if (!startsWith(data, from, cr, BACKEND_CONTINUATION_PREFIX)) {
          return this.#invalid(data, from, cr);
        }
        this.#advance(end, "result");
        return { kind: "send", data: imapBackendPassword(this.#pass) };
      case "result":
        // Product: any number of untagged lines before the tagged reply.
        if (startsWith(data, from, cr, BACKEND_UNTAGGED_PREFIX)) {
          this.#lineStart = this.#scan = end;
          return null;
        }
        if (!startsWith(data, from, cr, backendTaggedOkPrefix(this.#tag))) {
          return this.#invalid(data, from, cr);
        }
        this.#stage = "finished";
        // The untagged lines, the tagged OK, and anything after it.
        return { kind: "done", toClient: this.#input.take() };
      case "finished":
        return null;
    }
  }

  #advance(consumed: number, next: Stage): void {
    this.#input.consume(consumed);
    this.#lineStart = this.#scan = 0;
    this.#stage = next;
  }

  #invalid(data: Uint8Array, from: number, cr: number): BackendStep {
    this.#stage = "finished";
    const line = bytesToBinary(data.subarray(from, cr));
    if (!this.#ctx.config.proxyPassErrorMessage) {
      return {
        kind: "fail",
        toClient: IMAP_INTERNAL_ERROR,
        log: { level: "error", message: logUpstreamInvalid(line) },
      };
    }
    // The backend's own reply, as received (with any untagged lines before it).
    return {
      kind: "fail",
      toClient: this.#input.take(),
      log: { level: "info", message: logUpstreamInvalid(line) },
    };
  }

  #tooLong(): BackendStep {
    this.#stage = "finished";
    // As nginx: the buffer's content minus its last byte.
    const data = this.#input.view();
    const line = bytesToBinary(
      data.subarray(0, Math.max(0, Math.min(data.length, this.#limit) - 1)),
    );
    this.#input.clear();
    return {
      kind: "fail",
      toClient: IMAP_INTERNAL_ERROR,
      log: { level: "error", message: logUpstreamTooLong(line) },
    };
  }
}
