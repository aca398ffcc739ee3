// The auth_http request: the exact bytes mailgate sends to the auth server
// (auth_http.md §2). Pure: takes the request description, returns bytes.
//
// The request is assembled as a binary string (one char per byte) and
// converted once at the end. User names, passwords, salts and SMTP command
// text are binary strings already (bytes.ts); configuration text (Host, URI,
// auth_http_header) and certificate text are UTF-8 encoded first.

import type { AuthHttpUrl } from "../config/types.ts";
import { binaryToBytes, bytesToBinary, textBytes } from "../core/bytes.ts";
import type { AuthRequest } from "./types.ts";

const CRLF = "\r\n";

/**
 * The auth server's name as nginx prints it in `auth http server <addr> ...`
 * log lines: `host:port` (IPv6 in brackets) or `unix:<path>`. AuthHttpUrl
 * holds the address already resolved at start-up, which is what nginx
 * prints (the first resolved address, not the name written in the URL).
 */
export function authServerName(url: AuthHttpUrl): string {
  const t = url.target;
  if (t.kind === "unix") return `unix:${t.path}`;
  // A name looked up per connection (auth_http with a resolver): the name.
  if (t.host === "") return `${url.name}:${t.port}`;
  return t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

const HEX = "0123456789ABCDEF";

/**
 * §2.5 escaping of a binary string: bytes 0x00-0x20 and `%` become `%XX`
 * (upper-case hex); every other byte, 0x7F and 0x80-0xFF included, is kept.
 */
export function escapeAuthValue(s: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    if (c <= 0x20 || c === 0x25) {
      out += s.slice(from, i) + "%" + HEX[c >> 4] + HEX[c & 15];
      from = i + 1;
    }
  }
  return from === 0 ? s : out + s.slice(from);
}

/** UTF-8 text (configuration, certificate fields) as a binary string. */
function utf8(s: string): string {
  return bytesToBinary(textBytes(s));
}

/**
 * The complete request (`GET <uri> HTTP/1.0`, headers in the order of §2,
 * then each auth_http_header, then the empty line). `http11`: the request
 * line says HTTP/1.1 (auth_http_keepalive: the connection may be kept open);
 * the headers are the same.
 */
export function buildAuthRequest(
  url: AuthHttpUrl,
  req: AuthRequest,
  extraHeaders: readonly (readonly [string, string])[],
  http11 = false,
): Uint8Array {
  const c = req.creds;
  const none = c.method === "none";
  // The product sends an empty Auth-Pass for EXTERNAL (nginx may repeat a
  // stale password there) and for `none` (the MAIL command cleared it).
  const user = req.waitUser ?? (none ? "" : c.user);
  const pass = req.waitPass ?? (none || c.method === "external" ? "" : c.pass);

  let r = `GET ${utf8(url.uri)} ${http11 ? "HTTP/1.1" : "HTTP/1.0"}${CRLF}`;
  r += `Host: ${utf8(url.hostHeader)}${CRLF}`;
  r += `Auth-Method: ${c.method}${CRLF}`;
  r += `Auth-User: ${escapeAuthValue(user)}${CRLF}`;
  r += `Auth-Pass: ${escapeAuthValue(pass)}${CRLF}`;
  if ((c.method === "apop" || c.method === "cram-md5") && c.salt !== null) {
    r += `Auth-Salt: ${c.salt}${CRLF}`;
  }
  r += `Auth-Protocol: ${req.protocol}${CRLF}`;
  r += `Auth-Login-Attempt: ${req.attempt}${CRLF}`;
  r += `Client-IP: ${req.clientIp}${CRLF}`;
  if (req.clientHost !== null) r += `Client-Host: ${req.clientHost}${CRLF}`;

  const pp = req.proxyProtocol;
  if (pp !== null) {
    r += `Proxy-Protocol-Addr: ${pp.srcAddr}${CRLF}`;
    r += `Proxy-Protocol-Port: ${pp.srcPort}${CRLF}`;
    r += `Proxy-Protocol-Server-Addr: ${pp.dstAddr}${CRLF}`;
    r += `Proxy-Protocol-Server-Port: ${pp.dstPort}${CRLF}`;
  }

  if (none) {
    // Not escaped (§2.4): SMTP command text cannot contain CR or LF.
    r += `Auth-SMTP-Helo: ${c.smtp?.helo ?? ""}${CRLF}`;
    r += `Auth-SMTP-From: ${c.smtp?.from ?? ""}${CRLF}`;
    r += `Auth-SMTP-To: ${c.smtp?.to ?? ""}${CRLF}`;
  }

  r += tlsHeaders(req);

  for (const [name, value] of extraHeaders) r += `${utf8(name)}: ${utf8(value)}${CRLF}`;
  r += CRLF;
  return binaryToBytes(r);
}

/** §2.3: the Auth-SSL* lines, "" on a plain connection. */
function tlsHeaders(req: AuthRequest): string {
  const tls = req.tls;
  if (tls === null) return "";
  let r = `Auth-SSL: on${CRLF}`;
  // nginx omits these when OpenSSL reports nothing; so do we.
  if (tls.protocol !== "") r += `Auth-SSL-Protocol: ${utf8(tls.protocol)}${CRLF}`;
  if (tls.cipher !== "") r += `Auth-SSL-Cipher: ${utf8(tls.cipher)}${CRLF}`;
  if (req.verifyClient === "off") return r;

  const cert = tls.peerCert;
  if (cert === null) return r + `Auth-SSL-Verify: NONE${CRLF}`;
  const verify = tls.verifyError === null ? "SUCCESS" : `FAILED:${tls.verifyError}`;
  r += `Auth-SSL-Verify: ${utf8(verify)}${CRLF}`;
  r += `Auth-SSL-Subject: ${utf8(cert.subject)}${CRLF}`;
  r += `Auth-SSL-Issuer: ${utf8(cert.issuer)}${CRLF}`;
  r += `Auth-SSL-Serial: ${utf8(cert.serial)}${CRLF}`;
  r += `Auth-SSL-Fingerprint: ${utf8(cert.fingerprint)}${CRLF}`;
  if (req.passClientCert) r += `Auth-SSL-Cert: ${escapeAuthValue(utf8(cert.pem))}${CRLF}`;
  return r;
}
