// auth_http over HTTPS and by name (issue 17) through the real process: a
// node:tls auth service (tests/helpers/https_auth.ts) with a valid
// certificate for auth.mailgate.test, one for the wrong name, an expired one,
// one that requires a client certificate, and one for 127.0.0.1; the name is
// resolved through FakeDns by the configured `resolver`, as is an Auth-Server
// host name. One mailgate per
// target serves every case on its own listener.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { TestClient } from "../helpers/client.ts";
import { MockAuth } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { HttpsAuth } from "../helpers/https_auth.ts";
import { A, AAAA, FakeDns, NXDOMAIN, zone } from "../helpers/fake_dns.ts";
import { ROOT, type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const NAME = "auth.mailgate.test";
const BACKEND = "backend.mailgate.test";

for (const target of targets()) {
  describe(`auth_http over HTTPS and by name (${target})`, () => {
    let mg: Running;
    let auth: MockAuth;
    let imap: MockImap;
    let dns: FakeDns;
    const https: Record<string, HttpsAuth> = {};
    let port: Record<string, number>;
    before(async () => {
      imap = await MockImap.start();
      // Framed for keep-alive (HTTP/1.1, Content-Length): every request on a connection is answered.
      // Auth-Server is X-Backend-Name when the server sends one (a host name), else 127.0.0.1.
      auth = await MockAuth.start(
        (req) =>
          `HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: ${
            req.get("X-Backend-Name") ?? "127.0.0.1"
          }\r\nAuth-Port: ${imap.port}\r\nContent-Length: 0\r\n\r\n`,
        true,
      );
      https.good = await HttpsAuth.start(auth, { fixtures: TLS, cert: "auth_https" });
      https.wrong = await HttpsAuth.start(auth, { fixtures: TLS, cert: "other" });
      https.expired = await HttpsAuth.start(auth, { fixtures: TLS, cert: "auth_expired" });
      https.cc = await HttpsAuth.start(auth, {
        fixtures: TLS,
        cert: "auth_https",
        requireClientCert: true,
      });
      https.ip = await HttpsAuth.start(auth, { fixtures: TLS, cert: "server" });
      dns = await FakeDns.start(zone({
        [`${NAME} A`]: { answers: [{ type: A, data: "127.0.0.1" }] },
        [`${NAME} AAAA`]: { answers: [] },
        [`${BACKEND} A`]: { answers: [{ type: A, data: "127.0.0.1" }] },
      }, { rcode: NXDOMAIN }));
      const names = [
        "name",
        "wrongname",
        "expired",
        "noverify",
        "clientcert",
        "noclientcert",
        "ip",
        "nxname",
        "backendname",
        "backendnores",
      ];
      port = await namedPorts(names);
      const ca = `auth_http_ssl_trusted_certificate ${join(TLS, "ca.pem")};`;
      const url = (h: HttpsAuth) => `https://${NAME}:${h.port}/auth`;
      const srv = (n: string, rest: string) =>
        `  server { listen 127.0.0.1:${port[n]}; protocol imap; ${rest} }\n`;
      mg = await startMailgate(
        target,
        `
error_log stderr info;
events { }
mail {
  resolver 127.0.0.1:${dns.port} ipv6=off;
  resolver_timeout 5s;
  auth_http_timeout 10s;
${srv("name", `auth_http ${url(https.good)}; auth_http_keepalive 4; ${ca}`)}
${srv("wrongname", `auth_http ${url(https.wrong)}; ${ca}`)}
${srv("expired", `auth_http ${url(https.expired)}; ${ca}`)}
${srv("noverify", `auth_http ${url(https.expired)}; auth_http_ssl_verify off;`)}
${
          srv(
            "clientcert",
            `auth_http ${url(https.cc)}; ${ca} auth_http_ssl_certificate ${
              join(TLS, "client.pem")
            }; auth_http_ssl_certificate_key ${join(TLS, "client.key")};`,
          )
        }
${srv("noclientcert", `auth_http ${url(https.cc)}; ${ca}`)}
${srv("ip", `auth_http https://127.0.0.1:${https.ip.port}/auth; ${ca}`)}
${srv("nxname", `auth_http https://missing.mailgate.test:${https.good.port}/auth; ${ca}`)}
${
          srv(
            "backendname",
            `auth_http https://127.0.0.1:${https.ip.port}/auth; ${ca} auth_http_header X-Backend-Name ${BACKEND};`,
          )
        }
${
          srv(
            "backendnores",
            `auth_http https://127.0.0.1:${https.ip.port}/auth; ${ca} auth_http_header X-Backend-Name ${BACKEND}; resolver off;`,
          )
        }
}
`,
      );
    });
    after(() => stopAll(mg, ...Object.values(https), auth, imap, dns));

    async function login(n: string): Promise<string> {
      const c = await TestClient.open(port[n]);
      try {
        assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
        c.write("a1 LOGIN alice secret\r\n");
        return await c.line(15000);
      } finally {
        c.close();
      }
    }
    const INTERNAL = "* BAD internal server error\r\n";

    it("a name resolved by the resolver, verified against the CA, sent as SNI", async () => {
      const before = dns.queries.length;
      assert.match(await login("name"), /^a1 OK/);
      assert.deepEqual(https.good.seen[0], { servername: NAME, clientCn: null });
      assert.ok(dns.queries.slice(before).some((q) => q.name === NAME && q.type === A));
    });

    it("auth_http_keepalive reuses the TLS connection", async () => {
      const requests = auth.requests.length;
      assert.match(await login("name"), /^a1 OK/);
      assert.match(await login("name"), /^a1 OK/);
      assert.equal(auth.requests.length, requests + 2);
      assert.equal(https.good.seen.length, 1, "one TLS connection for three requests");
    });

    it("a certificate for another name is refused and logged", async () => {
      assert.equal(await login("wrongname"), INTERNAL);
      await mg.waitLog(
        new RegExp(
          `connect\\(\\) to ${NAME}:${https.wrong.port} failed \\(.+\\) while in http auth state`,
        ),
      );
      assert.equal(https.wrong.seen.length, 0, "no request went out on the refused connection");
    });

    it("an expired certificate is refused and logged; auth_http_ssl_verify off accepts it", async () => {
      assert.equal(await login("expired"), INTERNAL);
      // The reason is the runtime's TLS text (Deno: "unable to verify the first certificate").
      await mg.waitLog(
        new RegExp(
          `connect\\(\\) to ${NAME}:${https.expired.port} failed \\(.+\\) while in http auth state`,
        ),
      );
      assert.equal(https.expired.seen.length, 0, "no request went out on the refused connection");
      assert.match(await login("noverify"), /^a1 OK/);
      assert.equal(https.expired.seen.length, 1);
    });

    it("a client certificate, when the auth service requires one", async () => {
      assert.match(await login("clientcert"), /^a1 OK/);
      assert.deepEqual(https.cc.seen.at(-1), { servername: NAME, clientCn: "client.example.com" });
      const seen = https.cc.seen.length;
      assert.equal(await login("noclientcert"), INTERNAL);
      assert.equal(https.cc.seen.length, seen);
    });

    it("an IP literal: no SNI, the address verified", async () => {
      assert.match(await login("ip"), /^a1 OK/);
      assert.deepEqual(https.ip.seen.at(-1), { servername: null, clientCn: null });
    });

    it("a name the resolver does not know: internal error and a clear log line", async () => {
      assert.equal(await login("nxname"), INTERNAL);
      await mg.waitLog(
        /auth http server missing\.mailgate\.test:\d+ could not be resolved \(3: Host not found\)/,
      );
    });

    it("Auth-Server may name a host: resolved with the server's resolver", async () => {
      const before = dns.queries.length;
      const logins = imap.conns.length;
      assert.match(await login("backendname"), /^a1 OK/);
      assert.ok(dns.queries.slice(before).some((q) => q.name === BACKEND && q.type === A));
      assert.equal(imap.conns.length, logins + 1);
    });

    it("Auth-Server naming a host without a resolver: internal error and a clear log line", async () => {
      const logins = imap.conns.length;
      assert.equal(await login("backendnores"), INTERNAL);
      await mg.waitLog(
        new RegExp(`Auth-Server "${BACKEND}" is a host name, but no "resolver" is defined`),
      );
      assert.equal(imap.conns.length, logins);
    });
  });
}
