// Server TLS settings for Bun's TLS stack (BoringSSL): the node:tls
// SecureContext options it honours (capabilities.ts), built from the
// runtime-neutral TlsServerOptions. Pure (no Bun API), so it is unit-tested
// under both runtimes; bun.ts makes and keeps the contexts.

import { nodeCrypto } from "../builtins.ts";
import type { SecureContextOptions } from "node:tls";
import type { TlsServerOptions } from "../types.ts";

/** Key PEM without encryption: Bun takes one passphrase for all keys. */
export function plainKey(key: string, passphrase: string | undefined): string {
  if (passphrase === undefined) return key;
  return nodeCrypto().createPrivateKey({ key, passphrase }).export({ format: "pem", type: "pkcs8" }).toString();
}

/** ALPN list in TLS wire format, as Bun wants it. */
export function alpnWire(name: string): ArrayBuffer {
  const b = new Uint8Array(1 + name.length);
  b[0] = name.length;
  for (let i = 0; i < name.length; i++) b[i + 1] = name.charCodeAt(i);
  return b.buffer;
}

/** OpenSSL/BoringSSL SSL_OP_NO_TICKET. */
const SSL_OP_NO_TICKET = 0x4000;

/**
 * node:tls options Bun's TLS stack honours (capabilities.ts). Several
 * cert/key pairs (RSA + ECDSA) are supported natively (checked: BoringSSL
 * picks by the client's signature algorithms). Bun has no server-side
 * session cache: resumption is by tickets only, so tickets are turned off
 * only when no cache is asked for (ssl_session_cache builtin/shared with
 * ssl_session_tickets off keeps them on, and start-up says so). Ticket keys,
 * DH parameters and CRLs have no Bun option (CRLs are checked by us).
 */
export function bunContextOptions(o: TlsServerOptions): SecureContextOptions {
  const t: SecureContextOptions & { requestCert?: boolean; rejectUnauthorized?: boolean } = {
    cert: o.certs.map((c) => c.cert),
    key: o.certs.map((c) => plainKey(c.key, c.passphrase)),
    requestCert: o.requestCert === true,
    rejectUnauthorized: false,
  };
  // Only ssl_client_certificate: the CertificateRequest names these.
  if (o.ca !== undefined) t.ca = o.ca;
  if (o.minVersion !== undefined) t.minVersion = o.minVersion;
  if (o.maxVersion !== undefined) t.maxVersion = o.maxVersion;
  if (o.ciphers !== undefined) t.ciphers = o.ciphers;
  if (o.honorCipherOrder) t.honorCipherOrder = true;
  if (o.ecdhCurve !== undefined && o.ecdhCurve !== "auto") t.ecdhCurve = o.ecdhCurve;
  if (o.sessionTimeout !== undefined) t.sessionTimeout = o.sessionTimeout;
  const cacheWanted = o.sessionCache === "builtin" || o.sessionCache === "shared";
  if (o.sessionTickets === false && !cacheWanted) t.secureOptions = SSL_OP_NO_TICKET;
  return t;
}
