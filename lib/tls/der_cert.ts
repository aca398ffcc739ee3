// A minimal DER reader for the X.509 fields mailgate reports about a peer
// certificate (Auth-SSL-Subject/-Issuer/-Serial, validity for our own chain
// check). Parsing the DER ourselves gives byte-identical output on Deno and
// Bun, whose X509Certificate.subject strings differ in order and escaping.
// The DN format is OpenSSL's X509_NAME_print_ex(..., XN_FLAG_RFC2253), which
// is what nginx sends: most specific RDN first, "," between RDNs, "+" inside
// a multi-valued RDN, RFC 2253 escapes, bytes >= 0x80 as \XX.

export interface CertFields {
  subject: string;
  issuer: string;
  /** Upper-case hex, two digits per byte, sign byte stripped. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** The raw DER of the issuer Name, hex: matches a CRL's issuer byte for byte. */
  issuerDer: string;
}

export interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just past the content. */
  end: number;
  /** Offset of the tag byte (for dumping the whole TLV). */
  head: number;
}

export function readTlv(der: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error("truncated DER");
  const head = pos;
  const tag = der[pos++];
  let len = der[pos++];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || pos + n > limit) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[pos++];
  }
  if (pos + len > limit) throw new Error("truncated DER");
  return { tag, start: pos, end: pos + len, head };
}

/** The children of a constructed TLV. */
export function children(der: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = t.start;
  while (p < t.end) {
    const c = readTlv(der, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function hex(der: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += der[i].toString(16).padStart(2, "0");
  return s;
}

export function oidString(der: Uint8Array, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    v = v * 128 + (der[i] & 0x7f);
    if (!(der[i] & 0x80)) {
      if (parts.length === 0) {
        const first = v < 80 ? Math.floor(v / 40) : 2;
        parts.push(first, v - first * 40);
      } else parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

/** OpenSSL short names for attribute types seen in certificate names. */
const SHORT_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.4": "SN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "street",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "2.5.4.13": "description",
  "2.5.4.15": "businessCategory",
  "2.5.4.17": "postalCode",
  "2.5.4.41": "name",
  "2.5.4.42": "GN",
  "2.5.4.43": "initials",
  "2.5.4.44": "generationQualifier",
  "2.5.4.46": "dnQualifier",
  "2.5.4.65": "pseudonym",
  "2.5.4.97": "organizationIdentifier",
  "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.1": "UID",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
  "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
  "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
};

// ASN.1 string tags and how many bytes one character takes.
const STRING_WIDTH: Record<number, number> = {
  0x0c: 0, // UTF8String (variable)
  0x12: 1, // NumericString
  0x13: 1, // PrintableString
  0x14: 1, // T61String (OpenSSL treats it as Latin-1)
  0x16: 1, // IA5String
  0x1a: 1, // VisibleString
  0x1c: 4, // UniversalString
  0x1e: 2, // BMPString
};

const utf8 = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: false });

/** Code points of a string value (decoded per its ASN.1 type). */
function codePoints(der: Uint8Array, t: Tlv, width: number): number[] {
  if (width === 0) {
    return Array.from(utf8d.decode(der.subarray(t.start, t.end)), (c) => c.codePointAt(0)!);
  }
  const out: number[] = [];
  for (let i = t.start; i + width <= t.end; i += width) {
    let c = 0;
    for (let k = 0; k < width; k++) c = c * 256 + der[i + k];
    out.push(c);
  }
  return out;
}

const BACKSLASH_ESCAPED = new Set([0x2c, 0x2b, 0x22, 0x5c, 0x3c, 0x3e, 0x3b]); // , + " \ < > ;

function escapeValue(cps: number[]): string {
  let s = "";
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i];
    if (c > 0x7f) {
      for (const b of utf8.encode(String.fromCodePoint(c))) {
        s += "\\" + b.toString(16).toUpperCase().padStart(2, "0");
      }
    } else if (c < 0x20 || c === 0x7f) {
      s += "\\" + c.toString(16).toUpperCase().padStart(2, "0");
    } else if (
      BACKSLASH_ESCAPED.has(c) || (i === 0 && (c === 0x23 || c === 0x20)) ||
      (i === cps.length - 1 && c === 0x20)
    ) {
      s += "\\" + String.fromCharCode(c);
    } else s += String.fromCharCode(c);
  }
  return s;
}

function formatName(der: Uint8Array, name: Tlv): string {
  const rdns: string[] = [];
  for (const set of children(der, name)) {
    const avas: string[] = [];
    for (const ava of children(der, set)) {
      const [typ, val] = children(der, ava);
      const oid = oidString(der, typ);
      const sn = SHORT_NAMES[oid];
      const width = STRING_WIDTH[val.tag];
      // Unknown attribute types and unknown string types are dumped as
      // "#" + hex of the whole DER value (XN_FLAG_DUMP_UNKNOWN_FIELDS).
      const text = sn !== undefined && width !== undefined
        ? escapeValue(codePoints(der, val, width))
        : "#" + hex(der, val.head, val.end).toUpperCase();
      avas.push((sn ?? oid) + "=" + text);
    }
    // OpenSSL's XN_FLAG_DN_REV reverses its flat entry list, so the values
    // inside a multi-valued RDN come out reversed as well.
    rdns.push(avas.reverse().join("+"));
  }
  return rdns.reverse().join(",");
}

export function parseTime(der: Uint8Array, t: Tlv): Date {
  const s = String.fromCharCode(...der.subarray(t.start, t.end));
  const m = t.tag === 0x17
    ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?Z$/.exec(s)
    : /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(?:\.\d+)?Z$/.exec(s);
  if (!m) throw new Error("bad certificate time");
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  return new Date(
    Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)),
  );
}

/** Parse the reported fields from a DER certificate; throws on malformed input. */
export function parseCertFields(der: Uint8Array): CertFields {
  const cert = readTlv(der, 0, der.length);
  const tbs = children(der, cert)[0];
  const f = children(der, tbs);
  let i = f[0].tag === 0xa0 ? 1 : 0; // optional [0] version
  const serialTlv = f[i++];
  i++; // signature algorithm
  const issuer = f[i++];
  const validity = children(der, f[i++]);
  const subject = f[i++];
  let from = serialTlv.start;
  while (from < serialTlv.end - 1 && der[from] === 0) from++;
  const serial = from < serialTlv.end ? hex(der, from, serialTlv.end).toUpperCase() : "00";
  return {
    subject: formatName(der, subject),
    issuer: formatName(der, issuer),
    serial,
    notBefore: parseTime(der, validity[0]),
    notAfter: parseTime(der, validity[1]),
    issuerDer: hex(der, issuer.head, issuer.end),
  };
}
