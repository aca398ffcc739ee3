// DNS messages (RFC 1035) for the SMTP client-host lookup: encode one
// question, decode a response's header, question and answer section, and
// interpret the answer for the name asked about (CNAME chains, rcode). Pure:
// no sockets, clocks or randomness; the caller supplies the query id.
//
// Names are presentation strings without the trailing dot ("" is the root).
// Label bytes other than printable ASCII, and "." or "\" inside a label, are
// written as \DDD, so a decoded name never contains a byte that would change
// its label structure (and never passes the host-name check in client_host).

export const TYPE_A = 1;
export const TYPE_CNAME = 5;
export const TYPE_PTR = 12;
export const TYPE_AAAA = 28;
export const TYPE_DNAME = 39;
export const CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;

const HEADER_LEN = 12;
/** RFC 1035 §2.3.4 limits. */
const MAX_LABEL_LEN = 63;
const MAX_NAME_WIRE_LEN = 255;
/** More compression pointers than this in one name is a loop or an attack. */
const MAX_POINTER_HOPS = 64;
/** TTLs with the top bit set mean 0 (RFC 2181 §8); we also cap at a week. */
const MAX_TTL_SEC = 604800;

const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;

export class DnsFormatError extends Error {}

export interface DnsHeader {
  id: number;
  qr: boolean;
  opcode: number;
  tc: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
}

export interface DnsQuestion {
  name: string;
  type: number;
  cls: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  cls: number;
  ttl: number;
  /** Decoded RDATA: a name for PTR/CNAME, an address for A/AAAA, else null. */
  data: string | null;
  rdlength: number;
}

export interface DnsMessage {
  header: DnsHeader;
  question: DnsQuestion | null;
  answers: DnsRecord[];
}

// ---------------------------------------------------------------- encoding

/** Wire form of a plain name ("a.example.net", trailing dot optional). */
export function encodeName(name: string): Uint8Array {
  const text = name.endsWith(".") ? name.slice(0, -1) : name;
  const labels = text === "" ? [] : text.split(".");
  let len = 1;
  for (const l of labels) len += 1 + l.length;
  if (len > MAX_NAME_WIRE_LEN) throw new DnsFormatError(`name too long: ${name}`);
  const out = new Uint8Array(len);
  let p = 0;
  for (const l of labels) {
    if (l.length === 0 || l.length > MAX_LABEL_LEN) {
      throw new DnsFormatError(`bad label in ${name}`);
    }
    out[p++] = l.length;
    for (let i = 0; i < l.length; i++) {
      const c = l.charCodeAt(i);
      // Escapes are not accepted on input: we only ever ask for names we
      // built (arpa names) or that passed the host-name character check.
      if (c > 0x7e || c < 0x21 || c === 0x5c) throw new DnsFormatError(`bad character in ${name}`);
      out[p++] = c;
    }
  }
  out[p] = 0;
  return out;
}

/** A standard query with recursion desired and one IN question. */
export function encodeQuery(id: number, name: string, type: number): Uint8Array {
  const qname = encodeName(name);
  const out = new Uint8Array(HEADER_LEN + qname.length + 4);
  const v = new DataView(out.buffer);
  v.setUint16(0, id & 0xffff);
  v.setUint16(2, FLAG_RD);
  v.setUint16(4, 1); // QDCOUNT
  out.set(qname, HEADER_LEN);
  v.setUint16(HEADER_LEN + qname.length, type);
  v.setUint16(HEADER_LEN + qname.length + 2, CLASS_IN);
  return out;
}

// ---------------------------------------------------------------- decoding

function u16(buf: Uint8Array, p: number): number {
  return (buf[p] << 8) | buf[p + 1];
}

function u32(buf: Uint8Array, p: number): number {
  return ((buf[p] << 24) >>> 0) + (buf[p + 1] << 16) + (buf[p + 2] << 8) + buf[p + 3];
}

function appendLabel(out: string, buf: Uint8Array, start: number, len: number): string {
  if (out.length > 0) out += ".";
  for (let i = start; i < start + len; i++) {
    const c = buf[i];
    if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c) {
      out += "\\" + String(c).padStart(3, "0");
    } else {
      out += String.fromCharCode(c);
    }
  }
  return out;
}

/**
 * Reads a possibly compressed name at `offset`. Bytes read in place (before
 * the first pointer) must lie below `end`; pointers may go anywhere earlier
 * in the message. Each pointer must point strictly before the previous
 * pointer's target (and the first before itself), which every real
 * compressor satisfies and which makes loops impossible.
 */
export function readName(
  buf: Uint8Array,
  offset: number,
  end = buf.length,
): { name: string; next: number } {
  let name = "";
  let wire = 1;
  let p = offset;
  let limit = end;
  let next = -1;
  let lowest = offset;
  let hops = 0;
  for (;;) {
    if (p >= limit) throw new DnsFormatError("name runs past the end");
    const len = buf[p];
    if (len === 0) {
      if (next < 0) next = p + 1;
      return { name, next };
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (p + 1 >= limit) throw new DnsFormatError("truncated compression pointer");
      const target = ((len & 0x3f) << 8) | buf[p + 1];
      if (target >= lowest) {
        throw new DnsFormatError("compression pointer does not point backwards");
      }
      if (++hops > MAX_POINTER_HOPS) throw new DnsFormatError("too many compression pointers");
      if (next < 0) next = p + 2;
      lowest = target;
      p = target;
      // RDATA bounds apply only to the bytes read in place; the decreasing
      // targets and the length cap bound what follows a jump.
      limit = buf.length;
      continue;
    }
    if (kind !== 0) throw new DnsFormatError("unsupported label type");
    if (p + 1 + len > limit) throw new DnsFormatError("label runs past the end");
    wire += 1 + len;
    if (wire > MAX_NAME_WIRE_LEN) throw new DnsFormatError("name too long");
    name = appendLabel(name, buf, p + 1, len);
    p += 1 + len;
  }
}

/** Canonical text of an address: dotted quad, or eight lower-case hex groups. */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  let s = "";
  for (let i = 0; i < 16; i += 2) {
    if (i > 0) s += ":";
    s += ((bytes[i] << 8) | bytes[i + 1]).toString(16);
  }
  return s;
}

export function decodeHeader(buf: Uint8Array): DnsHeader {
  if (buf.length < HEADER_LEN) throw new DnsFormatError("short header");
  const flags = u16(buf, 2);
  return {
    id: u16(buf, 0),
    qr: (flags & FLAG_QR) !== 0,
    opcode: (flags >> 11) & 0xf,
    tc: (flags & FLAG_TC) !== 0,
    rcode: flags & 0xf,
    qdcount: u16(buf, 4),
    ancount: u16(buf, 6),
  };
}

/** Header and the first question; enough to match a response to a query. */
export function decodeQuestion(
  buf: Uint8Array,
): { header: DnsHeader; question: DnsQuestion | null; next: number } {
  const header = decodeHeader(buf);
  if (header.qdcount === 0) return { header, question: null, next: HEADER_LEN };
  const { name, next } = readName(buf, HEADER_LEN);
  if (next + 4 > buf.length) throw new DnsFormatError("truncated question");
  const question = { name, type: u16(buf, next), cls: u16(buf, next + 2) };
  return { header, question, next: next + 4 };
}

function decodeRdata(
  buf: Uint8Array,
  type: number,
  cls: number,
  start: number,
  len: number,
): string | null {
  if (cls !== CLASS_IN) return null;
  if (type === TYPE_A || type === TYPE_AAAA) {
    const want = type === TYPE_A ? 4 : 16;
    if (len !== want) throw new DnsFormatError(`bad RDLENGTH ${len} for type ${type}`);
    return formatAddress(buf.subarray(start, start + len));
  }
  if (type === TYPE_PTR || type === TYPE_CNAME) {
    // A zero-length (or short) RDATA makes readName fail at `end`.
    const { name, next } = readName(buf, start, start + len);
    if (next !== start + len) throw new DnsFormatError("RDATA longer than its name");
    return name;
  }
  return null; // DNAME and the rest are carried but never used
}

/** Header, question and answer section; authority/additional are not read. */
export function decodeMessage(buf: Uint8Array): DnsMessage {
  const { header, question, next } = decodeQuestion(buf);
  if (header.qdcount > 1) throw new DnsFormatError("more than one question");
  const answers: DnsRecord[] = [];
  let p = next;
  for (let i = 0; i < header.ancount; i++) {
    const owner = readName(buf, p);
    p = owner.next;
    if (p + 10 > buf.length) throw new DnsFormatError("truncated resource record");
    const type = u16(buf, p);
    const cls = u16(buf, p + 2);
    const rawTtl = u32(buf, p + 4);
    const rdlength = u16(buf, p + 8);
    p += 10;
    if (p + rdlength > buf.length) throw new DnsFormatError("RDATA runs past the end");
    const ttl = rawTtl >= 0x80000000 ? 0 : Math.min(rawTtl, MAX_TTL_SEC);
    answers.push({
      name: owner.name,
      type,
      cls,
      ttl,
      data: decodeRdata(buf, type, cls, p, rdlength),
      rdlength,
    });
    p += rdlength;
  }
  return { header, question, answers };
}

// ---------------------------------------------------------- interpretation

export function sameName(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

/** What an answer says about (qname, qtype). `ttl` in seconds. */
export type Answer =
  /** Records of qtype for qname or for the end of a CNAME chain from it. */
  | { kind: "records"; values: string[]; ttl: number }
  /** A CNAME chain from qname ending in a name without qtype records here. */
  | { kind: "cname"; target: string; ttl: number }
  | { kind: "nxdomain" }
  /** NOERROR with an empty answer section. */
  | { kind: "nodata" }
  /** Any other rcode. */
  | { kind: "rcode"; rcode: number }
  /** Answer records, none of them usable (e.g. only a DNAME). */
  | { kind: "unusable" };

export function interpretAnswer(msg: DnsMessage, qname: string, qtype: number): Answer {
  const rcode = msg.header.rcode;
  if (rcode === RCODE_NXDOMAIN) return { kind: "nxdomain" };
  if (rcode !== RCODE_NOERROR) return { kind: "rcode", rcode };
  if (msg.answers.length === 0) return { kind: "nodata" };
  let name = qname;
  let ttl = Infinity;
  // Each step consumes a different CNAME record, so answers.length bounds it.
  for (let step = 0; step <= msg.answers.length; step++) {
    const values: string[] = [];
    let cname: { target: string; ttl: number } | null = null;
    for (const rr of msg.answers) {
      if (rr.cls !== CLASS_IN || rr.data === null || !sameName(rr.name, name)) continue;
      if (rr.type === qtype) {
        values.push(rr.data);
        ttl = Math.min(ttl, rr.ttl);
      } else if (rr.type === TYPE_CNAME && cname === null) {
        cname = { target: rr.data, ttl: rr.ttl };
      }
    }
    if (values.length > 0) return { kind: "records", values, ttl };
    if (cname === null) {
      return name === qname ? { kind: "unusable" } : { kind: "cname", target: name, ttl };
    }
    name = cname.target;
    ttl = Math.min(ttl, cname.ttl);
  }
  return { kind: "unusable" }; // a CNAME loop inside the answer
}
