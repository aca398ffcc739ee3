// Turns a server's ssl_* settings into the runtime-neutral TlsServerOptions
// the adapters take. The PEM material was read and checked by the
// configuration loader (config/tls_check.ts, ServerConfig.ssl.pem), once per
// (re)load: keys come decrypted, so adapters never see pass phrases, and
// every value holds only the blocks of its type, whatever else its file held.

import { readFileSync } from "node:fs";
import type { Protocol, ServerConfig } from "../config/types.ts";
import type { TlsServerOptions } from "../runtime/types.ts";

const VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const;
type Version = typeof VERSIONS[number];

/** Builds the TLS options of a server, or null when it uses no TLS. */
export function serverTlsOptions(
  server: ServerConfig,
  protocol: Protocol,
): TlsServerOptions | null {
  const usesTls = server.starttls !== "off" || server.listens.some((l) => l.ssl);
  if (!usesTls) return null;
  const ssl = server.ssl;
  const pem = ssl.pem;
  // The loader checks (and reads) every server that uses TLS.
  if (pem === undefined) {
    throw new Error(
      `TLS material of the server at ${server.loc.file}:${server.loc.line} was not loaded`,
    );
  }
  const certs = pem.certs.map((c) => ({ cert: c.cert, key: c.key }));
  const enabled = VERSIONS.filter((v) => ssl.protocols.includes(v));
  const opts: TlsServerOptions = {
    certs,
    ciphers: ssl.ciphers,
    honorCipherOrder: ssl.preferServerCiphers,
    alpn: protocol,
    sessionTimeout: ssl.sessionTimeoutSec,
    cacheKey: `${server.loc.file}:${server.loc.line}:${Date.now()}`,
  };
  if (enabled.length > 0) {
    opts.minVersion = enabled[0] as Version;
    opts.maxVersion = enabled[enabled.length - 1] as Version;
  }
  if (ssl.ecdhCurve !== "auto") opts.ecdhCurve = ssl.ecdhCurve;
  if (pem.dhparam !== undefined) opts.dhparam = pem.dhparam;
  opts.sessionTickets = ssl.sessionTickets;
  opts.sessionCache = ssl.sessionCache.kind;
  const ticketKey = firstTicketKey(ssl.sessionTicketKeys);
  if (ticketKey !== null) opts.ticketKeys = ticketKey;
  if (ssl.verifyClient !== "off") {
    opts.requestCert = true;
    // Named in the CertificateRequest / trusted without being named.
    if (pem.ca !== undefined) opts.ca = pem.ca;
    if (pem.trustedCa !== undefined) opts.trustedCa = pem.trustedCa;
    if (pem.crl !== undefined) opts.crl = pem.crl;
    opts.verifyDepth = ssl.verifyDepth;
  }
  return opts;
}

/** node:tls ticketKeys format: 16 bytes name, 16 HMAC secret, 16 AES-128 key. */
const NODE_TICKET_KEY_BYTES = 48;

/**
 * The key that encrypts new tickets (the first ssl_session_ticket_key), when
 * it is a 48-byte key. An 80-byte nginx key (AES-256, 32-byte HMAC secret)
 * has no node:tls form and is not passed on; neither runtime takes ticket
 * keys today anyway, and start-up says so (config/runtime_warnings.ts).
 */
function firstTicketKey(files: string[]): Uint8Array | null {
  if (files.length === 0) return null;
  const bytes = readFileSync(files[0]);
  return bytes.length === NODE_TICKET_KEY_BYTES ? new Uint8Array(bytes) : null;
}
