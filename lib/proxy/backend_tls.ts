// TLS towards backends (mailgate extension; nginx's mail proxy always talks
// plain TCP to backends): turns a server's proxy_ssl* settings into the
// runtime-neutral TlsClientOptions the adapters take. Modelled on nginx's
// http proxy_ssl_* directives:
//
//   proxy_ssl on                      TLS from byte 0 ("ssl")
//   proxy_starttls on                 STARTTLS / STLS before the login ("starttls")
//   proxy_ssl_verify on|off           verify the backend's certificate (default off)
//   proxy_ssl_trusted_certificate f   PEM CAs for that (default: the system store)
//   proxy_ssl_name n                  name to verify (default: the Auth-Server address)
//   proxy_ssl_server_name on|off      also send that name as SNI (default off)
//   proxy_ssl_certificate(_key) f     client certificate for the backend
//
// Files are read once per (re)load, by the configuration loader
// (ProxySslConfig.pem), never per connection; each takes only its blocks
// from a file that holds several (tls/pem.ts). Like ssl_certificate, a
// value starting with "data:" is the PEM text itself.

import { parseIPv4, parseIPv6 } from "../core/ip.ts";
import { loadBackendPem } from "../config/pem_files.ts";
import type { BackendPem, ProxySslConfig } from "../config/types.ts";
import type { TlsClientOptions } from "../runtime/types.ts";

/** How a session reaches its backend; BackendContext.backendTls. */
export type BackendTlsMode = "off" | "ssl" | "starttls";

/**
 * TlsClientOptions plus the name the certificate must match. `servername`
 * is only what goes out as SNI (null: none); verification uses
 * `verifyName` either way, as nginx's proxy_ssl_verify uses proxy_ssl_name
 * whether or not proxy_ssl_server_name is on. (The adapters as they stand
 * verify `servername`, or the connected host when it is null; for a backend
 * given by address with no proxy_ssl_name that is the same name.)
 */
export interface BackendTlsOptions extends TlsClientOptions {
  verifyName: string;
}

export function backendTlsMode(p: ProxySslConfig): BackendTlsMode {
  // The configuration refuses both at once (PROXY_SSL_CONFLICT).
  if (p.ssl) return "ssl";
  return p.starttls ? "starttls" : "off";
}

/**
 * The options for one backend. Reads the configured files on every call:
 * sessions use makeBackendTls() instead.
 */
export function backendTlsOptions(p: ProxySslConfig, backendAddr: string): BackendTlsOptions {
  return optionsFor(p, loadBackendPem(p), backendAddr);
}

/**
 * The per-backend-address options maker, null when the server uses no
 * backend TLS. Uses the material the loader read; reads the files once
 * itself (throws, with the directive named, if one cannot be read) for a
 * ProxySslConfig that did not come from the loader.
 */
export function makeBackendTls(
  p: ProxySslConfig,
): ((backendAddr: string) => BackendTlsOptions) | null {
  if (backendTlsMode(p) === "off") return null;
  const pems = p.pem ?? loadBackendPem(p);
  return (backendAddr) => optionsFor(p, pems, backendAddr);
}

function optionsFor(p: ProxySslConfig, pems: BackendPem, backendAddr: string): BackendTlsOptions {
  const name = hostOnly(p.name ?? backendAddr);
  // RFC 6066 §3: literal IPv4 and IPv6 addresses are not permitted in SNI.
  const sni = p.serverName && name !== "" && parseIPv4(name) === null && parseIPv6(name) === null
    ? name
    : null;
  const o: BackendTlsOptions = { servername: sni, verifyName: name, verify: p.verify };
  if (pems.ca !== undefined) o.ca = pems.ca;
  if (pems.cert !== undefined) {
    o.cert = pems.cert;
    o.key = pems.key;
  }
  return o;
}

/**
 * The host part of a name: as nginx does for proxy_ssl_name, a ":port"
 * suffix is dropped; brackets around an IPv6 literal are dropped too, so
 * that it is recognised as an address. A bare IPv6 literal stays whole.
 */
function hostOnly(name: string): string {
  if (name.startsWith("[")) {
    const close = name.indexOf("]");
    if (close > 0) return name.slice(1, close);
  }
  const colon = name.indexOf(":");
  return colon >= 0 && colon === name.lastIndexOf(":") ? name.slice(0, colon) : name;
}
