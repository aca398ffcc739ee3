// Server-side TLS settings: what each runtime applies (capabilities.ts), the
// start-up warnings for the rest (config/runtime_warnings.ts, with FILE:LINE), the
// options built from ssl_* directives (proxy/tls_options.ts, runtime/bun/tls_options.ts,
// runtime/node_tls/node_tls.ts), and our own client-chain checks (depth, CRLs,
// unadvertised CAs) in tls/tls_verify.ts. Pure: no sockets.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config/load.ts";
import type { Config } from "../../lib/config/types.ts";
import { runtimeWarnings, tlsDirectiveProblem, tlsWarnings } from "../../lib/config/runtime_warnings.ts";
import { formatConfigWarning } from "../../lib/config/errors.ts";
import { RUNTIME_SUPPORT, type RuntimeName } from "../../lib/runtime/capabilities.ts";
import { loadRuntime } from "../../lib/runtime/select.ts";
import { serverTlsOptions } from "../../lib/proxy/tls_options.ts";
import { bunContextOptions } from "../../lib/runtime/bun/tls_options.ts";
import { clientVerifyPolicy } from "../../lib/runtime/node_tls/node_tls.ts";
import {
  checkVerifiedLeaf,
  pemToDers,
  verifyChain,
  VERIFY_ERRORS_NO_CA,
  verifyLeaf,
} from "../../lib/tls/tls_verify.ts";
import { parseCrl, pemToCrls } from "../../lib/tls/der_crl.ts";
import { parseCertFields } from "../../lib/tls/der_cert.ts";

const TLS = new URL("../fixtures/tls/", import.meta.url).pathname;
const SET = new URL("../fixtures/tls_settings/", import.meta.url).pathname;
const rd = (dir: string, f: string) => readFileSync(dir + f, "utf8");
const der = (dir: string, f: string) => pemToDers(rd(dir, f))[0];
const CA = rd(TLS, "ca.pem");
const CA2 = rd(SET, "ca2.pem");
const RUNTIMES: RuntimeName[] = ["deno", "bun"];

/** Loads `text` as the configuration file (extra files beside it); returns config and path. */
async function load(
  text: string,
  extra: Record<string, string> = {},
): Promise<{ config: Config; file: string }> {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-tls-settings-"));
  try {
    const file = join(dir, "mailgate.conf");
    writeFileSync(file, text);
    for (const [n, t] of Object.entries(extra)) writeFileSync(join(dir, n), t);
    return { config: await loadConfig({ file, prefix: dir }), file };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CERTS = `ssl_certificate ${TLS}server.pem; ssl_certificate_key ${TLS}server.key;`;

describe("ssl_* directives the runtime cannot apply", () => {
  // [directive, args, warned on deno?, warned on bun?]
  const rows: [string, string[], boolean, boolean][] = [
    ["ssl_ciphers", ["HIGH:!aNULL"], true, false],
    ["ssl_prefer_server_ciphers", ["on"], true, false],
    ["ssl_prefer_server_ciphers", ["off"], false, false],
    ["ssl_ecdh_curve", ["prime256v1:secp384r1"], true, false],
    ["ssl_ecdh_curve", ["auto"], false, false],
    ["ssl_dhparam", ["/x/dh.pem"], true, true],
    ["ssl_conf_command", ["Options", "-SessionTicket"], true, true],
    ["ssl_certificate_compression", ["on"], true, true],
    ["ssl_certificate_compression", ["off"], false, false],
    ["ssl_session_timeout", ["10m"], true, false],
    ["ssl_session_tickets", ["off"], true, false],
    ["ssl_session_tickets", ["on"], false, false],
    ["ssl_session_ticket_key", ["/x/t.key"], true, true],
    ["ssl_session_cache", ["none"], false, false],
    ["ssl_session_cache", ["off"], true, false],
    ["ssl_session_cache", ["builtin"], true, true],
    ["ssl_session_cache", ["builtin:1000"], true, true],
    ["ssl_session_cache", ["shared:SSL:10m"], true, true],
    ["ssl_protocols", ["TLSv1.2", "TLSv1.3"], false, false],
    ["ssl_protocols", ["TLSv1", "TLSv1.2"], true, false],
    ["ssl_protocols", ["SSLv3", "TLSv1.2"], true, true],
    ["ssl_verify_depth", ["2"], false, false],
    ["ssl_crl", ["/x/crl.pem"], false, false],
    ["ssl_client_certificate", ["/x/ca.pem"], false, false],
    ["ssl_trusted_certificate", ["/x/ca.pem"], false, false],
  ];
  for (const [name, args, onDeno, onBun] of rows) {
    test(`${name} ${args.join(" ")}: deno ${onDeno ? "warns" : "applies"}, bun ${onBun ? "warns" : "applies"}`, () => {
      for (const [rt, want] of [["deno", onDeno], ["bun", onBun]] as const) {
        const p = tlsDirectiveProblem(name, args, rt);
        assert.equal(p !== null, want, `${rt}: ${p}`);
        if (p !== null) assert.match(p, new RegExp(`not supported by the ${rt} runtime`));
      }
    });
  }

  test("the message names the directive and the runtime, and says what happens instead", () => {
    assert.equal(
      tlsDirectiveProblem("ssl_session_tickets", ["off"], "deno"),
      `"ssl_session_tickets off" is not supported by the deno runtime, ignored: its TLS layer always issues session tickets`,
    );
    assert.equal(
      tlsDirectiveProblem("ssl_session_cache", ["shared:SSL:10m"], "bun"),
      `"ssl_session_cache shared:SSL:10m" is not supported by the bun runtime: it has no server-side session cache ` +
        `(nor one shared between processes); sessions resume with session tickets, which stay on even with ` +
        `"ssl_session_tickets off"`,
    );
    assert.equal(
      tlsDirectiveProblem("ssl_protocols", ["TLSv1", "TLSv1.1", "TLSv1.2"], "deno"),
      `"TLSv1 TLSv1.1" in "ssl_protocols" is not supported by the deno runtime, ignored`,
    );
  });

  test("warnings carry the FILE:LINE of each directive, in files and includes, one per directive", async () => {
    const { config, file } = await load(
      `events {}
mail {
  auth_http 127.0.0.1:9000;
  ${CERTS}
  ssl_session_tickets off;
  ssl_ciphers HIGH; ssl_prefer_server_ciphers on;
  include more.conf;
  server {
    listen 127.0.0.1:1143 ssl;
    protocol imap;
    ssl_session_cache builtin:1000;
  }
  server { listen 127.0.0.1:1144 ssl; protocol imap; ssl_session_cache none; }
}
`,
      { "more.conf": "\n\nssl_dhparam " + `${TLS}ca.pem` + ";\n" },
    );
    const inc = join(file, "..", "more.conf");
    const text = (rt: RuntimeName) => tlsWarnings(config, rt).map(formatConfigWarning);
    assert.deepEqual(text("deno"), [
      `"ssl_session_tickets off" is not supported by the deno runtime, ignored: its TLS layer always issues session tickets in ${file}:5`,
      `"ssl_ciphers" is not supported by the deno runtime, ignored: its TLS layer has a fixed set of cipher suites in ${file}:6`,
      `"ssl_prefer_server_ciphers on" is not supported by the deno runtime, ignored: the client's cipher order is used in ${file}:6`,
      `"ssl_dhparam" is not supported by the deno runtime, ignored: its TLS layer has no DHE cipher suites in ${inc}:3`,
      tlsDirectiveProblem("ssl_session_cache", ["builtin:1000"], "deno") + ` in ${file}:11`,
    ]);
    assert.deepEqual(text("bun"), [
      `"ssl_dhparam" is not supported by the bun runtime, ignored: its TLS layer has no DHE cipher suites in ${inc}:3`,
      tlsDirectiveProblem("ssl_session_cache", ["builtin:1000"], "bun") + ` in ${file}:11`,
    ]);
  });

  test("runtimeWarnings reads the running runtime's support and no longer reports TLS session settings as not built", async () => {
    const runtime = await loadRuntime();
    const { config } = await load(`events {}
mail {
  auth_http 127.0.0.1:9000; ${CERTS}
  ssl_session_cache builtin; ssl_session_timeout 1m; ssl_crl ${TLS}ca.pem; ssl_verify_depth 2;
  ssl_client_certificate ${TLS}ca.pem; ssl_trusted_certificate ${SET}ca2.pem;
  server { listen 127.0.0.1:1143 ssl; protocol imap; }
}
`);
    const all = runtimeWarnings(config, runtime).map((w) => w.message);
    assert.deepEqual(all, runtimeWarnings(config, runtime.name).map((w) => w.message));
    assert.ok(!all.some((m) => /not implemented yet/.test(m)), all.join("\n"));
    assert.equal(all.filter((m) => m.startsWith(`"ssl_session_cache builtin"`)).length, 1);
    assert.equal(
      all.some((m) => m.startsWith(`"ssl_session_timeout"`)),
      runtime.name === "deno",
    );
  });
});

describe("TLS options built from the ssl_* settings", () => {
  async function serverOf(body: string) {
    const { config } = await load(`events {}
mail {
  auth_http 127.0.0.1:9000; ${CERTS}
  server { listen 127.0.0.1:1143 ssl; protocol imap; ${body} }
}
`);
    return config.mail!.servers[0];
  }

  test("client CAs: ssl_client_certificate is advertised, ssl_trusted_certificate only trusted; CRL and depth passed", async () => {
    const s = await serverOf(
      `ssl_verify_client optional; ssl_client_certificate ${TLS}ca.pem; ssl_trusted_certificate ${SET}ca2.pem;` +
        ` ssl_crl ${SET}ca.crl; ssl_verify_depth 3;`,
    );
    const o = serverTlsOptions(s, "imap")!;
    assert.equal(o.requestCert, true);
    assert.equal(o.ca, CA);
    assert.equal(o.trustedCa, CA2);
    assert.equal(o.crl, rd(SET, "ca.crl"));
    assert.equal(o.verifyDepth, 3);
    const policy = clientVerifyPolicy(o);
    assert.equal(policy.trusted, CA + "\n" + CA2);
    assert.equal(policy.depth, 3);
    // Bun gets only the advertised CA: BoringSSL sends the names of what it verifies with.
    assert.equal(bunContextOptions(o).ca, CA);
  });

  test("defaults: depth 1, tickets on, cache none, timeout 300 s; no client CAs without ssl_verify_client", async () => {
    const o = serverTlsOptions(await serverOf(""), "imap")!;
    assert.equal(o.sessionTickets, true);
    assert.equal(o.sessionCache, "none");
    assert.equal(o.sessionTimeout, 300);
    assert.equal(o.requestCert, undefined);
    assert.equal(o.ca, undefined);
    assert.equal(o.verifyDepth, undefined);
    const v = serverTlsOptions(
      await serverOf(`ssl_verify_client on; ssl_client_certificate ${TLS}ca.pem;`),
      "imap",
    )!;
    assert.equal(v.verifyDepth, 1);
  });

  test("ssl_session_ticket_key: a 48-byte key becomes ticketKeys; an 80-byte key has no node:tls form", async () => {
    const k48 = serverTlsOptions(
      await serverOf(`ssl_session_ticket_key ${SET}ticket48.key;`),
      "imap",
    )!;
    assert.deepEqual(k48.ticketKeys, new Uint8Array(readFileSync(SET + "ticket48.key")));
    const k80 = serverTlsOptions(
      await serverOf(`ssl_session_ticket_key ${SET}ticket80.key;`),
      "imap",
    )!;
    assert.equal(k80.ticketKeys, undefined);
  });

  test("Bun context: tickets go off only when no session cache is asked for", async () => {
    const ctx = async (body: string) =>
      bunContextOptions(serverTlsOptions(await serverOf(body), "imap")!);
    assert.equal((await ctx("ssl_session_tickets off;")).secureOptions, 0x4000);
    assert.equal(
      (await ctx("ssl_session_tickets off; ssl_session_cache off;")).secureOptions,
      0x4000,
    );
    assert.equal(
      (await ctx("ssl_session_tickets off; ssl_session_cache builtin;")).secureOptions,
      undefined,
    );
    assert.equal(
      (await ctx("ssl_session_tickets off; ssl_session_cache shared:S:1m;")).secureOptions,
      undefined,
    );
    assert.equal((await ctx("")).secureOptions, undefined);
  });

  test("Bun context: ciphers, server preference, curves, versions and session timeout are passed", async () => {
    const o = bunContextOptions(
      serverTlsOptions(
        await serverOf(
          "ssl_ciphers ECDHE-RSA-AES256-GCM-SHA384; ssl_prefer_server_ciphers on; ssl_ecdh_curve secp384r1;" +
            " ssl_protocols TLSv1.2; ssl_session_timeout 2m;",
        ),
        "imap",
      )!,
    ) as Record<string, unknown>;
    assert.equal(o.ciphers, "ECDHE-RSA-AES256-GCM-SHA384");
    assert.equal(o.honorCipherOrder, true);
    assert.equal(o.ecdhCurve, "secp384r1");
    assert.equal(o.minVersion, "TLSv1.2");
    assert.equal(o.maxVersion, "TLSv1.2");
    assert.equal(o.sessionTimeout, 120);
    assert.equal(o.rejectUnauthorized, false);
  });

  test("capabilities agree with what the adapters pass", () => {
    assert.equal(RUNTIME_SUPPORT.bun.tls.ciphers, true);
    assert.equal(RUNTIME_SUPPORT.deno.tls.ciphers, false);
    assert.equal(RUNTIME_SUPPORT.deno.tls.resumptionOff, false);
    assert.equal(RUNTIME_SUPPORT.bun.tls.resumptionOff, true);
    for (const rt of RUNTIMES) assert.equal(RUNTIME_SUPPORT[rt].tls.sessionCache, false);
  });
});

describe("client certificate chains: depth, CRLs, unadvertised CAs", () => {
  const leaf3 = der(SET, "client3.pem");
  const inter = der(SET, "inter.pem");
  const client = der(TLS, "client.pem");
  const revoked = der(SET, "revoked.pem");

  test("ssl_verify_depth counts intermediates (OpenSSL: leaf and anchor do not count)", () => {
    assert.equal(
      verifyChain(leaf3, [inter], { trusted: CA, depth: 0 }),
      "certificate chain too long",
    );
    assert.equal(verifyChain(leaf3, [inter], { trusted: CA, depth: 1 }), null);
    assert.equal(verifyChain(client, [], { trusted: CA, depth: 0 }), null);
    // An intermediate from the trusted file counts as well.
    const both = CA + rd(SET, "inter.pem");
    assert.equal(verifyChain(leaf3, [], { trusted: both, depth: 0 }), "certificate chain too long");
    assert.equal(verifyChain(leaf3, [], { trusted: both, depth: 1 }), null);
    // Without the intermediate: OpenSSL's answer for a lone leaf of an unknown issuer.
    assert.equal(
      verifyChain(leaf3, [], { trusted: CA, depth: 5 }),
      "unable to verify the first certificate",
    );
  });

  test("an untrusted chain is still checked for dates: expired or not yet valid wins over the issuer error (OpenSSL's last error)", () => {
    const self = der(TLS, "selfsigned.pem");
    const leaf2 = der(SET, "client2.pem");
    const later = new Date("2300-01-01T00:00:00Z");
    const earlier = new Date("1990-01-01T00:00:00Z");
    assert.equal(verifyChain(self, [], { trusted: CA }), "self-signed certificate");
    assert.equal(verifyChain(self, [], { trusted: CA }, later), "certificate has expired");
    assert.equal(verifyChain(self, [], { trusted: CA }, earlier), "certificate is not yet valid");
    assert.equal(verifyChain(leaf2, [], { trusted: CA }, later), "certificate has expired");
    assert.equal(verifyChain(leaf3, [inter], { trusted: CA2 }, later), "certificate has expired");
    // optional_no_ca tolerates the issuer errors, never these.
    for (const e of ["certificate has expired", "certificate is not yet valid"]) {
      assert.equal(VERIFY_ERRORS_NO_CA.has(e), false, e);
    }
  });

  test("a CA from ssl_trusted_certificate verifies; without it the leaf is unknown", () => {
    const leaf2 = der(SET, "client2.pem");
    assert.equal(verifyChain(leaf2, [], { trusted: CA + "\n" + CA2 }), null);
    assert.equal(verifyChain(leaf2, [], { trusted: CA }), "unable to verify the first certificate");
  });

  test("an intermediate without CA:TRUE cannot issue (OpenSSL: invalid CA certificate)", () => {
    const notca = der(SET, "notca.pem");
    assert.equal(
      verifyChain(notca, [der(SET, "client2.pem")], { trusted: CA2, depth: 5 }),
      "invalid CA certificate",
    );
    assert.equal(verifyChain(leaf3, [inter], { trusted: CA, depth: 5 }), null);
  });

  test("ssl_crl: revoked, CRL missing for an issuer, forged CRL, CRL validity window", () => {
    const crl = rd(SET, "ca.crl");
    const both = crl + rd(SET, "inter.crl");
    assert.equal(verifyChain(revoked, [], { trusted: CA, crl }), "certificate revoked");
    assert.equal(verifyChain(client, [], { trusted: CA, crl }), null);
    assert.equal(
      verifyChain(leaf3, [inter], { trusted: CA, crl }),
      "unable to get certificate CRL",
    );
    assert.equal(verifyChain(leaf3, [inter], { trusted: CA, crl: both }), null);
    assert.equal(
      verifyChain(client, [], { trusted: CA, crl: rd(SET, "forged.crl") }),
      "CRL signature failure",
    );
    assert.equal(
      verifyChain(client, [], { trusted: CA, crl }, new Date("2000-01-01T00:00:00Z")),
      "CRL is not yet valid",
    );
    assert.equal(
      verifyChain(client, [], { trusted: CA, crl }, new Date("2300-01-01T00:00:00Z")),
      "CRL has expired",
    );
    // Without a CRL nothing is checked.
    assert.equal(verifyChain(revoked, [], { trusted: CA }), null);
  });

  test("the CRL parser reads issuer, dates and revoked serials", () => {
    const crls = pemToCrls(rd(SET, "ca.crl") + rd(SET, "inter.crl"));
    assert.equal(crls.length, 2);
    const c = crls[0];
    assert.equal(c.issuerDer, parseCertFields(client).issuerDer);
    assert.deepEqual([...c.revoked], [parseCertFields(revoked).serial]);
    assert.ok(c.nextUpdate !== null && c.nextUpdate > c.thisUpdate);
    assert.equal(c.digest, "sha256");
    assert.equal(crls[1].revoked.size, 0);
    assert.throws(() => parseCrl(new Uint8Array([0x30, 0x01, 0x00])));
  });

  test("after a stack's own verification (Bun): depth and CRL are completed, hidden intermediates count", () => {
    // Only the leaf is visible; its issuer (the intermediate) is not in the trusted file.
    assert.equal(checkVerifiedLeaf(leaf3, { trusted: CA, depth: 0 }), "certificate chain too long");
    assert.equal(checkVerifiedLeaf(leaf3, { trusted: CA, depth: 1 }), null);
    assert.equal(
      checkVerifiedLeaf(revoked, { trusted: CA, depth: 1, crl: rd(SET, "ca.crl") }),
      "certificate revoked",
    );
    assert.equal(
      checkVerifiedLeaf(leaf3, { trusted: CA, depth: 1, crl: rd(SET, "ca.crl") }),
      "unable to get certificate CRL",
    );
    assert.equal(
      checkVerifiedLeaf(leaf3, { trusted: CA, depth: 1, crl: rd(SET, "inter.crl") }),
      null,
    );
    assert.equal(checkVerifiedLeaf(client, { trusted: CA }), null);
  });

  test("verifyLeaf keeps its meaning (no depth limit, no CRL)", () => {
    assert.equal(verifyLeaf(client, CA), null);
    assert.equal(verifyLeaf(der(TLS, "selfsigned.pem"), CA), "self-signed certificate");
  });
});
