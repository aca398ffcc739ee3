// Certificate revocation lists (ssl_crl), read the way OpenSSL uses them for
// client certificates: which issuer a CRL belongs to, its validity window,
// the revoked serial numbers, and whether the issuer's key signed it.
// Neither runtime's TLS stack takes a CRL for a server that verifies client
// certificates (Deno's node:tls only parses the option; Bun has none), so
// mailgate checks revocation itself after the handshake.

import { Buffer } from "node:buffer";
import type { KeyObject } from "node:crypto";
import { nodeCrypto } from "../runtime/builtins.ts";
import { children, hex, oidString, parseTime, readTlv, type Tlv } from "./der_cert.ts";

export interface Crl {
  /** Raw DER of the issuer Name, hex (compare with CertFields.issuerDer). */
  issuerDer: string;
  thisUpdate: Date;
  nextUpdate: Date | null;
  /** Revoked serial numbers, upper-case hex without leading zero bytes (as CertFields.serial). */
  revoked: Set<string>;
  /** The signed part and its signature, for checkSignature. */
  tbs: Uint8Array;
  signature: Uint8Array;
  /** Digest for crypto.verify (null for Ed25519/Ed448); undefined = unsupported algorithm. */
  digest: string | null | undefined;
}

/** Signature algorithm OIDs -> the digest crypto.verify wants. */
const DIGEST_OF: Record<string, string | null> = {
  "1.2.840.113549.1.1.5": "sha1", // sha1WithRSAEncryption
  "1.2.840.113549.1.1.14": "sha224",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.10045.4.1": "sha1", // ecdsa-with-SHA1
  "1.2.840.10045.4.3.1": "sha224",
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.3.101.112": null, // Ed25519
  "1.3.101.113": null, // Ed448
};

function serialHex(der: Uint8Array, t: Tlv): string {
  let from = t.start;
  while (from < t.end - 1 && der[from] === 0) from++;
  return from < t.end ? hex(der, from, t.end).toUpperCase() : "00";
}

const TIME_TAGS = new Set([0x17, 0x18]); // UTCTime, GeneralizedTime

/** Parses one DER CRL; throws on malformed input. */
export function parseCrl(der: Uint8Array): Crl {
  const top = readTlv(der, 0, der.length);
  const [tbsTlv, algTlv, sigTlv] = children(der, top);
  if (tbsTlv === undefined || algTlv === undefined || sigTlv === undefined) {
    throw new Error("bad CRL");
  }
  const f = children(der, tbsTlv);
  let i = f[0]?.tag === 0x02 ? 1 : 0; // optional version
  i++; // signature algorithm (inner copy)
  const issuer = f[i++];
  const thisUpdate = parseTime(der, f[i++]);
  let nextUpdate: Date | null = null;
  if (f[i] !== undefined && TIME_TAGS.has(f[i].tag)) nextUpdate = parseTime(der, f[i++]);
  const revoked = new Set<string>();
  if (f[i] !== undefined && f[i].tag === 0x30) {
    for (const entry of children(der, f[i])) {
      const serial = children(der, entry)[0];
      if (serial !== undefined) revoked.add(serialHex(der, serial));
    }
  }
  const alg = oidString(der, children(der, algTlv)[0]);
  // BIT STRING: first content byte is the count of unused bits (0 here).
  const signature = der.slice(sigTlv.start + 1, sigTlv.end);
  return {
    issuerDer: hex(der, issuer.head, issuer.end),
    thisUpdate,
    nextUpdate,
    revoked,
    tbs: der.slice(tbsTlv.head, tbsTlv.end),
    signature,
    digest: Object.hasOwn(DIGEST_OF, alg) ? DIGEST_OF[alg] : undefined,
  };
}

/** Every CRL in a PEM bundle (unparseable ones are skipped: tls_check reports unreadable files). */
export function pemToCrls(pem: string): Crl[] {
  const out: Crl[] = [];
  const re = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g;
  for (let m = re.exec(pem); m !== null; m = re.exec(pem)) {
    try {
      out.push(parseCrl(new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ""), "base64"))));
    } catch {
      // A CRL that cannot be read revokes nothing and vouches for nothing:
      // certificates of its issuer then fail with "unable to get certificate CRL".
    }
  }
  return out;
}

/** Whether `issuerKey` signed the CRL. */
export function crlSignedBy(crl: Crl, issuerKey: KeyObject): boolean {
  if (crl.digest === undefined) return false;
  try {
    return nodeCrypto().verify(crl.digest, crl.tbs, issuerKey, crl.signature);
  } catch {
    return false;
  }
}
