import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CliError, parseCli } from "../../lib/cli.ts";

describe("command line (nginx-compatible)", () => {
  it("defaults", () => {
    const o = parseCli([]);
    assert.equal(o.conf, null);
    assert.equal(o.test, false);
    assert.equal(o.signal, null);
  });
  it("values glued or separate, combined flags", () => {
    const o = parseCli(["-tq", "-cfoo.conf", "-p", "/pre", "-e", "stderr", "-g", "pid /x.pid;"]);
    assert.equal(o.test, true);
    assert.equal(o.quiet, true);
    assert.equal(o.conf, "foo.conf");
    assert.equal(o.prefix, "/pre");
    assert.equal(o.errorLog, "stderr");
    assert.equal(o.globals, "pid /x.pid;");
  });
  it("-T implies -t; -? and -h are help; -v, -V", () => {
    assert.equal(parseCli(["-T"]).dump, true);
    assert.equal(parseCli(["-T"]).test, true);
    assert.equal(parseCli(["-?"]).help, true);
    assert.equal(parseCli(["-h"]).help, true);
    assert.equal(parseCli(["-v"]).version, true);
    assert.equal(parseCli(["-V"]).versionFull, true);
  });
  it("-s takes stop|quit|reopen|reload only", () => {
    for (const s of ["stop", "quit", "reopen", "reload"]) assert.equal(parseCli(["-s", s]).signal, s);
    assert.throws(() => parseCli(["-s", "restart"]), CliError);
  });
  it("errors like nginx", () => {
    assert.throws(() => parseCli(["-x"]), { message: 'invalid option: "x"' });
    assert.throws(() => parseCli(["-c"]), { message: 'option "-c" requires file name' });
    assert.throws(() => parseCli(["conf"]), { message: 'invalid option: "conf"' });
  });
  it("--hash-password", () => {
    assert.equal(parseCli(["--hash-password"]).hashPassword, true);
  });
});
