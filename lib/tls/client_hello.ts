// Reads a TLS ClientHello from the first bytes a client sends: the host
// name it asks for (SNI: which server block serves it) and the signature
// schemes it offers. The schemes matter because Deno's node:tls (rustls
// underneath) serves only the first cert/key pair of a secure context, so
// for a server with several pairs (RSA + ECDSA) the Deno adapter builds the
// TLS socket with the pair the client can verify, as OpenSSL does for nginx.

/** A TLS record header plus the largest plaintext record: the most read before choosing. */
export const HELLO_SNIFF_MAX = 5 + 16384;

const be16 = (b: Uint8Array, p: number) => (b[p] << 8) | b[p + 1];

/**
 * Finds extension `type` in the ClientHello at the start of `b`: its body's
 * [start, end) offsets (end clamped to what the first record holds).
 * undefined: the first record is not complete yet (read more); null: not a
 * ClientHello, or the extension is absent.
 */
function helloExtension(b: Uint8Array, type: number): [number, number] | null | undefined {
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
    const t = be16(b, p);
    const len = be16(b, p + 2);
    p += 4;
    if (t === type) return [p, Math.min(extEnd, p + len)];
    p += len;
  }
  return null;
}

/**
 * The signature_algorithms of the ClientHello at the start of `b`.
 * undefined: the first record is not complete yet; null: not a ClientHello,
 * or it offers no signature_algorithms (TLS 1.2 then means RSA).
 */
export function helloSignatureSchemes(b: Uint8Array): number[] | null | undefined {
  const ext = helloExtension(b, 13);
  if (!ext) return ext;
  const [p, extEnd] = ext;
  if (p + 2 > extEnd) return null;
  const listEnd = Math.min(extEnd, p + 2 + be16(b, p));
  const out: number[] = [];
  for (let q = p + 2; q + 2 <= listEnd; q += 2) out.push(be16(b, q));
  return out;
}

/**
 * The host name (SNI) of the ClientHello at the start of `b`, so the block
 * serving a TLS listener can be chosen before the handshake, the same way on
 * every runtime. undefined: the first record is not complete yet (read
 * more); null: not a ClientHello, or it names no host (the default block
 * serves it).
 */
export function helloServerName(b: Uint8Array): string | null | undefined {
  const ext = helloExtension(b, 0);
  if (!ext) return ext;
  const [p, extEnd] = ext;
  if (p + 2 > extEnd) return null;
  // server_name_list: (type u8, length u16, name)*; host_name is type 0.
  const listEnd = Math.min(extEnd, p + 2 + be16(b, p));
  for (let q = p + 2; q + 3 <= listEnd;) {
    const nameLen = be16(b, q + 1);
    if (b[q] === 0 && q + 3 + nameLen <= listEnd) {
      let s = "";
      for (let i = q + 3; i < q + 3 + nameLen; i++) s += String.fromCharCode(b[i]);
      return s === "" ? null : s;
    }
    q += 3 + nameLen;
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
