// tests/fixtures/config/nginx_full.conf uses every directive mailgate
// accepts; it must load, and each value must land in the typed Config.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import type { Config } from "../../lib/config/types.ts";

const DIR = new URL("../fixtures/config/", import.meta.url).pathname.replace(/\/$/, "");
const TLS = join(DIR, "../tls");

async function loadFull(): Promise<{ cfg: Config; prefix: string }> {
  const prefix = mkdtempSync(join(tmpdir(), "mailgate-prefix-"));
  try {
    return {
      cfg: await loadConfig({ file: join(DIR, "nginx_full.conf"), prefix, hostname: "h.test" }),
      prefix,
    };
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
}

test("main level of nginx_full.conf", async () => {
  const { cfg, prefix } = await loadFull();
  assert.equal(cfg.workerProcesses, "auto");
  assert.equal(cfg.daemon, false);
  assert.equal(cfg.pid, join(prefix, "run/mailgate.pid"));
  assert.deepEqual(cfg.errorLogs.map((l) => [l.target, l.level]), [
    [join(prefix, "logs/error.log"), "info"],
    ["stderr", "error"],
    ["syslog:server=127.0.0.1:5514,facility=local6,tag=mailgate,nohostname", "warn"],
    ["memory:1m", "debug"],
  ]);
  assert.equal(cfg.workerShutdownTimeout, 10000);
  assert.equal(cfg.workerConnections, 1024);
  assert.deepEqual(cfg.files.map((f) => f.path.slice(DIR.length + 1)), [
    "nginx_full.conf",
    "conf.d/main_a.conf",
    "conf.d/smtp_a.conf",
    "conf.d/smtp_b.conf",
  ]);
  assert.deepEqual(cfg.warnings.map((w) => w.message), [
    '"user" directive is ignored',
    '"worker_rlimit_nofile" directive is ignored',
    '"worker_rlimit_core" directive is ignored',
    '"worker_priority" directive is ignored',
    '"worker_cpu_affinity" directive is ignored',
    '"working_directory" directive is ignored',
    '"timer_resolution" directive is ignored',
    '"lock_file" directive is ignored',
    '"debug_points" directive is ignored',
    '"env" directive is ignored',
    '"thread_pool" directive is ignored',
    '"pcre_jit" directive is ignored',
    '"load_module" directive is ignored',
    '"http" block is ignored: mailgate proxies mail only',
    '"stream" block is ignored: mailgate proxies mail only',
    "multipath is not supported on this platform, ignored",
    '"auth_table" overrides "auth_http" for server',
  ]);
  assert.ok(cfg.seen.length > 100);
});

test("mail level inherited by the IMAP server", async () => {
  const { cfg, prefix } = await loadFull();
  const [imap] = cfg.mail!.servers;
  assert.equal(imap.protocol, "imap");
  assert.equal(imap.serverName, "mx.example.test");
  assert.equal(imap.timeoutMs, 30000);
  assert.deepEqual(imap.resolver!.servers, [{ host: "127.0.0.1", port: 53 }, {
    host: "::1",
    port: 5353,
  }]);
  assert.deepEqual([imap.resolver!.validMs, imap.resolver!.ipv4, imap.resolver!.ipv6], [
    30000,
    true,
    false,
  ]);
  assert.equal(imap.resolverTimeoutMs, 5000);
  assert.equal(imap.maxErrors, 3);
  assert.deepEqual(imap.errorLogs!.map((l) => [l.target, l.level]), [[
    join(prefix, "logs/mail.log"),
    "notice",
  ]]);
  const { loc: _authLoc, ...authHttp } = imap.authHttp!;
  assert.deepEqual(authHttp, {
    raw: "http://127.0.0.1:9000/auth?realm=mail",
    target: { kind: "tcp", host: "127.0.0.1", port: 9000 },
    hostHeader: "127.0.0.1",
    uri: "/auth?realm=mail",
    tls: false,
    name: null,
  });
  assert.deepEqual(imap.authHttpHeaders, [["X-Auth-Key", "secret value"], ["X-Other", "other"]]);
  assert.equal(imap.authHttpPassClientCert, true);
  assert.equal(imap.authHttpTimeoutMs, 10000);
  assert.equal(imap.proxyBuffer, 8192);
  assert.equal(imap.proxyPassErrorMessage, true);
  assert.equal(imap.proxyProtocol, "v2");
  assert.equal(imap.proxySmtpAuth, true);
  assert.equal(imap.proxyTimeoutMs, 3600000);
  assert.equal(imap.xclient, false);
  assert.deepEqual(imap.imapAuth, ["plain", "login", "cram-md5", "external"]);
  assert.deepEqual(imap.imapCapabilities, ["IMAP4rev1", "IDLE", "X-QUOTED CAP"]);
  assert.equal(imap.imapClientBuffer, 16384);
  assert.deepEqual(imap.pop3Auth, ["plain", "apop", "cram-md5", "external"]);
  assert.deepEqual(imap.pop3Capabilities, ["TOP", "USER", "UIDL", "PIPELINING"]);
  assert.deepEqual(imap.smtpAuth, ["plain", "login", "cram-md5", "external", "none"]);
  assert.deepEqual(imap.smtpCapabilities, ["PIPELINING", "SIZE 10485760", "8BITMIME"]);
  assert.equal(imap.smtpClientBuffer, 8192);
  assert.equal(imap.smtpGreetingDelayMs, 1000);
  assert.equal(imap.starttls, "on");
  // The files are read at load (the key decrypted with the password file).
  assert.equal(imap.ssl.pem?.certs.length, 1);
  assert.match(imap.ssl.pem!.certs[0].key, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(imap.ssl.pem!.ca!, /^-----BEGIN CERTIFICATE-----\n/);
  delete imap.ssl.pem;
  assert.deepEqual(imap.ssl, {
    certificates: [join(TLS, "server.pem")],
    certificateKeys: [join(TLS, "server_enc.key")],
    certificateLoc: imap.ssl.certificateLoc,
    passwordFile: join(TLS, "password_file"),
    protocols: ["TLSv1.2", "TLSv1.3"],
    ciphers: "HIGH:!aNULL:!MD5:!RC4",
    preferServerCiphers: true,
    ecdhCurve: "X25519:prime256v1",
    dhparam: null,
    confCommands: [["Options", "PrioritizeChaCha"]],
    certificateCompression: false,
    sessionCache: { kind: "builtin", size: 1000, shared: { name: "MAIL", size: 1048576 } },
    sessionTickets: false,
    sessionTicketKeys: [],
    sessionTimeoutSec: 600,
    verifyClient: "optional",
    verifyDepth: 2,
    clientCertificate: join(TLS, "ca.pem"),
    trustedCertificate: join(TLS, "ca.pem"),
    crl: null,
  });
  assert.equal(imap.setRealIpFrom.length, 3);
  assert.equal(imap.accessLog, join(prefix, "logs/access.log"));
  assert.ok(imap.proxySsl.pem?.cert);
  delete imap.proxySsl.pem;
  assert.deepEqual(imap.proxySsl, {
    ssl: false,
    starttls: true,
    verify: true,
    trustedCertificate: join(TLS, "ca.pem"),
    name: "backend.example.test",
    serverName: true,
    certificate: join(TLS, "client.pem"),
    certificateKey: join(TLS, "client.key"),
  });
  assert.deepEqual(
    imap.listens.map((
      l,
    ) => [l.address.kind === "tcp" ? `${l.address.host}:${l.address.port}` : "", l.ssl, l.bind]),
    [
      ["127.0.0.1:10143", false, false],
      ["::1:10143", false, true],
      ["127.0.0.1:10993", true, true],
    ],
  );
  assert.deepEqual([imap.listens[1].backlog, imap.listens[1].rcvbuf, imap.listens[1].sndbuf], [
    128,
    65536,
    65536,
  ]);
  assert.equal(imap.listens[2].proxyProtocol, true);
});

test("POP3 and SMTP servers of nginx_full.conf", async () => {
  const { cfg } = await loadFull();
  const [, pop3, smtp] = cfg.mail!.servers;
  assert.equal(pop3.protocol, "pop3");
  assert.equal(pop3.starttls, "only");
  assert.equal(pop3.authTable, join(TLS, "password_file"));
  assert.equal(pop3.proxySsl.ssl, true);
  assert.equal(pop3.proxySsl.starttls, false);
  assert.deepEqual(pop3.listens.map((l) => l.address), [
    { kind: "tcp", host: "127.0.0.1", port: 10110, wildcard: false },
    { kind: "tcp", host: "127.0.0.1", port: 10111, wildcard: false },
    { kind: "tcp", host: "::", port: 10110, wildcard: true },
    { kind: "unix", path: "/tmp/mailgate-full.sock" },
  ]);
  assert.deepEqual(pop3.listens[0].soKeepalive, { idle: 1800, intvl: null, cnt: 10 });
  assert.deepEqual([
    pop3.listens[2].ipv6only,
    pop3.listens[2].multipath,
    pop3.listens[2].soKeepalive,
  ], [true, true, true]);

  assert.equal(smtp.protocol, "smtp");
  assert.equal(smtp.serverName, "smtp.example.test");
  assert.deepEqual(smtp.smtpAuth, ["login"]);
  assert.deepEqual(smtp.smtpCapabilities, ["SIZE", "DSN"]);
  assert.deepEqual(smtp.ssl.certificates, [join(TLS, "server.pem")]);
  assert.deepEqual(smtp.ssl.certificateKeys, [join(TLS, "server.key")]);
  assert.equal(smtp.ssl.certificateLoc!.file, join(DIR, "conf.d/smtp_a.conf"));
});
