// The checks that run once the whole `mail { }` block has been read
// (directives.md §11), each over all servers in file order before the next:
// 1 protocol known, 2 TLS material, 3 an authentication source; then
// mailgate's backend-TLS extension checks. Builds the typed MailConfig.

import { ConfigError } from "./errors.ts";
import type { LoadState } from "./directive.ts";
import type { Level } from "./level.ts";
import { PROXY_SSL_CONFLICT } from "./mail_directives.ts";
import { buildServer, Effective } from "./merge.ts";
import { loadBackendPem } from "./pem_files.ts";
import { checkServerTls } from "./tls_check.ts";
import { buildSharedStore } from "./shared_store.ts";
import { checkSharedListens } from "./server_names.ts";
import type { Loc, MailConfig } from "./types.ts";

export const AUTH_TABLE_WINS = `"auth_table" overrides "auth_http" for server`;

export function finishMail(st: LoadState, mail: Level, hostname: string): MailConfig {
  const eff = st.servers.map((srv) => new Effective(mail, srv));
  checkSharedListens(st, mail, st.servers);

  for (const e of eff) {
    if (!e.srv.protocol && !e.srv.detectedProtocol) {
      throw new ConfigError("unknown mail protocol for server", e.srv.loc);
    }
  }
  const servers = eff.map((e) => buildServer(e, st, hostname));

  eff.forEach((e, i) => checkServerTls(e, servers[i]));

  eff.forEach((e, i) => {
    const s = servers[i];
    if (!s.authTable && !s.authHttp) {
      throw new ConfigError(`no "auth_http" is defined for server`, e.srv.loc);
    }
    if (s.authTable && s.authHttp) st.warnings.push({ message: AUTH_TABLE_WINS, loc: e.srv.loc });
  });

  eff.forEach((e, i) => checkBackendTls(e, servers[i].proxySsl));

  return {
    loc: mail.loc,
    servers,
    sharedStore: buildSharedStore(mail),
    statusListen: mail.lists.status_listen?.value ?? [],
  };
}

function checkBackendTls(e: Effective, p: MailConfigServer["proxySsl"]): void {
  checkBackendSettings(e, p);
  if (!p.ssl && !p.starttls) return;
  // Read once per (re)load, here, so -t finds unreadable files too.
  try {
    p.pem = loadBackendPem(p);
  } catch (err) {
    if (!(err instanceof ConfigError) || err.loc !== null) throw err;
    const where = /"proxy_ssl_trusted_certificate"/.test(err.message)
      ? e.slot("proxy_ssl_trusted_certificate")
      : /"proxy_ssl_certificate"/.test(err.message)
      ? e.slot("proxy_ssl_certificate")
      : e.slot("proxy_ssl_certificate_key");
    throw new ConfigError(err.message, where?.loc ?? e.srv.loc);
  }
}

function checkBackendSettings(e: Effective, p: MailConfigServer["proxySsl"]): void {
  if (p.ssl && p.starttls) {
    const a = e.slot("proxy_ssl")!.loc;
    const b = e.slot("proxy_starttls")!.loc;
    throw new ConfigError(PROXY_SSL_CONFLICT, later(a, b));
  }
  if (!p.ssl && !p.starttls) return;
  if (p.certificate && !p.certificateKey) {
    throw new ConfigError(
      `no "proxy_ssl_certificate_key" is defined for certificate "${p.certificate}"`,
      e.slot("proxy_ssl_certificate")!.loc,
    );
  }
  if (p.verify && !p.trustedCertificate) {
    throw new ConfigError(
      "no proxy_ssl_trusted_certificate for proxy_ssl_verify",
      e.slot("proxy_ssl_verify")!.loc,
    );
  }
}

type MailConfigServer = MailConfig["servers"][number];

/** The loc written later in the same file (else the second one). */
function later(a: Loc, b: Loc): Loc {
  return a.file === b.file && a.line > b.line ? a : b;
}
