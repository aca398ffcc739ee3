// A small, strict HTTP/1.1 request reader for the status listener: GET and
// HEAD without bodies, bounded heads, keep-alive and pipelining. Runtime-
// neutral: it sees bytes and answers with parsed requests or an error
// status; lib/status/server.ts does the I/O.

/** Most bytes of one request head (request line + headers). */
export const MAX_HEAD = 8192;
/** Most header lines in one request. */
export const MAX_HEADERS = 64;

export interface HttpRequest {
  method: string;
  /** The path, without the query string. */
  path: string;
  version: "1.0" | "1.1";
  /** Header names lower-cased; a repeated header's values joined with ", ". */
  headers: Map<string, string>;
  /** The connection stays open after the answer. */
  keepAlive: boolean;
}

export type ReadResult =
  | { kind: "request"; request: HttpRequest }
  /** The connection must be answered with `status` and closed. */
  | { kind: "error"; status: 400 | 431 | 505; reason: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TARGET = /^\/[\x21-\x7e]*$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Reads requests from a byte stream; push() returns the ones complete so far. */
export class RequestReader {
  #buf = new Uint8Array(0);
  #failed = false;

  push(chunk: Uint8Array): ReadResult[] {
    if (this.#failed) return [];
    const merged = new Uint8Array(this.#buf.length + chunk.length);
    merged.set(this.#buf);
    merged.set(chunk, this.#buf.length);
    const out: ReadResult[] = [];
    let start = 0;
    for (;;) {
      const end = headEnd(merged, start);
      if (end < 0) {
        if (merged.length - start > MAX_HEAD) out.push(this.#fail(431, "request head too large"));
        break;
      }
      if (end - start > MAX_HEAD) {
        out.push(this.#fail(431, "request head too large"));
        break;
      }
      const r = parseHead(latin1(merged, start, end));
      out.push(r);
      start = end;
      if (r.kind === "error") {
        this.#failed = true;
        break;
      }
    }
    this.#buf = this.#failed ? new Uint8Array(0) : merged.slice(start);
    return out;
  }

  #fail(status: 431, reason: string): ReadResult {
    this.#failed = true;
    return { kind: "error", status, reason };
  }
}

/** Index just past the empty line ending the head that begins at `from`, or -1. */
function headEnd(b: Uint8Array, from: number): number {
  // Leading empty lines before a request line are ignored (RFC 9112 §2.2).
  for (let i = from; i < b.length; i++) {
    if (b[i] !== 0x0a) continue;
    if (i + 1 < b.length && b[i + 1] === 0x0a) return i + 2;
    if (i + 2 < b.length && b[i + 1] === 0x0d && b[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

function latin1(b: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]);
  return s;
}

function bad(reason: string): ReadResult {
  return { kind: "error", status: 400, reason };
}

export function parseHead(head: string): ReadResult {
  // A bare LF ends a line as CRLF does (RFC 9112 §2.2); a lone CR is an error.
  const lines = head.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  while (lines.length > 0 && lines[0] === "") lines.shift();
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) return bad("empty request");
  if (lines.some((l) => l.includes("\r"))) return bad("bare CR in request head");
  const parts = lines[0].split(" ");
  if (parts.length !== 3) return bad("malformed request line");
  const [method, target, proto] = parts;
  if (!TOKEN.test(method)) return bad("malformed method");
  const m = /^HTTP\/(\d)\.(\d)$/.exec(proto);
  if (!m) return bad("malformed HTTP version");
  if (m[1] !== "1") return { kind: "error", status: 505, reason: "HTTP version not supported" };
  if (!TARGET.test(target)) return bad("request target must be an absolute path");
  const version = m[2] === "0" ? "1.0" : "1.1";
  if (lines.length - 1 > MAX_HEADERS) {
    return { kind: "error", status: 431, reason: "too many header fields" };
  }
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line[0] === " " || line[0] === "\t") return bad("obsolete line folding");
    const colon = line.indexOf(":");
    if (colon <= 0) return bad("malformed header field");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return bad("malformed header field name");
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) return bad("malformed header field value");
    const key = name.toLowerCase();
    const had = headers.get(key);
    if (had !== undefined && (key === "host" || key === "content-length")) {
      return bad(`repeated ${key} header`);
    }
    headers.set(key, had === undefined ? value : `${had}, ${value}`);
  }
  if (version === "1.1" && !headers.has("host")) return bad("missing Host header");
  if (headers.has("transfer-encoding")) return bad("request bodies are not accepted");
  const cl = headers.get("content-length");
  if (cl !== undefined && !/^0+$/.test(cl)) return bad("request bodies are not accepted");
  const conn = (headers.get("connection") ?? "").toLowerCase().split(",").map((t) => t.trim());
  const keepAlive = version === "1.1" ? !conn.includes("close") : conn.includes("keep-alive");
  const q = target.indexOf("?");
  return {
    kind: "request",
    request: { method, path: q < 0 ? target : target.slice(0, q), version, headers, keepAlive },
  };
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** One response, head and body, as bytes; HEAD gets the head only. */
export function formatResponse(
  status: number,
  headers: [string, string][],
  body: Uint8Array,
  opts: { head: boolean; keepAlive: boolean },
): Uint8Array {
  let h = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
  for (const [k, v] of headers) h += `${k}: ${v}\r\n`;
  h += `Content-Length: ${body.length}\r\n`;
  h += `Cache-Control: no-store\r\n`;
  if (!opts.keepAlive) h += "Connection: close\r\n";
  h += "\r\n";
  const headBytes = new TextEncoder().encode(h);
  if (opts.head) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}
