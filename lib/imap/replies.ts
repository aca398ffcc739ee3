// Every byte string mailgate's IMAP side writes (to the client and to the
// backend) and its IMAP log lines, named, so they can be checked against
// spec/imap.md line by line. Tags, user names and passwords are binary
// strings (one char per byte); Auth-Status text and config words are text.

import type { ServerConfig } from "../config/types.ts";
import { binaryToBytes, textBytes } from "../core/bytes.ts";
import { offeredMechanisms } from "../core/sasl_exchange.ts";
import { type IdField, idList } from "./id.ts";

const CRLF = "\r\n";

// ---- to the client, fixed ------------------------------------------------

/** §1 */
export const IMAP_GREETING = textBytes("* OK IMAP4 ready" + CRLF);
/** README "Common rules": every internal failure; the connection is then closed. */
export const IMAP_INTERNAL_ERROR = textBytes("* BAD internal server error" + CRLF);
/** limit_conn refusal (freenginx), tagged with the login command's tag, then close. */
export function imapTooManyConnections(tag: string): Uint8Array {
  return binaryToBytes(tag + " NO [UNAVAILABLE] Too many connections" + CRLF);
}
/** §3: continuation for a synchronising literal. */
export const IMAP_LITERAL_CONTINUATION = textBytes("+ OK" + CRLF);
/** tls_and_proxy_protocol.md §4: ssl_verify_client failures, then close. */
export const IMAP_CERT_ERROR = textBytes("* BYE SSL certificate error" + CRLF);
export const IMAP_NO_CERT = textBytes("* BYE No required SSL certificate" + CRLF);

/** The reply "tag" used when a line had no parsable tag. */
export const IMAP_UNTAGGED = "*";

// ---- to the client, built --------------------------------------------------

/** §4 success. `tag` "" (a line starting with a space) gives " OK completed". */
export function imapOk(tag: string): Uint8Array {
  return binaryToBytes(tag + " OK completed" + CRLF);
}

/** §4 syntax/semantic error. */
export function imapBad(tag: string): Uint8Array {
  return binaryToBytes(tag + " BAD invalid command" + CRLF);
}

/** §4 refused by the auth server; `message` is the Auth-Status text. */
/** `message` is the auth server's Auth-Status value as a binary string: sent byte for byte. */
export function imapNo(tag: string, message: string): Uint8Array {
  return binaryToBytes(tag + " NO " + message + CRLF);
}

/** §5 LOGOUT: untagged BYE, then the tagged OK. */
export function imapLogout(tag: string): Uint8Array {
  return binaryToBytes("* BYE" + CRLF + tag + " OK completed" + CRLF);
}

/**
 * §5 AUTHENTICATE challenge: `+ ` and the base64 payload (PLAIN: nothing
 * after the space; LOGIN / EXTERNAL: "Username:"; CRAM-MD5: the salt).
 */
export function imapChallenge(payload: string): Uint8Array {
  return textBytes("+ " + payload + CRLF);
}

/**
 * mailgate extension (README "IMAP ID and the client's address"): the
 * untagged answer to ID, `* ID NIL` or `* ID ("name" "value" ...)` from
 * imap_id; the tagged OK follows it.
 */
export function imapIdLine(config: ServerConfig): Uint8Array {
  // (Hand-built configurations in tests may leave imap_id out.)
  return textBytes("* ID " + idList(config.imapId ?? []) + CRLF);
}

/** §5 the untagged `* CAPABILITY ...` line for a TLS state. */
export function imapCapabilityLine(config: ServerConfig, tls: boolean): Uint8Array {
  const words = [...config.imapCapabilities];
  // AUTH= words in the fixed order of the mechanism table.
  const auth = offeredMechanisms(config.imapAuth).map((name) => "AUTH=" + name);
  if (tls || config.starttls === "off") words.push(...auth);
  else if (config.starttls === "on") words.push(...auth, "STARTTLS");
  else words.push("STARTTLS", "LOGINDISABLED");
  // nginx writes " word" per word, so an empty list is just "* CAPABILITY".
  return textBytes("* CAPABILITY" + words.map((w) => " " + w).join("") + CRLF);
}

// ---- to the backend (§8) ---------------------------------------------------

/** `<tag> LOGIN {<user length>}` */
export function imapBackendLogin(tag: string, userLength: number): Uint8Array {
  return binaryToBytes(`${tag} LOGIN {${userLength}}` + CRLF);
}

/** `<user> {<password length>}` (user bytes raw). */
export function imapBackendUser(user: string, passLength: number): Uint8Array {
  return binaryToBytes(`${user} {${passLength}}` + CRLF);
}

/** `<password>` (raw). */
export function imapBackendPassword(pass: string): Uint8Array {
  return binaryToBytes(pass + CRLF);
}

/**
 * proxy_oauth_passthrough (mailgate extension): `<tag> AUTHENTICATE <mech>`,
 * with the base64 payload as SASL-IR when the backend offers SASL-IR.
 */
export function imapBackendAuthenticate(tag: string, mechanism: string, ir: string | null): Uint8Array {
  return binaryToBytes(`${tag} AUTHENTICATE ${mechanism}${ir === null ? "" : " " + ir}` + CRLF);
}

/** A SASL response line: the base64 payload after a continuation, or the RFC 7628 dummy. */
export function imapBackendSaslResponse(b64: string): Uint8Array {
  return textBytes(b64 + CRLF);
}

// Backend TLS (mailgate extension, proxy_starttls on): before LOGIN the
// proxy upgrades the connection and re-reads the capabilities over TLS with
// commands of its own. Their tags are fixed: each command's tagged reply is
// awaited before anything else is sent, so they need only differ from each
// other (the client's tag is used for LOGIN alone, after both).

/** Tag of the proxy's STARTTLS towards the backend. */
export const BACKEND_STARTTLS_TAG = "mgs1";
/** Tag of the proxy's CAPABILITY towards the backend, once TLS is up. */
export const BACKEND_CAPABILITY_TAG = "mgs2";
/** Tag of the proxy's ID towards the backend (proxy_imap_id on). */
export const BACKEND_ID_TAG = "mgs3";
/** `mgs1 STARTTLS` */
export const IMAP_BACKEND_STARTTLS = textBytes(BACKEND_STARTTLS_TAG + " STARTTLS" + CRLF);
/** `mgs2 CAPABILITY` */
export const IMAP_BACKEND_CAPABILITY = textBytes(BACKEND_CAPABILITY_TAG + " CAPABILITY" + CRLF);

/** `mgs3 ID (...)`: mailgate's fields, then the client's retained ones (binary strings). */
export function imapBackendId(fields: readonly IdField[]): Uint8Array {
  return binaryToBytes(BACKEND_ID_TAG + " ID " + idList(fields) + CRLF);
}

/** Backend reply prefixes checked in §8. */
export const BACKEND_GREETING_PREFIX = "* OK";
export const BACKEND_CONTINUATION_PREFIX = "+";
export const BACKEND_UNTAGGED_PREFIX = "* ";
/** The tagged success is `<tag> OK`. */
export function backendTaggedOkPrefix(tag: string): string {
  return tag + " OK";
}

// ---- log lines -------------------------------------------------------------

export {
  LOG_TOO_MANY_INVALID,
  logTooLongCommand,
  logUpstreamInvalid,
  logUpstreamNoStarttls,
  logUpstreamTooLong,
} from "../core/log_text.ts";
