// Every byte string mailgate's POP3 side writes (to the client and to the
// backend) and its POP3 log lines, named, so they can be checked against
// spec/pop3.md line by line. User names, passwords, salts and Auth-Status
// text are binary strings (one char per byte); config words are text.

import type { ServerConfig } from "../config/types.ts";
import { binaryToBytes, textBytes } from "../core/bytes.ts";
import { type ForwardInfo, PROXY_TTL } from "../core/machine.ts";
import { offeredMechanisms, type SaslMechanism } from "../core/sasl_exchange.ts";

const CRLF = "\r\n";

/**
 * §2: nginx's command buffer, fixed there, line end included. mailgate's
 * pop3_client_buffer replaces it (default 4096); this stays the bound of
 * configurations that leave the field out (tests' hand-built ones).
 */
export const POP3_COMMAND_BUFFER = 128;

// ---- to the client, fixed ------------------------------------------------

/** §3 success. */
export const POP3_OK = textBytes("+OK" + CRLF);
/** §3 every error and refusal by the proxy itself. */
export const POP3_INVALID_COMMAND = textBytes("-ERR invalid command" + CRLF);
/** README "Common rules": every internal failure; the connection is then closed. */
export const POP3_INTERNAL_ERROR = textBytes("-ERR internal server error" + CRLF);
/** limit_conn refusal (freenginx), then close. */
export const POP3_TOO_MANY_CONNECTIONS = textBytes("-ERR [SYS/TEMP] Too many connections" + CRLF);
/** tls_and_proxy_protocol.md §4: ssl_verify_client failures, then close. */
export const POP3_CERT_ERROR = textBytes("-ERR SSL certificate error" + CRLF);
export const POP3_NO_CERT = textBytes("-ERR No required SSL certificate" + CRLF);

// ---- to the client, built --------------------------------------------------

const GREETING = "+OK POP3 ready";

/** §1; `salt` (binary string) when apop or cram-md5 is enabled. */
export function pop3Greeting(salt: string | null): Uint8Array {
  return binaryToBytes(GREETING + (salt === null ? "" : " " + salt) + CRLF);
}

/** §8 refused by the auth server; `message` is the Auth-Status value as a binary string, sent byte for byte. */
export function pop3Err(message: string): Uint8Array {
  return binaryToBytes("-ERR " + message + CRLF);
}

/**
 * §7 AUTH challenge: `+ ` and the base64 payload (PLAIN: nothing after the
 * space; LOGIN / EXTERNAL: "Username:"; CRAM-MD5: the salt).
 */
export function pop3Challenge(payload: string): Uint8Array {
  return textBytes("+ " + payload + CRLF);
}

/** pop3_auth has no `login`: its `plain` offers LOGIN too (as nginx). apop is no SASL mechanism. */
function pop3Directive(m: SaslMechanism): string {
  return m.directive === "login" ? "plain" : m.directive;
}

/** The SASL mechanism names pop3_auth offers, in the fixed order of §5/§6. */
function saslNames(config: ServerConfig): string[] {
  return offeredMechanisms(config.pop3Auth, undefined, pop3Directive);
}

const CAPA_FIRST = "+OK Capability list follows" + CRLF;
const LIST_END = "." + CRLF;
const STLS_LINE = "STLS" + CRLF;

/** The three CAPA replies of §5, built once per session. */
export interface Pop3CapaLists {
  /** TLS active or starttls off (and every CAPA in the user state). */
  full: Uint8Array;
  /** starttls on, TLS not active. */
  starttls: Uint8Array;
  /** starttls only, TLS not active. */
  starttlsOnly: Uint8Array;
}

/**
 * pop3_capabilities, plus RESP-CODES (RFC 2449) when limit_conn applies to
 * the server: its refusal carries the [SYS/TEMP] code (freenginx).
 */
function pop3Capabilities(config: ServerConfig): string[] {
  const caps = config.pop3Capabilities;
  if (!config.limitConn || caps.some((c) => c.toUpperCase() === "RESP-CODES")) return caps;
  return [...caps, "RESP-CODES"];
}

export function pop3CapaLists(config: ServerConfig): Pop3CapaLists {
  const capabilities = pop3Capabilities(config);
  const caps = capabilities.map((c) => c + CRLF).join("");
  const sasl = "SASL" + saslNames(config).map((n) => " " + n).join("") + CRLF;
  const withoutUser = capabilities
    .filter((c) => c.toUpperCase() !== "USER")
    .map((c) => c + CRLF)
    .join("");
  return {
    full: textBytes(CAPA_FIRST + caps + sasl + LIST_END),
    starttls: textBytes(CAPA_FIRST + caps + sasl + STLS_LINE + LIST_END),
    starttlsOnly: textBytes(CAPA_FIRST + withoutUser + STLS_LINE + LIST_END),
  };
}

/** §6 AUTH without arguments. */
export function pop3AuthMethods(config: ServerConfig): Uint8Array {
  return textBytes(
    "+OK methods supported:" + CRLF + saslNames(config).map((n) => n + CRLF).join("") + LIST_END,
  );
}

// ---- to the backend (§9) ---------------------------------------------------

/** `USER <user>` (bytes raw). */
export function pop3BackendUser(user: string): Uint8Array {
  return binaryToBytes("USER " + user + CRLF);
}

/** `PASS <password>` (bytes raw). */
export function pop3BackendPass(pass: string): Uint8Array {
  return binaryToBytes("PASS " + pass + CRLF);
}

/**
 * proxy_oauth_passthrough (mailgate extension): `AUTH <mech> <base64>`, the
 * payload as the initial response (RFC 5034 §4 allows one always).
 */
export function pop3BackendAuth(mechanism: string, ir: string): Uint8Array {
  return textBytes("AUTH " + mechanism + " " + ir + CRLF);
}

/** A SASL response line (RFC 7628's dummy after an error challenge). */
export function pop3BackendSaslResponse(b64: string): Uint8Array {
  return textBytes(b64 + CRLF);
}

/** The CAPA line that lists SASL mechanisms (compared case-insensitively, first word). */
export const BACKEND_SASL_CAPA = "SASL";

/** Every backend reply must start with this. */
export const BACKEND_OK_PREFIX = "+OK";

// Backend TLS (mailgate extension, proxy_starttls on): STLS before USER,
// then CAPA again over TLS (RFC 2595 §4: capabilities may change).

/** `STLS` */
export const POP3_BACKEND_STLS = textBytes(STLS_LINE);
/** `CAPA` */
export const POP3_BACKEND_CAPA = textBytes("CAPA" + CRLF);
/**
 * mailgate extension proxy_pop3_xclient (README "IMAP ID and the client's
 * address"): Dovecot's proxy's XCLIENT, sent before USER to a backend that
 * offers it. Unknown addresses (a Unix-socket client) are left out.
 */
export function pop3BackendXclient(f: ForwardInfo): Uint8Array {
  let line = "XCLIENT";
  if (f.clientIp !== null) line += " ADDR=" + f.clientIp;
  if (f.clientPort !== null) line += " PORT=" + f.clientPort;
  line += " SESSION=" + f.sessionId + " TTL=" + (PROXY_TTL - 1);
  return textBytes(line + CRLF);
}
/** Dovecot's greeting to a trusted proxy starts so: XCLIENT is offered without a CAPA. */
export const BACKEND_XCLIENT_GREETING = "+OK [XCLIENT]";
/** The CAPA line that offers XCLIENT (compared case-insensitively, first word). */
export const BACKEND_XCLIENT_CAPA = "XCLIENT";
/** A backend that refuses CAPA says so with this; the login goes on without it. */
export const BACKEND_ERR_PREFIX = "-ERR";
/** The line that ends a multi-line reply (RFC 1939 §3; ".." is a stuffed line). */
export const BACKEND_LIST_END = ".";

// ---- log lines -------------------------------------------------------------

export {
  LOG_TOO_MANY_INVALID,
  logTooLongCommand,
  logUpstreamInvalid,
  logUpstreamNoStarttls,
  logUpstreamTooLong,
} from "../core/log_text.ts";
