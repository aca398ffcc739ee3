// The SIG_ALG and KEY_ALG sub-TLVs of the PROXY v2 SSL TLV describe the
// proxy's own certificate (tls_and_proxy_protocol.md §8): its signature
// algorithm in OpenSSL's short-name form (what HAProxy sends, e.g.
// "RSA-SHA256") and its key as algorithm plus size ("RSA2048", "EC256").
// Computed once per server from its first certificate pair: which pair a
// handshake used is not reported by the runtimes, so with several pairs
// (e.g. RSA and ECDSA) the first one is described.

import { nodeCrypto } from "../runtime/builtins.ts";
import { children, oidString, readTlv } from "../tls/der_cert.ts";
import { pemToDers } from "../tls/tls_verify.ts";
import type { TlsServerOptions } from "../runtime/types.ts";
import type { OwnCertInfo } from "./writer.ts";

/** Signature algorithm OIDs and OpenSSL's short names for them. */
const SIG_ALG_NAMES: Record<string, string> = {
  "1.2.840.113549.1.1.5": "RSA-SHA1",
  "1.2.840.113549.1.1.11": "RSA-SHA256",
  "1.2.840.113549.1.1.12": "RSA-SHA384",
  "1.2.840.113549.1.1.13": "RSA-SHA512",
  "1.2.840.113549.1.1.10": "RSASSA-PSS",
  "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
  "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
  "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
  "1.3.101.112": "ED25519",
  "1.3.101.113": "ED448",
};

/** Key sizes of the named curves a server certificate may use. */
const CURVE_BITS: Record<string, number> = {
  prime256v1: 256,
  secp384r1: 384,
  secp521r1: 521,
};

/** The certificate's signatureAlgorithm OID (the second element of the Certificate SEQUENCE). */
function signatureOid(der: Uint8Array): string {
  const cert = readTlv(der, 0, der.length);
  const algorithm = children(der, cert)[1];
  return oidString(der, children(der, algorithm)[0]);
}

/** SIG_ALG and KEY_ALG for a PEM certificate (chain: the first one); what cannot be told is left out. */
export function ownCertInfo(pem: string): OwnCertInfo {
  const der = pemToDers(pem)[0];
  if (der === undefined) return {};
  const out: OwnCertInfo = {};
  try {
    const oid = signatureOid(der);
    out.sigAlg = SIG_ALG_NAMES[oid] ?? oid;
  } catch { /* malformed: no SIG_ALG */ }
  try {
    const key = new (nodeCrypto().X509Certificate)(der).publicKey;
    const d = key.asymmetricKeyDetails ?? {};
    switch (key.asymmetricKeyType) {
      case "rsa":
      case "rsa-pss":
        if (d.modulusLength) out.keyAlg = `RSA${d.modulusLength}`;
        break;
      case "ec": {
        const bits = d.namedCurve ? CURVE_BITS[d.namedCurve] : undefined;
        if (bits) out.keyAlg = `EC${bits}`;
        break;
      }
      case "ed25519":
        out.keyAlg = "ED25519";
        break;
      case "ed448":
        out.keyAlg = "ED448";
        break;
    }
  } catch { /* unreadable key: no KEY_ALG */ }
  return out;
}

/** Per server TLS settings (a reload makes new ones), so each certificate is read once. */
const cache = new WeakMap<TlsServerOptions, OwnCertInfo>();

/** ownCertInfo of the first certificate pair of `tls`; {} without TLS settings. */
export function ownCertFor(tls: TlsServerOptions | null): OwnCertInfo {
  if (tls === null || tls.certs.length === 0) return {};
  let info = cache.get(tls);
  if (info === undefined) {
    info = ownCertInfo(tls.certs[0].cert);
    cache.set(tls, info);
  }
  return info;
}
