// node:tls helpers for the adapters that use node:tls as their TLS layer
// (Deno: a TLSSocket on top of a Duplex over the connection's node:net socket).
// Builds and caches secure contexts from TlsServerOptions, builds client
// options from TlsClientOptions, and reads TlsInfo from a finished handshake
// (both adapters), with the client-certificate verification policy.

import type * as tls from "node:tls";
import { nodeCrypto } from "../builtins.ts";
import { nodeTls } from "../builtins.ts";
import { BoundedMap } from "../../core/bounded_map.ts";
import type { TlsClientOptions, TlsInfo, TlsServerOptions } from "../types.ts";
import {
  checkVerifiedLeaf,
  type ClientVerifyPolicy,
  NO_TRUST_PATH_CODES,
  peerCertFromDer,
  verifyChain,
  VERIFY_ERRORS_NO_CA,
  verifyErrorCode,
  verifyErrorText,
} from "../../tls/tls_verify.ts";
import type { CertKeyType } from "../../tls/client_hello.ts";

/** Bound on cached contexts: reloads create new keys; drop the least used. */
const CONTEXT_CACHE_MAX = 64;
/** Secure contexts by TlsServerOptions.cacheKey (one per listener/server block). */
const contexts = new BoundedMap<string, tls.SecureContext>(CONTEXT_CACHE_MAX);

/**
 * Build (or fetch from the cache) the secure context for server options,
 * with all pairs, or only pair `pair`. Deno's node:tls (rustls underneath)
 * serves only the FIRST cert/key pair of a context, so the Deno adapter
 * picks the pair per connection (client_hello.ts) and asks for that one.
 * Only what Deno's TLS layer honours is passed (capabilities.ts): the cert
 * pairs, the protocol range and the advertised CAs. Its cipher list
 * validation rejects OpenSSL-only syntax, and the other options are ignored
 * by it; start-up warns about them instead.
 */
export function serverSecureContext(o: TlsServerOptions, pair?: number): tls.SecureContext {
  const key = o.cacheKey === undefined
    ? undefined
    : pair === undefined
    ? o.cacheKey
    : `${o.cacheKey}#${pair}`;
  const cached = key !== undefined ? contexts.get(key) : undefined;
  if (cached !== undefined) return cached;
  const certs = pair === undefined ? o.certs : [o.certs[pair]];
  const opts: tls.SecureContextOptions = {
    cert: certs.map((c) => c.cert),
    key: certs.map((c) => ({ pem: c.key, passphrase: c.passphrase })),
  };
  // The CertificateRequest names these; ssl_trusted_certificate stays unnamed
  // (verified by verifyChain, which gets both).
  if (o.ca !== undefined) opts.ca = o.ca;
  if (o.minVersion !== undefined) opts.minVersion = o.minVersion;
  if (o.maxVersion !== undefined) opts.maxVersion = o.maxVersion;
  const ctx = nodeTls().createSecureContext(opts);
  if (key !== undefined) contexts.set(key, ctx);
  return ctx;
}

/** How a server verifies client certificates: CAs (advertised and not), CRLs, depth. */
export function clientVerifyPolicy(o: TlsServerOptions): ClientVerifyPolicy {
  const trusted = [o.ca, o.trustedCa].filter((p): p is string => p !== undefined && p !== "");
  const policy: ClientVerifyPolicy = {};
  if (trusted.length > 0) policy.trusted = trusted.join("\n");
  if (o.crl !== undefined) policy.crl = o.crl;
  if (o.verifyDepth !== undefined) policy.depth = o.verifyDepth;
  return policy;
}

const keyTypeCache = new BoundedMap<string, CertKeyType[]>(CONTEXT_CACHE_MAX);

/** The key type of each cert/key pair (cached by cacheKey). */
export function certKeyTypes(o: TlsServerOptions): CertKeyType[] {
  const cached = o.cacheKey !== undefined ? keyTypeCache.get(o.cacheKey) : undefined;
  if (cached !== undefined) return cached;
  const types = o.certs.map((c): CertKeyType => {
    try {
      const t = nodeCrypto().createPrivateKey({ key: c.key, passphrase: c.passphrase }).asymmetricKeyType;
      return t === "ec" ? "ec" : t === "ed25519" ? "ed25519" : t === "rsa" ? "rsa" : "other";
    } catch {
      return "other";
    }
  });
  if (o.cacheKey !== undefined) keyTypeCache.set(o.cacheKey, types);
  return types;
}

/**
 * TLSSocket options for the server side of a handshake.
 * ALPN: when the client offers ALPN, its list must contain `o.alpn`, else the
 * handshake is aborted (spec: fatal no_application_protocol). ALPNCallback
 * (Node >= 20 API) returning undefined does exactly that, and Deno's node:tls
 * implements it (checked: the connection is closed, no greeting). A client
 * that offers no ALPN never reaches the callback and is accepted.
 */
export function serverSocketOptions(o: TlsServerOptions, pair?: number): tls.TLSSocketOptions {
  const alpn = o.alpn;
  const opts: tls.TLSSocketOptions & { ALPNCallback?: unknown } = {
    isServer: true,
    secureContext: serverSecureContext(o, pair),
    requestCert: o.requestCert === true,
    // We report the verification result ourselves; the session decides.
    rejectUnauthorized: false,
  };
  if (alpn !== undefined) {
    opts.ALPNCallback = (arg: { protocols: string[] }) =>
      arg.protocols.includes(alpn) ? alpn : undefined;
  }
  return opts;
}

/**
 * The name a backend certificate must match when it differs from the SNI
 * sent (proxy_ssl_name without proxy_ssl_server_name): `verifyName` of the
 * options (proxy/backend_tls.ts's BackendTlsOptions), if given.
 */
export function verifyNameOf(o: TlsClientOptions): string | undefined {
  const v = (o as TlsClientOptions & { verifyName?: unknown }).verifyName;
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** Options for tls.connect() over an existing stream (client side). */
export function clientConnectOptions(
  o: TlsClientOptions,
  verifyName: string,
): tls.ConnectionOptions {
  const opts: tls.ConnectionOptions = {
    rejectUnauthorized: o.verify,
    // The name to verify may differ from the SNI we send (none when null).
    checkServerIdentity: (_host, cert) => nodeTls().checkServerIdentity(verifyName, cert),
  };
  if (o.servername !== null) opts.servername = o.servername;
  if (o.ca !== undefined) opts.ca = o.ca;
  if (o.cert !== undefined) opts.cert = o.cert;
  if (o.key !== undefined) opts.key = o.key;
  return opts;
}

/** What a node:tls or Bun TLS socket exposes after its handshake. */
export interface TlsSocketView {
  getProtocol?(): string | null;
  getTLSVersion?(): string | null;
  getCipher(): { name?: string | null } | null | undefined;
  getPeerCertificate(detailed?: boolean): { raw?: Uint8Array } | null | undefined | object;
  alpnProtocol?: string | false | null;
  servername?: string | false | null;
  getServername?(): string | null | undefined;
}

/** How the peer certificate's verification result is obtained. */
export type VerifySource =
  | { kind: "own"; policy: ClientVerifyPolicy } // verify the chain ourselves (Deno)
  | {
    // The TLS stack's own result (null = verified); with a policy, a server
    // side result that our own checks complete (Bun: depth, CRL, unadvertised CAs).
    kind: "code";
    code: unknown;
    policy?: ClientVerifyPolicy;
    /** CAs the stack was not given (ssl_trusted_certificate): re-check "no trust path" results. */
    hiddenCas?: boolean;
  }
  | { kind: "none" }; // nothing to report (client side with verify off and no result)

/** The DER certificates after the leaf in a detailed peer certificate (bounded). */
function peerChainDers(s: TlsSocketView): Uint8Array[] {
  const out: Uint8Array[] = [];
  let c = s.getPeerCertificate(true) as { raw?: Uint8Array; issuerCertificate?: unknown } | null | undefined;
  for (let i = 0; c && i < MAX_PEER_CHAIN; i++) {
    const next = c.issuerCertificate as typeof c;
    if (!next || next === c || !next.raw) break;
    out.push(new Uint8Array(next.raw));
    c = next;
  }
  return out;
}

/** Longest client chain looked at. */
const MAX_PEER_CHAIN = 10;

function verifyResult(s: TlsSocketView, der: Uint8Array, verify: VerifySource): string | null {
  switch (verify.kind) {
    case "none":
      return null;
    case "own":
      return verifyChain(der, peerChainDers(s), verify.policy);
    case "code": {
      const policy = verify.policy;
      if (verify.code == null) return policy ? checkVerifiedLeaf(der, policy) : null;
      const text = verifyErrorText(verify.code);
      // Our own chain check decides when the runtime found no trust path:
      // CAs it was not given (ssl_trusted_certificate) count, and an
      // untrusted certificate that is also expired is reported as expired,
      // which optional_no_ca does not tolerate (the runtime may stop at
      // its first error).
      if (
        policy &&
        ((verify.hiddenCas && NO_TRUST_PATH_CODES.has(verifyErrorCode(verify.code))) || VERIFY_ERRORS_NO_CA.has(text))
      ) {
        return verifyChain(der, peerChainDers(s), policy);
      }
      return text;
    }
  }
}

/** TlsInfo from a socket whose handshake has completed. */
export function tlsInfoFromSocket(s: TlsSocketView, verify: VerifySource): TlsInfo {
  const protocol = (s.getProtocol ? s.getProtocol() : s.getTLSVersion?.()) ?? "";
  const cipher = s.getCipher()?.name ?? "";
  const pc = s.getPeerCertificate() as { raw?: Uint8Array } | null | undefined;
  const der = pc && pc.raw && pc.raw.length > 0 ? new Uint8Array(pc.raw) : null;
  const peerCert = der ? peerCertFromDer(der) : null;
  const verifyError = der !== null ? verifyResult(s, der, verify) : null;
  const sn = s.getServername ? s.getServername() : s.servername;
  return {
    protocol,
    cipher,
    servername: typeof sn === "string" && sn !== "" ? sn : null,
    alpn: typeof s.alpnProtocol === "string" && s.alpnProtocol !== "" ? s.alpnProtocol : null,
    peerCert,
    verifyError,
  };
}
