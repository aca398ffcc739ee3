// Real peer: HAProxy as the PROXY protocol sender in front of mailgate
// (`listen ... proxy_protocol`, `set_real_ip_from 127.0.0.1`), in tcp mode
// with send-proxy (v1), send-proxy-v2, send-proxy-v2-ssl (HAProxy ends TLS
// and sends SSL TLVs) and TLS passed through to an `ssl proxy_protocol`
// listener. Clients connect from 127.0.0.2, so the address HAProxy saw
// differs from HAProxy's own (127.0.0.1) and the auth request shows which
// one mailgate used. One HAProxy serves every target (its frontends point
// at ports reserved for each target's mailgate).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { type HAProxy, startHAProxy, toolsAvailable } from "../helpers/haproxy.ts";
import { ROOT, type Running, startMailgate, type Target, targets } from "../helpers/mailgate.ts";
import { freePorts } from "../helpers/ports.ts";

const avail = toolsAvailable("haproxy");
const TLS = join(ROOT, "tests", "fixtures", "tls");
const CA = readFileSync(join(TLS, "ca.pem"));
/** The clients' source address: loopback, but not HAProxy's own. */
const CLIENT_ADDR = "127.0.0.2";
/** Bound on each TLS handshake. */
const HANDSHAKE_MS = 5000;

/** mailgate listeners per target. */
const MG = ["imap", "imapssl", "untrusted", "smtp"] as const;
/** HAProxy frontends per target: name -> [mailgate listener, server options, bind options]. */
const FRONTENDS: Record<string, [typeof MG[number], string, string]> = {
  v1: ["imap", "send-proxy", ""],
  v2: ["imap", "send-proxy-v2", ""],
  v2ssl: ["imap", "send-proxy-v2-ssl proxy-v2-options ssl-cipher,cert-sig,cert-key,authority,crc32c", "ssl crt {dir}/server_combined.pem"],
  passthrough: ["imapssl", "send-proxy-v2 proxy-v2-options crc32c", ""],
  untrusted: ["untrusted", "send-proxy", ""],
  smtp: ["smtp", "send-proxy", ""],
};

/** Whether this host has IPv6 loopback (an extra [::1] frontend then). */
function hasIpv6(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(0, "::1", () => s.close(() => resolve(true)));
  });
}

/** A plain client from CLIENT_ADDR (or ::1). */
function openFrom(port: number, host = "127.0.0.1", localAddress = CLIENT_ADDR): Promise<TestClient> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ host, port, localAddress }, () => resolve(TestClient.fromSocket(s)));
    s.once("error", reject);
  });
}

/** A TLS client from CLIENT_ADDR, verifying the server as localhost. */
async function tlsFrom(port: number): Promise<{ c: TestClient; s: TLSSocket; localPort: number; protocol: string }> {
  const plain = await new Promise<Socket>((resolve, reject) => {
    const sock: Socket = connect({ host: "127.0.0.1", port, localAddress: CLIENT_ADDR }, () => resolve(sock));
    sock.once("error", reject);
  });
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ socket: plain, ca: CA, servername: "localhost" });
    const c = TestClient.fromSocket(s);
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error("TLS handshake did not complete"));
    }, HANDSHAKE_MS);
    s.once("secureConnect", () => {
      clearTimeout(t);
      resolve({ c, s, localPort: plain.localPort!, protocol: s.getProtocol() ?? "" });
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

describe("real peers: HAProxy sends PROXY headers to mailgate", { skip: avail.ok ? false : avail.why }, () => {
  let haproxy: HAProxy;
  let auth: MockAuth;
  let imap: MockImap;
  let smtp: MockSmtp;
  let ipv6 = false;
  /** Per target: mailgate ports and HAProxy frontend ports. */
  const mgPort: Partial<Record<Target, Record<string, number>>> = {};
  const fePort: Partial<Record<Target, Record<string, number>>> = {};

  before(async () => {
    imap = await MockImap.start();
    smtp = await MockSmtp.start();
    auth = await MockAuth.start((req: AuthRequestSeen) =>
      ok("127.0.0.1", req.get("Auth-Protocol") === "smtp" ? smtp.port : imap.port)
    );
    ipv6 = await hasIpv6();
    let sections = "";
    for (const t of targets()) {
      const names = [...Object.keys(FRONTENDS), ...(ipv6 ? ["v6"] : [])];
      const ps = await freePorts(MG.length + names.length);
      mgPort[t] = Object.fromEntries(MG.map((n, i) => [n, ps[i]]));
      fePort[t] = Object.fromEntries(names.map((n, i) => [n, ps[MG.length + i]]));
      const fronts: [string, [string, string, string]][] = Object.entries(FRONTENDS);
      if (ipv6) fronts.push(["v6", ["imap", "send-proxy", ""]]);
      for (const [name, [to, server, bind]] of fronts) {
        const addr = name === "v6" ? `[::1]` : "127.0.0.1";
        sections += `
listen ${name}_${t}
  bind ${addr}:${fePort[t]![name]} ${bind}
  server mailgate 127.0.0.1:${mgPort[t]![to]} ${server}
`;
      }
    }
    haproxy = await startHAProxy(sections, {
      "server_combined.pem": readFileSync(join(TLS, "server.pem"), "latin1") + readFileSync(join(TLS, "server.key"), "latin1"),
    });
  });
  after(async () => {
    await haproxy?.stop();
    await auth?.stop();
    await imap?.stop();
    await smtp?.stop();
  });

  for (const target of targets()) {
    describe(`via ${target}`, () => {
      let mg: Running;
      let fe: Record<string, number>;
      let p: Record<string, number>;
      before(async () => {
        p = mgPort[target]!;
        fe = fePort[target]!;
        mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  server_name mail.test;
  auth_http 127.0.0.1:${auth.port}/auth;
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  server { listen 127.0.0.1:${p.imap} proxy_protocol; protocol imap; set_real_ip_from 127.0.0.1; }
  server { listen 127.0.0.1:${p.imapssl} ssl proxy_protocol; protocol imap; set_real_ip_from 127.0.0.1; }
  server { listen 127.0.0.1:${p.untrusted} proxy_protocol; protocol imap; }
  server { listen 127.0.0.1:${p.smtp} proxy_protocol; protocol smtp; set_real_ip_from 127.0.0.1;
           smtp_auth login plain; proxy_protocol on; }
}
`);
      });
      after(async () => {
        await mg?.stop();
      });

      /** IMAP greeting, LOGIN, WHOAMI through the relay; returns the auth request. */
      async function imapLogin(c: TestClient): Promise<AuthRequestSeen> {
        assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
        const n = auth.requests.length;
        c.write("a1 LOGIN alice@example.org secret\r\n");
        assert.equal(await c.line(), "a1 OK mock login ok\r\n");
        c.write("a2 WHOAMI\r\n");
        assert.equal(await c.line(), "a2 OK alice@example.org\r\n");
        assert.equal(auth.requests.length, n + 1);
        return auth.requests[n];
      }

      /** The auth request carries the client as HAProxy saw it. */
      function assertSeen(req: AuthRequestSeen, clientPort: number, frontPort: number, clientIp = CLIENT_ADDR, serverIp = "127.0.0.1") {
        assert.equal(req.get("Client-IP"), clientIp);
        assert.equal(req.get("Proxy-Protocol-Addr"), clientIp);
        assert.equal(req.get("Proxy-Protocol-Port"), String(clientPort));
        assert.equal(req.get("Proxy-Protocol-Server-Addr"), serverIp);
        assert.equal(req.get("Proxy-Protocol-Server-Port"), String(frontPort));
      }

      it("send-proxy (v1): Client-IP is the client's address as HAProxy saw it", async () => {
        const c = await openFrom(fe.v1);
        const req = await imapLogin(c);
        assertSeen(req, c.sock.localPort!, fe.v1);
        assert.equal(req.get("Auth-SSL"), undefined);
        c.close();
        await mg.waitLog(new RegExp(`client logged in, client: ${CLIENT_ADDR.replaceAll(".", "\\.")}, server: 127\\.0\\.0\\.1:${p.imap}`));
      });

      it("send-proxy-v2: the same through the binary header", async () => {
        const c = await openFrom(fe.v2);
        const req = await imapLogin(c);
        assertSeen(req, c.sock.localPort!, fe.v2);
        c.close();
      });

      it("send-proxy-v2-ssl: HAProxy ends TLS and sends SSL, AUTHORITY and CRC32C TLVs; the session is plain to mailgate", async () => {
        const { c, localPort } = await tlsFrom(fe.v2ssl);
        const req = await imapLogin(c);
        assertSeen(req, localPort, fe.v2ssl);
        assert.equal(req.get("Auth-SSL"), undefined, "mailgate's own connection is not TLS");
        c.close();
      });

      it("TLS passed through by HAProxy to `listen ... ssl proxy_protocol`: header first, then mailgate's handshake", async () => {
        const { c, localPort, protocol } = await tlsFrom(fe.passthrough);
        const req = await imapLogin(c);
        assertSeen(req, localPort, fe.passthrough);
        assert.equal(req.get("Auth-SSL"), "on");
        assert.equal(req.get("Auth-SSL-Protocol"), protocol);
        c.close();
      });

      it("without set_real_ip_from: Client-IP stays HAProxy's address, Proxy-Protocol-* show the client", async () => {
        const c = await openFrom(fe.untrusted);
        const req = await imapLogin(c);
        assert.equal(req.get("Client-IP"), "127.0.0.1");
        assert.equal(req.get("Proxy-Protocol-Addr"), CLIENT_ADDR);
        assert.equal(req.get("Proxy-Protocol-Port"), String(c.sock.localPort));
        assert.equal(req.get("Proxy-Protocol-Server-Port"), String(fe.untrusted));
        c.close();
      });

      it("SMTP: the real client reaches the auth request, XCLIENT and the PROXY header mailgate sends on", async () => {
        const c = await openFrom(fe.smtp);
        assert.equal(await c.line(), "220 mail.test ESMTP ready\r\n");
        c.write("EHLO client.example.org\r\n");
        await c.until(/^250 /);
        const n = auth.requests.length;
        c.write(`AUTH PLAIN ${Buffer.from("\0alice@example.org\0secret").toString("base64")}\r\n`);
        assert.equal(await c.line(), "235 2.0.0 OK\r\n");
        assertSeen(auth.requests[n], c.sock.localPort!, fe.smtp);
        c.write("XPROXY\r\n");
        assert.equal(await c.line(), `211 PROXY TCP4 ${CLIENT_ADDR} 127.0.0.1 ${c.sock.localPort} ${p.smtp}\r\n`);
        assert.match(smtp.conns.at(-1)!.lines.find((l) => l.startsWith("XCLIENT")) ?? "", new RegExp(`^XCLIENT ADDR=${CLIENT_ADDR.replaceAll(".", "\\.")} `));
        c.write("QUIT\r\n");
        assert.equal(await c.line(), "221 2.0.0 bye\r\n");
        c.close();
      });

      it("IPv6: a client on [::1] arrives as TCP6 (::1)", async (t) => {
        if (!ipv6) return t.skip("no IPv6 loopback on this host");
        const c = await openFrom(fe.v6, "::1", "::1");
        const req = await imapLogin(c);
        assertSeen(req, c.sock.localPort!, fe.v6, "::1", "::1");
        c.close();
      });
    });
  }
});
