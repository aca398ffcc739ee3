// ssl_verify_client after a server-side TLS handshake (implicit or
// STARTTLS), tls_and_proxy_protocol.md §4: whether the client's certificate
// (or its absence) lets the session go on, and if not, which of the
// protocol's two refusal lines it gets and what is logged (at info).

import type { SslConfig } from "../config/types.ts";
import type { TlsInfo } from "../runtime/types.ts";
import { VERIFY_ERRORS_NO_CA } from "../tls/tls_verify.ts";

export interface CertRefusal {
  /** The protocol's line for this case, sent before closing. */
  reply: Uint8Array;
  /** The info-level log line (nginx's wording). */
  log: string;
}

/** The protocol's two refusal lines. */
export interface CertRejectLines {
  certError: Uint8Array;
  noCert: Uint8Array;
}

/** Null when the session may go on; else what to send and log before closing. */
export function clientCertRefusal(
  mode: SslConfig["verifyClient"],
  tls: TlsInfo | null,
  lines: CertRejectLines,
): CertRefusal | null {
  if (mode === "off" || !tls) return null;
  if (!tls.peerCert) {
    // optional / optional_no_ca: no certificate is fine (Auth-SSL-Verify: NONE).
    if (mode !== "on") return null;
    return { reply: lines.noCert, log: "client sent no required SSL certificate" };
  }
  if (tls.verifyError === null) return null;
  // optional_no_ca: a chain that fails only for want of a trusted CA goes on
  // (the auth service sees Auth-SSL-Verify: FAILED:... and decides).
  if (mode === "optional_no_ca" && VERIFY_ERRORS_NO_CA.has(tls.verifyError)) return null;
  return { reply: lines.certError, log: `client SSL certificate verify error: (${tls.verifyError})` };
}
