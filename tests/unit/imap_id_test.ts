// IMAP ID before login (mailgate extension, README "IMAP ID and the
// client's address"): the answer, the limits (RFC 2971 as Dovecot applies
// them), malformed lists counted toward max_errors, the fields handed to
// the backend login, and the imap_id directive.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServerConfig } from "../../lib/config/types.ts";
import { loadConfig } from "../../lib/config/load.ts";
import type { Credentials } from "../../lib/core/machine.ts";
import { createImapPreauth } from "../../lib/imap/preauth.ts";
import { forwardFields, idList, retainedFields } from "../../lib/imap/id.ts";
import { drive } from "../helpers/drive_machine.ts";

function machine(o: Partial<ServerConfig> = {}) {
  const config = {
    imapAuth: ["plain"],
    imapCapabilities: ["IMAP4", "IMAP4rev1", "UIDPLUS"],
    imapClientBuffer: 8192,
    imapId: [],
    starttls: "off",
    maxErrors: 5,
    proxyBuffer: 4096,
    proxyPassErrorMessage: false,
    serverName: "localhost",
    ...o,
  } as ServerConfig;
  return createImapPreauth({ config, tls: false, makeSalt: () => "<1.2@localhost>" });
}

const OK_NIL = (tag: string) => `* ID NIL\r\n${tag} OK completed\r\n`;
const BAD = (tag: string) => `${tag} BAD invalid command\r\n`;

/** Runs the lines; returns what the client got and the credentials of the (accepted) login. */
function run(lines: string[], o: Partial<ServerConfig> = {}) {
  let creds: Credentials | null = null;
  const r = drive(machine(o), lines, (c) => {
    creds = c;
    return null;
  });
  return { out: r.out, closed: r.closed, creds: creds as Credentials | null };
}

const pairs = (n: number, value = "v") =>
  Array.from({ length: n }, (_, i) => `"k${i}" "${value}"`).join(" ");

describe("ID before login", () => {
  test("ID NIL and ID (...) are answered * ID NIL, then OK; no auth request", () => {
    const r = run(["a1 ID NIL\r\n", 'a2 ID ("name" "imaplib" "version" NIL)\r\n', "a3 id nil\r\n"]);
    assert.equal(r.out, OK_NIL("a1") + OK_NIL("a2") + OK_NIL("a3"));
    assert.equal(r.creds, null);
    assert.equal(r.closed, false);
  });

  test("whether or not ID is in imap_capabilities", () => {
    assert.equal(run(["a ID NIL\r\n"], { imapCapabilities: ["IMAP4rev1", "ID"] }).out, OK_NIL("a"));
    assert.equal(run(["a ID NIL\r\n"], { imapCapabilities: [] }).out, OK_NIL("a"));
  });

  test("imap_id gives the fields of the answer, quoted and escaped", () => {
    const r = run(["a ID NIL\r\n"], { imapId: [["name", "mailgate"], ["x", 'q"b\\s']] });
    assert.equal(r.out, '* ID ("name" "mailgate" "x" "q\\"b\\\\s")\r\na OK completed\r\n');
  });

  test("strings may be literals, synchronising or not; spacing around parentheses is free", () => {
    const r = run(["a ID ({4}\r\n", 'name {3+}\r\nabc "os" NIL)\r\n', 'b ID ( "k" "v" )\r\n']);
    assert.equal(r.out, "+ OK\r\n" + OK_NIL("a") + OK_NIL("b"));
  });

  test("limits: 30 pairs, 30-byte keys, 1024-byte values are fine", () => {
    const key30 = "k".repeat(30), value1024 = "v".repeat(1024);
    const r = run([`a ID (${pairs(30)})\r\n`, `b ID ("${key30}" "${value1024}")\r\n`, `c ID ()\r\n`]);
    assert.equal(r.out, OK_NIL("a") + OK_NIL("b") + OK_NIL("c"));
  });

  test("the fields of the last ID go to the backend login with the credentials", () => {
    const r = run([
      'a ID ("name" "first")\r\n',
      'b ID ("name" "imaplib" "os" NIL)\r\n',
      "c LOGIN user pass\r\n",
    ]);
    assert.deepEqual(r.creds?.imapId, [["name", "imaplib"], ["os", null]]);
    assert.equal(run(["c LOGIN user pass\r\n"]).creds?.imapId?.length, 0);
  });
});

describe("bad ID arguments: BAD, counted toward max_errors", () => {
  const cases: [string, string][] = [
    ["31 pairs", `ID (${pairs(31)})`],
    ["a 1025-byte value", `ID ("k" "${"v".repeat(1025)}")`],
    ["a 31-byte key", `ID ("${"k".repeat(31)}" "v")`],
    ["no argument", "ID"],
    ["an odd number of strings", 'ID ("k")'],
    ["no parentheses", 'ID "k" "v"'],
    ["unclosed list", 'ID ("k" "v"'],
    ["unopened list", 'ID "k" "v")'],
    ["nested list", 'ID (("k" "v"))'],
    ["an atom key", 'ID (k "v")'],
    ["NIL as a key", 'ID (NIL "v")'],
    ["an atom value other than NIL", 'ID ("k" v)'],
    ["two arguments", 'ID NIL NIL'],
    ["a list after NIL", 'ID NIL ("k" "v")'],
    ["a quoted NIL", 'ID "NIL"'],
  ];
  for (const [name, line] of cases) {
    test(name, () => {
      const r = run([`t ${line}\r\n`, "u ID NIL\r\n"]);
      assert.equal(r.out, BAD("t") + OK_NIL("u"));
      // max_errors 2: the second bad ID closes the connection.
      const two = run([`t ${line}\r\n`, `v ${line}\r\n`, "u ID NIL\r\n"], { maxErrors: 2 });
      assert.equal(two.out, BAD("t") + BAD("v"));
      assert.equal(two.closed, true);
    });
  }
});

describe("what the backend hears (id.ts)", () => {
  test("mailgate's fields in Dovecot's names, x-proxy-ttl one below Dovecot's 5", () => {
    const own = forwardFields({
      clientIp: "203.0.113.7",
      clientPort: 40000,
      localIp: "127.0.0.1",
      localPort: 1143,
      sessionId: "*17",
    });
    assert.equal(
      idList(own),
      '("x-originating-ip" "203.0.113.7" "x-originating-port" "40000" "x-connected-ip" "127.0.0.1" ' +
        '"x-connected-port" "1143" "x-session-id" "*17" "x-proxy-ttl" "4")',
    );
    const unix = forwardFields({ clientIp: null, clientPort: null, localIp: null, localPort: null, sessionId: "*1" });
    assert.equal(idList(unix), '("x-session-id" "*1" "x-proxy-ttl" "4")');
  });

  test("a client's reserved keys (its own address, TTL, session) and unquotable fields are dropped", () => {
    const kept = retainedFields([
      ["name", "imaplib"],
      ["X-Originating-IP", "10.9.9.9"],
      ["x-proxy-ttl", "1"],
      ["x-session-id", "forged"],
      ["x-forward-user", "root"],
      ["bin", "a\r\nb"],
      ["8bit", "\xe9"],
      ["os", null],
    ], 24);
    assert.deepEqual(kept, [["name", "imaplib"], ["os", null]]);
  });

  test("at most `room` client pairs, so the whole ID stays within 30", () => {
    const many = Array.from({ length: 30 }, (_, i) => [`k${i}`, "v"] as const);
    assert.equal(retainedFields(many, 24).length, 24);
  });
});

describe("imap_id directive", () => {
  async function load(body: string): Promise<ServerConfig> {
    const dir = mkdtempSync(join(tmpdir(), "mailgate-imapid-"));
    try {
      writeFileSync(
        join(dir, "nginx.conf"),
        `events {}\nmail {\nauth_http 127.0.0.1:9000;\nserver {\nlisten 127.0.0.1:10143;\nprotocol imap;\n${body}\n}\n}\n`,
      );
      const cfg = await loadConfig({
        file: join(dir, "nginx.conf"),
        prefix: dir,
        lookup: () => Promise.reject(new Error("no DNS")),
        hostname: "host.test",
      });
      return cfg.mail!.servers[0];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("defaults: no fields, proxy_imap_id and proxy_pop3_xclient off", async () => {
    const s = await load("");
    assert.deepEqual(s.imapId, []);
    assert.equal(s.proxyImapId, false);
    assert.equal(s.proxyPop3Xclient, false);
  });

  test("pairs, repeated directives append; the flags", async () => {
    const s = await load('imap_id name mailgate;\nimap_id "vendor" "x y";\nproxy_imap_id on;\nproxy_pop3_xclient on;');
    assert.deepEqual(s.imapId, [["name", "mailgate"], ["vendor", "x y"]]);
    assert.equal(s.proxyImapId, true);
    assert.equal(s.proxyPop3Xclient, true);
  });

  test("odd count, long key or value, too many pairs, CR/LF are errors", async () => {
    const bad: [string, RegExp][] = [
      ["imap_id name;", /invalid number of arguments in "imap_id" directive/],
      [`imap_id ${"k".repeat(31)} v;`, /"imap_id" key "k+" must be 1 to 30 bytes/],
      [`imap_id k ${"v".repeat(1025)};`, /"imap_id" value for "k" is longer than 1024 bytes/],
      [`imap_id ${pairs(16).replaceAll('"', "")};\nimap_id ${pairs(15).replaceAll('"', "")};`, /more than 30 pairs/],
      ['imap_id k "a\\nb";', /invalid value/],
    ];
    for (const [body, re] of bad) await assert.rejects(load(body), re, body);
  });
});

describe("chunking does not matter", () => {
  test("ID lines with literals, split at every byte boundary", () => {
    const script = 'c ID NIL\r\na ID ({4}\r\nname {3+}\r\nabc "os" NIL)\r\nb ID (k v)\r\nd LOGIN u p\r\n';
    const whole = run([script]);
    assert.equal(whole.out, OK_NIL("c") + "+ OK\r\n" + OK_NIL("a") + BAD("b"));
    assert.deepEqual(whole.creds?.imapId, [["name", "abc"], ["os", null]]);
    for (let k = 1; k < script.length; k++) {
      const r = run([script.slice(0, k), script.slice(k)]);
      assert.equal(r.out, whole.out, `split at ${k}`);
      assert.deepEqual(r.creds?.imapId, whole.creds?.imapId, `split at ${k}`);
    }
  });
});
