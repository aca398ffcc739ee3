// Mail directives: defaults, inheritance (including mail-level directives
// written after the servers and lists inherited as a whole), method-list
// merging, auth_http URL forms, resolver, set_real_ip_from, session cache,
// and mailgate's extensions.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import { formatConfigWarning } from "../../lib/config/errors.ts";
import type { Config, ServerConfig } from "../../lib/config/types.ts";
import type { IpAddr } from "../../lib/config/url.ts";

const v4 = (...b: number[]): IpAddr => ({ family: 4, bytes: new Uint8Array(b) });
const v6loop: IpAddr = { family: 6, bytes: new Uint8Array([...new Array(15).fill(0), 1]) };

function lookup(host: string): Promise<IpAddr[]> {
  const table: Record<string, IpAddr[]> = {
    "auth.test": [v4(192, 0, 2, 10), v4(192, 0, 2, 11)],
    "dns.test": [v4(192, 0, 2, 53), v6loop],
    "proxy.test": [v4(198, 51, 100, 1), v4(198, 51, 100, 2)],
  };
  const r = table[host];
  if (!r) return Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" }));
  return Promise.resolve(r);
}

async function load(
  conf: string,
  extra: Record<string, string> = {},
): Promise<{ dir: string; cfg: Config }> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-config-"));
  try {
    for (const [name, text] of Object.entries({ "nginx.conf": conf, ...extra })) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    const cfg = await loadConfig({
      file: join(dir, "nginx.conf"),
      prefix: dir,
      lookup,
      hostname: "host.test",
    });
    return { dir, cfg };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One IMAP server with `body` inside it and `mailBody` at mail level. */
const TLS = new URL("../fixtures/tls/", import.meta.url).pathname;

async function server(body: string, mailBody = "auth_http 127.0.0.1:9000;"): Promise<ServerConfig> {
  const { cfg } = await load(
    `events {}\nmail {\n${mailBody}\nserver {\nlisten 127.0.0.1:10143;\nprotocol imap;\n${body}\n}\n}\n`,
  );
  return cfg.mail!.servers[0];
}

describe("defaults", () => {
  test("every default of the spec", async () => {
    const s = await server("");
    assert.equal(s.serverName, "host.test");
    assert.equal(s.timeoutMs, 60000);
    assert.equal(s.resolver, null);
    assert.equal(s.resolverTimeoutMs, 30000);
    assert.equal(s.maxErrors, 5);
    assert.equal(s.errorLogs, null);
    assert.deepEqual(s.authHttpHeaders, []);
    assert.equal(s.authHttpPassClientCert, false);
    assert.equal(s.authHttpTimeoutMs, 60000);
    assert.equal(s.authHttpKeepalive, 0);
    assert.equal(s.authTable, null);
    assert.equal(s.proxyBuffer, 4096);
    assert.equal(s.proxyPassErrorMessage, false);
    assert.equal(s.proxyProtocol, "off");
    assert.equal(s.proxySmtpAuth, false);
    assert.equal(s.proxyTimeoutMs, 86400000);
    assert.equal(s.xclient, true);
    assert.deepEqual(s.proxySsl, {
      ssl: false,
      starttls: false,
      verify: false,
      trustedCertificate: null,
      name: null,
      serverName: false,
      certificate: null,
      certificateKey: null,
    });
    assert.deepEqual(s.imapAuth, ["plain"]);
    assert.deepEqual(s.imapCapabilities, ["IMAP4", "IMAP4rev1", "UIDPLUS"]);
    assert.equal(s.imapClientBuffer, 4096);
    assert.deepEqual(s.pop3Auth, ["plain"]);
    assert.deepEqual(s.pop3Capabilities, ["TOP", "USER", "UIDL"]);
    assert.deepEqual(s.smtpAuth, ["plain", "login"]);
    assert.deepEqual(s.smtpCapabilities, []);
    assert.equal(s.smtpClientBuffer, 4096);
    assert.equal(s.smtpGreetingDelayMs, 0);
    assert.equal(s.starttls, "off");
    assert.equal(s.starttlsLoc, null);
    assert.deepEqual(s.setRealIpFrom, []);
    assert.equal(s.accessLog, null);
    assert.deepEqual(s.ssl, {
      certificates: [],
      certificateKeys: [],
      certificateLoc: null,
      passwordFile: null,
      protocols: ["TLSv1.2", "TLSv1.3"],
      ciphers: "HIGH:!aNULL:!MD5",
      preferServerCiphers: false,
      ecdhCurve: "auto",
      dhparam: null,
      confCommands: [],
      certificateCompression: false,
      sessionCache: { kind: "none" },
      sessionTickets: true,
      sessionTicketKeys: [],
      sessionTimeoutSec: 300,
      verifyClient: "off",
      verifyDepth: 1,
      clientCertificate: null,
      trustedCertificate: null,
      crl: null,
    });
  });
  test("server_name defaults to the lower-cased host name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-config-"));
    try {
      writeFileSync(
        join(dir, "nginx.conf"),
        "events {}\nmail { auth_http 127.0.0.1:1; server { listen 127.0.0.1:10143; protocol imap; } }\n",
      );
      const cfg = await loadConfig({ file: join(dir, "nginx.conf"), prefix: dir });
      const { hostname } = await import("node:os");
      assert.equal(cfg.mail!.servers[0].serverName, hostname().toLowerCase());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("inheritance", () => {
  test("server values win over mail values", async () => {
    const s = await server(
      "timeout 5s; server_name own;",
      "auth_http 127.0.0.1:1; timeout 10s; server_name m; max_errors 2;",
    );
    assert.equal(s.timeoutMs, 5000);
    assert.equal(s.serverName, "own");
    assert.equal(s.maxErrors, 2);
  });
  test("a mail-level directive after the servers still applies", async () => {
    const { cfg } = await load(
      "events {}\nmail {\nserver { listen 127.0.0.1:10143; protocol imap; }\nserver { listen 127.0.0.1:10110; protocol pop3; timeout 1s; }\n" +
        "timeout 7s;\nauth_http 127.0.0.1:9000;\nimap_capabilities LATE;\n}\n",
    );
    const [a, b] = cfg.mail!.servers;
    assert.equal(a.timeoutMs, 7000);
    assert.equal(b.timeoutMs, 1000);
    assert.equal(a.authHttp!.target.kind, "tcp");
    assert.deepEqual(a.imapCapabilities, ["LATE"]);
  });
  test("lists are inherited as a whole and repeated at one level append", async () => {
    const mailBody =
      "auth_http 127.0.0.1:1; auth_http_header A 1; auth_http_header B 2; smtp_capabilities X; smtp_capabilities Y Z;";
    const own = await server("auth_http_header C 3;", mailBody);
    assert.deepEqual(own.authHttpHeaders, [["C", "3"]]);
    assert.deepEqual(own.smtpCapabilities, ["X", "Y", "Z"]);
    const inherited = await server("", mailBody);
    assert.deepEqual(inherited.authHttpHeaders, [["A", "1"], ["B", "2"]]);
  });
  test("method lists merge words at one level, with a warning for repeats", async () => {
    const { dir, cfg } = await load(
      "events {}\nmail {\nauth_http 127.0.0.1:1;\nimap_auth plain LOGIN;\nimap_auth login cram-md5 Plain;\n" +
        "server { listen 127.0.0.1:10143; protocol imap; }\n" +
        "server { listen 127.0.0.1:10144; protocol imap; imap_auth external; }\n}\n",
    );
    const [a, b] = cfg.mail!.servers;
    assert.deepEqual(a.imapAuth, ["plain", "login", "cram-md5"]);
    assert.deepEqual(b.imapAuth, ["external"]);
    assert.deepEqual(cfg.warnings.map(formatConfigWarning), [
      `duplicate value "login" in ${dir}/nginx.conf:5`,
      `duplicate value "Plain" in ${dir}/nginx.conf:5`,
    ]);
  });
  test("pop3/smtp methods and ssl_protocols", async () => {
    const s = await server(
      "pop3_auth APOP cram-md5; smtp_auth none external; ssl_protocols tlsv1.3 TLSv1.2;",
    );
    assert.deepEqual(s.pop3Auth, ["apop", "cram-md5"]);
    assert.deepEqual(s.smtpAuth, ["none", "external"]);
    assert.deepEqual(s.ssl.protocols, ["TLSv1.3", "TLSv1.2"]);
  });
  test("error_log at mail or server level replaces the main-level logs", async () => {
    const { dir, cfg } = await load(
      "error_log stderr;\nevents {}\nmail {\nauth_http 127.0.0.1:1;\nerror_log logs/mail.log info;\n" +
        "server { listen 127.0.0.1:10143; protocol imap; }\nserver { listen 127.0.0.1:10144; protocol imap; error_log stderr debug; error_log x.log; }\n}\n",
    );
    const [a, b] = cfg.mail!.servers;
    assert.deepEqual(a.errorLogs!.map((l) => [l.target, l.level]), [[
      join(dir, "logs/mail.log"),
      "info",
    ]]);
    assert.deepEqual(b.errorLogs!.map((l) => [l.target, l.level]), [["stderr", "debug"], [
      join(dir, "x.log"),
      "error",
    ]]);
  });
  test("protocol, auth_http and ssl_session_cache keep the last value", async () => {
    const s = await server(
      "protocol pop3; protocol smtp; auth_http 127.0.0.1:2/b; ssl_session_cache builtin; ssl_session_cache off;",
      "auth_http 127.0.0.1:1/a; auth_http 127.0.0.1:3/c;",
    );
    assert.equal(s.protocol, "smtp");
    assert.equal(s.authHttp!.uri, "/b");
    assert.deepEqual(s.ssl.sessionCache, { kind: "off" });
  });
  test("enum and flag values are case-insensitive", async () => {
    const s = await server(
      "starttls OFF; xclient Off; ssl_verify_client OPTIONAL_NO_CA; proxy_protocol ON;",
    );
    assert.equal(s.starttls, "off");
    assert.equal(s.xclient, false);
    assert.equal(s.ssl.verifyClient, "optional_no_ca");
    assert.equal(s.proxyProtocol, "v1");
  });
});

describe("auth_http URL forms", () => {
  const cases: [string, unknown][] = [
    ["http://127.0.0.1:8080/mailauth", {
      target: { kind: "tcp", host: "127.0.0.1", port: 8080 },
      hostHeader: "127.0.0.1",
      uri: "/mailauth",
    }],
    ["127.0.0.1", {
      target: { kind: "tcp", host: "127.0.0.1", port: 80 },
      hostHeader: "127.0.0.1",
      uri: "/",
    }],
    ["auth.test:81/a/b?x=1&y", {
      name: "auth.test",
      target: { kind: "tcp", host: "192.0.2.10", port: 81 },
      hostHeader: "auth.test",
      uri: "/a/b?x=1&y",
    }],
    ["http://auth.test?q", {
      name: "auth.test",
      target: { kind: "tcp", host: "192.0.2.10", port: 80 },
      hostHeader: "auth.test",
      uri: "?q",
    }],
    ["http://[::1]:9000/auth", {
      target: { kind: "tcp", host: "::1", port: 9000 },
      hostHeader: "[::1]",
      uri: "/auth",
    }],
    ["[2001:db8::1]/x", {
      target: { kind: "tcp", host: "2001:db8::1", port: 80 },
      hostHeader: "[2001:db8::1]",
      uri: "/x",
    }],
    // https:// (mailgate extension): TLS, port 443 by default; the name is kept for SNI.
    ["https://auth.test/auth", {
      target: { kind: "tcp", host: "192.0.2.10", port: 443 },
      hostHeader: "auth.test",
      uri: "/auth",
      tls: true,
      name: "auth.test",
    }],
    ["HTTPS://127.0.0.1:8443", {
      target: { kind: "tcp", host: "127.0.0.1", port: 8443 },
      hostHeader: "127.0.0.1",
      uri: "/",
      tls: true,
    }],
    ["unix:/run/auth.sock", {
      target: { kind: "unix", path: "/run/auth.sock" },
      hostHeader: "localhost",
      uri: "/",
    }],
    ["unix:/run/auth.sock:/auth?a=b", {
      target: { kind: "unix", path: "/run/auth.sock" },
      hostHeader: "localhost",
      uri: "/auth?a=b",
    }],
  ];
  for (const [url, want] of cases) {
    test(url, async () => {
      const s = await server("", `auth_http ${url};`);
      const { loc, ...got } = s.authHttp!;
      assert.equal(loc?.line, 3);
      assert.deepEqual(got, { raw: url, tls: false, name: null, ...(want as object) });
    });
  }
});

describe("auth_http by name and over HTTPS (mailgate extension)", () => {
  test("with a resolver the name is kept for per-connection lookups", async () => {
    const s = await server("", "resolver 127.0.0.1; auth_http https://unknown.test:8443/a;");
    assert.deepEqual(s.authHttp!.target, { kind: "tcp", host: "", port: 8443 });
    assert.equal(s.authHttp!.name, "unknown.test");
  });
  test("without one it is looked up at load, per server", async () => {
    const s = await server("", "auth_http auth.test:81;");
    assert.deepEqual(s.authHttp!.target, { kind: "tcp", host: "192.0.2.10", port: 81 });
  });
  test("auth_http_ssl_* defaults and files", async () => {
    const d = await server("");
    assert.deepEqual(d.authHttpSsl, {
      verify: true,
      trustedCertificate: null,
      certificate: null,
      certificateKey: null,
    });
    const s = await server(
      `auth_http_ssl_verify off; auth_http_ssl_trusted_certificate ${TLS}ca.pem;` +
        ` auth_http_ssl_certificate ${TLS}client.pem; auth_http_ssl_certificate_key ${TLS}client.key;`,
      "auth_http https://127.0.0.1:8443;",
    );
    assert.equal(s.authHttpSsl.verify, false);
    assert.match(s.authHttpSsl.pem!.ca!, /BEGIN CERTIFICATE/);
    assert.match(s.authHttpSsl.pem!.cert!, /BEGIN CERTIFICATE/);
    assert.match(s.authHttpSsl.pem!.key!, /BEGIN PRIVATE KEY/);
  });
});

describe("resolver and set_real_ip_from", () => {
  test("resolver servers and parameters", async () => {
    const s = await server("resolver 127.0.0.1 [::1]:5353 dns.test:54 valid=1m ipv6=off;");
    const r = s.resolver!;
    assert.deepEqual(r.servers, [
      { host: "127.0.0.1", port: 53 },
      { host: "::1", port: 5353 },
      { host: "192.0.2.53", port: 54 },
      { host: "::1", port: 54 },
    ]);
    assert.equal(r.validMs, 60000);
    assert.equal(r.ipv4, true);
    assert.equal(r.ipv6, false);
    assert.equal(r.loc.line, 7);
  });
  test("resolver off at server level overrides the mail resolver", async () => {
    const s = await server("resolver off;", "auth_http 127.0.0.1:1; resolver 127.0.0.1;");
    assert.equal(s.resolver, null);
    const t = await server("", "auth_http 127.0.0.1:1; resolver 127.0.0.1;");
    assert.equal(t.resolver!.servers.length, 1);
  });
  test("set_real_ip_from forms, with the low-bits warning", async () => {
    const { dir, cfg } = await load(
      "events {}\nmail {\nauth_http 127.0.0.1:1;\nserver { listen 127.0.0.1:10143; protocol imap;\n" +
        "set_real_ip_from 192.0.2.7;\nset_real_ip_from 10.1.2.3/8;\nset_real_ip_from 2001:db8::/32;\nset_real_ip_from unix:;\nset_real_ip_from proxy.test;\n}\n}\n",
    );
    const got = cfg.mail!.servers[0].setRealIpFrom.map((e) =>
      e.kind === "unix" ? "unix" : `${e.family}:${[...e.bytes].join(".")}/${e.prefix}`
    );
    assert.deepEqual(got, [
      "4:192.0.2.7/32",
      "4:10.0.0.0/8",
      "6:32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.0/32",
      "unix",
      "4:198.51.100.1/32",
      "4:198.51.100.2/32",
    ]);
    assert.deepEqual(cfg.warnings.map(formatConfigWarning), [
      `low address bits of 10.1.2.3/8 are meaningless in ${dir}/nginx.conf:6`,
    ]);
  });
});

describe("values", () => {
  test("units on mail directives", async () => {
    const s = await server(
      "timeout 1m; resolver_timeout 500ms; auth_http_timeout 2s; proxy_timeout 1d; smtp_greeting_delay 250ms;" +
        "proxy_buffer 8k; imap_client_buffer 1m; smtp_client_buffer 512; ssl_session_timeout 1h; ssl_verify_depth 3;",
    );
    assert.equal(s.timeoutMs, 60000);
    assert.equal(s.resolverTimeoutMs, 500);
    assert.equal(s.authHttpTimeoutMs, 2000);
    assert.equal(s.proxyTimeoutMs, 86400000);
    assert.equal(s.smtpGreetingDelayMs, 250);
    assert.equal(s.proxyBuffer, 8192);
    assert.equal(s.imapClientBuffer, 1048576);
    assert.equal(s.smtpClientBuffer, 512);
    assert.equal(s.ssl.sessionTimeoutSec, 3600);
    assert.equal(s.ssl.verifyDepth, 3);
  });
  test("session cache forms", async () => {
    const cases: [string, unknown][] = [
      ["off", { kind: "off" }],
      ["none", { kind: "none" }],
      ["builtin", { kind: "builtin", size: 20480, shared: null }],
      ["builtin:1000", { kind: "builtin", size: 1000, shared: null }],
      ["shared:SSL:1m", { kind: "shared", name: "SSL", size: 1048576 }],
      ["builtin:10 shared:SSL:32k", {
        kind: "builtin",
        size: 10,
        shared: { name: "SSL", size: 32768 },
      }],
    ];
    for (const [v, want] of cases) {
      assert.deepEqual((await server(`ssl_session_cache ${v};`)).ssl.sessionCache, want, v);
    }
  });
  test("capabilities keep quoted values verbatim", async () => {
    const s = await server(`smtp_capabilities PIPELINING "SIZE 52428800" 'X Y';`);
    assert.deepEqual(s.smtpCapabilities, ["PIPELINING", "SIZE 52428800", "X Y"]);
  });
  test("ssl paths are relative to the config directory, data: kept", async () => {
    const { dir, cfg } = await load(
      "events {}\nmail {\nauth_http 127.0.0.1:1;\nserver { listen 127.0.0.1:10143; protocol imap;\n" +
        "ssl_certificate c.pem; ssl_certificate data:PEM; ssl_certificate_key /abs/k.pem; ssl_certificate_key k2.pem;\n" +
        "ssl_dhparam dh.pem; ssl_client_certificate ca.pem; ssl_trusted_certificate t.pem; ssl_crl crl.pem;\n" +
        "ssl_session_ticket_key tk.key; ssl_conf_command Options -SessionTicket; ssl_ciphers ALL; ssl_ecdh_curve X25519;\n}\n}\n",
    );
    const s = cfg.mail!.servers[0].ssl;
    assert.deepEqual(s.certificates, [join(dir, "c.pem"), "data:PEM"]);
    assert.deepEqual(s.certificateKeys, ["/abs/k.pem", join(dir, "k2.pem")]);
    assert.equal(s.certificateLoc!.line, 5);
    assert.equal(s.dhparam, join(dir, "dh.pem"));
    assert.equal(s.clientCertificate, join(dir, "ca.pem"));
    assert.equal(s.trustedCertificate, join(dir, "t.pem"));
    assert.equal(s.crl, join(dir, "crl.pem"));
    assert.deepEqual(s.sessionTicketKeys, [join(dir, "tk.key")]);
    assert.deepEqual(s.confCommands, [["Options", "-SessionTicket"]]);
    assert.equal(s.ciphers, "ALL");
    assert.equal(s.ecdhCurve, "X25519");
  });
  test("starttlsLoc is the effective starttls directive", async () => {
    const { cfg } = await load(
      "events {}\nmail {\nauth_http 127.0.0.1:1;\nstarttls off;\nserver { listen 127.0.0.1:10143; protocol imap; }\n}\n",
    );
    assert.equal(cfg.mail!.servers[0].starttlsLoc!.line, 4);
  });
});

describe("mailgate extensions", () => {
  test("auth_table replaces the auth_http requirement", async () => {
    const { dir, cfg } = await load(
      "events {}\nmail {\nauth_table users.tab;\nserver { listen 127.0.0.1:10143; protocol imap; }\n}\n",
    );
    assert.equal(cfg.mail!.servers[0].authTable, join(dir, "users.tab"));
    assert.equal(cfg.mail!.servers[0].authHttp, null);
    assert.deepEqual(cfg.warnings, []);
  });
  test("auth_table together with auth_http: table wins, with a warning", async () => {
    const { dir, cfg } = await load(
      "events {}\nmail {\nauth_http 127.0.0.1:1;\n\nserver { listen 127.0.0.1:10143; protocol imap; auth_table /etc/t; }\n}\n",
    );
    assert.equal(cfg.mail!.servers[0].authTable, "/etc/t");
    assert.deepEqual(cfg.warnings.map(formatConfigWarning), [
      `"auth_table" overrides "auth_http" for server in ${dir}/nginx.conf:5`,
    ]);
  });
  test("access_log: prefix-relative path, or off", async () => {
    const { dir, cfg } = await load(
      "events {}\nmail {\nauth_http 127.0.0.1:1;\naccess_log logs/access.log;\n" +
        "server { listen 127.0.0.1:10143; protocol imap; }\nserver { listen 127.0.0.1:10144; protocol imap; access_log off; }\n}\n",
    );
    assert.equal(cfg.mail!.servers[0].accessLog, join(dir, "logs/access.log"));
    assert.equal(cfg.mail!.servers[1].accessLog, null);
  });
  test("backend TLS settings", async () => {
    const tls = (f: string) => readFileSync(join(import.meta.dirname!, "../fixtures/tls", f), "utf8");
    const { dir, cfg } = await load(
      "events {}\nmail {\nauth_http 127.0.0.1:1;\nproxy_ssl_verify on; proxy_ssl_trusted_certificate ca.pem; proxy_ssl_name b.test;\n" +
        "proxy_ssl_server_name on; proxy_ssl_certificate c.pem; proxy_ssl_certificate_key c.key;\n" +
        "server { listen 127.0.0.1:10143; protocol imap; proxy_ssl on; }\nserver { listen 127.0.0.1:10144; protocol imap; proxy_starttls on; }\n}\n",
      { "ca.pem": tls("ca.pem"), "c.pem": tls("client.pem"), "c.key": tls("client.key") },
    );
    const [a, b] = cfg.mail!.servers;
    // The files are read at load (ProxySslConfig.pem): checked in pem_test.ts.
    assert.ok(a.proxySsl.pem?.cert?.startsWith("-----BEGIN CERTIFICATE-----\n"));
    assert.ok(a.proxySsl.pem?.key?.startsWith("-----BEGIN PRIVATE KEY-----\n"));
    delete a.proxySsl.pem;
    assert.deepEqual(a.proxySsl, {
      ssl: true,
      starttls: false,
      verify: true,
      trustedCertificate: join(dir, "ca.pem"),
      name: "b.test",
      serverName: true,
      certificate: join(dir, "c.pem"),
      certificateKey: join(dir, "c.key"),
    });
    assert.equal(b.proxySsl.starttls, true);
    assert.equal(b.proxySsl.ssl, false);
  });
  test("auth_http_keepalive: inherited from mail, a number, once per level", async () => {
    assert.equal((await server("", "auth_http 127.0.0.1:9000; auth_http_keepalive 8;")).authHttpKeepalive, 8);
    assert.equal((await server("auth_http_keepalive 0;", "auth_http 127.0.0.1:9000; auth_http_keepalive 8;")).authHttpKeepalive, 0);
    await assert.rejects(server("auth_http_keepalive many;"), /"auth_http_keepalive" directive invalid number/);
    await assert.rejects(server("auth_http_keepalive 1; auth_http_keepalive 2;"), /"auth_http_keepalive" directive is duplicate/);
  });
  test("proxy_ssl and proxy_starttls both on across levels", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-config-"));
    try {
      writeFileSync(
        join(dir, "nginx.conf"),
        "events {}\nmail {\nauth_http 127.0.0.1:1;\nproxy_ssl on;\nserver { listen 127.0.0.1:10143; protocol imap;\nproxy_starttls on; }\n}\n",
      );
      await assert.rejects(
        loadConfig({ file: join(dir, "nginx.conf"), prefix: dir }),
        (e: Error & { loc?: unknown }) => {
          assert.equal(e.message, '"proxy_ssl" and "proxy_starttls" cannot both be "on"');
          assert.deepEqual(e.loc, { file: join(dir, "nginx.conf"), line: 6 });
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("backend TLS consistency checks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-config-"));
    try {
      const cases: [string, string][] = [
        [
          "proxy_ssl on; proxy_ssl_certificate c.pem;",
          `no "proxy_ssl_certificate_key" is defined for certificate "${join(dir, "c.pem")}"`,
        ],
        [
          "proxy_starttls on; proxy_ssl_verify on;",
          "no proxy_ssl_trusted_certificate for proxy_ssl_verify",
        ],
      ];
      for (const [body, want] of cases) {
        writeFileSync(
          join(dir, "nginx.conf"),
          `events {}\nmail {\nauth_http 127.0.0.1:1;\nserver { listen 127.0.0.1:10143; protocol imap; ${body} }\n}\n`,
        );
        await assert.rejects(loadConfig({ file: join(dir, "nginx.conf"), prefix: dir }), {
          message: want,
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
