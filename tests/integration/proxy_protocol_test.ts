// PROXY protocol in (v1, v2, split headers, garbage), set_real_ip_from, the
// Proxy-Protocol-* auth headers, and PROXY headers sent to backends
// (mail_proxy_protocol.t), through the real mailgate process.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, type AuthRequestSeen } from "../helpers/mock_auth.ts";
import { MockSmtp } from "../helpers/mock_smtp.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { ROOT, startMailgate, targets, type Running } from "../helpers/mailgate.ts";
import { stopAll } from "../helpers/stop_all.ts";
import { freePorts, namedPorts } from "../helpers/ports.ts";

const TLS = join(ROOT, "tests", "fixtures", "tls");
const CA = readFileSync(join(TLS, "ca.pem"));
const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");

/** v2 header: PROXY, STREAM, INET 192.0.2.1:123 -> 192.0.2.2:5678, no TLVs. */
const V2 = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
  0x21, // version 2, command PROXY
  0x11, // INET, STREAM
  0x00, 0x0c, // 12 bytes of addresses
  192, 0, 2, 1, 192, 0, 2, 2, // src, dst
  0x00, 0x7b, 0x16, 0x2e, // ports 123, 5678
]);

for (const target of targets()) {
  describe(`PROXY protocol (${target})`, () => {
    let mg: Running;
    let auth: MockAuth;
    let smtp: MockSmtp;
    let imap: MockImap;
    let port: Record<string, number>;
    before(async () => {
      smtp = await MockSmtp.start();
      imap = await MockImap.start();
      auth = await MockAuth.start((req: AuthRequestSeen) =>
        ok("127.0.0.1", req.get("Auth-Protocol") === "smtp" ? smtp.port : imap.port)
      );
      const names = ["plain", "trusted", "imap", "imapssl", "imapssl2"];
      port = await namedPorts(names);
      mg = await startMailgate(target, `
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  proxy_protocol on;
  proxy_smtp_auth on;
  smtp_auth login plain;
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  server { listen 127.0.0.1:${port.plain} proxy_protocol; protocol smtp; auth_http_header X-Type proxy; }
  server { listen 127.0.0.1:${port.trusted} proxy_protocol; protocol smtp; auth_http_header X-Type realip; set_real_ip_from 127.0.0.1/32; }
  server { listen 127.0.0.1:${port.imap} proxy_protocol; protocol imap; set_real_ip_from 127.0.0.1; proxy_protocol v2; }
  server { listen 127.0.0.1:${port.imapssl} ssl proxy_protocol; protocol imap; set_real_ip_from 127.0.0.1; }
  server { listen 127.0.0.1:${port.imapssl2} ssl proxy_protocol; protocol imap; set_real_ip_from 127.0.0.1; proxy_protocol v2; }
}
`);
    });
    after(() => stopAll(mg, auth, smtp, imap));

    async function smtpLogin(p: number, header: string | Uint8Array): Promise<[TestClient, AuthRequestSeen]> {
      const c = await TestClient.open(p);
      c.write(header);
      assert.equal(await c.line(), "220 localhost ESMTP ready\r\n".replace("localhost", (await hostName())));
      c.write("EHLO example.com\r\n");
      await c.until(/^250 /);
      c.write(`AUTH PLAIN ${b64("\0test@example.com\0secret")}\r\n`);
      assert.equal(await c.line(), "235 2.0.0 OK\r\n");
      return [c, auth.requests.at(-1)!];
    }

    let host: string | null = null;
    async function hostName(): Promise<string> {
      host ??= (await import("node:os")).hostname().toLowerCase();
      return host;
    }

    it("untrusted sender: Client-IP stays the peer, Proxy-Protocol-* headers sent, backend gets the real peer", async () => {
      const [c, req] = await smtpLogin(port.plain, "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n");
      assert.equal(req.get("X-Type"), "proxy");
      assert.equal(req.get("Client-IP"), "127.0.0.1");
      assert.equal(req.get("Proxy-Protocol-Addr"), "192.0.2.1");
      assert.equal(req.get("Proxy-Protocol-Port"), "123");
      assert.equal(req.get("Proxy-Protocol-Server-Addr"), "192.0.2.2");
      assert.equal(req.get("Proxy-Protocol-Server-Port"), "5678");
      c.write("XPROXY\r\n");
      assert.match(await c.line(), new RegExp(`^211 PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 \\d+ ${port.plain}\\r\\n$`));
      const bc = smtp.conns.at(-1)!;
      assert.match(bc.lines[1], /^XCLIENT ADDR=127\.0\.0\.1 NAME=\[UNAVAILABLE\]$/);
      c.close();
    });

    it("trusted sender (set_real_ip_from): the header's source becomes the client everywhere", async () => {
      const [c, req] = await smtpLogin(port.trusted, "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n");
      assert.equal(req.get("X-Type"), "realip");
      assert.equal(req.get("Client-IP"), "192.0.2.1");
      assert.equal(req.get("Proxy-Protocol-Addr"), "192.0.2.1");
      c.write("XPROXY\r\n");
      assert.equal(await c.line(), `211 PROXY TCP4 192.0.2.1 127.0.0.1 123 ${port.trusted}\r\n`);
      assert.match(smtp.conns.at(-1)!.lines[1], /^XCLIENT ADDR=192\.0\.2\.1 /);
      c.close();
    });

    it("a v2 header, split across packets, with the first command in the same packet", async () => {
      const c = await TestClient.open(port.imap);
      c.write(V2.subarray(0, 7));
      await new Promise((r) => setTimeout(r, 50));
      c.write(Buffer.concat([V2.subarray(7), Buffer.from("a1 CAPABILITY\r\n")]));
      assert.equal(await c.line(), "* OK IMAP4 ready\r\n");
      assert.match(await c.line(), /^\* CAPABILITY /);
      assert.equal(await c.line(), "a1 OK completed\r\n");
      c.write("a2 LOGIN u p\r\n");
      assert.equal(await c.line(), "a2 OK mock login ok\r\n");
      assert.equal(auth.requests.at(-1)!.get("Client-IP"), "192.0.2.1");
      // proxy_protocol v2 to the backend: the binary header came first
      const raw = imap.conns.at(-1)!.proxy!;
      assert.deepEqual([...raw.subarray(0, 12)], [...V2.subarray(0, 12)], "v2 signature");
      assert.equal(raw[12], 0x21);
      assert.equal(raw[13], 0x11, "INET STREAM");
      assert.deepEqual([...raw.subarray(16, 20)], [192, 0, 2, 1], "source = the real client");
      c.close();
    });

    it("garbage instead of a header: closed without a byte; a silent client times out", async () => {
      const c = await TestClient.open(port.imap);
      c.write("HELLO THERE\r\n");
      assert.ok(await c.waitClose(3000));
      assert.equal(c.received.length, 0);
      await mg.waitLog(/broken header: "HELLO THERE"/);
    });

    /** A PROXY v1 header from `src`, then TLS, the greeting and a LOGIN; the open TLS socket. */
    async function proxiedTlsLogin(p: number, src: string): Promise<TLSSocket> {
      const raw = await TestClient.open(p);
      raw.write(`PROXY TCP4 ${src} 192.0.2.2 1234 993\r\n`);
      const tls = await new Promise<TLSSocket>((resolve, reject) => {
        const t = tlsConnect({ socket: raw.sock, ca: CA, servername: "localhost" }, () => resolve(t));
        t.once("error", reject);
      });
      const tc = TestClient.fromSocket(tls);
      assert.equal(await tc.line(), "* OK IMAP4 ready\r\n");
      tc.write("a1 LOGIN u p\r\n");
      assert.equal(await tc.line(), "a1 OK mock login ok\r\n");
      return tls;
    }

    it("listen ssl proxy_protocol: header, then the TLS handshake", async () => {
      const tls = await proxiedTlsLogin(port.imapssl, "192.0.2.9");
      assert.equal(auth.requests.at(-1)!.get("Client-IP"), "192.0.2.9");
      tls.destroy();
    });

    it("proxy_protocol v2 from an ssl listener: the SSL TLV with version, cipher, and the proxy's own SIG_ALG / KEY_ALG", async () => {
      const tls = await proxiedTlsLogin(port.imapssl2, "192.0.2.11");
      const hdr = imap.conns.at(-1)!.proxy!;
      assert.equal(hdr[13], 0x11, "INET STREAM");
      const end = 16 + hdr.readUInt16BE(14);
      const tlvs = new Map<number, Buffer>();
      for (let p = 16 + 12; p + 3 <= end; p += 3 + hdr.readUInt16BE(p + 1)) tlvs.set(hdr[p], hdr.subarray(p + 3, p + 3 + hdr.readUInt16BE(p + 1)));
      const ssl = tlvs.get(0x20);
      assert.ok(ssl, "PP2_TYPE_SSL present");
      assert.equal(ssl[0] & 0x01, 0x01, "PP2_CLIENT_SSL");
      assert.equal(ssl.readUInt32BE(1), 1, "verify: no client certificate");
      const subs = new Map<number, string>();
      for (let p = 5; p + 3 <= ssl.length; p += 3 + ssl.readUInt16BE(p + 1)) subs.set(ssl[p], ssl.subarray(p + 3, p + 3 + ssl.readUInt16BE(p + 1)).toString("latin1"));
      assert.equal(subs.get(0x21), tls.getProtocol());
      const cipher = tls.getCipher();
      assert.ok([cipher.name, cipher.standardName].includes(subs.get(0x23)!), `cipher ${subs.get(0x23)}`);
      assert.equal(subs.get(0x24), "RSA-SHA256", "SIG_ALG of server.pem");
      assert.equal(subs.get(0x25), "RSA2048", "KEY_ALG of server.pem");
      assert.ok(tlvs.has(0x03), "CRC32C");
      tls.destroy();
    });

    it("listen ssl proxy_protocol: the ClientHello in the same write as the header", async () => {
      const raw = await TestClient.open(port.imapssl);
      const wire = new PrefixFirstWrite(raw.sock, Buffer.from("PROXY TCP4 192.0.2.10 192.0.2.2 1234 993\r\n"));
      const tls = await new Promise<TLSSocket>((resolve, reject) => {
        const t = tlsConnect({ socket: wire, ca: CA, servername: "localhost" }, () => resolve(t));
        t.once("error", reject);
        setTimeout(() => reject(new Error("TLS handshake did not complete in 5 s")), 5000);
      });
      const tc = TestClient.fromSocket(tls);
      assert.equal(await tc.line(), "* OK IMAP4 ready\r\n");
      tc.write("a1 LOGIN u p\r\n");
      assert.equal(await tc.line(), "a1 OK mock login ok\r\n");
      assert.equal(auth.requests.at(-1)!.get("Client-IP"), "192.0.2.10");
      tls.destroy();
      raw.close();
    });
  });
}

/** A duplex over a TCP socket whose first write carries `prefix` too: header and ClientHello in one segment. */
class PrefixFirstWrite extends Duplex {
  #sock: Socket;
  #prefix: Buffer | null;
  constructor(sock: Socket, prefix: Buffer) {
    super();
    this.#sock = sock;
    this.#prefix = prefix;
    sock.removeAllListeners("data");
    sock.on("data", (d: Buffer) => this.push(d));
    sock.on("end", () => this.push(null));
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void) {
    const data = this.#prefix ? Buffer.concat([this.#prefix, chunk]) : chunk;
    this.#prefix = null;
    this.#sock.write(data, cb);
  }
  override _read() {}
  override _final(cb: () => void) {
    this.#sock.end();
    cb();
  }
}
