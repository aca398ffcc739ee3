// Bun TLS settings per connection: the server side's contexts, made once per
// server block and kept, and the options each upgradeTLS or TLS connect
// takes (server and client side).

import type { SecureContext } from "node:tls";
import type { TlsClientOptions, TlsServerOptions } from "../types.ts";
import type { BunTlsOptions } from "./api_types.ts";
import { verifyNameOf } from "../node_tls/node_tls.ts";
import { alpnWire, bunContextOptions } from "./tls_options.ts";
import { nodeTls } from "../builtins.ts";
import { BoundedMap } from "../../core/bounded_map.ts";

/** Bound on cached per-server TLS option objects. */
const TLS_CACHE_MAX = 64;

/**
 * Bun's TLS contexts (BoringSSL SSL_CTX) live only while something holds
 * them: options passed straight to upgradeTLS give a context that is freed
 * once its last connection is gone, and with it the random key that
 * encrypts session tickets, so a client coming back later could not
 * resume. A node:tls SecureContext made once per server block and kept
 * here holds its SSL_CTX (and ticket key) for as long as that
 * configuration is in use; upgradeTLS takes it as `secureContext`.
 */
export interface ServerTls {
  /** node:tls SecureContext (for the layered path) and its native context (for upgradeTLS). */
  secure: SecureContext;
  context: unknown;
  alpn?: ArrayBuffer;
}

const serverTlsCache = new BoundedMap<string, ServerTls>(TLS_CACHE_MAX);

export function serverTls(o: TlsServerOptions): ServerTls {
  const make = (): ServerTls => {
    const secure = nodeTls().createSecureContext(bunContextOptions(o));
    const t: ServerTls = { secure, context: secure.context };
    if (o.alpn !== undefined) t.alpn = alpnWire(o.alpn);
    return t;
  };
  return o.cacheKey === undefined ? make() : serverTlsCache.getOrSet(o.cacheKey, make);
}

/**
 * upgradeTLS options for the server side. ALPN goes with each upgrade (it
 * is not part of the context): with our single protocol set, a client that
 * offers ALPN without it fails with no_application_protocol (checked); a
 * client that offers none is accepted. Per-upgrade options reset the
 * context's verify mode (checked: with ALPN alone no certificate was
 * requested), so the client-certificate request is repeated here.
 */
export function serverTlsOptions(o: TlsServerOptions): BunTlsOptions {
  const s = serverTls(o);
  const t: BunTlsOptions = {
    secureContext: s.context,
    requestCert: o.requestCert === true,
    rejectUnauthorized: false,
  };
  if (s.alpn !== undefined) t.ALPNProtocols = s.alpn;
  return t;
}

/**
 * Bun TLS options for the client side. Bun verifies the name it sends as
 * SNI, so "no SNI" is not possible here: with servername null it sends the
 * name to verify (verifyName, e.g. proxy_ssl_name), else the host it
 * connected to.
 */
export function clientTlsOptions(o: TlsClientOptions, connectHost: string | null): BunTlsOptions {
  const t: BunTlsOptions = { rejectUnauthorized: o.verify };
  const name = verifyNameOf(o) ?? o.servername ?? connectHost;
  if (name !== null) t.serverName = name;
  if (o.ca !== undefined) t.ca = o.ca;
  if (o.cert !== undefined) t.cert = o.cert;
  if (o.key !== undefined) t.key = o.key;
  return t;
}
