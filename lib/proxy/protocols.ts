// The protocol modules a session can drive, by the `protocol` of its server.

import type { Protocol } from "../config/types.ts";
import type { BackendContext, BackendLogin, PreauthContext, PreauthMachine } from "../core/machine.ts";
import type { BeforeGreeting } from "../core/pre_greeting.ts";
import { createImapPreauth } from "../imap/preauth.ts";
import { createImapBackendLogin } from "../imap/backend_login.ts";
import { IMAP_CERT_ERROR, IMAP_INTERNAL_ERROR, IMAP_NO_CERT } from "../imap/replies.ts";
import { createPop3Preauth } from "../pop3/preauth.ts";
import { createPop3BackendLogin } from "../pop3/backend_login.ts";
import { POP3_CERT_ERROR, POP3_INTERNAL_ERROR, POP3_NO_CERT } from "../pop3/replies.ts";
import { createSmtpPreauth } from "../smtp/preauth.ts";
import { createSmtpBackendLogin } from "../smtp/backend_login.ts";
import { smtpBeforeGreeting } from "../smtp/pre_greeting.ts";
import { SMTP_CERT_ERROR, SMTP_INTERNAL_ERROR, SMTP_NO_CERT } from "../smtp/replies.ts";

export interface ProtocolModule {
  createPreauth(ctx: PreauthContext): PreauthMachine;
  createBackendLogin(ctx: BackendContext): BackendLogin;
  /** The protocol's internal-error reply, sent before closing. */
  internalError: Uint8Array;
  /** Lines refusing a client certificate (tls_and_proxy_protocol.md §4), then close. */
  tlsRejects: { certError: Uint8Array; noCert: Uint8Array };
  /**
   * Work before the greeting (SMTP: client host lookup, smtp_greeting_delay,
   * refusing early talkers); protocols without it greet at once.
   */
  beforeGreeting?: BeforeGreeting;
}

export const PROTOCOLS: Record<Protocol, ProtocolModule> = {
  imap: {
    createPreauth: createImapPreauth,
    createBackendLogin: createImapBackendLogin,
    internalError: IMAP_INTERNAL_ERROR,
    tlsRejects: { certError: IMAP_CERT_ERROR, noCert: IMAP_NO_CERT },
  },
  pop3: {
    createPreauth: createPop3Preauth,
    createBackendLogin: createPop3BackendLogin,
    internalError: POP3_INTERNAL_ERROR,
    tlsRejects: { certError: POP3_CERT_ERROR, noCert: POP3_NO_CERT },
  },
  smtp: {
    createPreauth: createSmtpPreauth,
    createBackendLogin: createSmtpBackendLogin,
    internalError: SMTP_INTERNAL_ERROR,
    tlsRejects: { certError: SMTP_CERT_ERROR, noCert: SMTP_NO_CERT },
    beforeGreeting: smtpBeforeGreeting,
  },
};
