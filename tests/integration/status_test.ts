// status_listen end to end (issue 17): /metrics (text, checked by promtool;
// OpenMetrics), /status.json, bad requests, on each target with
// worker_processes 1 and 2. With 2 the master sums its workers' reports;
// a reload keeps every counter. One mailgate per target and worker count.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, refuse } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts } from "../helpers/ports.ts";
import { metricSum, pollUntil } from "../helpers/metrics_text.ts";

const hasPromtool = spawnSync("promtool", ["--version"]).status === 0;

async function login(port: number, user: string): Promise<string> {
  const c = await TestClient.open(port);
  try {
    await c.line();
    c.write(`a1 LOGIN ${user} secret\r\n`);
    const reply = await c.line();
    if (reply.startsWith("a1 OK")) {
      c.write("a2 LOGOUT\r\n");
      await c.waitClose(5000);
    } else {
      await c.waitClose(5000);
    }
    return reply;
  } finally {
    c.close();
  }
}

/** One raw request on a fresh connection; the whole answer up to the close. */
async function raw(port: number, text: string): Promise<string> {
  const c = await TestClient.open(port);
  try {
    c.write(text);
    await c.waitClose(5000);
    return c.received.toString("latin1");
  } finally {
    c.close();
  }
}

for (const target of targets()) {
  for (const workers of [1, 2]) {
    describe(`status_listen (${target}, worker_processes ${workers})`, () => {
      let auth: MockAuth;
      let backend: MockImap;
      let mg: Running;
      let port: number;
      let sport: number;
      const metrics = async (accept?: string) => {
        const r = await fetch(`http://127.0.0.1:${sport}/metrics`, {
          headers: accept ? { accept } : {},
        });
        assert.equal(r.status, 200);
        return { type: r.headers.get("content-type") ?? "", text: await r.text() };
      };
      const text = async () => (await metrics()).text;

      before(async () => {
        backend = await MockImap.start();
        auth = await MockAuth.start((req) =>
          req.get("Auth-User") === "bad"
            ? refuse("Invalid login or password")
            : ok("127.0.0.1", backend.port)
        );
        [port, sport] = await freePorts(2);
        const conf = `
worker_processes ${workers};
error_log stderr notice;
events { }
mail {
  status_listen 127.0.0.1:${sport};
  auth_http 127.0.0.1:${auth.port}/auth;
  server { listen 127.0.0.1:${port}; protocol imap; }
}
`;
        const ready = workers === 1
          ? /started, listening on/
          : /master started with 2 worker processes/;
        mg = await startMailgate(target, conf, {}, ready);
      });
      after(async () => {
        await mg?.stop("SIGKILL");
        await auth?.stop();
        await backend?.stop();
      });

      it("counts logins and sessions; the numbers survive a reload", async () => {
        for (let i = 0; i < 4; i++) assert.match(await login(port, "good"), /^a1 OK/);
        for (let i = 0; i < 2; i++) assert.match(await login(port, "bad"), /^a1 NO/);
        const t = await pollUntil(
          text,
          (t) =>
            metricSum(t, "mailgate_sessions_ended_total") === 6 &&
            metricSum(t, "mailgate_logins_total", { outcome: "ok" }) === 4,
          15000,
          "6 sessions counted",
        );
        const imap = { protocol: "imap", listener: `127.0.0.1:${port}` };
        assert.equal(metricSum(t, "mailgate_connections_accepted_total", imap), 6);
        assert.equal(metricSum(t, "mailgate_connections_open", imap), 0);
        assert.equal(
          metricSum(t, "mailgate_logins_total", {
            protocol: "imap",
            mechanism: "plain",
            outcome: "refused",
          }),
          2,
        );
        assert.equal(metricSum(t, "mailgate_sessions_ended_total", { reason: "proxied" }), 4);
        assert.equal(
          metricSum(t, "mailgate_sessions_ended_total", { reason: "refused" }) +
            metricSum(t, "mailgate_sessions_ended_total", { reason: "closed" }),
          2,
        );
        assert.equal(metricSum(t, "mailgate_auth_duration_seconds_count", { protocol: "imap" }), 6);
        assert.equal(
          metricSum(t, "mailgate_upstream_logins_total", { upstream: `127.0.0.1:${backend.port}` }),
          4,
        );
        assert.ok(metricSum(t, "mailgate_relayed_bytes_total", { direction: "down" }) > 0);
        assert.equal(metricSum(t, "mailgate_build_info"), 1);
        assert.ok(metricSum(t, "process_resident_memory_bytes") > 0);

        const status = await (await fetch(`http://127.0.0.1:${sport}/status.json`)).json();
        assert.equal(status.logins.ok, 4);
        assert.equal(status.logins.failed, 2);
        assert.equal(status.accepted, 6);
        assert.equal(status.workers.length, workers === 1 ? 0 : 2);
        if (workers === 2) {
          // Each worker's share adds up to the total.
          assert.equal(
            status.workers.reduce((s: number, w: { logins: number }) => s + w.logins, 0),
            4,
          );
        }

        process.kill(mg.proc.pid!, "SIGHUP");
        await pollUntil(
          () => Promise.resolve(mg.stderr()),
          (e) => (e.match(/reconfiguring done/g) ?? []).length >= workers,
          20000,
          "the reload",
        );
        assert.match(await login(port, "good"), /^a1 OK/);
        await pollUntil(
          text,
          (t) =>
            metricSum(t, "mailgate_logins_total", { outcome: "ok" }) === 5 &&
            metricSum(t, "mailgate_sessions_ended_total") === 7,
          15000,
          "counters kept across the reload",
        );
      });

      it("Prometheus text (promtool) and OpenMetrics", async () => {
        const m = await metrics();
        assert.match(m.type, /^text\/plain; version=0\.0\.4/);
        // CI installs prometheus (.ci/run) and requires its peers; elsewhere promtool is optional.
        assert.ok(hasPromtool || !process.env.MAILGATE_REQUIRE_PEERS, "promtool is required");
        if (hasPromtool) {
          const r = spawnSync("promtool", ["check", "metrics"], {
            input: m.text,
            encoding: "utf8",
          });
          assert.equal(r.status, 0, r.stdout + r.stderr);
        }
        const om = await metrics("application/openmetrics-text; version=1.0.0");
        assert.match(om.type, /^application\/openmetrics-text/);
        assert.ok(om.text.endsWith("# EOF\n"));
        assert.match(om.text, /^mailgate_logins_created\{/m);
      });

      it("bad requests: 400 and close, 404, 405; keep-alive serves two in a row", async () => {
        assert.match(
          await raw(sport, "GARBAGE\r\n\r\n"),
          /^HTTP\/1\.1 400 Bad Request\r\n[^]*Connection: close/,
        );
        assert.match(
          await raw(sport, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
          /^HTTP\/1\.1 404 /,
        );
        const p = await raw(
          sport,
          "POST /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        assert.match(p, /^HTTP\/1\.1 405 [^]*Allow: GET, HEAD\r\n/);
        const two = await raw(
          sport,
          "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /status.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        assert.equal((two.match(/HTTP\/1\.1 200 OK/g) ?? []).length, 2);
        const page = await (await fetch(`http://127.0.0.1:${sport}/`)).text();
        assert.match(page, /<title>mailgate status<\/title>/);
      });
    });
  }
}
