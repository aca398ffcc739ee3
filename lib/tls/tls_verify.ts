// Peer certificate details and chain verification results, in the form nginx
// reports them (OpenSSL 3 texts), the same on both runtimes.
// Bun's TLS (BoringSSL) verifies the chain itself and gives a Node-style code
// ("DEPTH_ZERO_SELF_SIGNED_CERT"); Deno's node:tls TLSSocket built on a
// Duplex never verifies a client certificate (`authorized` stays false), so
// there we verify the chain ourselves (verifyChain). Neither stack takes
// ssl_verify_depth or ssl_crl for client certificates, so those checks are
// ours on both runtimes (Bun: checkVerifiedLeaf after BoringSSL's own).
// Either way the code is mapped to OpenSSL's text.

import type { X509Certificate } from "node:crypto";
import { nodeCrypto } from "../runtime/builtins.ts";
import { BoundedMap } from "../core/bounded_map.ts";
import type { PeerCert } from "../runtime/types.ts";
import { type CertFields, parseCertFields } from "./der_cert.ts";
import { type Crl, crlSignedBy, pemToCrls } from "./der_crl.ts";

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
      fingerprint: nodeCrypto().createHash("sha1").update(der).digest("hex"),
      pem: derToPem(der),
    };
  } catch {
    return null;
  }
}

/** What a client certificate is verified against (from the server's ssl_* settings). */
export interface ClientVerifyPolicy {
  /** Trust anchors and CA certificates, PEM: ssl_client_certificate + ssl_trusted_certificate. */
  trusted?: string;
  /** PEM CRLs (ssl_crl): every certificate of the chain then needs its issuer's CRL. */
  crl?: string;
  /** ssl_verify_depth: most intermediate CAs between leaf and anchor; undefined = no limit. */
  depth?: number;
}

interface ChainCert {
  x509: X509Certificate;
  der: Uint8Array;
  /** From the trusted bundle (else sent by the client). */
  trusted: boolean;
}

/** Bound on parsed PEM bundles kept (one per server block and reload). */
const PEM_CACHE_MAX = 64;
const caCache = new BoundedMap<string, ChainCert[]>(PEM_CACHE_MAX);
const crlCache = new BoundedMap<string, Crl[]>(PEM_CACHE_MAX);

function caList(caPem: string): ChainCert[] {
  return caCache.getOrSet(caPem, () =>
    pemToDers(caPem).map((der) => ({ x509: new (nodeCrypto().X509Certificate)(der), der, trusted: true })));
}

function crlList(crlPem: string): Crl[] {
  return crlCache.getOrSet(crlPem, () => pemToCrls(crlPem));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Longest chain ever built (bounds the loop whatever the depth setting). */
const MAX_CHAIN = 10;

const selfIssued = (c: X509Certificate) => c.checkIssued(c);

/**
 * Verify a client certificate chain the way OpenSSL does for nginx:
 * build the chain from the leaf (trusted certificates first, then the
 * intermediates the client sent) up to a self-signed trusted anchor, limit
 * its length (ssl_verify_depth), check that issuers are CAs, check
 * revocation (ssl_crl, every certificate, as X509_V_FLAG_CRL_CHECK_ALL),
 * then signatures and validity from the top down.
 * Returns null when verified, else OpenSSL's reason text.
 */
export function verifyChain(
  leafDer: Uint8Array,
  sentDers: Uint8Array[],
  policy: ClientVerifyPolicy,
  now = new Date(),
): string | null {
  let leaf: X509Certificate;
  try {
    leaf = new (nodeCrypto().X509Certificate)(leafDer);
  } catch {
    return VERIFY_TEXT.UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY;
  }
  const store = policy.trusted ? caList(policy.trusted) : [];
  const sent: ChainCert[] = [];
  for (const der of sentDers.slice(0, MAX_CHAIN)) {
    if (sameBytes(der, leafDer)) continue;
    try {
      sent.push({ x509: new (nodeCrypto().X509Certificate)(der), der, trusted: false });
    } catch { /* an unreadable extra certificate is never an issuer */ }
  }
  const maxLen = policy.depth === undefined ? MAX_CHAIN : Math.min(MAX_CHAIN, policy.depth + 2);
  const chain: ChainCert[] = [{ x509: leaf, der: leafDer, trusted: store.some((c) => sameBytes(c.der, leafDer)) }];
  let anchored = chain[0].trusted;
  while (!anchored) {
    const top = chain[chain.length - 1].x509;
    const fits = (c: ChainCert) => top.checkIssued(c.x509) && !chain.some((x) => sameBytes(x.der, c.der));
    const issuer = store.find(fits) ?? sent.find(fits);
    if (issuer === undefined) {
      const untrusted = selfIssued(top)
        ? chain.length === 1 ? VERIFY_TEXT.DEPTH_ZERO_SELF_SIGNED_CERT : VERIFY_TEXT.SELF_SIGNED_CERT_IN_CHAIN
        : chain.length === 1
        ? VERIFY_TEXT.UNABLE_TO_VERIFY_LEAF_SIGNATURE
        : VERIFY_TEXT.UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
      return partialChainError(chain, untrusted, now);
    }
    chain.push(issuer);
    if (chain.length > maxLen) return VERIFY_TEXT.CERT_CHAIN_TOO_LONG;
    anchored = issuer.trusted && selfIssued(issuer.x509);
  }
  // Issuers must be CAs; the anchor is trusted as configured (v1 roots have no extensions).
  for (let i = 1; i < chain.length - 1; i++) {
    if (!chain[i].x509.ca) return VERIFY_TEXT.INVALID_CA;
  }
  let fields: CertFields[];
  try {
    fields = chain.map((c) => parseCertFields(c.der));
  } catch {
    return VERIFY_TEXT.ERROR_IN_CERT_NOT_BEFORE_FIELD;
  }
  if (policy.crl !== undefined) {
    const crls = crlList(policy.crl);
    for (let i = 0; i < chain.length; i++) {
      const issuer = chain[Math.min(i + 1, chain.length - 1)].x509;
      const r = crlCheck(fields[i], crls, (crl) => crlSignedBy(crl, issuer.publicKey), now);
      if (r !== null) return r;
    }
  }
  for (let i = chain.length - 1; i >= 0; i--) {
    const signer = chain[Math.min(i + 1, chain.length - 1)].x509;
    if (i < chain.length - 1 && !chain[i].x509.verify(signer.publicKey)) {
      return VERIFY_TEXT.CERT_SIGNATURE_FAILURE;
    }
    if (now < fields[i].notBefore) return VERIFY_TEXT.CERT_NOT_YET_VALID;
    if (now > fields[i].notAfter) return VERIFY_TEXT.CERT_HAS_EXPIRED;
  }
  return null;
}

/**
 * A chain that could not be anchored: OpenSSL (whose verify callback nginx
 * lets continue) still checks the validity dates of the certificates it
 * has, top down, and reports the last error it met. So an expired
 * self-signed or unknown-CA certificate ends as "certificate has expired",
 * which ssl_verify_client optional_no_ca does not tolerate, rather than as
 * one of the untrusted-issuer errors it does.
 */
function partialChainError(chain: ChainCert[], untrusted: string, now: Date): string {
  let error = untrusted;
  for (let i = chain.length - 1; i >= 0; i--) {
    let f: CertFields;
    try {
      f = parseCertFields(chain[i].der);
    } catch {
      return VERIFY_TEXT.ERROR_IN_CERT_NOT_BEFORE_FIELD;
    }
    if (now < f.notBefore) error = VERIFY_TEXT.CERT_NOT_YET_VALID;
    else if (now > f.notAfter) error = VERIFY_TEXT.CERT_HAS_EXPIRED;
  }
  return error;
}

/**
 * Revocation of one certificate, in OpenSSL's order: find its issuer's CRL,
 * check the CRL's signature and validity, then look up the serial.
 */
function crlCheck(
  cert: CertFields,
  crls: Crl[],
  signedByIssuer: (crl: Crl) => boolean,
  now: Date,
): string | null {
  const mine = crls.filter((c) => c.issuerDer === cert.issuerDer);
  if (mine.length === 0) return VERIFY_TEXT.UNABLE_TO_GET_CRL;
  const crl = mine.find(signedByIssuer);
  if (crl === undefined) return VERIFY_TEXT.CRL_SIGNATURE_FAILURE;
  if (now < crl.thisUpdate) return VERIFY_TEXT.CRL_NOT_YET_VALID;
  if (crl.nextUpdate !== null && now > crl.nextUpdate) return VERIFY_TEXT.CRL_HAS_EXPIRED;
  if (crl.revoked.has(cert.serial)) return VERIFY_TEXT.CERT_REVOKED;
  return null;
}

/**
 * The checks BoringSSL (Bun) does not make, for a client certificate it has
 * already verified: ssl_verify_depth and ssl_crl. Bun exposes only the leaf,
 * not the intermediates the client sent, so the chain is rebuilt through the
 * trusted bundle; when the leaf's issuer is not in it, the client sent at
 * least one intermediate we cannot see: that counts as one for the depth
 * limit, and the leaf's CRL is then matched by issuer name without checking
 * its signature (the CRL file is local configuration).
 */
export function checkVerifiedLeaf(
  leafDer: Uint8Array,
  policy: ClientVerifyPolicy,
  now = new Date(),
): string | null {
  if (policy.depth === undefined && policy.crl === undefined) return null;
  const own = verifyChain(leafDer, [], policy, now);
  if (own === null) return null;
  if (own !== VERIFY_TEXT.UNABLE_TO_VERIFY_LEAF_SIGNATURE) return own;
  // Hidden intermediates: leaf + at least one intermediate + anchor.
  if (policy.depth !== undefined && policy.depth < 1) return VERIFY_TEXT.CERT_CHAIN_TOO_LONG;
  if (policy.crl !== undefined) {
    let fields: CertFields;
    try {
      fields = parseCertFields(leafDer);
    } catch {
      return VERIFY_TEXT.ERROR_IN_CERT_NOT_BEFORE_FIELD;
    }
    return crlCheck(fields, crlList(policy.crl), () => true, now);
  }
  return null;
}

/** Verify a single leaf against a PEM CA bundle (no depth limit, no CRL). */
export function verifyLeaf(
  der: Uint8Array,
  caPem: string | undefined,
  now = new Date(),
): string | null {
  return verifyChain(der, [], { trusted: caPem }, now);
}

/**
 * Stack codes that mean "no trust path" (as opposed to a bad certificate):
 * after one of these, Bun's result is re-checked against the CAs it was not
 * given (ssl_trusted_certificate, which must not be advertised).
 */
export const NO_TRUST_PATH_CODES: ReadonlySet<string> = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
]);

/** A Node/Bun verify error's code ("UNABLE_TO_GET_ISSUER_CERT"), or its string form. */
export function verifyErrorCode(code: unknown): string {
  if (code instanceof Error) return (code as Error & { code?: string }).code ?? code.message;
  return String(code);
}
