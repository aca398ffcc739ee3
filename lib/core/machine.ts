// The contract between a protocol's runtime-neutral state machines and the
// session driver (lib/proxy/session.ts). Machines take bytes and return
// steps; they never touch a socket, a timer, a clock or a random source
// (whatever they need of those is handed in through PreauthContext).

import type { LogLevel, ServerConfig } from "../config/types.ts";
import type { AuthRefusal, SaslMechanism } from "./sasl_exchange.ts";

export type { AuthRefusal } from "./sasl_exchange.ts";

/** How the client authenticated, as the auth service needs to know it. */
export interface Credentials {
  method: "plain" | "apop" | "cram-md5" | "external" | "xoauth2" | "oauthbearer" | "none";
  /** Binary strings (one char per byte): user names and passwords are bytes. */
  user: string;
  pass: string;
  /** APOP / CRAM-MD5 challenge, sent as Auth-Salt; null otherwise. */
  salt: string | null;
  /**
   * XOAUTH2 / OAUTHBEARER: the client's decoded SASL payload as received
   * (binary string), so a backend login can replay it (proxy_oauth_passthrough).
   * `user` holds the payload's user (user= / a=, unescaped), `pass` the bare token.
   * A secret: never logged.
   */
  saslPayload?: string;
  /** IMAP: tag of the LOGIN/AUTHENTICATE command (without trailing space). */
  tag?: string;
  /** SMTP: what the backend login replays and Auth-SMTP-* carries. */
  smtp?: SmtpState;
  /** IMAP: the fields of the client's last ID command (forwarded with proxy_imap_id on). */
  imapId?: readonly (readonly [key: string, value: string | null])[];
}

export interface SmtpState {
  /** Argument of the last HELO/EHLO, "" if none. */
  helo: string;
  /** The client ever used EHLO. */
  esmtp: boolean;
  /** Full MAIL / RCPT command text as typed ("" if none). */
  from: string;
  to: string;
}

/** One thing the driver must do, in order. */
export type ClientStep =
  /** Write to the client. The driver finishes writing before the next step. */
  | { kind: "send"; data: Uint8Array }
  /**
   * Close the client connection once everything before it is written.
   * `reason`, for the access log: the client asked for it (LOGOUT / QUIT),
   * or the auth service refused without Auth-Wait; else mailgate rejected
   * the client.
   */
  | { kind: "close"; reason?: "quit" | "refused" }
  /**
   * Start server-side TLS now. The machine has already dropped every byte it
   * held after the upgrade command (plaintext injection defence); the driver
   * calls tlsStarted() after the handshake.
   */
  | { kind: "starttls" }
  /**
   * Credentials are complete: stop reading the client and ask the auth
   * service. The machine is suspended until authRefused() or hand-over.
   */
  | { kind: "auth"; creds: Credentials }
  | { kind: "log"; level: LogLevel; message: string };

/** What a pre-auth machine is given when it is created. */
export interface PreauthContext {
  config: ServerConfig;
  /** TLS already active (implicit TLS listener). */
  tls: boolean;
  /** Makes an APOP/CRAM-MD5 salt `<rand.time@server_name>`; called at most once per session. */
  makeSalt(): string;
  /** The SASL mechanism table; tests add mechanisms here. Default: SASL_MECHANISMS. */
  saslMechanisms?: readonly SaslMechanism[];
}

export interface PreauthMachine {
  /** The greeting line(s). Called once. */
  greeting(): Uint8Array;
  /**
   * Bytes from the client; kept until consumed (the driver pauses reading when
   * input arrives while it is busy, so this stays bounded). Bytes pushed after
   * a `starttls` step and before tlsStarted() are discarded.
   */
  push(chunk: Uint8Array): void;
  /**
   * Advance by at most one command. Returns [] when more input is needed.
   * May return only a continuation (e.g. IMAP "+ OK" for a literal).
   */
  next(): ClientStep[];
  /** The TLS handshake after a "starttls" step completed. */
  tlsStarted(): void;
  /**
   * The auth service refused. Returns the steps that refuse: usually the
   * protocol's refusal line (then a close step with `refusal.close`); for a
   * mechanism with an error challenge (RFC 7628 §3.2.2) only that challenge,
   * and next() returns the refusal once the client has answered it. The
   * dialogue is back in its initial state after the refusal line.
   */
  authRefused(refusal: AuthRefusal): ClientStep[];
  /** Unconsumed client bytes (pipelined after the credentials); empties the buffer. */
  takeInput(): Uint8Array;
}

/** What the backend-login machine asks of the driver. */
export type BackendStep =
  /** Write to the backend. */
  | { kind: "send"; data: Uint8Array }
  /** Login done: write toClient to the client, then relay both ways. */
  | { kind: "done"; toClient: Uint8Array }
  /**
   * Login failed: write toClient (the internal-error reply, or the backend's
   * own reply with proxy_pass_error_message on) and close both sides.
   */
  | { kind: "fail"; toClient: Uint8Array; log: { level: LogLevel; message: string } | null }
  /**
   * mailgate's backend-TLS extension (proxy_starttls on): the backend said
   * yes to STARTTLS/STLS. The driver upgrades the backend connection (client
   * side) and then calls tlsStarted(). The machine has already dropped any
   * byte the backend sent after its positive reply (plaintext injection
   * defence); the adapter delivers no plaintext after the upgrade starts.
   */
  | { kind: "starttls" };

export interface BackendLogin {
  /** Bytes from the backend. */
  push(chunk: Uint8Array): BackendStep[];
  /** The backend connection is now TLS (after a "starttls" step): continue the login. */
  tlsStarted(): BackendStep[];
}

/** What a backend-login machine is given. */
export interface BackendContext {
  config: ServerConfig;
  creds: Credentials;
  /** User and password to log in with (auth service's Auth-User/Auth-Pass, else the client's). */
  user: string;
  pass: string | null;
  /** Client address as text, for XCLIENT ADDR= (SMTP). */
  clientAddr: string;
  /** Client host for XCLIENT NAME= (SMTP). */
  clientHost: string;
  /**
   * TLS towards the backend (mailgate extension): "off" (nginx), "ssl"
   * (the driver connected with TLS from byte 0; nothing changes for the
   * machine), or "starttls" (the machine asks for the upgrade itself).
   */
  backendTls?: "off" | "ssl" | "starttls";
  /** What the backend is told about the client (proxy_imap_id, proxy_pop3_xclient); absent: nothing. */
  forward?: ForwardInfo;
}

/** Dovecot's LOGIN_PROXY_TTL: proxies a login may pass through; each sends one less. */
export const PROXY_TTL = 5;

/** What a proxy tells the backend about the client (README "IMAP ID and the client's address"). */
export interface ForwardInfo {
  /** The client's address and port (a trusted PROXY header's source); null for a Unix-socket client. */
  clientIp: string | null;
  clientPort: number | null;
  /** The address and port the client connected to (a trusted PROXY header's destination). */
  localIp: string | null;
  localPort: number | null;
  /** The session's id as mailgate's logs print it: "*17". */
  sessionId: string;
}
