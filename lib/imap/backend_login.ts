// IMAP backend login (imap.md §8) as a pure machine: backend bytes in,
// steps out. Always `LOGIN` with synchronising literals:
//
//   B: * OK ...            P: <tag> LOGIN {<ulen>}
//   B: + ...               P: <user> {<plen>}
//   B: + ...               P: <password>
//   B: [* ...]*  <tag> OK ...   -> everything after the password line goes to the client
//
// With backend TLS by STARTTLS (mailgate extension, ctx.backendTls
// "starttls") the greeting is followed by an upgrade and a fresh look at
// the capabilities before the LOGIN above:
//
//   B: * OK ...            P: mgs1 STARTTLS
//   B: [* ...]*  mgs1 OK ...   -> "starttls" step; every byte after this line is dropped
//   (TLS handshake; tlsStarted())
//                          P: mgs2 CAPABILITY
//   B: [* ...]*  mgs2 OK ...   P: <tag> LOGIN {<ulen>} ... as above
//
// With proxy_imap_id on (mailgate extension), a backend that offers ID
// (in its greeting's [CAPABILITY ...] code, else in the answer to a
// CAPABILITY of the proxy's) is told who the client is before LOGIN, as
// Dovecot's proxy does; its answer, whatever it is, is skipped:
//
//   B: * OK [CAPABILITY ... ID ...] ...   (no code: P: mgs2 CAPABILITY, B: * CAPABILITY ... mgs2 OK)
//                          P: mgs3 ID ("x-originating-ip" "203.0.113.7" ...)
//   B: [* ID ...]  mgs3 OK ...             P: <tag> LOGIN {<ulen>} ... as above
//
// With proxy_oauth_passthrough on (mailgate extension) and a client that
// signed in with XOAUTH2 or OAUTHBEARER, the backend is logged in to with
// the same mechanism and the token (lib/core/oauth_passthrough.ts) instead
// of LOGIN. Its capabilities are needed (greeting code, else CAPABILITY as
// above); no AUTH=<mechanism> there is an internal error, never a LOGIN
// fallback. SASL-IR offered:
//
//                          P: <tag> AUTHENTICATE XOAUTH2 <base64>
//   B: [* ...]*  <tag> OK ...              -> to the client, as after LOGIN
//
// else the payload follows the continuation:
//
//                          P: <tag> AUTHENTICATE XOAUTH2
//   B: + ...               P: <base64>
//
// A backend that refuses the token with RFC 7628's error challenge gets
// the dummy response, and its final answer is a failed login like a
// refused LOGIN:
//
//   B: + eyJzdGF0dXMiOi...  P: AQ==
//   B: <tag> NO ...        -> login failed (internal error, or the NO with proxy_pass_error_message)
//
// Any other answer to STARTTLS fails the login (never a plaintext
// fallback); neither that reply nor the CAPABILITY one is ever passed to
// the client, whatever proxy_pass_error_message says: they answer the
// proxy's commands, not the client's.
//
// Replies are handled a complete CRLF-terminated line at a time, so the
// outcome does not depend on how the backend's bytes are chunked. Each
// reply (for a tagged one: all its untagged lines plus the tagged line)
// must complete within proxy_buffer bytes.

import type { BackendContext, BackendLogin, BackendStep } from "../core/machine.ts";
import { bytesToBinary } from "../core/bytes.ts";
import { LineBuffer, READ_CHUNK_SLACK } from "../core/line_buffer.ts";
import { forwardFields, MAX_ID_PAIRS, retainedFields } from "./id.ts";
import type { ForwardInfo } from "../core/machine.ts";
import {
  logUpstreamNoMechanism,
  OAUTH_DUMMY_RESPONSE,
  type OauthLogin,
  oauthPassthrough,
} from "../core/oauth_passthrough.ts";
import {
  BACKEND_CAPABILITY_TAG,
  BACKEND_ID_TAG,
  BACKEND_CONTINUATION_PREFIX,
  BACKEND_GREETING_PREFIX,
  BACKEND_STARTTLS_TAG,
  BACKEND_UNTAGGED_PREFIX,
  backendTaggedOkPrefix,
  IMAP_BACKEND_CAPABILITY,
  IMAP_BACKEND_STARTTLS,
  IMAP_INTERNAL_ERROR,
  imapBackendAuthenticate,
  imapBackendId,
  imapBackendLogin,
  imapBackendPassword,
  imapBackendSaslResponse,
  imapBackendUser,
  logUpstreamInvalid,
  logUpstreamNoStarttls,
  logUpstreamTooLong,
} from "./replies.ts";

export function createImapBackendLogin(ctx: BackendContext): BackendLogin {
  return new ImapBackendLogin(ctx);
}

/**
 * Which backend reply is awaited. "tls": the upgrade was asked for and
 * nothing is read until tlsStarted().
 */
type Stage =
  | "greeting"
  | "starttls"
  | "tls"
  | "capability"
  | "id"
  | "sasl"
  | "user"
  | "password"
  | "result"
  | "finished";

const STARTTLS_OK = backendTaggedOkPrefix(BACKEND_STARTTLS_TAG);
const CAPABILITY_OK = backendTaggedOkPrefix(BACKEND_CAPABILITY_TAG);
/** Any tagged answer to the proxy's ID: a backend that refuses it is logged in to all the same. */
const ID_TAGGED = BACKEND_ID_TAG + " ";

const CR = 0x0d, LF = 0x0a;

function startsWith(data: Uint8Array, from: number, to: number, prefix: string): boolean {
  if (to - from < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (data[from + i] !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The capabilities (upper-cased) of the greeting's `* OK [CAPABILITY ...]`
 * or an untagged `* CAPABILITY ...`; null if the line lists none.
 */
function capabilitiesOf(data: Uint8Array, from: number, cr: number): string[] | null {
  const m = /^\* (?:OK \[)?CAPABILITY ([^\]]*)/i.exec(bytesToBinary(data.subarray(from, cr)));
  if (m === null) return null;
  return m[1].split(" ").filter((w) => w !== "").map((w) => w.toUpperCase());
}

class ImapBackendLogin implements BackendLogin {
  readonly #ctx: BackendContext;
  readonly #tag: string;
  readonly #user: string;
  readonly #pass: string;
  readonly #limit: number;
  readonly #input: LineBuffer;
  /** Upgrade to TLS with STARTTLS before logging in. */
  readonly #starttls: boolean;
  #stage: Stage = "greeting";
  /** Start of the line being examined (after untagged lines of the final reply). */
  #lineStart = 0;
  /** Where the CRLF search resumes, so no byte is scanned twice. */
  #scan = 0;
  /** proxy_imap_id on: what the backend is told, if it offers ID. */
  readonly #forward: ForwardInfo | null;
  /** proxy_oauth_passthrough: the client's mechanism and the payload to log in with. */
  readonly #oauth: OauthLogin | null;
  /** The capabilities last read (upper-cased), when they were needed. */
  #caps: string[] = [];
  /** The RFC 7628 error challenge was answered: the next line is the final answer. */
  #dummySent = false;

  constructor(ctx: BackendContext) {
    this.#ctx = ctx;
    this.#tag = ctx.creds.tag ?? "";
    this.#user = ctx.user;
    this.#pass = ctx.pass ?? "";
    this.#limit = ctx.config.proxyBuffer;
    this.#input = new LineBuffer(this.#limit + READ_CHUNK_SLACK);
    this.#starttls = ctx.backendTls === "starttls";
    this.#forward = ctx.config.proxyImapId ? ctx.forward ?? null : null;
    this.#oauth = oauthPassthrough(ctx);
  }

  tlsStarted(): BackendStep[] {
    if (this.#stage !== "tls") return [];
    // Capabilities from before TLS do not count (RFC 3501 §6.2.1).
    this.#caps = [];
    this.#stage = "capability";
    return [{ kind: "send", data: IMAP_BACKEND_CAPABILITY }];
  }

  push(chunk: Uint8Array): BackendStep[] {
    // "tls": plaintext that raced the upgrade; it is never parsed.
    if (this.#stage === "finished" || this.#stage === "tls") return [];
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
      // (#line may have finished the login or asked for TLS; TS cannot see
      // that through the call.)
      const stage = this.#stage as Stage;
      if (stage === "finished" || stage === "tls") return steps;
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
        if (this.#starttls) {
          this.#advance(end, "starttls");
          return { kind: "send", data: IMAP_BACKEND_STARTTLS };
        }
        if (this.#forward !== null || this.#oauth !== null) {
          const caps = capabilitiesOf(data, from, cr);
          if (caps === null) {
            // No capabilities in the greeting: ask for them.
            this.#advance(end, "capability");
            return { kind: "send", data: IMAP_BACKEND_CAPABILITY };
          }
          this.#caps = caps;
        }
        return this.#afterCapabilities(end);
      case "starttls":
        if (this.#untagged(data, from, cr, end)) return null;
        if (!startsWith(data, from, cr, STARTTLS_OK)) {
          return this.#internal(logUpstreamNoStarttls(bytesToBinary(data.subarray(from, cr))));
        }
        // Plaintext injection defence: whatever followed the OK line was
        // sent before TLS and is dropped unread.
        this.#input.clear();
        this.#lineStart = this.#scan = 0;
        this.#stage = "tls";
        return { kind: "starttls" };
      case "capability":
        if (this.#untagged(data, from, cr, end)) {
          const caps = capabilitiesOf(data, from, cr);
          if (caps !== null) this.#caps.push(...caps);
          return null;
        }
        if (!startsWith(data, from, cr, CAPABILITY_OK)) {
          return this.#internal(logUpstreamInvalid(bytesToBinary(data.subarray(from, cr))));
        }
        return this.#afterCapabilities(end);
      case "id":
        if (this.#untagged(data, from, cr, end)) return null;
        if (!startsWith(data, from, cr, ID_TAGGED)) {
          return this.#internal(logUpstreamInvalid(bytesToBinary(data.subarray(from, cr))));
        }
        return this.#login(end);
      case "sasl":
        // The continuation that asks for the payload (no SASL-IR).
        if (!startsWith(data, from, cr, BACKEND_CONTINUATION_PREFIX)) {
          return this.#invalid(data, from, cr);
        }
        this.#advance(end, "result");
        return { kind: "send", data: imapBackendSaslResponse(this.#oauth!.b64) };
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
        if (this.#untagged(data, from, cr, end)) return null;
        if (
          this.#oauth !== null && !this.#dummySent &&
          startsWith(data, from, cr, BACKEND_CONTINUATION_PREFIX)
        ) {
          // RFC 7628 §3.2.2 error challenge: the token was refused. The
          // dummy response ends the exchange; the tagged NO that follows
          // fails the login (the challenge itself is never passed on).
          this.#dummySent = true;
          this.#advance(end, "result");
          return { kind: "send", data: imapBackendSaslResponse(OAUTH_DUMMY_RESPONSE) };
        }
        if (!startsWith(data, from, cr, backendTaggedOkPrefix(this.#tag))) {
          return this.#invalid(data, from, cr);
        }
        this.#stage = "finished";
        // The untagged lines, the tagged OK, and anything after it.
        return { kind: "done", toClient: this.#input.take() };
      case "tls":
      case "finished":
        return null;
    }
  }

  /** Capabilities known (the reply ends at `end`): ID if asked for and offered, else the login. */
  #afterCapabilities(end: number): BackendStep {
    if (this.#forward !== null && this.#caps.includes("ID")) {
      this.#advance(end, "id");
      const own = forwardFields(this.#forward);
      const client = retainedFields(this.#ctx.creds.imapId ?? [], MAX_ID_PAIRS - own.length);
      return { kind: "send", data: imapBackendId([...own, ...client]) };
    }
    return this.#login(end);
  }

  /** LOGIN, or AUTHENTICATE with the client's token mechanism (proxy_oauth_passthrough). */
  #login(end: number): BackendStep {
    const oauth = this.#oauth;
    if (oauth === null) {
      this.#advance(end, "user");
      return { kind: "send", data: imapBackendLogin(this.#tag, this.#user.length) };
    }
    if (!this.#caps.includes("AUTH=" + oauth.mechanism)) {
      return this.#internal(logUpstreamNoMechanism(oauth.mechanism));
    }
    if (this.#caps.includes("SASL-IR")) {
      this.#advance(end, "result");
      return { kind: "send", data: imapBackendAuthenticate(this.#tag, oauth.mechanism, oauth.b64) };
    }
    this.#advance(end, "sasl");
    return { kind: "send", data: imapBackendAuthenticate(this.#tag, oauth.mechanism, null) };
  }

  /**
   * An untagged line of a tagged reply: kept in the buffer (it counts toward
   * the reply's bound) and skipped. Returns false for any other line.
   */
  #untagged(data: Uint8Array, from: number, cr: number, end: number): boolean {
    if (!startsWith(data, from, cr, BACKEND_UNTAGGED_PREFIX)) return false;
    this.#lineStart = this.#scan = end;
    return true;
  }

  /** A failure the client hears of only as an internal error. */
  #internal(message: string): BackendStep {
    this.#stage = "finished";
    this.#input.clear();
    return { kind: "fail", toClient: IMAP_INTERNAL_ERROR, log: { level: "error", message } };
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
