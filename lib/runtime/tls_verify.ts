// Peer certificate details and chain verification results, in the form nginx
// reports them (OpenSSL 3 texts), the same on both runtimes.
// Bun's TLS (BoringSSL) verifies the chain itself and gives a Node-style code
// ("DEPTH_ZERO_SELF_SIGNED_CERT"); Deno's node:tls TLSSocket built on a
// Duplex never verifies a client certificate (`authorized` stays false), so
// there we check the leaf against the configured CAs ourselves
// (verifyLeaf). Either way the code is mapped to OpenSSL's text.

import { createHash, X509Certificate } from "node:crypto";
import type { PeerCert } from "./types.ts";
import { parseCertFields } from "./der_cert.ts";

/** X509_verify_cert_error_string() texts of OpenSSL 3, by Node/Bun error code. */
const VERIFY_TEXT: Record<string, string> = {
  UNABLE_TO_GET_ISSUER_CERT: "unable to get issuer certificate",
  UNABLE_TO_GET_CRL: "unable to get certificate CRL",
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: "unable to decrypt certificate's signature",
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: "unable to decrypt CRL's signature",
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: "unable to decode issuer public key",
  CERT_SIGNATURE_FAILURE: "certificate signature failure",
  CRL_SIGNATURE_FAILURE: "CRL signature failure",
  CERT_NOT_YET_VALID: "certificate is not yet valid",
  CERT_HAS_EXPIRED: "certificate has expired",
  CRL_NOT_YET_VALID: "CRL is not yet valid",
  CRL_HAS_EXPIRED: "CRL has expired",
  ERROR_IN_CERT_NOT_BEFORE_FIELD: "format error in certificate's notBefore field",
  ERROR_IN_CERT_NOT_AFTER_FIELD: "format error in certificate's notAfter field",
  ERROR_IN_CRL_LAST_UPDATE_FIELD: "format error in CRL's lastUpdate field",
  ERROR_IN_CRL_NEXT_UPDATE_FIELD: "format error in CRL's nextUpdate field",
  OUT_OF_MEM: "out of memory",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
  SELF_SIGNED_CERT_IN_CHAIN: "self-signed certificate in certificate chain",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unable to get local issuer certificate",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "unable to verify the first certificate",
  CERT_CHAIN_TOO_LONG: "certificate chain too long",
  CERT_REVOKED: "certificate revoked",
  INVALID_CA: "invalid CA certificate",
  PATH_LENGTH_EXCEEDED: "path length constraint exceeded",
  INVALID_PURPOSE: "unsupported certificate purpose",
  CERT_UNTRUSTED: "certificate not trusted",
  CERT_REJECTED: "certificate rejected",
  HOSTNAME_MISMATCH: "hostname mismatch",
  ERR_TLS_CERT_ALTNAME_INVALID: "hostname mismatch",
};

/**
 * The verification failures `ssl_verify_client optional_no_ca` tolerates
 * (OpenSSL's ngx_ssl_verify_error_optional list), as verifyError texts.
 */
export const VERIFY_ERRORS_NO_CA: ReadonlySet<string> = new Set([
  VERIFY_TEXT.DEPTH_ZERO_SELF_SIGNED_CERT,
  VERIFY_TEXT.SELF_SIGNED_CERT_IN_CHAIN,
  VERIFY_TEXT.UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
  VERIFY_TEXT.CERT_UNTRUSTED,
  VERIFY_TEXT.UNABLE_TO_VERIFY_LEAF_SIGNATURE,
]);

/** OpenSSL text for a Node/Bun verify error code (or error object). */
export function verifyErrorText(code: unknown): string {
  if (code instanceof Error) {
    const c = (code as Error & { code?: string }).code;
    return (c !== undefined && VERIFY_TEXT[c]) || code.message;
  }
  const s = String(code);
  return VERIFY_TEXT[s] ?? s;
}

/** PEM text of a DER certificate, as PEM_write_bio_X509 writes it. */
export function derToPem(der: Uint8Array): string {
  let b64 = "";
  const CHUNK = 0x3000; // multiple of 3: chunked base64 concatenates cleanly
  for (let i = 0; i < der.length; i += CHUNK) {
    b64 += btoa(String.fromCharCode(...der.subarray(i, i + CHUNK)));
  }
  let body = "";
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + "\n";
  return "-----BEGIN CERTIFICATE-----\n" + body + "-----END CERTIFICATE-----\n";
}

/** Every certificate in a PEM bundle, as DER. */
export function pemToDers(pem: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m !== null; m = re.exec(pem)) {
    const bin = atob(m[1].replace(/\s+/g, ""));
    const der = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
    out.push(der);
  }
  return out;
}

/** PeerCert from the DER bytes of a certificate; null if it cannot be parsed. */
export function peerCertFromDer(der: Uint8Array): PeerCert | null {
  try {
    const f = parseCertFields(der);
    return {
      subject: f.subject,
      issuer: f.issuer,
      serial: f.serial,
      fingerprint: createHash("sha1").update(der).digest("hex"),
      pem: derToPem(der),
    };
  } catch {
    return null;
  }
}

/** Parsed CA bundles, by PEM text (a listener's CA file is parsed once). */
const caCache = new Map<string, { x509: X509Certificate; der: Uint8Array }[]>();
const CA_CACHE_MAX = 64;

function caList(caPem: string) {
  let list = caCache.get(caPem);
  if (list === undefined) {
    list = pemToDers(caPem).map((der) => ({ x509: new X509Certificate(der), der }));
    if (caCache.size >= CA_CACHE_MAX) caCache.delete(caCache.keys().next().value!);
    caCache.set(caPem, list);
  }
  return list;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Longest chain walked through the CA bundle (bounds the loop). */
const MAX_CHAIN = 10;

/**
 * Verify a leaf certificate (only the leaf: Deno's TLSSocket does not expose
 * the rest of the client's chain) against a PEM CA bundle, the way OpenSSL
 * orders its checks: build the chain, then check signatures and validity
 * from the top down. Returns null when verified, else OpenSSL's reason text.
 */
export function verifyLeaf(
  der: Uint8Array,
  caPem: string | undefined,
  now = new Date(),
): string | null {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(der);
  } catch {
    return VERIFY_TEXT.UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY;
  }
  const cas = caPem ? caList(caPem) : [];
  const chain: { x509: X509Certificate; der: Uint8Array }[] = [{ x509: leaf, der }];
  let trusted = cas.some((c) => sameBytes(c.der, der));
  while (!trusted && chain.length <= MAX_CHAIN) {
    const top = chain[chain.length - 1].x509;
    const issuer = cas.find((c) => top.checkIssued(c.x509) && !chain.some((x) => x.der === c.der));
    if (issuer === undefined) {
      if (top.checkIssued(top)) {
        return chain.length === 1
          ? VERIFY_TEXT.DEPTH_ZERO_SELF_SIGNED_CERT
          : VERIFY_TEXT.SELF_SIGNED_CERT_IN_CHAIN;
      }
      return chain.length === 1
        ? VERIFY_TEXT.UNABLE_TO_VERIFY_LEAF_SIGNATURE
        : VERIFY_TEXT.UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
    }
    chain.push(issuer);
    trusted = issuer.x509.checkIssued(issuer.x509);
  }
  if (!trusted) return VERIFY_TEXT.CERT_CHAIN_TOO_LONG;
  for (let i = chain.length - 1; i >= 0; i--) {
    const c = chain[i];
    const signer = chain[Math.min(i + 1, chain.length - 1)].x509;
    if (i < chain.length - 1 && !c.x509.verify(signer.publicKey)) {
      return VERIFY_TEXT.CERT_SIGNATURE_FAILURE;
    }
    let f;
    try {
      f = parseCertFields(c.der);
    } catch {
      return VERIFY_TEXT.ERROR_IN_CERT_NOT_BEFORE_FIELD;
    }
    if (now < f.notBefore) return VERIFY_TEXT.CERT_NOT_YET_VALID;
    if (now > f.notAfter) return VERIFY_TEXT.CERT_HAS_EXPIRED;
  }
  return null;
}
