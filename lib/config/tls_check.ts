// End-of-mail check 2 (directives.md §11): a server that uses TLS
// (`listen ... ssl` or `starttls on|only`) must name certificates and keys
// that can be read and parsed. Messages follow nginx's shapes; the OpenSSL
// reason part is whatever node:crypto reports.

import type { KeyObject, X509Certificate } from "node:crypto";
import { nodeCrypto } from "../core/builtins.ts";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { ConfigError, sysErrorText } from "./errors.ts";
import type { Effective } from "./merge.ts";
import type { Loc, ServerConfig } from "./types.ts";

function readPem(path: string, what: string): string {
  if (path.startsWith("data:")) return path.slice(5);
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`${what} "${path}": BIO_new_file() failed ${sysErrorText(e)}`, null);
  }
}

function reason(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

export function loadCertificate(path: string): X509Certificate {
  const what = "cannot load certificate";
  const pem = readPem(path, what);
  try {
    return new (nodeCrypto().X509Certificate)(pem);
  } catch (e) {
    throw new ConfigError(
      `${what} "${path}": PEM_read_bio_X509_AUX() failed (SSL: ${reason(e)})`,
      null,
    );
  }
}

/** Tries the pass phrases in order, as nginx does; none given = unencrypted key. */
export function loadPrivateKey(path: string, passwords: string[] | null): KeyObject {
  const what = "cannot load certificate key";
  const pem = readPem(path, what);
  const tries: (string | undefined)[] = passwords && passwords.length > 0 ? passwords : [undefined];
  let last: unknown;
  for (const passphrase of tries) {
    try {
      return nodeCrypto().createPrivateKey(
        passphrase === undefined ? pem : { key: pem, format: "pem", passphrase },
      );
    } catch (e) {
      last = e;
    }
  }
  throw new ConfigError(
    `${what} "${path}": PEM_read_bio_PrivateKey() failed (SSL: ${reason(last)})`,
    null,
  );
}

function sameKey(cert: X509Certificate, key: KeyObject): boolean {
  try {
    const a = cert.publicKey.export({ type: "spki", format: "der" });
    const b = nodeCrypto().createPublicKey(key).export({ type: "spki", format: "der" });
    return Buffer.compare(a, b) === 0;
  } catch {
    // A runtime that cannot export keys: the TLS layer will find out.
    return true;
  }
}

function checkReadable(path: string, fn: string): void {
  if (path.startsWith("data:")) return;
  try {
    readFileSync(path);
  } catch (e) {
    throw new ConfigError(`${fn}("${path}") failed ${sysErrorText(e)}`, null);
  }
}

export function checkServerTls(e: Effective, s: ServerConfig): void {
  const mode = e.srv.hasListenSsl ? "listen ... ssl" : s.starttls !== "off" ? "starttls" : null;
  if (mode === null) return;
  const loc = e.sslModeLoc();
  const certs = e.list("ssl_certificate")?.value;
  const keys = e.list("ssl_certificate_key")?.value;
  if (!certs) {
    throw new ConfigError(`no "ssl_certificate" is defined for the "${mode}" directive`, loc);
  }
  if (!keys) {
    throw new ConfigError(`no "ssl_certificate_key" is defined for the "${mode}" directive`, loc);
  }
  if (keys.length < certs.length) {
    throw new ConfigError(
      `no "ssl_certificate_key" is defined for certificate "${
        certs[certs.length - 1]
      }" and the "${mode}" directive`,
      loc,
    );
  }

  // nginx's texts for these carry no location; mailgate adds the line of
  // the directive that named the file (every configuration error has one).
  const at = <T>(where: Loc | null, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof ConfigError && err.loc === null && where !== null) throw new ConfigError(err.message, where);
      throw err;
    }
  };
  const certLoc = e.list("ssl_certificate")?.loc ?? loc;
  const keyLoc = e.list("ssl_certificate_key")?.loc ?? loc;
  const passwords = at(e.slot("ssl_password_file")?.loc ?? keyLoc, () => e.passwords());
  for (let i = 0; i < s.ssl.certificates.length; i++) {
    const cert = at(certLoc, () => loadCertificate(s.ssl.certificates[i]));
    const key = at(keyLoc, () => loadPrivateKey(s.ssl.certificateKeys[i], passwords));
    if (!sameKey(cert, key)) {
      throw new ConfigError(
        `SSL_CTX_use_PrivateKey("${s.ssl.certificateKeys[i]}") failed (SSL: key values mismatch)`,
        keyLoc,
      );
    }
  }

  const v = s.ssl.verifyClient;
  if (v !== "off") {
    if (v !== "optional_no_ca" && !s.ssl.clientCertificate && !s.ssl.trustedCertificate) {
      throw new ConfigError(
        "no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client",
        e.slot("ssl_verify_client")?.loc ?? loc,
      );
    }
    const ca = s.ssl.clientCertificate, trusted = s.ssl.trustedCertificate;
    if (ca) at(e.slot("ssl_client_certificate")?.loc ?? loc, () => checkReadable(ca, "SSL_CTX_load_verify_locations"));
    if (trusted) {
      at(e.slot("ssl_trusted_certificate")?.loc ?? loc, () => checkReadable(trusted, "SSL_CTX_load_verify_locations"));
    }
    const crl = s.ssl.crl;
    if (crl) at(e.slot("ssl_crl")?.loc ?? loc, () => checkReadable(crl, "X509_LOOKUP_load_file"));
  }
  const dh = s.ssl.dhparam;
  if (dh) at(e.slot("ssl_dhparam")?.loc ?? loc, () => checkReadable(dh, "BIO_new_file"));
  const ticketLoc = e.list("ssl_session_ticket_key")?.loc ?? loc;
  for (const path of s.ssl.sessionTicketKeys) {
    let size: number;
    try {
      size = readFileSync(path).length;
    } catch (err) {
      throw new ConfigError(`open() "${path}" failed ${sysErrorText(err)}`, ticketLoc);
    }
    if (size !== 48 && size !== 80) throw new ConfigError(`"${path}" must be 80 or 48 bytes`, ticketLoc);
  }
}
