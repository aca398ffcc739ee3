import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AuthTable,
  createTableAuthService,
  loadAuthTable,
  lookupUser,
  parseAuthTable,
  rcptAddress,
  subjectCommonName,
} from "../../lib/auth/table.ts";
import {
  apopDigest,
  cramMd5Digest,
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  parseScryptHash,
  verifyScrypt,
} from "../../lib/auth/password_hash.ts";
import type { AuthRequest, AuthResult } from "../../lib/auth/types.ts";
import type { Credentials } from "../../lib/core/machine.ts";
import { bytesToBinary, textBytes } from "../../lib/core/bytes.ts";
import type { TlsInfo } from "../../lib/runtime/types.ts";
import { authRequest } from "../helpers/auth_fixtures.ts";

/** Cheap scrypt parameters so the tests stay fast. */
const FAST = { N: 16, r: 1, p: 1 };

const EXAMPLE = `# user-or-pattern        backend            [password]
alice@example.org        127.0.0.1:1143     PLACEHOLDER
bob@example.org          [::1]:1143         plain:secret
Carol@Example.ORG        10.0.0.3:143
@example.org             127.0.0.2:1143                # any user of the domain
@Other.example           10.0.0.9:143
legacy                   10.0.0.4:110       plain:a#b   # '#' inside a field is kept
*                        127.0.0.1:1144
`;

async function exampleTable(): Promise<AuthTable> {
  const hash = await hashPassword("wonderland", FAST);
  return parseAuthTable(EXAMPLE.replace("PLACEHOLDER", hash), "/etc/mailgate/auth_table");
}

/** An IMAP request, first attempt, from 192.0.2.1; the fixture's defaults otherwise. */
function req(creds: Partial<Credentials>, over: Partial<AuthRequest> = {}): AuthRequest {
  return authRequest({
    attempt: 1,
    clientIp: "192.0.2.1",
    creds: { method: "plain", user: "", pass: "", salt: null, ...creds },
    ...over,
  });
}

const REFUSED_LOGIN: AuthResult = {
  kind: "refused",
  message: "Invalid login or password",
  waitSec: 2,
  errorCode: null,
};
const RELAY_DENIED: AuthResult = {
  kind: "refused",
  message: "Relay access denied",
  waitSec: 0,
  errorCode: "550 5.7.1",
};

function ok(
  addr: string,
  port: number,
  user: string,
  pass: string | null,
  backendName: string,
): AuthResult {
  return { kind: "ok", addr, port, user, pass, backendName };
}

describe("parseAuthTable", () => {
  test("the example file", async () => {
    const t = await exampleTable();
    assert.deepEqual([...t.users.keys()], [
      "alice@example.org",
      "bob@example.org",
      "Carol@example.org",
      "legacy",
    ]);
    assert.deepEqual([...t.domains.keys()], ["example.org", "other.example"]);
    assert.equal(t.any?.backendName, "127.0.0.1:1144");
    const bob = t.users.get("bob@example.org")!;
    assert.deepEqual(
      {
        host: bob.host,
        port: bob.port,
        backendName: bob.backendName,
        password: bob.password,
        line: bob.line,
      },
      {
        host: "::1",
        port: 1143,
        backendName: "[::1]:1143",
        password: { kind: "plain", value: "secret" },
        line: 3,
      },
    );
    assert.equal(t.users.get("alice@example.org")!.password?.kind, "scrypt");
    assert.equal(t.users.get("Carol@example.org")!.password, null);
    assert.deepEqual(t.users.get("legacy")!.password, { kind: "plain", value: "a#b" });
  });

  test("CRLF line ends, tabs, blank and comment-only lines", () => {
    const t = parseAuthTable(
      "# c\r\n\r\n   \r\n\tu@d.example\t1.2.3.4:5\tplain:x\r\n  # indented comment\r\n",
      "f",
    );
    assert.deepEqual(t.users.get("u@d.example")?.password, { kind: "plain", value: "x" });
    assert.equal(t.users.get("u@d.example")?.line, 4);
  });

  test("a plain password is stored as its UTF-8 bytes", () => {
    const t = parseAuthTable("u 1.2.3.4:5 plain:é\n", "f");
    assert.deepEqual(t.users.get("u")?.password, { kind: "plain", value: "\xc3\xa9" });
  });

  const errors: [string, string][] = [
    ["u 1.2.3.4:5 plain:x extra\n", 'too many fields in auth table entry "u" in /t:1'],
    ["# ok\nlonely\n", 'no backend in auth table entry "lonely" in /t:2'],
    [
      "u mail.example.com:143\n",
      'invalid backend "mail.example.com:143" (expected IPv4:port or [IPv6]:port) in /t:1',
    ],
    ["u 1.2.3.4\n", 'invalid backend "1.2.3.4" (expected IPv4:port or [IPv6]:port) in /t:1'],
    ["u 1.2.3.4:0\n", 'invalid backend "1.2.3.4:0" (expected IPv4:port or [IPv6]:port) in /t:1'],
    [
      "u 1.2.3.4:65536\n",
      'invalid backend "1.2.3.4:65536" (expected IPv4:port or [IPv6]:port) in /t:1',
    ],
    ["u ::1:143\n", 'invalid backend "::1:143" (expected IPv4:port or [IPv6]:port) in /t:1'],
    ["u [::1]143\n", 'invalid backend "[::1]143" (expected IPv4:port or [IPv6]:port) in /t:1'],
    ["u [zz]:143\n", 'invalid backend "[zz]:143" (expected IPv4:port or [IPv6]:port) in /t:1'],
    [
      "u 1.2.3.4:5 secret\n",
      'invalid password field (expected "scrypt:N:r:p:salt:hash" or "plain:text") in /t:1',
    ],
    [
      "u 1.2.3.4:5 scrypt:3:1:1:AAAA:AAAAAAAAAAAAAAAAAAAAAA==\n",
      'invalid password field (expected "scrypt:N:r:p:salt:hash" or "plain:text") in /t:1',
    ],
    [
      "a@x 1.2.3.4:5\nb 1.2.3.4:5\na@X 1.2.3.4:6\n",
      'duplicate entry "a@X" (first in line 1) in /t:3',
    ],
    ["@X.org 1.2.3.4:5\n@x.ORG 1.2.3.4:5\n", 'duplicate entry "@x.ORG" (first in line 1) in /t:2'],
    ["* 1.2.3.4:5\n* 1.2.3.4:5\n", 'duplicate entry "*" (first in line 1) in /t:2'],
    ["@ 1.2.3.4:5\n", 'invalid domain pattern "@" in /t:1'],
    ["@a@b 1.2.3.4:5\n", 'invalid domain pattern "@a@b" in /t:1'],
    ["user@ 1.2.3.4:5\n", 'invalid user "user@" in /t:1'],
  ];
  for (const [text, message] of errors) {
    test(`error: ${message}`, () => assert.throws(() => parseAuthTable(text, "/t"), { message }));
  }

  test("the password is never echoed in an error", () => {
    assert.throws(
      () => parseAuthTable("u 1.2.3.4:5 hunter2\n", "/t"),
      (e: Error) => !e.message.includes("hunter2"),
    );
  });
});

describe("lookupUser precedence", () => {
  test("exact, then @domain, then *", async () => {
    const t = await exampleTable();
    const at = (u: string) => lookupUser(t, u)?.pattern ?? null;
    assert.equal(at("alice@example.org"), "alice@example.org");
    assert.equal(at("alice@EXAMPLE.org"), "alice@example.org"); // domain case-insensitive
    assert.equal(at("Alice@example.org"), "@example.org"); // local part exact
    assert.equal(at("Carol@example.org"), "Carol@Example.ORG");
    assert.equal(at("carol@example.org"), "@example.org");
    assert.equal(at("zed@OTHER.example"), "@Other.example");
    assert.equal(at("legacy"), "legacy");
    assert.equal(at("Legacy"), "*");
    assert.equal(at("someone@else.example"), "*");
    const noDefault = parseAuthTable("@d.example 1.2.3.4:5\n", "f");
    assert.equal(lookupUser(noDefault, "x@e.example"), null);
    assert.equal(lookupUser(noDefault, "d.example"), null);
    assert.equal(lookupUser(noDefault, "x@d.example")?.pattern, "@d.example");
  });
});

describe("table AuthService", () => {
  test("plain: scrypt password checked", async () => {
    const s = createTableAuthService(await exampleTable());
    assert.deepEqual(
      await s.authenticate(req({ user: "alice@example.org", pass: "wonderland" })),
      ok("127.0.0.1", 1143, "alice@example.org", "wonderland", "127.0.0.1:1143"),
    );
    assert.deepEqual(
      await s.authenticate(req({ user: "alice@example.org", pass: "Wonderland" })),
      REFUSED_LOGIN,
    );
    assert.deepEqual(
      await s.authenticate(req({ user: "alice@example.org", pass: "" })),
      REFUSED_LOGIN,
    );
  });

  test("plain: plain password checked", async () => {
    const s = createTableAuthService(await exampleTable());
    assert.deepEqual(
      await s.authenticate(req({ user: "bob@example.org", pass: "secret" })),
      ok("::1", 1143, "bob@example.org", "secret", "[::1]:1143"),
    );
    assert.deepEqual(
      await s.authenticate(req({ user: "bob@example.org", pass: "secret2" })),
      REFUSED_LOGIN,
    );
  });

  test("plain: no password field passes the client's password to the backend", async () => {
    const s = createTableAuthService(await exampleTable());
    assert.deepEqual(
      await s.authenticate(req({ user: "dave@example.org", pass: "any\xff" })),
      ok("127.0.0.2", 1143, "dave@example.org", "any\xff", "127.0.0.2:1143"),
    );
  });

  test("no entry: refused with waitSec 2", async () => {
    const s = createTableAuthService(parseAuthTable("@d.example 1.2.3.4:5\n", "f"));
    assert.deepEqual(await s.authenticate(req({ user: "x@e.example", pass: "p" })), REFUSED_LOGIN);
  });

  test("scrypt password in UTF-8 matches the client's UTF-8 bytes", async () => {
    const hash = await hashPassword("pässwörd", FAST);
    const s = createTableAuthService(parseAuthTable(`u 1.2.3.4:5 ${hash}\n`, "f"));
    const utf8Pass = bytesToBinary(textBytes("pässwörd"));
    assert.equal((await s.authenticate(req({ user: "u", pass: utf8Pass }))).kind, "ok");
    assert.equal((await s.authenticate(req({ user: "u", pass: "pässwörd" }))).kind, "refused"); // latin-1 bytes
  });

  test("apop: RFC 1939 example digest against a plain password", async () => {
    const salt = "<1896.697170952@dbc.mtview.ca.us>";
    assert.equal(apopDigest(salt, "tanstaaf"), "c4c9334bac560ecc979e58001b3e22fb");
    const s = createTableAuthService(
      parseAuthTable(
        "mrose 1.2.3.4:110 plain:tanstaaf\nhashed 1.2.3.4:110 " +
          (await hashPassword("tanstaaf", FAST)) + "\nopen 1.2.3.4:110\n",
        "f",
      ),
    );
    const apop = (user: string, pass: string) =>
      req({ method: "apop", user, pass, salt }, { protocol: "pop3" });
    assert.deepEqual(
      await s.authenticate(apop("mrose", "c4c9334bac560ecc979e58001b3e22fb")),
      ok("1.2.3.4", 110, "mrose", "tanstaaf", "1.2.3.4:110"),
    );
    assert.equal(
      (await s.authenticate(apop("mrose", "C4C9334BAC560ECC979E58001B3E22FB"))).kind,
      "ok",
    );
    assert.deepEqual(
      await s.authenticate(apop("mrose", "c4c9334bac560ecc979e58001b3e22fa")),
      REFUSED_LOGIN,
    );
    assert.deepEqual(
      await s.authenticate(apop("hashed", "c4c9334bac560ecc979e58001b3e22fb")),
      REFUSED_LOGIN,
    );
    assert.deepEqual(
      await s.authenticate(apop("open", "c4c9334bac560ecc979e58001b3e22fb")),
      REFUSED_LOGIN,
    );
  });

  test("cram-md5: RFC 2195 example digest", async () => {
    const salt = "<1896.697170952@postoffice.reston.mci.net>";
    assert.equal(cramMd5Digest(salt, "tanstaaftanstaaf"), "b913a602c7eda7a495b4e6e7334d3890");
    const s = createTableAuthService(
      parseAuthTable("tim 1.2.3.4:143 plain:tanstaaftanstaaf\n", "f"),
    );
    const cram = (pass: string, sl: string | null = salt) =>
      req({ method: "cram-md5", user: "tim", pass, salt: sl });
    assert.deepEqual(
      await s.authenticate(cram("b913a602c7eda7a495b4e6e7334d3890")),
      ok("1.2.3.4", 143, "tim", "tanstaaftanstaaf", "1.2.3.4:143"),
    );
    assert.deepEqual(await s.authenticate(cram("b913a602c7eda7a495b4e6e7334d3891")), REFUSED_LOGIN);
    assert.deepEqual(
      await s.authenticate(cram("b913a602c7eda7a495b4e6e7334d3890", null)),
      REFUSED_LOGIN,
    );
    // The APOP digest of the same values is not a CRAM-MD5 answer.
    assert.deepEqual(
      await s.authenticate(cram(apopDigest(salt, "tanstaaftanstaaf"))),
      REFUSED_LOGIN,
    );
  });

  test("external: verified certificate whose CN is the user, and a plain password", async () => {
    const t = parseAuthTable(
      "ext@example.org 1.2.3.4:143 plain:pw\nnopw@example.org 1.2.3.4:143\nhashed@example.org 1.2.3.4:143 " +
        (await hashPassword("pw", FAST)) + "\n",
      "f",
    );
    const s = createTableAuthService(t);
    const tls = (subject: string, verifyError: string | null = null, cert = true): TlsInfo => ({
      protocol: "TLSv1.3",
      cipher: "TLS_AES_128_GCM_SHA256",
      servername: null,
      alpn: null,
      peerCert: cert
        ? { subject, issuer: "CN=CA", serial: "01", fingerprint: "0".repeat(40), pem: "" }
        : null,
      verifyError,
    });
    const ext = (
      user: string,
      t_: TlsInfo | null,
      verifyClient: AuthRequest["verifyClient"] = "on",
    ) => req({ method: "external", user }, { tls: t_, verifyClient });
    assert.deepEqual(
      await s.authenticate(ext("ext@example.org", tls("CN=ext@EXAMPLE.org,O=Example"))),
      ok("1.2.3.4", 143, "ext@example.org", "pw", "1.2.3.4:143"),
    );
    assert.equal(
      (await s.authenticate(ext("ext@example.org", tls("/O=Example/CN=ext@example.org")))).kind,
      "ok",
    );
    assert.deepEqual(
      await s.authenticate(ext("ext@example.org", tls("CN=other@example.org"))),
      REFUSED_LOGIN,
    );
    assert.deepEqual(
      await s.authenticate(
        ext("ext@example.org", tls("CN=ext@example.org", "self-signed certificate")),
      ),
      REFUSED_LOGIN,
    );
    assert.deepEqual(
      await s.authenticate(ext("ext@example.org", tls("CN=ext@example.org", null, false))),
      REFUSED_LOGIN,
    );
    assert.deepEqual(
      await s.authenticate(ext("ext@example.org", tls("CN=ext@example.org"), "off")),
      REFUSED_LOGIN,
    );
    assert.deepEqual(await s.authenticate(ext("ext@example.org", null)), REFUSED_LOGIN);
    assert.deepEqual(
      await s.authenticate(ext("nopw@example.org", tls("CN=nopw@example.org"))),
      REFUSED_LOGIN,
    );
    assert.deepEqual(
      await s.authenticate(ext("hashed@example.org", tls("CN=hashed@example.org"))),
      REFUSED_LOGIN,
    );
  });

  test("none (SMTP): routed by the RCPT recipient", async () => {
    const s = createTableAuthService(await exampleTable());
    const none = (to: string) =>
      req(
        { method: "none", smtp: { helo: "h", esmtp: true, from: "MAIL FROM:<x@y.example>", to } },
        {
          protocol: "smtp",
          clientHost: "[UNAVAILABLE]",
        },
      );
    assert.deepEqual(
      await s.authenticate(none("RCPT TO:<bob@Example.org>")),
      ok("::1", 1143, "", null, "[::1]:1143"),
    );
    assert.deepEqual(
      await s.authenticate(none("rcpt to: <anyone@example.org> NOTIFY=NEVER")),
      ok("127.0.0.2", 1143, "", null, "127.0.0.2:1143"),
    );
    const strict = createTableAuthService(parseAuthTable("@example.org 10.1.1.1:25\n", "f"));
    const noneS = (to: string) =>
      req({ method: "none", smtp: { helo: "", esmtp: false, from: "", to } }, { protocol: "smtp" });
    assert.deepEqual(
      await strict.authenticate(noneS("RCPT TO:<a@example.org>")),
      ok("10.1.1.1", 25, "", null, "10.1.1.1:25"),
    );
    assert.deepEqual(
      await strict.authenticate(noneS("RCPT TO:<a@elsewhere.example>")),
      RELAY_DENIED,
    );
    assert.deepEqual(await strict.authenticate(noneS("RCPT TO:<>")), RELAY_DENIED);
    assert.deepEqual(await strict.authenticate(noneS("")), RELAY_DENIED);
    // A user name or password from an earlier attempt plays no part.
    assert.deepEqual(
      await strict.authenticate(
        req({
          method: "none",
          user: "a@example.org",
          pass: "x",
          smtp: { helo: "", esmtp: false, from: "", to: "RCPT TO:<z@other.example>" },
        }, { protocol: "smtp" }),
      ),
      RELAY_DENIED,
    );
  });
});

describe("table AuthService: OAuth tokens (XOAUTH2, OAUTHBEARER)", () => {
  const TOKEN = "ya29.secret-token";
  const payload = "user=dave@example.org\x01auth=Bearer " + TOKEN + "\x01\x01";
  for (const method of ["xoauth2", "oauthbearer"] as const) {
    test(`${method}: an entry without a password passes user and token to the backend`, async () => {
      const s = createTableAuthService(await exampleTable());
      assert.deepEqual(
        await s.authenticate(req({ method, user: "dave@example.org", pass: TOKEN, saslPayload: payload })),
        ok("127.0.0.2", 1143, "dave@example.org", TOKEN, "127.0.0.2:1143"),
      );
    });

    test(`${method}: an entry with a password refuses, and the log line says why (not the token)`, async () => {
      const s = createTableAuthService(await exampleTable());
      for (const user of ["alice@example.org", "bob@example.org"]) {
        // Even the entry's own password as the "token" is no token: refused.
        const pass = user === "bob@example.org" ? "secret" : TOKEN;
        const r = await s.authenticate(req({ method, user, pass, saslPayload: payload }));
        assert.equal(r.kind, "refused");
        if (r.kind !== "refused") return;
        assert.deepEqual({ ...r, log: undefined }, { ...REFUSED_LOGIN, log: undefined });
        const line = user === "alice@example.org" ? 2 : 3;
        assert.equal(
          r.log,
          `auth table entry "${user}" (/etc/mailgate/auth_table:${line}) has a password, ` +
            "which cannot validate an OAuth token; remove the password to let the backend validate it",
        );
        assert.ok(!r.log!.includes(pass) && !r.log!.includes("Bearer"));
      }
    });
  }

  test("no entry: refused without a log line of its own", async () => {
    const s = createTableAuthService(parseAuthTable("@d.example 1.2.3.4:5\n", "f"));
    assert.deepEqual(
      await s.authenticate(req({ method: "xoauth2", user: "x@e.example", pass: TOKEN })),
      REFUSED_LOGIN,
    );
  });
});

describe("helpers", () => {
  test("rcptAddress", () => {
    assert.equal(
      rcptAddress("RCPT TO:<postmaster@mail.example.com>"),
      "postmaster@mail.example.com",
    );
    assert.equal(rcptAddress("rcpt to: <a@b> NOTIFY=NEVER"), "a@b");
    assert.equal(rcptAddress("RCPT TO:a@b"), "a@b");
    assert.equal(rcptAddress("RCPT TO:<@relay.example,@r2.example:u@d.example>"), "u@d.example");
    assert.equal(rcptAddress("RCPT TO:<postmaster>"), "postmaster");
    assert.equal(rcptAddress("RCPT TO:<>"), null);
    assert.equal(rcptAddress("MAIL FROM:<a@b>"), null);
  });

  test("subjectCommonName", () => {
    assert.equal(subjectCommonName("CN=client.example.com,O=Example"), "client.example.com");
    assert.equal(subjectCommonName("O=Ex\\, Inc.,CN=a\\2Cb"), "a,b");
    assert.equal(subjectCommonName("/C=DE/O=Example/CN=x@y"), "x@y");
    assert.equal(subjectCommonName("O=Example"), null);
    assert.equal(subjectCommonName("CN=outer,OU=x,CN=inner"), "inner");
  });

  test("hashPassword: default parameters, random salt, verifiable", async () => {
    const a = await hashPassword("secret");
    const b = await hashPassword("secret");
    assert.notEqual(a, b);
    assert.match(a, /^scrypt:16384:8:1:[A-Za-z0-9+/]{22}==:[A-Za-z0-9+/]{43}=$/);
    const parsed = parseScryptHash(a)!;
    assert.deepEqual({ N: parsed.N, r: parsed.r, p: parsed.p }, DEFAULT_SCRYPT_PARAMS);
    assert.equal(parsed.salt.length, 16);
    assert.equal(parsed.hash.length, 32);
    assert.equal(await verifyScrypt(parsed, "secret"), true);
    assert.equal(await verifyScrypt(parsed, "secreT"), false);
  });

  test("parseScryptHash rejects bad forms", () => {
    const salt = btoa("0123456789abcdef");
    const hash = btoa(bytesToBinary(new Uint8Array(32)));
    assert.ok(parseScryptHash(`scrypt:16:1:1:${salt}:${hash}`));
    for (
      const bad of [
        `scrypt:15:1:1:${salt}:${hash}`, // N not a power of two
        `scrypt:1:1:1:${salt}:${hash}`,
        `scrypt:16:0:1:${salt}:${hash}`,
        `scrypt:16:1:1:${salt}`,
        `scrypt:16:1:1:${salt}:not*base64`,
        `scrypt:16:1:1::${hash}`,
        `scrypt:16:1:1:${salt}:${btoa("short")}`,
        `scrypt:1048576:8:1:${salt}:${hash}`, // 1 GiB of memory
        `bcrypt:16:1:1:${salt}:${hash}`,
      ]
    ) {
      assert.equal(parseScryptHash(bad), null, bad);
    }
  });
});

describe("loadAuthTable", () => {
  test("reads a file; reports errors with file:line; missing file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-table-"));
    try {
      const good = join(dir, "good");
      writeFileSync(good, "u@d.example 1.2.3.4:143 plain:x\n");
      const t = await loadAuthTable(good);
      assert.equal(t.file, good);
      assert.equal(lookupUser(t, "u@d.example")?.port, 143);
      const bad = join(dir, "bad");
      writeFileSync(bad, "\n\nu@d.example nowhere\n");
      await assert.rejects(loadAuthTable(bad), {
        message: `invalid backend "nowhere" (expected IPv4:port or [IPv6]:port) in ${bad}:3`,
      });
      const missing = join(dir, "missing");
      await assert.rejects(loadAuthTable(missing), {
        message: `open() "${missing}" failed (2: No such file or directory)`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
