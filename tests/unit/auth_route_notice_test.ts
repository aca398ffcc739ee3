// Where logins are routed (lib/auth/route_notice.ts): the start-up notice
// text, and the once-only hint for a backend that refuses connections.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHttpAuthService } from "../../lib/auth/http_client.ts";
import {
  authHttpRoute,
  RefusedBackendHint,
  refusedHintFor,
  routeNotice,
  tableRoute,
} from "../../lib/auth/route_notice.ts";
import { createTableAuthService, parseAuthTable } from "../../lib/auth/table.ts";
import { tcpAuthUrl } from "../helpers/auth_fixtures.ts";

const F = "/etc/mailgate/users.table";
const table = (text: string) => parseAuthTable(text, F);

describe("tableRoute", () => {
  test("the shipped table: one backend", () => {
    assert.deepEqual(tableRoute(table("# comment\n*      127.0.0.1:143\n")), {
      source: `auth table ${F}`,
      text: `auth table ${F} (backend 127.0.0.1:143)`,
    });
  });
  test("distinct backends in file order, the first four by name", () => {
    const t = table(
      [
        "* 10.0.0.9:143", // line 1, but `*` is kept apart from users and domains
        "@b.example 10.0.0.2:143",
        "a@x 10.0.0.1:143",
        "b@x 10.0.0.1:143",
        "c@x [::1]:143",
        "d@x 10.0.0.3:993",
        "e@x 10.0.0.4:143",
      ].join("\n"),
    );
    assert.equal(
      tableRoute(t).text,
      `auth table ${F} (backends 10.0.0.9:143, 10.0.0.2:143, 10.0.0.1:143, [::1]:143 and 2 more)`,
    );
  });
  test("an empty table says every login is refused", () => {
    assert.equal(tableRoute(table("# nothing\n")).text, `auth table ${F} (no entries: every login is refused)`);
  });
});

test("routeNotice: protocol, every address, route", () => {
  assert.equal(
    routeNotice("imap", ["127.0.0.1:1143", "[::1]:1143"], authHttpRoute("127.0.0.1:9000/auth").text),
    "routing imap on 127.0.0.1:1143 [::1]:1143 by auth_http 127.0.0.1:9000/auth",
  );
});

describe("the refused-backend hint", () => {
  test("text, once per service", () => {
    const h = new RefusedBackendHint(authHttpRoute("http://a/auth"));
    assert.equal(
      h.next("192.0.2.1:143"),
      "backend 192.0.2.1:143 refused the connection: no mail server listens there, so logins " +
        "routed to it fail with an internal server error; start one there, or change the route " +
        "(auth_http http://a/auth)",
    );
    assert.equal(h.next("192.0.2.2:143"), null);
  });
  test("only for ECONNREFUSED, from node:net/Bun (code) or Deno (name) errors", () => {
    const svc = createTableAuthService(table("* 127.0.0.1:143\n"));
    assert.equal(svc.route, `auth table ${F} (backend 127.0.0.1:143)`);
    assert.equal(refusedHintFor(svc, "127.0.0.1:143", Object.assign(new Error("x"), { code: "ETIMEDOUT" })), null);
    assert.equal(refusedHintFor(svc, "127.0.0.1:143", new Error("no code")), null);
    const deno = Object.assign(new Error("Connection refused (os error 111)"), { name: "ConnectionRefused" });
    assert.match(refusedHintFor(svc, "127.0.0.1:143", deno) ?? "", /^backend 127\.0\.0\.1:143 refused/);
    const node = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    assert.equal(refusedHintFor(svc, "127.0.0.1:143", node), null, "said once already");
  });
  test("the auth_http service names its URL", () => {
    const svc = createHttpAuthService({ url: tcpAuthUrl(9), headers: [], timeoutMs: 1000, connect: () => Promise.reject(new Error("unused")) });
    assert.equal(svc.route, "auth_http http://127.0.0.1:9/auth");
    assert.match(svc.explainRefused?.("10.0.0.1:143") ?? "", /\(auth_http http:\/\/127\.0\.0\.1:9\/auth\)$/);
  });
});
