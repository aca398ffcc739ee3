// PROXY protocol headers sent to backends (`proxy_protocol on|v2`,
// tls_and_proxy_protocol.md §8). Source = the client (after set_real_ip_from),
// destination = the local address that accepted the client.

import type { SockAddr, TlsInfo } from "../runtime/types.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../core/ip.ts";
import { binaryToBytes, textBytes } from "../core/bytes.ts";
import { crc32c } from "./crc32c.ts";

/** Facts about the proxy's own certificate for the v2 SSL TLV (e.g. "SHA256", "RSA2048"). */
export interface OwnCertInfo {
  sigAlg?: string;
  keyAlg?: string;
}

const V1_UNKNOWN_LINE = "PROXY UNKNOWN\r\n";

// deno-fmt-ignore
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V2_VER_CMD_LOCAL = 0x20;
const V2_VER_CMD_PROXY = 0x21;
const V2_FAM_UNSPEC = 0x00;
const V2_FAM_INET_STREAM = 0x11;
const V2_FAM_INET6_STREAM = 0x21;
/** Signature, version/command, family/transport, 2-byte length. */
const V2_FIXED = 16;
const V2_INET_ADDRS = 12; // 4 + 4 + 2 + 2
const V2_INET6_ADDRS = 36; // 16 + 16 + 2 + 2
const CRC32C_TLV_LEN = 3 + 4;

// TLV types (PROXY protocol spec §2.2).
const PP2_TYPE_ALPN = 0x01;
const PP2_TYPE_AUTHORITY = 0x02;
const PP2_TYPE_CRC32C = 0x03;
const PP2_TYPE_SSL = 0x20;
const PP2_SUBTYPE_SSL_VERSION = 0x21;
const PP2_SUBTYPE_SSL_CN = 0x22;
const PP2_SUBTYPE_SSL_CIPHER = 0x23;
const PP2_SUBTYPE_SSL_SIG_ALG = 0x24;
const PP2_SUBTYPE_SSL_KEY_ALG = 0x25;
const PP2_CLIENT_SSL = 0x01;
const PP2_CLIENT_CERT_CONN = 0x02;
const PP2_CLIENT_CERT_SESS = 0x04;

/** Verify result when the client presented no certificate. */
const VERIFY_NO_CERT = 1;
/** X509_V_ERR_UNSPECIFIED: a failure whose text is not in VERIFY_CODES. */
const VERIFY_UNSPECIFIED = 1;

/**
 * A string TLV value longer than this is left out. Nothing legitimate is
 * (a host name is at most 255 bytes), and it keeps the whole header well
 * under the 4096-byte limit receivers such as nginx enforce.
 */
export const PP2_VALUE_MAX = 255;

/**
 * OpenSSL X509_V_ERR_* codes by their X509_verify_cert_error_string() text,
 * the form TlsInfo.verifyError carries (lib/tls/tls_verify.ts).
 */
const VERIFY_CODES: Record<string, number> = {
  "unable to get issuer certificate": 2,
  "unable to get certificate CRL": 3,
  "unable to decrypt certificate's signature": 4,
  "unable to decrypt CRL's signature": 5,
  "unable to decode issuer public key": 6,
  "certificate signature failure": 7,
  "CRL signature failure": 8,
  "certificate is not yet valid": 9,
  "certificate has expired": 10,
  "CRL is not yet valid": 11,
  "CRL has expired": 12,
  "format error in certificate's notBefore field": 13,
  "format error in certificate's notAfter field": 14,
  "format error in CRL's lastUpdate field": 15,
  "format error in CRL's nextUpdate field": 16,
  "out of memory": 17,
  "self-signed certificate": 18,
  "self-signed certificate in certificate chain": 19,
  "unable to get local issuer certificate": 20,
  "unable to verify the first certificate": 21,
  "certificate chain too long": 22,
  "certificate revoked": 23,
  "invalid CA certificate": 24,
  "path length constraint exceeded": 25,
  "unsupported certificate purpose": 26,
  "certificate not trusted": 27,
  "certificate rejected": 28,
  "hostname mismatch": 62,
};

/** An IP endpoint as 16 bytes (IPv4 mapped) and, when IPv4 or IPv4-mapped, 4 bytes. */
interface Inet {
  v6: Uint8Array;
  v4: Uint8Array | null;
  port: number;
}

/** null for UNIX sockets (and, defensively, an address that does not parse). */
function inet(a: SockAddr): Inet | null {
  if (a.family === "unix") return null;
  if (a.family === "ipv4") {
    const v4 = parseIPv4(a.address);
    return v4 ? { v4, v6: mapped(v4), port: a.port } : null;
  }
  const zone = a.address.indexOf("%"); // a link-local scope is not part of the address
  const v6 = parseIPv6(zone < 0 ? a.address : a.address.slice(0, zone));
  if (!v6) return null;
  return { v6, v4: isV4Mapped(v6) ? v6.slice(12) : null, port: a.port };
}

function mapped(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/**
 * v1 text header. TCP4 when both addresses are IPv4, else TCP6 with IPv4
 * written as ::ffff:a.b.c.d; `PROXY UNKNOWN` for UNIX-socket clients.
 */
export function proxyV1(client: SockAddr, local: SockAddr): Uint8Array {
  const c = inet(client);
  const l = inet(local);
  if (!c || !l) return textBytes(V1_UNKNOWN_LINE);
  // TCP4 follows the socket families (as nginx's AF_INET test does): an
  // IPv6 address that happens to be IPv4-mapped still makes it TCP6.
  const line = client.family === "ipv4" && local.family === "ipv4"
    ? `PROXY TCP4 ${formatIPv4(c.v4!)} ${formatIPv4(l.v4!)} ${c.port} ${l.port}\r\n`
    : `PROXY TCP6 ${formatIPv6(c.v6)} ${formatIPv6(l.v6)} ${c.port} ${l.port}\r\n`;
  return textBytes(line);
}

/**
 * v2 binary header: PROXY/STREAM with INET (both IPv4 or IPv4-mapped) or
 * INET6 addresses, LOCAL/UNSPEC without addresses for UNIX-socket clients;
 * then the TLS TLVs when the client uses TLS; always last a CRC32C TLV.
 * `own` describes the proxy's certificate (SIG_ALG, KEY_ALG; left out when
 * unknown).
 */
export function proxyV2(
  client: SockAddr,
  local: SockAddr,
  tls: TlsInfo | null,
  own: OwnCertInfo = {},
): Uint8Array {
  const c = inet(client);
  const l = inet(local);
  const addrs = c && l ? { c, l } : null;
  const asV4 = addrs !== null && addrs.c.v4 !== null && addrs.l.v4 !== null;
  const addrLen = addrs === null ? 0 : asV4 ? V2_INET_ADDRS : V2_INET6_ADDRS;

  const tlvs: Uint8Array[] = [];
  if (tls) {
    if (tls.servername) pushTlv(tlvs, PP2_TYPE_AUTHORITY, textBytes(tls.servername));
    if (tls.alpn) pushTlv(tlvs, PP2_TYPE_ALPN, textBytes(tls.alpn));
    tlvs.push(sslTlv(tls, own));
  }
  let bodyLen = addrLen + CRC32C_TLV_LEN;
  for (const t of tlvs) bodyLen += t.length;

  const out = new Uint8Array(V2_FIXED + bodyLen);
  out.set(V2_SIGNATURE, 0);
  out[12] = addrs ? V2_VER_CMD_PROXY : V2_VER_CMD_LOCAL;
  out[13] = addrs === null ? V2_FAM_UNSPEC : asV4 ? V2_FAM_INET_STREAM : V2_FAM_INET6_STREAM;
  out[14] = bodyLen >> 8;
  out[15] = bodyLen & 0xff;
  let p = V2_FIXED;
  if (addrs) {
    const { c, l } = addrs;
    if (asV4) {
      out.set(c.v4!, p);
      out.set(l.v4!, p + 4);
      p += 8;
    } else {
      out.set(c.v6, p);
      out.set(l.v6, p + 16);
      p += 32;
    }
    out[p++] = c.port >> 8;
    out[p++] = c.port & 0xff;
    out[p++] = l.port >> 8;
    out[p++] = l.port & 0xff;
  }
  for (const t of tlvs) {
    out.set(t, p);
    p += t.length;
  }
  // CRC32C over the whole header with its own value still zero.
  out[p] = PP2_TYPE_CRC32C;
  out[p + 1] = 0;
  out[p + 2] = 4;
  const sum = crc32c(out);
  out[p + 3] = sum >>> 24;
  out[p + 4] = (sum >>> 16) & 0xff;
  out[p + 5] = (sum >>> 8) & 0xff;
  out[p + 6] = sum & 0xff;
  return out;
}

/** PP2_TYPE_SSL: client flags, verify result, then the sub-TLVs. */
function sslTlv(tls: TlsInfo, own: OwnCertInfo): Uint8Array {
  const cert = tls.peerCert;
  let client = PP2_CLIENT_SSL;
  // A resumed session is not reported by the runtime: a certificate is
  // taken as presented in this connection as well.
  if (cert) client |= PP2_CLIENT_CERT_SESS | PP2_CLIENT_CERT_CONN;
  const verify = !cert
    ? VERIFY_NO_CERT
    : tls.verifyError === null
    ? 0
    : VERIFY_CODES[tls.verifyError] ?? VERIFY_UNSPECIFIED;

  const subs: Uint8Array[] = [];
  pushTlv(subs, PP2_SUBTYPE_SSL_VERSION, textBytes(tls.protocol));
  const cn = cert ? commonName(cert.subject) : null;
  if (cn !== null) pushTlv(subs, PP2_SUBTYPE_SSL_CN, cn);
  pushTlv(subs, PP2_SUBTYPE_SSL_CIPHER, textBytes(tls.cipher));
  if (own.sigAlg) pushTlv(subs, PP2_SUBTYPE_SSL_SIG_ALG, textBytes(own.sigAlg));
  if (own.keyAlg) pushTlv(subs, PP2_SUBTYPE_SSL_KEY_ALG, textBytes(own.keyAlg));

  let len = 5;
  for (const s of subs) len += s.length;
  const value = new Uint8Array(len);
  value[0] = client;
  value[1] = verify >>> 24;
  value[2] = (verify >>> 16) & 0xff;
  value[3] = (verify >>> 8) & 0xff;
  value[4] = verify & 0xff;
  let p = 5;
  for (const s of subs) {
    value.set(s, p);
    p += s.length;
  }
  return tlv(PP2_TYPE_SSL, value);
}

/** Appends a TLV unless its value is empty or over PP2_VALUE_MAX. */
function pushTlv(list: Uint8Array[], type: number, value: Uint8Array): void {
  if (value.length === 0 || value.length > PP2_VALUE_MAX) return;
  list.push(tlv(type, value));
}

function tlv(type: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(3 + value.length);
  out[0] = type;
  out[1] = value.length >> 8;
  out[2] = value.length & 0xff;
  out.set(value, 3);
  return out;
}

/**
 * The CN of an RFC 2253 subject ("CN=alice,O=Example"), RFC 2253 escapes
 * undone (`\,`, and `\XX` hex for UTF-8 bytes), as bytes. With several CNs,
 * the last one in the string: the first in the certificate, which is the
 * one OpenSSL's X509_NAME_get_index_by_NID (and HAProxy) would report.
 */
export function commonName(subject: string): Uint8Array | null {
  let found: string | null = null;
  let i = 0;
  while (i < subject.length) {
    // One attribute: "type=value" up to an unescaped ',' or '+'.
    const eq = subject.indexOf("=", i);
    if (eq < 0) break;
    const type = subject.slice(i, eq);
    let j = eq + 1;
    let value = "";
    while (j < subject.length && subject[j] !== "," && subject[j] !== "+") {
      if (subject[j] === "\\" && j + 1 < subject.length) {
        const hex = subject.slice(j + 1, j + 3);
        if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
          value += String.fromCharCode(parseInt(hex, 16));
          j += 3;
        } else {
          const ch = String.fromCodePoint(subject.codePointAt(j + 1)!);
          value += utf8Binary(ch);
          j += 1 + ch.length;
        }
        continue;
      }
      const ch = String.fromCodePoint(subject.codePointAt(j)!);
      value += utf8Binary(ch);
      j += ch.length;
    }
    if (type.trim().toUpperCase() === "CN") found = value;
    i = j + 1;
  }
  return found === null ? null : binaryToBytes(found);
}

/** One code point as its UTF-8 bytes in a binary string (ASCII stays as is). */
function utf8Binary(ch: string): string {
  if (ch.charCodeAt(0) < 0x80) return ch;
  let s = "";
  for (const b of textBytes(ch)) s += String.fromCharCode(b);
  return s;
}
