// The protocol modules a session can drive, by the `protocol` of its server.

import type { Protocol } from "../config/types.ts";
import type { BackendContext, BackendLogin, PreauthContext, PreauthMachine } from "../core/machine.ts";
import { createImapPreauth } from "../imap/preauth.ts";
import { createImapBackendLogin } from "../imap/backend_login.ts";
import { IMAP_INTERNAL_ERROR } from "../imap/replies.ts";

export interface ProtocolModule {
  createPreauth(ctx: PreauthContext): PreauthMachine;
  createBackendLogin(ctx: BackendContext): BackendLogin;
  /** The protocol's internal-error reply, sent before closing. */
  internalError: Uint8Array;
}

const imap: ProtocolModule = {
  createPreauth: createImapPreauth,
  createBackendLogin: createImapBackendLogin,
  internalError: IMAP_INTERNAL_ERROR,
};

/** Protocols whose sessions are built; the others are refused at start-up. */
export const PROTOCOLS: Partial<Record<Protocol, ProtocolModule>> = { imap };
