// Reading the PEM values a configuration names (ssl_*, proxy_ssl_*): each
// file is read once, at load, and split into blocks (tls/pem.ts) so every
// consumer gets only the blocks it needs. Failures carry nginx's texts,
// OpenSSL's reasons included, for the same cases.

import { readFileSync } from "node:fs";
import type { KeyObject, X509Certificate } from "node:crypto";
import { nodeCrypto } from "../runtime/builtins.ts";
import {
  certificatesOf,
  crlsOf,
  isDataValue,
  type PemBlock,
  privateKeyOf,
  splitPem,
} from "../tls/pem.ts";
import { ConfigError, sysErrorText } from "./errors.ts";
import type { BackendPem, ProxySslConfig } from "./types.ts";

/** OpenSSL's reasons when a file holds no block of the wanted type (OpenSSL 3, as nginx 1.22 on Debian 12 prints them). */
export const NO_CERTIFICATE_REASON =
  "error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE";
export const NO_KEY_REASON =
  "error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM";
export const NO_CERT_OR_CRL_REASON =
  "error:05800088:x509 certificate routines::no certificate or crl found";

/**
 * The blocks of a "data:" value or of a file; `what` prefixes the read
 * failure, `cannot load certificate "x": BIO_new_file() failed (2: ...)`
 * as nginx says it; `fn` names the failing call when `what` is null.
 */
export function readPemBlocks(value: string, what: string | null, fn = "BIO_new_file"): PemBlock[] {
  try {
    return splitPem(pemText(value));
  } catch (e) {
    const prefix = what === null
      ? `${fn}("${value}") failed`
      : `${what} "${value}": ${fn}() failed`;
    throw new ConfigError(`${prefix} ${sysErrorText(e)}`, null);
  }
}

/** The text of a "data:" value or of a file (node:fs's error when unreadable). */
function pemText(value: string): string {
  return isDataValue(value) ? value.slice(5) : readFileSync(value, "utf8");
}

function reason(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

/**
 * ssl_certificate (and proxy_ssl_certificate): the CERTIFICATE blocks as
 * written (leaf first, then its chain) and the parsed leaf.
 */
export function loadCertificateChain(value: string): { chain: string; leaf: X509Certificate } {
  const what = "cannot load certificate";
  const certs = readPemBlocks(value, what).filter((b) => b.label === "CERTIFICATE");
  const fail = (r: string) =>
    new ConfigError(`${what} "${value}": PEM_read_bio_X509_AUX() failed (SSL: ${r})`, null);
  if (certs.length === 0) throw fail(NO_CERTIFICATE_REASON);
  let leaf: X509Certificate;
  try {
    leaf = new (nodeCrypto().X509Certificate)(certs[0].text);
  } catch (e) {
    throw fail(reason(e));
  }
  return { chain: certs.map((b) => b.text).join(""), leaf };
}

/**
 * ssl_certificate_key: the first key block, opened with the pass phrases in
 * order as nginx does (none given: an unencrypted key).
 */
export function loadPrivateKey(
  value: string,
  passwords: string[] | null,
  what = "cannot load certificate key",
): KeyObject {
  const block = privateKeyOf(readPemBlocks(value, what));
  const fail = (r: string) =>
    new ConfigError(`${what} "${value}": PEM_read_bio_PrivateKey() failed (SSL: ${r})`, null);
  if (block === null) throw fail(NO_KEY_REASON);
  const tries: (string | undefined)[] = passwords && passwords.length > 0 ? passwords : [undefined];
  let last: unknown;
  for (const passphrase of tries) {
    try {
      return nodeCrypto().createPrivateKey(
        passphrase === undefined ? block.text : { key: block.text, format: "pem", passphrase },
      );
    } catch (e) {
      last = e;
    }
  }
  throw fail(reason(last));
}

/** The key as unencrypted PKCS#8 PEM: the adapters never see pass phrases. */
export function keyPem(key: KeyObject): string {
  return key.export({ type: "pkcs8", format: "pem" }).toString();
}

/**
 * CA and CRL files (SSL_CTX_load_verify_locations, X509_LOOKUP_load_file):
 * OpenSSL takes certificates and CRLs from them and fails when there are
 * neither; each consumer then gets the blocks of its own type.
 */
export function loadVerifyFile(
  path: string,
  fn: string,
  pick: (blocks: PemBlock[]) => string,
): string {
  const blocks = readPemBlocks(path, null, fn);
  if (certificatesOf(blocks) === "" && crlsOf(blocks) === "") {
    throw new ConfigError(`${fn}("${path}") failed (SSL: ${NO_CERT_OR_CRL_REASON})`, null);
  }
  return pick(blocks);
}

/**
 * proxy_ssl_* files (mailgate extension): the CA certificates, the client
 * certificate chain and its key (unencrypted: backend keys take no pass
 * phrase). Messages name the directive; the caller adds the location.
 */
export function loadBackendPem(p: ProxySslConfig): BackendPem {
  const pem: BackendPem = {};
  const file = (directive: string, value: string, pick: (b: PemBlock[]) => string): string => {
    let text: string;
    try {
      text = pick(splitPem(pemText(value)));
    } catch (e) {
      throw new ConfigError(`cannot load "${directive}" file "${value}": ${sysErrorText(e)}`, null);
    }
    if (text === "") {
      throw new ConfigError(
        `cannot load "${directive}" file "${value}": no certificate found`,
        null,
      );
    }
    return text;
  };
  if (p.trustedCertificate !== null) {
    pem.ca = file("proxy_ssl_trusted_certificate", p.trustedCertificate, certificatesOf);
  }
  if (p.certificate !== null) {
    if (p.certificateKey === null) {
      throw new ConfigError(
        `no "proxy_ssl_certificate_key" is defined for certificate "${p.certificate}"`,
        null,
      );
    }
    pem.cert = file("proxy_ssl_certificate", p.certificate, certificatesOf);
    // Opened now, so a bad key fails the (re)load rather than every login.
    pem.key = keyPem(loadPrivateKey(p.certificateKey, null));
  }
  return pem;
}
