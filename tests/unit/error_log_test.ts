import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorLog, formatContext, reopenLogFiles, timestamp } from "../../lib/log/error_log.ts";
import { parseSyslogSpec, syslogHeader } from "../../lib/log/syslog.ts";

const loc = { file: "/x.conf", line: 1 };

describe("error log", () => {
  it("line shape and levels", () => {
    const dir = mkdtempSync(join(tmpdir(), "mg-log-"));
    try {
      const info = join(dir, "info.log");
      const err = join(dir, "err.log");
      const log = new ErrorLog([{ target: info, level: "info", loc }, { target: err, level: "error", loc }], 4242);
      const ctx = { conn: 17, client: "192.0.2.7", server: "0.0.0.0:143", login: "alice", upstream: "198.51.100.1:143" };
      log.info("client logged in", ctx);
      log.debug("not written");
      log.error("auth http server 127.0.0.1:9000 timed out", { conn: 3, client: "192.0.2.8", server: "0.0.0.0:143" });
      const a = readFileSync(info, "utf8").split("\n");
      assert.match(a[0], /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[info\] 4242#0: \*17 client logged in, client: 192\.0\.2\.7, server: 0\.0\.0\.0:143, login: "alice", upstream: 198\.51\.100\.1:143$/);
      assert.match(a[1], /\[error\] 4242#0: \*3 auth http server 127\.0\.0\.1:9000 timed out, client: 192\.0\.2\.8, server: 0\.0\.0\.0:143$/);
      assert.equal(a.length, 3);
      const b = readFileSync(err, "utf8").split("\n");
      assert.equal(b.length, 2, "the error-level log has only the error line");
      assert.equal(log.enabled("debug"), false);
      assert.equal(log.enabled("info"), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("starttls and action suffixes", () => {
    assert.equal(
      formatContext({ conn: 1, client: "1.2.3.4", starttls: true, server: "s:1", action: "in http auth state" }),
      " while in http auth state, client: 1.2.3.4 using starttls, server: s:1",
    );
  });
  it("reopen after rotation writes to the new file", () => {
    const dir = mkdtempSync(join(tmpdir(), "mg-log-"));
    try {
      const f = join(dir, "e.log");
      const log = new ErrorLog([{ target: f, level: "info", loc }], 1);
      log.info("one");
      renameSync(f, f + ".1");
      log.info("two");
      reopenLogFiles();
      log.info("three");
      assert.match(readFileSync(f + ".1", "utf8"), /one\n.*two\n$/s);
      assert.match(readFileSync(f, "utf8"), /three\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("timestamp format", () => {
    assert.match(timestamp(Date.UTC(2024, 4, 1, 12, 0, 0)), /^2024\/05\/0[12] \d\d:00:00$/);
  });
});

describe("syslog target", () => {
  it("parses nginx's syslog: parameters", () => {
    const s = parseSyslogSpec("syslog:server=127.0.0.1:5140,facility=local6,tag=mail_proxy,nohostname");
    assert.deepEqual(s, { host: "127.0.0.1", port: 5140, facility: 22, severity: null, tag: "mail_proxy", nohostname: true });
    assert.equal(parseSyslogSpec("syslog:facility=local7"), "no syslog server specified");
    assert.match(String(parseSyslogSpec("syslog:server=[::1],bogus=1")), /unknown syslog parameter/);
  });
  it("header <PRI>Mmm dd hh:mm:ss host tag: ", () => {
    const s = parseSyslogSpec("syslog:server=127.0.0.1") as Exclude<ReturnType<typeof parseSyslogSpec>, string>;
    const h = syslogHeader(s, 6, new Date(2024, 0, 5, 7, 8, 9));
    assert.match(h, /^<190>Jan  5 07:08:09 [a-z0-9.-]+ mailgate: $/);
  });
});
