// Reads the signature schemes a TLS ClientHello offers. Deno's node:tls
// (rustls underneath) serves only the first cert/key pair of a secure
// context, so for a server with several pairs (RSA + ECDSA) the Deno adapter
// looks at the ClientHello itself and builds the TLS socket with the pair
// the client can verify, as OpenSSL does for nginx.

/** A TLS record header plus the largest plaintext record: the most read before choosing. */
export const HELLO_SNIFF_MAX = 5 + 16384;

const be16 = (b: Uint8Array, p: number) => (b[p] << 8) | b[p + 1];

/**
 * The signature_algorithms of the ClientHello at the start of `b`.
 * undefined: the first record is not complete yet; null: not a ClientHello,
 * or it offers no signature_algorithms (TLS 1.2 then means RSA).
 */
export function helloSignatureSchemes(b: Uint8Array): number[] | null | undefined {
  if (b.length < 5) return undefined;
  if (b[0] !== 0x16) return null; // not a handshake record
  const end = 5 + be16(b, 3);
  if (b.length < end) return b.length >= HELLO_SNIFF_MAX ? null : undefined;
  let p = 5;
  if (b[p] !== 1) return null; // not a ClientHello
  // A hello longer than one record: use what the first record holds.
  const helloEnd = Math.min(end, p + 4 + ((b[p + 1] << 16) | be16(b, p + 2)));
  p += 4 + 2 + 32; // handshake header, legacy_version, random
  if (p >= helloEnd) return null;
  p += 1 + b[p]; // legacy_session_id
  if (p + 2 > helloEnd) return null;
  p += 2 + be16(b, p); // cipher_suites
  if (p + 1 > helloEnd) return null;
  p += 1 + b[p]; // legacy_compression_methods
  if (p + 2 > helloEnd) return null;
  const extEnd = Math.min(helloEnd, p + 2 + be16(b, p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = be16(b, p);
    const len = be16(b, p + 2);
    p += 4;
    if (type === 13 && p + 2 <= extEnd) {
      const listEnd = Math.min(extEnd, p + 2 + be16(b, p));
      const out: number[] = [];
      for (let q = p + 2; q + 2 <= listEnd; q += 2) out.push(be16(b, q));
      return out;
    }
    p += len;
  }
  return null;
}

/** Key types a certificate chooser distinguishes. */
export type CertKeyType = "ec" | "ed25519" | "rsa" | "other";

const EC_SCHEMES = new Set([0x0403, 0x0503, 0x0603, 0x0203]);
const RSA_SCHEMES = new Set([0x0401, 0x0501, 0x0601, 0x0201, 0x0804, 0x0805, 0x0806]);
const ED25519_SCHEME = 0x0807;

/**
 * Index of the pair to serve: ECDSA, then Ed25519, then RSA, the first one
 * of a type the client offers a scheme for (OpenSSL's default preference);
 * a hello without signature_algorithms gets RSA; otherwise the first pair.
 */
export function chooseCertIndex(types: CertKeyType[], schemes: number[] | null): number {
  const supports = (t: CertKeyType) => {
    if (schemes === null) return t === "rsa";
    if (t === "ec") return schemes.some((s) => EC_SCHEMES.has(s));
    if (t === "rsa") return schemes.some((s) => RSA_SCHEMES.has(s));
    if (t === "ed25519") return schemes.includes(ED25519_SCHEME);
    return false;
  };
  for (const want of ["ec", "ed25519", "rsa"] as const) {
    const i = types.findIndex((t) => t === want && supports(t));
    if (i >= 0) return i;
  }
  return 0;
}
