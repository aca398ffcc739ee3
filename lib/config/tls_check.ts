// End-of-mail check 2 (directives.md §11): a server that uses TLS
// (`listen ... ssl`, `ssl on` or `starttls on|only`) must name certificates
// and keys that can be read and parsed. Messages follow nginx's shapes; the
// OpenSSL reason part is whatever node:crypto reports. What is read here is
// kept (ServerConfig.ssl.pem): the files are read once per (re)load.

import type { KeyObject, X509Certificate } from "node:crypto";
import { nodeCrypto } from "../runtime/builtins.ts";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { certificatesOf, crlsOf, dhParamsOf } from "../tls/pem.ts";
import { ConfigError, sysErrorText } from "./errors.ts";
import type { Effective } from "./merge.ts";
import {
  keyPem,
  loadCertificateChain,
  loadPrivateKey,
  loadVerifyFile,
  readPemBlocks,
} from "./pem_files.ts";
import type { Loc, ServerConfig, ServerPem } from "./types.ts";

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

export function checkServerTls(e: Effective, s: ServerConfig): void {
  // nginx's order: `listen ... ssl`, then `ssl on`, then `starttls`.
  const mode = e.srv.hasListenSsl
    ? "listen ... ssl"
    : e.get("ssl", false)
    ? "ssl"
    : s.starttls !== "off"
    ? "starttls"
    : null;
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
      if (err instanceof ConfigError && err.loc === null && where !== null) {
        throw new ConfigError(err.message, where);
      }
      throw err;
    }
  };
  const certLoc = e.list("ssl_certificate")?.loc ?? loc;
  const keyLoc = e.list("ssl_certificate_key")?.loc ?? loc;
  const passwords = at(e.slot("ssl_password_file")?.loc ?? keyLoc, () => e.passwords());
  const pem: ServerPem = { certs: [] };
  for (let i = 0; i < s.ssl.certificates.length; i++) {
    const { chain, leaf } = at(certLoc, () => loadCertificateChain(s.ssl.certificates[i]));
    const key = at(keyLoc, () => loadPrivateKey(s.ssl.certificateKeys[i], passwords));
    if (!sameKey(leaf, key)) {
      throw new ConfigError(
        `SSL_CTX_use_PrivateKey("${s.ssl.certificateKeys[i]}") failed (SSL: key values mismatch)`,
        keyLoc,
      );
    }
    pem.certs.push({ cert: chain, key: keyPem(key) });
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
    const verifyLocations = "SSL_CTX_load_verify_locations";
    if (ca) {
      pem.ca = at(
        e.slot("ssl_client_certificate")?.loc ?? loc,
        () => loadVerifyFile(ca, verifyLocations, certificatesOf),
      );
    }
    if (trusted) {
      pem.trustedCa = at(
        e.slot("ssl_trusted_certificate")?.loc ?? loc,
        () => loadVerifyFile(trusted, verifyLocations, certificatesOf),
      );
    }
    const crl = s.ssl.crl;
    if (crl) {
      pem.crl = at(
        e.slot("ssl_crl")?.loc ?? loc,
        () => loadVerifyFile(crl, "X509_LOOKUP_load_file", crlsOf),
      );
    }
  }
  const dh = s.ssl.dhparam;
  if (dh) {
    const params = at(e.slot("ssl_dhparam")?.loc ?? loc, () => loadDhParams(dh));
    if (params !== "") pem.dhparam = params;
  }
  const ticketLoc = e.list("ssl_session_ticket_key")?.loc ?? loc;
  for (const path of s.ssl.sessionTicketKeys) {
    let size: number;
    try {
      size = readFileSync(path).length;
    } catch (err) {
      throw new ConfigError(`open() "${path}" failed ${sysErrorText(err)}`, ticketLoc);
    }
    if (size !== 48 && size !== 80) {
      throw new ConfigError(`"${path}" must be 80 or 48 bytes`, ticketLoc);
    }
  }
  s.ssl.pem = pem;
}

/**
 * ssl_dhparam: its DH PARAMETERS block, "" when it has none. nginx refuses
 * such a file; neither runtime applies DH parameters (a start-up [warn]
 * says so, runtime_warnings.ts), so only an unreadable file is refused.
 */
function loadDhParams(path: string): string {
  return dhParamsOf(readPemBlocks(path, null, "BIO_new_file"));
}
