// Turns a server's ssl_* settings into the runtime-neutral TlsServerOptions
// the adapters take. Files are read here, once per (re)load, never per
// connection; encrypted keys are opened with ssl_password_file's pass
// phrases and handed on decrypted, so adapters never see pass phrases.

import { nodeCrypto } from "../core/builtins.ts";
import { readFileSync } from "node:fs";
import type { Protocol, ServerConfig } from "../config/types.ts";
import type { TlsServerOptions } from "../runtime/types.ts";

function readPem(path: string): string {
  return path.startsWith("data:") ? path.slice(5) : readFileSync(path, "utf8");
}

function passPhrases(file: string | null): string[] {
  if (!file) return [];
  return readFileSync(file, "utf8").split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l !== "");
}

/** Decrypts a PEM key with the first pass phrase that works. */
export function openKey(path: string, phrases: string[]): string {
  const pem = readPem(path);
  const candidates = [undefined, ...phrases];
  let lastError: unknown = null;
  for (const passphrase of candidates) {
    try {
      const key = nodeCrypto().createPrivateKey(passphrase === undefined ? { key: pem } : { key: pem, passphrase });
      return key.export({ type: "pkcs8", format: "pem" }) as string;
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`cannot load certificate key "${path}": ${(lastError as Error)?.message ?? "unknown error"}`);
}

const VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const;
type Version = typeof VERSIONS[number];

/** Builds the TLS options of a server, or null when it uses no TLS. */
export function serverTlsOptions(server: ServerConfig, protocol: Protocol): TlsServerOptions | null {
  const usesTls = server.starttls !== "off" || server.listens.some((l) => l.ssl);
  if (!usesTls) return null;
  const ssl = server.ssl;
  const phrases = passPhrases(ssl.passwordFile);
  const certs = ssl.certificates.map((c, i) => ({
    cert: readPem(c),
    key: openKey(ssl.certificateKeys[i], phrases),
  }));
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
  if (ssl.dhparam) opts.dhparam = readPem(ssl.dhparam);
  opts.sessionTickets = ssl.sessionTickets;
  opts.sessionCache = ssl.sessionCache.kind;
  const ticketKey = firstTicketKey(ssl.sessionTicketKeys);
  if (ticketKey !== null) opts.ticketKeys = ticketKey;
  if (ssl.verifyClient !== "off") {
    opts.requestCert = true;
    // Named in the CertificateRequest / trusted without being named.
    if (ssl.clientCertificate) opts.ca = readPem(ssl.clientCertificate);
    if (ssl.trustedCertificate) opts.trustedCa = readPem(ssl.trustedCertificate);
    if (ssl.crl) opts.crl = readPem(ssl.crl);
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
