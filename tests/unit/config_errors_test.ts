// Every configuration error message of directives.md, with its exact text and
// the file:line nginx would name. Each case writes a configuration into a
// fresh temporary directory, loads it, and compares formatConfigError().

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError, formatConfigError, loadConfig } from "../../lib/config/load.ts";
import type { IpAddr } from "../../lib/config/url.ts";

const TLS = new URL("../fixtures/tls/", import.meta.url).pathname;

/** Test DNS: a few fixed names, everything else unknown. */
function lookup(host: string): Promise<IpAddr[]> {
  const table: Record<string, IpAddr[]> = {
    "mail.test": [{ family: 4, bytes: new Uint8Array([192, 0, 2, 1]) }],
  };
  const r = table[host];
  if (!r) return Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" }));
  return Promise.resolve(r);
}

/** Loads `files["nginx.conf"]` (plus the other files) and returns the error text, with the dir as `DIR`. */
async function errorOf(files: Record<string, string>, globals?: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-config-"));
  try {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    try {
      await loadConfig({
        file: join(dir, "nginx.conf"),
        prefix: dir,
        globals,
        lookup,
        hostname: "h.test",
      });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return formatConfigError(e).split(dir).join("DIR");
    }
    assert.fail("configuration loaded without error");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const err = (conf: string, globals?: string) => errorOf({ "nginx.conf": conf }, globals);

/** A mail block around `server` text; auth_http is defined at mail level. */
const mail = (body: string) => `events {}\nmail {\nauth_http 127.0.0.1:9000;\n${body}\n}\n`;
const SRV = "server { listen 127.0.0.1:10143; protocol imap; }";

describe("grammar errors (§1.1, §1.5)", () => {
  const cases: [string, string, string][] = [
    ["unknown directive", "events {}\nfoo bar;\n", 'unknown directive "foo" in DIR/nginx.conf:2'],
    [
      "directive names are case-sensitive",
      "events {}\nDaemon off;\n",
      'unknown directive "Daemon" in DIR/nginx.conf:2',
    ],
    [
      "not allowed here",
      "events {}\nlisten 25;\n",
      '"listen" directive is not allowed here in DIR/nginx.conf:2',
    ],
    [
      "mail directive in main",
      "events {}\ntimeout 5s;\n",
      '"timeout" directive is not allowed here in DIR/nginx.conf:2',
    ],
    [
      "mail directive in events",
      "events {\nserver_name x;\n}\n",
      '"server_name" directive is not allowed here in DIR/nginx.conf:2',
    ],
    [
      "not terminated",
      "events {}\ndaemon off {\n}\n",
      'directive "daemon" is not terminated by ";" in DIR/nginx.conf:2',
    ],
    ["no opening brace", "events;\n", 'directive "events" has no opening "{" in DIR/nginx.conf:1'],
    [
      "argument count",
      "events {}\ndaemon;\n",
      'invalid number of arguments in "daemon" directive in DIR/nginx.conf:2',
    ],
    [
      "block arguments",
      "events foo {}\n",
      'invalid number of arguments in "events" directive in DIR/nginx.conf:1',
    ],
    ["stray brace", "events {}\n}\n", 'unexpected "}" in DIR/nginx.conf:2'],
    [
      "brace ends a word",
      "events {\nworker_connections 10}\n",
      'unexpected "}" in DIR/nginx.conf:2',
    ],
    ["lone semicolon", "events {}\n;\n", 'unexpected ";" in DIR/nginx.conf:2'],
    ["lone brace", "events {}\n\n{\n", 'unexpected "{" in DIR/nginx.conf:3'],
    [
      "eof in directive",
      "events {}\ndaemon off",
      'unexpected end of file, expecting ";" or "}" in DIR/nginx.conf:2',
    ],
    ["eof in block", "events {\n\n", 'unexpected end of file, expecting "}" in DIR/nginx.conf:3'],
    [
      "eof in quote",
      'events {}\npid "abc\n',
      'unexpected end of file, expecting ";" or "}" in DIR/nginx.conf:3',
    ],
    ["char after closing quote", 'events {}\npid "a"b;\n', 'unexpected "b" in DIR/nginx.conf:2'],
    [
      "comment after closing quote",
      'events {}\npid "a"#x\n;\n',
      'unexpected "#" in DIR/nginx.conf:2',
    ],
    [
      "second mail block",
      "events {}\nmail {}\nmail {}\n",
      '"mail" directive is duplicate in DIR/nginx.conf:3',
    ],
    [
      "second events block",
      "events {}\nevents {}\n",
      '"events" directive is duplicate in DIR/nginx.conf:2',
    ],
    ["no events", "daemon off;\n", 'no "events" section in configuration'],
    [
      "ssl takes on or off (nginx 1.24's flag)",
      mail("ssl maybe;"),
      'invalid value "maybe" in "ssl" directive, it must be "on" or "off" in DIR/nginx.conf:4',
    ],
    [
      "error line is the terminator's",
      "events {}\npid /a;\npid\n\n  /x\n;\n",
      '"pid" directive is duplicate in DIR/nginx.conf:6',
    ],
  ];
  for (const [name, conf, want] of cases) {
    test(name, async () => assert.equal(await err(conf), want));
  }

  test("too long parameter", async () => {
    const long = "a".repeat(5000);
    assert.equal(
      await err(`events {}\n\npid ${long};\n`),
      'too long parameter "aaaaaaaaaa..." started in DIR/nginx.conf:3',
    );
  });
  test("too long parameter reports the line where the token started", async () => {
    const long = "b".repeat(3000) + "\n" + "b".repeat(3000);
    assert.equal(
      await err(`events {}\npid "${long}";\n`),
      'too long parameter, probably missing terminating """ character in DIR/nginx.conf:2',
    );
  });
  test("unclosed single quote", async () => {
    assert.equal(
      await err(`events {}\npid '${"x".repeat(5000)}`),
      `too long parameter, probably missing terminating "'" character in DIR/nginx.conf:2`,
    );
  });
  test("a 4095-byte token is fine, 4096 is not", async () => {
    assert.equal(
      await err(`events {}\npid ${"p".repeat(4095)};\npid x;\n`),
      '"pid" directive is duplicate in DIR/nginx.conf:3',
    );
    assert.equal(
      await err(`events {}\npid ${"p".repeat(4096)};\n`),
      'too long parameter "pppppppppp..." started in DIR/nginx.conf:2',
    );
  });
});

describe("include errors (§1.2)", () => {
  test("missing file names the full path, at the include line", async () => {
    assert.equal(
      await err("events {}\n\ninclude conf.d/missing.conf;\n"),
      'open() "DIR/conf.d/missing.conf" failed (2: No such file or directory) in DIR/nginx.conf:3',
    );
  });
  test("stray brace in an included file", async () => {
    const e = await errorOf({
      "nginx.conf": "events {}\nmail {\ninclude inc.conf;\n}\n",
      "inc.conf": "server_name a;\n}\n",
    });
    assert.equal(e, 'unexpected "}" in DIR/inc.conf:2');
  });
  test("unclosed block in an included file", async () => {
    const e = await errorOf({
      "nginx.conf": "events {}\nmail {\ninclude inc.conf;\n}\n",
      "inc.conf": "server {\n",
    });
    assert.equal(e, 'unexpected end of file, expecting "}" in DIR/inc.conf:2');
  });
  test("errors inside an included file carry its name and line", async () => {
    const e = await errorOf({
      "nginx.conf": "events {}\ninclude a.conf;\n",
      "a.conf": "\n\nbogus;\n",
    });
    assert.equal(e, 'unknown directive "bogus" in DIR/a.conf:3');
  });
  test("a file including itself is refused", async () => {
    const e = await errorOf({
      "nginx.conf": "events {}\ninclude loop.conf;\n",
      "loop.conf": "\ninclude loop.conf;\n",
    });
    assert.equal(e, 'recursive include of "DIR/loop.conf" in DIR/loop.conf:2');
  });
});

describe("value errors (§1.3, §1.4)", () => {
  const cases: [string, string, string][] = [
    [
      "flag",
      "xclient yes;",
      'invalid value "yes" in "xclient" directive, it must be "on" or "off"',
    ],
    ["number", "max_errors 5x;", '"max_errors" directive invalid number'],
    ["negative number", "max_errors -1;", '"max_errors" directive invalid number'],
    ["size", "proxy_buffer 4g;", '"proxy_buffer" directive invalid value'],
    [
      "size with fraction",
      "imap_client_buffer 1.5k;",
      '"imap_client_buffer" directive invalid value',
    ],
    ["time order", "timeout 30m1h;", '"timeout" directive invalid value'],
    ["time repeated unit", "timeout 1s1s;", '"timeout" directive invalid value'],
    ["ms time has no years", "proxy_timeout 1y;", '"proxy_timeout" directive invalid value'],
    [
      "seconds time has no ms",
      "ssl_session_timeout 10ms;",
      '"ssl_session_timeout" directive invalid value',
    ],
    ["enum", "starttls maybe;", 'invalid value "maybe"'],
    ["enum verify", "ssl_verify_client always;", 'invalid value "always"'],
    ["proxy_protocol enum", "proxy_protocol v3;", 'invalid value "v3"'],
    ["method list", "imap_auth plain apop;", 'invalid value "apop"'],
    ["smtp method list", "smtp_auth digest-md5;", 'invalid value "digest-md5"'],
    ["ssl_protocols", "ssl_protocols TLSv1.4;", 'invalid value "TLSv1.4"'],
    ["duplicate flag", "xclient on;\nxclient off;", '"xclient" directive is duplicate'],
    [
      "duplicate checked before the value",
      "xclient on;\nxclient bogus;",
      '"xclient" directive is duplicate',
    ],
    ["duplicate string", "server_name a;\nserver_name b;", '"server_name" directive is duplicate'],
    ["duplicate enum", "starttls on;\nstarttls off;", '"starttls" directive is duplicate'],
    [
      "duplicate resolver",
      "resolver off;\nresolver 127.0.0.1;",
      '"resolver" directive is duplicate',
    ],
    ["duplicate time", "timeout 1s;\ntimeout 2s;", '"timeout" directive is duplicate'],
    [
      "mail args",
      "auth_http_header X;",
      'invalid number of arguments in "auth_http_header" directive',
    ],
    [
      "session cache args",
      "ssl_session_cache a b c;",
      'invalid number of arguments in "ssl_session_cache" directive',
    ],
    ["listen at mail level", "listen 25;", '"listen" directive is not allowed here'],
    ["protocol at mail level", "protocol imap;", '"protocol" directive is not allowed here'],
    ["unknown protocol", "server { protocol IMAP; }", 'unknown protocol "IMAP"'],
    ["invalid session cache", "ssl_session_cache builtin:x;", 'invalid session cache "builtin:x"'],
    ["invalid session cache word", "ssl_session_cache Builtin;", 'invalid session cache "Builtin"'],
    [
      "shared cache without size",
      "ssl_session_cache shared:SSL;",
      'invalid session cache "shared:SSL"',
    ],
    [
      "shared cache too small",
      "ssl_session_cache shared:SSL:16k;",
      'session cache "shared:SSL:16k" is too small',
    ],
    [
      "backend TLS both on",
      "proxy_ssl on;\nproxy_starttls on;",
      '"proxy_ssl" and "proxy_starttls" cannot both be "on"',
    ],
  ];
  for (const [name, body, want] of cases) {
    test(name, async () => {
      const lines = body.split("\n").length;
      // mail() puts the body on line 4.
      assert.equal(await err(mail(body)), `${want} in DIR/nginx.conf:${3 + lines}`);
    });
  }

  test("worker_processes", async () => {
    assert.equal(
      await err("worker_processes many;\nevents {}\n"),
      '"worker_processes" directive invalid value in DIR/nginx.conf:1',
    );
    assert.equal(
      await err("worker_processes AUTO;\nevents {}\n"),
      '"worker_processes" directive invalid value in DIR/nginx.conf:1',
    );
  });
  test("worker_connections", async () => {
    assert.equal(
      await err("events { worker_connections lots; }\n"),
      'invalid number "lots" in DIR/nginx.conf:1',
    );
  });
  test("error_log level", async () => {
    assert.equal(
      await err("error_log stderr loud;\nevents {}\n"),
      'invalid log level "loud" in DIR/nginx.conf:1',
    );
    assert.equal(
      await err("error_log stderr info warn;\nevents {}\n"),
      'duplicate log level "warn" in DIR/nginx.conf:1',
    );
    assert.equal(
      await err("error_log syslog:facility=local7;\nevents {}\n"),
      "no syslog server specified in DIR/nginx.conf:1",
    );
    assert.equal(
      await err("error_log syslog:server=127.0.0.1,facility=local9;\nevents {}\n"),
      'unknown syslog facility "local9" in DIR/nginx.conf:1',
    );
  });
});

describe("-g errors (§2)", () => {
  test("block directives are refused", async () => {
    assert.equal(
      await err("events {}\n", "events {}"),
      "block directives are not supported in -g option in command line",
    );
  });
  test("errors are reported in command line", async () => {
    assert.equal(
      await err("events {}\n", "daemon maybe;"),
      'invalid value "maybe" in "daemon" directive, it must be "on" or "off" in command line',
    );
    assert.equal(
      await err("events {}\n", "listen 25;"),
      '"listen" directive is not allowed here in command line',
    );
    assert.equal(
      await err("events {}\n", "daemon off"),
      'unexpected end of parameter, expecting ";" in command line',
    );
  });
  test("-g is applied first: the file's repetition is the duplicate", async () => {
    assert.equal(
      await err("events {}\npid /b;\n", "pid /a;"),
      '"pid" directive is duplicate in DIR/nginx.conf:2',
    );
  });
});

describe("listen errors (§3)", () => {
  const listenErr = (arg: string) => err(mail(`server {\nlisten ${arg};\nprotocol imap;\n}`));
  const cases: [string, string][] = [
    ["127.0.0.1:0", 'invalid port in "127.0.0.1:0" of the "listen" directive'],
    ["127.0.0.1:70000", 'invalid port in "127.0.0.1:70000" of the "listen" directive'],
    ["70000", 'invalid port in "70000" of the "listen" directive'],
    ["127.0.0.1", 'invalid port in "127.0.0.1" of the "listen" directive'],
    ["8010-8000", 'invalid port range in "8010-8000" of the "listen" directive'],
    ["127.0.0.1:9-2", 'invalid port range in "127.0.0.1:9-2" of the "listen" directive'],
    ["127.0.0.1:110/x", 'invalid host in "127.0.0.1:110/x" of the "listen" directive'],
    ["[::1:110", 'invalid host in "[::1:110" of the "listen" directive'],
    [":110", 'no host in ":110" of the "listen" directive'],
    ["[]:110", 'no host in "[]:110" of the "listen" directive'],
    ["nowhere.invalid:110", 'host not found in "nowhere.invalid:110" of the "listen" directive'],
    ["[::zz]:110", 'invalid IPv6 address in "[::zz]:110" of the "listen" directive'],
    ["unix:", 'no path in the unix domain socket in "unix:" of the "listen" directive'],
    [
      `unix:/${"s".repeat(120)}`,
      `too long path in the unix domain socket in "unix:/${
        "s".repeat(120)
      }" of the "listen" directive`,
    ],
    ["127.0.0.1:143 backlog=0", 'invalid backlog "backlog=0"'],
    ["127.0.0.1:143 backlog=-1", 'invalid backlog "backlog=-1"'],
    ["127.0.0.1:143 rcvbuf=1x", 'invalid rcvbuf "rcvbuf=1x"'],
    ["127.0.0.1:143 sndbuf=", 'invalid sndbuf "sndbuf="'],
    ["[::]:143 ipv6only=of", 'invalid ipv6only flags "of"'],
    ["127.0.0.1:143 so_keepalive=::", 'invalid so_keepalive value: "::"'],
    ["127.0.0.1:143 so_keepalive=1x::", 'invalid so_keepalive value: "1x::"'],
    ["127.0.0.1:143 so_keepalive=1m:2:3:4", 'invalid so_keepalive value: "1m:2:3:4"'],
    ["127.0.0.1:143 SSL", 'invalid parameter "SSL"'],
    ["127.0.0.1:143 http2", 'invalid parameter "http2"'],
  ];
  for (const [arg, want] of cases) {
    test(arg, async () => assert.equal(await listenErr(arg), `${want} in DIR/nginx.conf:5`));
  }

  test("duplicate address across servers", async () => {
    const conf = mail(`${SRV}\nserver {\nlisten 127.0.0.1:10143;\n}`);
    assert.equal(
      await err(conf),
      'duplicate "127.0.0.1:10143" address and port pair in DIR/nginx.conf:6',
    );
  });
  test("duplicate inside a port range, wildcard spelled *", async () => {
    const conf = mail(
      "server { listen *:2000-2002; protocol imap; }\nserver { listen 0.0.0.0:2001; protocol imap; }",
    );
    assert.equal(
      await err(conf),
      'duplicate "0.0.0.0:2001" address and port pair in DIR/nginx.conf:5',
    );
  });
  test("duplicate IPv6 and unix addresses", async () => {
    assert.equal(
      await err(mail("server { listen [0::1]:25; listen [::1]:25; }")),
      'duplicate "[::1]:25" address and port pair in DIR/nginx.conf:4',
    );
    assert.equal(
      await err(
        mail("server { listen unix:/tmp/m.sock; listen unix:/tmp/m.sock; protocol smtp; }"),
      ),
      'duplicate "unix:/tmp/m.sock" address and port pair in DIR/nginx.conf:4',
    );
  });
  test("no listen, reported with the line of `server {`", async () => {
    assert.equal(
      await err(mail("\nserver\n{\nprotocol imap;\n}")),
      'no "listen" is defined for server in DIR/nginx.conf:6',
    );
  });
});

describe("resolver, auth_http, set_real_ip_from errors (§3, §4, §10)", () => {
  const cases: [string, string][] = [
    ["resolver 127.0.0.1 valid=5x;", "invalid parameter: valid=5x"],
    ["resolver 127.0.0.1 ipv6=no;", "invalid parameter: ipv6=no"],
    ["resolver 127.0.0.1 ipv4=off ipv6=off;", '"ipv4" and "ipv6" cannot both be "off"'],
    ["resolver valid=30s;", "no name servers defined"],
    ["resolver 127.0.0.1:99999;", 'invalid port in resolver "127.0.0.1:99999"'],
    ["resolver nowhere.invalid;", 'host not found in resolver "nowhere.invalid"'],
    ["resolver status_zone=z;", 'host not found in resolver "status_zone=z"'],
    ["auth_http http://127.0.0.1:0/auth;", 'invalid port in auth_http "127.0.0.1:0/auth"'],
    ["auth_http ftp://auth.test/auth;", 'invalid port in auth_http "ftp://auth.test/auth"'],
    ["auth_http https://nowhere.invalid/auth;", 'host not found in auth_http "nowhere.invalid/auth"'],
    [
      "auth_http http://nowhere.invalid/auth;",
      'host not found in auth_http "nowhere.invalid/auth"',
    ],
    ["auth_http [::1/auth;", 'invalid host in auth_http "[::1/auth"'],
    [
      `auth_http https://127.0.0.1/a; auth_http_ssl_certificate ${TLS}client.pem;\n${SRV}`,
      `no "auth_http_ssl_certificate_key" is defined for certificate "${TLS}client.pem"`,
    ],
    [
      `auth_http https://127.0.0.1/a; auth_http_ssl_trusted_certificate ${TLS}missing.pem;\n${SRV}`,
      `cannot load "auth_http_ssl_trusted_certificate" file "${TLS}missing.pem": BIO_new_file() failed (2: No such file or directory)`,
    ],
    ["auth_http unix:;", 'no path in the unix domain socket in auth_http "unix:"'],
    ["set_real_ip_from nowhere.invalid;", 'host not found in set_real_ip_from "nowhere.invalid"'],
    ["set_real_ip_from 10.0.0.0/33;", 'host not found in set_real_ip_from "10.0.0.0/33"'],
  ];
  for (const [line, want] of cases) {
    test(line, async () => assert.equal(await err(mail(line)), `${want} in DIR/nginx.conf:4`));
  }
});

describe("end-of-mail checks (§11)", () => {
  test("unknown mail protocol, at the server line", async () => {
    assert.equal(
      await err(mail("server {\nlisten 127.0.0.1:10000;\n}")),
      "unknown mail protocol for server in DIR/nginx.conf:4",
    );
  });
  test("protocol check runs over all servers before the TLS check", async () => {
    const conf = mail("server { listen 127.0.0.1:993 ssl; }\nserver { listen 127.0.0.1:10001; }");
    assert.equal(await err(conf), "unknown mail protocol for server in DIR/nginx.conf:5");
  });
  test("no auth_http", async () => {
    const conf = `events {}\nmail {\n${SRV}\n}\n`;
    assert.equal(await err(conf), 'no "auth_http" is defined for server in DIR/nginx.conf:3');
  });
  test("no certificate for listen ... ssl: the listen line", async () => {
    const conf = mail("server {\nlisten 127.0.0.1:993 ssl;\n}");
    assert.equal(
      await err(conf),
      'no "ssl_certificate" is defined for the "listen ... ssl" directive in DIR/nginx.conf:5',
    );
  });
  test("no certificate for mail-level starttls: the starttls line", async () => {
    const conf = mail(`starttls only;\n${SRV}`);
    assert.equal(
      await err(conf),
      'no "ssl_certificate" is defined for the "starttls" directive in DIR/nginx.conf:4',
    );
  });
  test("no key", async () => {
    const conf = mail(
      `ssl_certificate ${TLS}server.pem;\nserver {\nstarttls on;\nlisten 127.0.0.1:143;\n}`,
    );
    assert.equal(
      await err(conf),
      'no "ssl_certificate_key" is defined for the "starttls" directive in DIR/nginx.conf:6',
    );
  });
  test("fewer keys than certificates", async () => {
    const conf = mail(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate other.pem;\nssl_certificate_key ${TLS}server.key;\nserver { listen 127.0.0.1:995 ssl; }`,
    );
    assert.equal(
      await err(conf),
      'no "ssl_certificate_key" is defined for certificate "other.pem" and the "listen ... ssl" directive in DIR/nginx.conf:7',
    );
  });
  test("ssl_verify_client needs a CA", async () => {
    const conf = mail(
      `ssl_certificate ${TLS}server.pem;\nssl_certificate_key ${TLS}server.key;\nssl_verify_client on;\nserver { listen 127.0.0.1:995 ssl; }`,
    );
    assert.equal(
      await err(conf),
      "no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client in DIR/nginx.conf:6",
    );
  });
  test("TLS check runs before the auth_http check", async () => {
    const conf = `events {}\nmail {\nserver { listen 127.0.0.1:995 ssl; }\n}\n`;
    assert.equal(
      await err(conf),
      'no "ssl_certificate" is defined for the "listen ... ssl" directive in DIR/nginx.conf:3',
    );
  });
});
