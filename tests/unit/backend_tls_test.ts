// lib/proxy/backend_tls.ts: proxy_ssl* settings -> TlsClientOptions, and
// (last block) that the options it builds work with this runtime's adapter
// against a real TLS server on 127.0.0.1 (node:tls, in both runtimes).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import type { ProxySslConfig } from "../../lib/config/types.ts";
import { backendTlsMode, backendTlsOptions, makeBackendTls } from "../../lib/proxy/backend_tls.ts";
import type { Runtime } from "../../lib/runtime/types.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const adapterPath = isBun ? "../../lib/runtime/bun/mod.ts" : "../../lib/runtime/deno/mod.ts";
const { runtime } = (await import(adapterPath)) as { runtime: Runtime };

const FIX = new URL("../fixtures/tls/", import.meta.url).pathname;
const rd = (f: string) => fs.readFileSync(FIX + f, "utf8");
/** The fixture key as the loader hands it on (PKCS#8 PEM). */
const pkcs8 = (pem: string) =>
  createPrivateKey({ key: pem }).export({ type: "pkcs8", format: "pem" }) as string;

function cfg(o: Partial<ProxySslConfig> = {}): ProxySslConfig {
  return {
    ssl: false,
    starttls: true,
    verify: false,
    trustedCertificate: null,
    name: null,
    serverName: false,
    certificate: null,
    certificateKey: null,
    ...o,
  };
}

describe("backendTlsMode", () => {
  test("off by default; proxy_ssl -> ssl; proxy_starttls -> starttls", () => {
    assert.equal(backendTlsMode(cfg({ starttls: false })), "off");
    assert.equal(backendTlsMode(cfg({ ssl: true, starttls: false })), "ssl");
    assert.equal(backendTlsMode(cfg()), "starttls");
  });

  test("makeBackendTls is null when off, and reads nothing then", () => {
    assert.equal(
      makeBackendTls(cfg({ starttls: false, trustedCertificate: "/nonexistent" })),
      null,
    );
  });
});

describe("names: verification and SNI", () => {
  const opts = (o: Partial<ProxySslConfig>, addr: string) => makeBackendTls(cfg(o))!(addr);

  test("defaults: no SNI, verify off, the backend address is the name to verify, system CAs", () => {
    assert.deepEqual(opts({}, "mail.example.com"), {
      servername: null,
      verifyName: "mail.example.com",
      verify: false,
    });
  });

  test("proxy_ssl_server_name on sends the name as SNI", () => {
    assert.deepEqual(opts({ serverName: true, verify: true }, "mail.example.com"), {
      servername: "mail.example.com",
      verifyName: "mail.example.com",
      verify: true,
    });
  });

  test("IP literals are never sent as SNI (RFC 6066), but stay the name to verify", () => {
    for (
      const [addr, name] of [
        ["192.0.2.1", "192.0.2.1"],
        ["2001:db8::1", "2001:db8::1"],
        ["[2001:db8::1]", "2001:db8::1"],
        ["::1", "::1"],
      ]
    ) {
      const o = opts({ serverName: true }, addr);
      assert.equal(o.servername, null, addr);
      assert.equal(o.verifyName, name, addr);
    }
  });

  test("proxy_ssl_name replaces the address for both; a :port suffix is dropped", () => {
    assert.deepEqual(opts({ name: "imap.example.net", serverName: true }, "192.0.2.1"), {
      servername: "imap.example.net",
      verifyName: "imap.example.net",
      verify: false,
    });
    const off = opts({ name: "imap.example.net" }, "192.0.2.1");
    assert.equal(off.servername, null);
    assert.equal(off.verifyName, "imap.example.net");
    assert.equal(
      opts({ name: "imap.example.net:993", serverName: true }, "x").servername,
      "imap.example.net",
    );
    const ip = opts({ name: "[2001:db8::2]:993", serverName: true }, "x");
    assert.equal(ip.servername, null);
    assert.equal(ip.verifyName, "2001:db8::2");
  });
});

describe("files", () => {
  test("trusted CAs, client certificate and key are read as PEM", () => {
    const o = makeBackendTls(
      cfg({
        verify: true,
        trustedCertificate: FIX + "ca.pem",
        certificate: FIX + "client.pem",
        certificateKey: FIX + "client.key",
      }),
    )!("localhost");
    assert.equal(o.ca, rd("ca.pem"));
    assert.equal(o.cert, rd("client.pem"));
    assert.equal(o.key, pkcs8(rd("client.key")));
    assert.match(o.key!, /^-----BEGIN PRIVATE KEY-----\n/);
  });

  test("data: values are the PEM text itself", () => {
    const o = backendTlsOptions(
      cfg({
        trustedCertificate: "data:" + rd("ca.pem"),
        certificate: "data:" + rd("client.pem"),
        certificateKey: "data:" + rd("client.key"),
      }),
      "localhost",
    );
    assert.equal(o.ca, rd("ca.pem"));
    assert.equal(o.cert, rd("client.pem"));
    assert.equal(o.key, pkcs8(rd("client.key")));
  });

  test("read once, at makeBackendTls(): later changes to the files are not seen", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailgate-backend-tls-"));
    try {
      const ca = path.join(dir, "ca.pem");
      fs.writeFileSync(ca, rd("ca.pem"));
      const make = makeBackendTls(cfg({ ssl: true, starttls: false, trustedCertificate: ca }))!;
      fs.writeFileSync(ca, rd("other.pem"));
      assert.equal(make("a").ca, rd("ca.pem"));
      fs.rmSync(ca);
      assert.equal(make("b").ca, rd("ca.pem"));
      // backendTlsOptions reads on every call.
      assert.throws(
        () => backendTlsOptions(cfg({ trustedCertificate: ca }), "c"),
        /proxy_ssl_trusted_certificate/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("errors name the directive and the file, at load time", () => {
    assert.throws(
      () => makeBackendTls(cfg({ trustedCertificate: FIX + "missing.pem" })),
      (e: Error) =>
        e.message.startsWith(
          `cannot load "proxy_ssl_trusted_certificate" file "${FIX}missing.pem": `,
        ),
    );
    assert.throws(
      () => makeBackendTls(cfg({ certificate: FIX + "client.pem" })),
      { message: `no "proxy_ssl_certificate_key" is defined for certificate "${FIX}client.pem"` },
    );
    assert.throws(
      () =>
        makeBackendTls(
          cfg({ certificate: FIX + "missing.pem", certificateKey: FIX + "client.key" }),
        ),
      /cannot load "proxy_ssl_certificate" file/,
    );
    // An encrypted key (no pass phrase for backend keys) fails now, not at every login.
    assert.throws(
      () =>
        makeBackendTls(
          cfg({ certificate: FIX + "server.pem", certificateKey: FIX + "server_enc.key" }),
        ),
      /cannot load certificate key/,
    );
  });
});

// ---------------------------------------------------------------- real handshakes

/** Reject if `p` does not settle within `ms` (every wait here is bounded). */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

interface Seen {
  servername: string | null;
  clientCn: string | null;
}

/**
 * A TLS server on 127.0.0.1 with the fixture server certificate (localhost,
 * 127.0.0.1, ::1) that asks for a client certificate signed by the test CA
 * and records what each client presented.
 */
async function withServer(fn: (port: number, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const server = tls.createServer(
    {
      cert: rd("server.pem"),
      key: rd("server.key"),
      ca: rd("ca.pem"),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (s) => {
      s.on("error", () => {});
      const peer = s.getPeerCertificate();
      const sn = (s as unknown as { servername?: string | false }).servername;
      seen.push({
        servername: typeof sn === "string" && sn !== "" ? sn : null,
        clientCn: s.authorized && peer?.subject ? String(peer.subject.CN) : null,
      });
      s.end("* OK hi\r\n");
    },
  );
  server.on("tlsClientError", () => {});
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  try {
    await fn((server.address() as net.AddressInfo).port, seen);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Connects with TLS from byte 0 (proxy_ssl) and returns the server certificate subject. */
async function connect(port: number, o: ReturnType<typeof backendTlsOptions>): Promise<string> {
  const c = await within(
    5000,
    runtime.connect({ kind: "tcp", host: "127.0.0.1", port, tls: o, timeoutMs: 3000 }),
    "connect",
  );
  const subject = c.tls?.peerCert?.subject ?? "";
  // The server greets and closes once it has recorded the handshake.
  let greeting = "";
  const closed = new Promise<void>((r) =>
    c.attach({
      data: (d) => greeting += new TextDecoder().decode(d),
      drain: () => {},
      end: () => {},
      close: () => r(),
    })
  );
  await within(3000, closed, "close");
  assert.equal(greeting, "* OK hi\r\n");
  return subject;
}

describe(`the options work with the ${runtime.name} adapter`, () => {
  test("verify on with the trusted CA, client certificate presented, SNI as configured", async () => {
    await withServer(async (port, seen) => {
      const files = {
        verify: true,
        trustedCertificate: FIX + "ca.pem",
        certificate: FIX + "client.pem",
        certificateKey: FIX + "client.key",
      };
      const sni = makeBackendTls(cfg({ ...files, name: "localhost", serverName: true }))!;
      assert.equal(await connect(port, sni("127.0.0.1")), "CN=localhost");
      // By address, SNI on: an IP literal is not sent; verified against 127.0.0.1.
      const byAddr = makeBackendTls(cfg({ ...files, serverName: true }))!;
      assert.equal(await connect(port, byAddr("127.0.0.1")), "CN=localhost");
      assert.deepEqual(seen, [
        { servername: "localhost", clientCn: "client.example.com" },
        // servername null: Deno sends no SNI. Bun's adapter cannot leave SNI
        // out and sends the connected host (see clientTlsOptions in bun.ts).
        { servername: isBun ? "127.0.0.1" : null, clientCn: "client.example.com" },
      ]);
    });
  });

  test("verify on fails against a CA that did not sign the backend's certificate; off does not", async () => {
    await withServer(async (port) => {
      const wrongCa = {
        trustedCertificate: FIX + "selfsigned.pem",
        name: "localhost",
        serverName: true,
      };
      const strict = makeBackendTls(cfg({ ...wrongCa, verify: true }))!("127.0.0.1");
      await assert.rejects(
        within(
          5000,
          runtime.connect({ kind: "tcp", host: "127.0.0.1", port, tls: strict, timeoutMs: 3000 }),
          "connect",
        ),
      );
      const lax = makeBackendTls(cfg({ ...wrongCa, verify: false }))!("127.0.0.1");
      assert.equal(await connect(port, lax), "CN=localhost");
    });
  });
});
