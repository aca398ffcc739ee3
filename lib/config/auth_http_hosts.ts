// What auth_http needs once the whole mail block is merged (mailgate's
// extensions, README "The auth service over HTTPS, and by name"):
//
// - a host name: with the server's `resolver`, it is looked up per
//   connection through that resolver (its cache, valid= and
//   resolver_timeout); without one it is looked up now with the system
//   resolver and the first address is used, as nginx's ngx_parse_url does
//   at start-up. A name the system cannot resolve fails the load (nginx's
//   `host not found in auth_http`).
// - https://: the auth_http_ssl_* files are read now, so -t reports an
//   unreadable one with its FILE:LINE.

import type { LoadState } from "./directive.ts";
import { ConfigError, sysErrorText } from "./errors.ts";
import { keyPem, loadPrivateKey, readPemBlocks } from "./pem_files.ts";
import { certificatesOf } from "../tls/pem.ts";
import type {
  AuthHttpSslConfig,
  AuthHttpUrl,
  BackendPem,
  Loc,
  MailConfig,
  ServerConfig,
} from "./types.ts";
import { formatIp, resolveHost } from "./url.ts";

export async function finishAuthHttp(config: MailConfig, st: LoadState): Promise<void> {
  const lookups = new Map<string, Promise<string | null>>();
  const systemLookup = (name: string): Promise<string | null> => {
    let first = lookups.get(name);
    if (!first) {
      first = resolveHost(name, null, st.lookup).then((ips) => ips ? formatIp(ips[0]) : null);
      lookups.set(name, first);
    }
    return first;
  };
  // A mail-level auth_http with no mail-level resolver is looked up even if
  // no server uses it, as nginx looks it up where it is written.
  const mailUrl = st.mail?.singles.auth_http?.value;
  if (mailUrl?.name && (st.mail?.singles.resolver?.value ?? null) === null) {
    if (await systemLookup(mailUrl.name) === null) {
      throw hostNotFound(mailUrl, mailUrl.loc ?? config.loc);
    }
  }
  for (const s of config.servers) {
    const url = s.authHttp;
    // auth_table wins over auth_http (mail_checks.ts warns): nothing of it is used.
    if (url === null || s.authTable !== null) continue;
    const at = url.loc ?? s.loc;
    if (url.tls) s.authHttpSsl = { ...s.authHttpSsl, pem: loadAuthHttpPem(s.authHttpSsl, at) };
    if (!url.name || s.resolver !== null || url.target.kind !== "tcp") continue;
    const host = await systemLookup(url.name);
    if (host === null) throw hostNotFound(url, at);
    // The URL object may be shared by several servers (mail level): each gets its own.
    s.authHttp = { ...url, target: { ...url.target, host } };
  }
}

function hostNotFound(url: AuthHttpUrl, at: Loc): ConfigError {
  return new ConfigError(
    `host not found in auth_http "${url.raw.replace(/^https?:\/\//i, "")}"`,
    at,
  );
}

/** auth_http_ssl_* files, with messages naming the directive, as proxy_ssl_* has them. */
export function loadAuthHttpPem(p: AuthHttpSslConfig, at: Loc): BackendPem {
  const pem: BackendPem = {};
  const certs = (directive: string, value: string): string => {
    let text: string;
    try {
      text = certificatesOf(readPemBlocks(value, `cannot load "${directive}" file`));
    } catch (e) {
      throw new ConfigError(e instanceof ConfigError ? e.message : sysErrorText(e), at);
    }
    if (text === "") {
      throw new ConfigError(`cannot load "${directive}" file "${value}": no certificate found`, at);
    }
    return text;
  };
  if (p.trustedCertificate !== null) {
    pem.ca = certs("auth_http_ssl_trusted_certificate", p.trustedCertificate);
  }
  if (p.certificate !== null) {
    if (p.certificateKey === null) {
      throw new ConfigError(
        `no "auth_http_ssl_certificate_key" is defined for certificate "${p.certificate}"`,
        at,
      );
    }
    pem.cert = certs("auth_http_ssl_certificate", p.certificate);
    try {
      pem.key = keyPem(loadPrivateKey(p.certificateKey, null));
    } catch (e) {
      throw new ConfigError(e instanceof ConfigError ? e.message : String(e), at);
    }
  }
  return pem;
}

/** Whether a server's auth_http host is looked up per connection (a name, and a resolver). */
export function authHttpResolvesAtRun(s: ServerConfig): boolean {
  return s.authHttp !== null && s.authHttp.target.kind === "tcp" && s.authHttp.target.host === "";
}
