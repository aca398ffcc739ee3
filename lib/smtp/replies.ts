// Every byte string mailgate's SMTP side writes (to the client and to the
// backend) and its SMTP log lines, named, so they can be checked against
// spec/smtp.md line by line. HELO arguments, MAIL/RCPT texts, user names and
// passwords are binary strings (one char per byte); server_name,
// smtp_capabilities and Auth-Status text come from text sources.

import type { ServerConfig } from "../config/types.ts";
import { binaryToBytes, bytesToBinary, textBytes } from "../core/bytes.ts";
import { escapeForLog, redactCommand } from "../core/redact.ts";
import { encodeBase64 } from "../core/sasl.ts";
import { offeredMechanisms } from "../core/sasl_exchange.ts";
import { xtextEncode } from "./xtext.ts";

const CRLF = "\r\n";

// ---- to the client, fixed (§5) ---------------------------------------------

export const SMTP_OK = textBytes("250 2.0.0 OK" + CRLF);
export const SMTP_BYE = textBytes("221 2.0.0 Bye" + CRLF);
export const SMTP_START_TLS = textBytes("220 2.0.0 Start TLS" + CRLF);
export const SMTP_INVALID_COMMAND = textBytes("500 5.5.1 Invalid command" + CRLF);
export const SMTP_INVALID_ARGUMENT = textBytes("501 5.5.4 Invalid argument" + CRLF);
export const SMTP_BAD_SEQUENCE = textBytes("503 5.5.1 Bad sequence of commands" + CRLF);
export const SMTP_AUTH_REQUIRED = textBytes("530 5.7.1 Authentication required" + CRLF);
/** §3: sent by the driver to a client that talks before the greeting, then close. */
export const SMTP_PIPELINING_BEFORE_GREETING = textBytes(
  "503 5.5.0 Improper use of SMTP command pipelining" + CRLF,
);
/** README "Common rules": every internal failure; the connection is then closed. */
export const SMTP_INTERNAL_ERROR = textBytes("451 4.3.2 Internal server error" + CRLF);
/** limit_conn refusal (freenginx), then close. */
export const SMTP_TOO_MANY_CONNECTIONS = textBytes("454 4.7.0 Too many connections" + CRLF);
/** tls_and_proxy_protocol.md §4: ssl_verify_client failures. */
export const SMTP_CERT_ERROR = textBytes("421 4.7.1 SSL certificate error" + CRLF);
export const SMTP_NO_CERT = textBytes("421 4.7.1 No required SSL certificate" + CRLF);
/** §8.2: what the client sees when the backend login of an AUTH session succeeds. */
export const SMTP_AUTH_SUCCESS = textBytes("235 2.0.0 OK" + CRLF);

/** §7: the code used for a refusal when the auth server sent no Auth-Error-Code. */
export const SMTP_DEFAULT_REFUSAL_CODE = "535 5.7.0";

// ---- to the client, built ----------------------------------------------------

/** §1 */
export function smtpGreeting(serverName: string): Uint8Array {
  return textBytes(`220 ${serverName} ESMTP ready` + CRLF);
}

/** §6 HELO reply. */
export function smtpHeloReply(serverName: string): Uint8Array {
  return textBytes(`250 ${serverName}` + CRLF);
}

/**
 * §6 AUTH challenge: `334 ` and the base64 payload (PLAIN: nothing after
 * the space; LOGIN / EXTERNAL: "Username:"; CRAM-MD5: the salt).
 */
export function smtpChallenge(payload: string): Uint8Array {
  return textBytes("334 " + payload + CRLF);
}

/**
 * §7 refusal: `<code> <message>`. Both are the auth server's header values
 * as binary strings, sent byte for byte.
 */
export function smtpRefused(message: string, errorCode: string | null): Uint8Array {
  return binaryToBytes((errorCode ?? SMTP_DEFAULT_REFUSAL_CODE) + " " + message + CRLF);
}

/** §6 the EHLO reply for a TLS state. */
export function smtpEhloReply(config: ServerConfig, tls: boolean): Uint8Array {
  const lines = [config.serverName, ...config.smtpCapabilities];
  // In the fixed order of the mechanism table (§6).
  const methods = offeredMechanisms(config.smtpAuth);
  const auth = methods.length > 0 ? ["AUTH " + methods.join(" ")] : [];
  if (tls || config.starttls === "off") lines.push(...auth);
  else if (config.starttls === "on") lines.push(...auth, "STARTTLS");
  else lines.push("STARTTLS"); // only: no AUTH line before TLS
  const last = lines.length - 1;
  return textBytes(lines.map((l, i) => (i < last ? "250-" : "250 ") + l + CRLF).join(""));
}

// ---- to the backend (§8.1) ---------------------------------------------------

/** Step 1: `EHLO <server_name>` / `HELO <server_name>` (config text). */
export function smtpBackendHeloServer(esmtp: boolean, serverName: string): Uint8Array {
  return textBytes((esmtp ? "EHLO " : "HELO ") + serverName + CRLF);
}

/** Step 3: `EHLO <helo>` / `HELO <helo>` with the client's HELO argument (binary). */
export function smtpBackendHeloClient(esmtp: boolean, helo: string): Uint8Array {
  return binaryToBytes((esmtp ? "EHLO " : "HELO ") + helo + CRLF);
}

/** Step 2. `login` is the user name (binary), or null to leave LOGIN= out. */
export function smtpBackendXclient(addr: string, login: string | null, host: string): Uint8Array {
  // As nginx: only addresses of the IPv6 family get the prefix; a UNIX
  // socket client's "unix:" is sent as it is.
  const ipv6 = addr.includes(":") && !addr.startsWith("unix:");
  const loginAttr = login === null ? "" : " LOGIN=" + xtextEncode(login);
  return binaryToBytes(
    `XCLIENT ADDR=${ipv6 ? "IPV6:" : ""}${addr}${loginAttr} NAME=${host}` + CRLF,
  );
}

/** Steps 4a/4b: the client's MAIL / RCPT command text, replayed as typed. */
export function smtpBackendReplay(commandText: string): Uint8Array {
  return binaryToBytes(commandText + CRLF);
}

/** Step 4c: `AUTH PLAIN <base64(NUL user NUL password)>`. */
export function smtpBackendAuthPlain(user: string, pass: string): Uint8Array {
  return textBytes("AUTH PLAIN " + encodeBase64("\0" + user + "\0" + pass) + CRLF);
}

/**
 * Step 4c with proxy_oauth_passthrough (mailgate extension):
 * `AUTH <mech> <base64>`, the payload as the initial response.
 */
export function smtpBackendAuthOauth(mechanism: string, ir: string): Uint8Array {
  return textBytes("AUTH " + mechanism + " " + ir + CRLF);
}

/** A SASL response line (RFC 7628's dummy after an error challenge). */
export function smtpBackendSaslResponse(b64: string): Uint8Array {
  return textBytes(b64 + CRLF);
}

/** The backend's SASL challenge (RFC 4954): during 4c it is RFC 7628's error challenge. */
export const BACKEND_CHALLENGE_CODES: readonly string[] = ["334"];

// Backend TLS (mailgate extension, proxy_starttls on): before step 1 the
// proxy sends `EHLO <server_name>` (STARTTLS is an ESMTP extension, so
// always EHLO), needs STARTTLS in the reply, and upgrades (RFC 3207).

/** `STARTTLS` */
export const SMTP_BACKEND_STARTTLS = textBytes("STARTTLS" + CRLF);
/** The backend's go-ahead for the TLS handshake. */
export const BACKEND_STARTTLS_CODES: readonly string[] = ["220"];

/** §8.1 reply codes the backend login accepts (only the first three characters are checked). */
export const BACKEND_GREETING_CODES: readonly string[] = ["220"];
export const BACKEND_HELO_CODES: readonly string[] = ["250"];
export const BACKEND_XCLIENT_CODES: readonly string[] = ["220", "250"];
export const BACKEND_MAIL_CODES: readonly string[] = ["250"];
export const BACKEND_AUTH_CODES: readonly string[] = ["235"];

// ---- log lines -----------------------------------------------------------------

export const LOG_NO_PASSWORD = "no password available";

/** Most bytes of client input quoted in a "client was rejected" line. */
const REJECTED_LOG_MAX = 256;
/** How much of a pre-greeting burst is looked at for its first line. */
const BEFORE_GREETING_SCAN = 256;

/** nginx shows the line end of a rejected command as "_" (one per CR / LF). */
function underscoreLineEnds(s: string): string {
  return s.replace(/[\r\n]/g, "_");
}

/**
 * §6 MAIL without `none`: the MAIL line (binary, with its line end) as
 * nginx logs it. A MAIL line carries no password; it is escaped and capped.
 */
export function logClientRejected(lineWithEnd: string): string {
  const shown = escapeForLog(underscoreLineEnds(lineWithEnd.slice(0, REJECTED_LOG_MAX)));
  return `client was rejected: "${shown}${lineWithEnd.length > REJECTED_LOG_MAX ? "..." : ""}"`;
}

/**
 * §3, for the driver: what a client sent before the greeting. nginx logs
 * the whole buffer; a client pipelining blindly may have sent
 * `AUTH PLAIN <credentials>` or a SASL exchange there, so only the first
 * line is shown, redacted to its first two words (the command word and,
 * e.g., the HELO name or AUTH mechanism; no SMTP command carries a secret
 * in its first argument), capped at 64 bytes, its line end as "_", and
 * "..." when more followed.
 */
export function logRejectedBeforeGreeting(data: Uint8Array): string {
  const text = bytesToBinary(data.subarray(0, BEFORE_GREETING_SCAN));
  const m = /\r?\n|\r/.exec(text);
  let shown: string;
  if (m === null) {
    shown = redactCommand(text, 2);
    if (data.length > text.length && !shown.endsWith("...")) shown += "...";
  } else {
    shown = redactCommand(text.slice(0, m.index), 2) + underscoreLineEnds(m[0]);
    if (m.index + m[0].length < data.length) shown += "...";
  }
  return `client was rejected before greeting: "${shown}"`;
}

export {
  LOG_TOO_MANY_INVALID,
  logTooLongCommand,
  logUpstreamInvalid,
  logUpstreamNoStarttls,
  logUpstreamTooLong,
} from "../core/log_text.ts";
