// The status page in a real browser (issue 17): headless Chromium loads
// GET / from status_listen while sessions are held open and logins run,
// and the numbers its DOM shows after its own polling of /status.json must
// match /metrics. With worker_processes 2, so the page's numbers are the
// master's sums. The first target's run takes a screenshot: into a
// temporary directory, or with MAILGATE_UPDATE_SCREENSHOT=1 into
// docs/status_page.png (the README shows it), so a plain run leaves the
// tracked file alone.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok, refuse } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { ROOT, type Running, startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts } from "../helpers/ports.ts";
import { metricSum, pollUntil } from "../helpers/metrics_text.ts";

const CHROMIUM = ["chromium", "chromium-browser"].find((c) =>
  spawnSync(c, ["--version"]).status === 0
);
/** Bounds one browser run; it ends by itself once its virtual time budget is spent. */
const BROWSER_MS = 60_000;

/** Runs headless Chromium on `url`; resolves with its stdout. */
function chromium(args: string[], url: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), "mailgate-chromium-"));
  return new Promise((resolve, reject) => {
    const p = spawn(CHROMIUM!, [
      "--headless",
      "--no-sandbox", // CI runs as root
      "--disable-gpu",
      "--no-first-run",
      "--disable-extensions",
      `--user-data-dir=${profile}`,
      ...args,
      url,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), BROWSER_MS);
    p.on("exit", (code) => {
      clearTimeout(timer);
      rmSync(profile, { recursive: true, force: true });
      if (code === 0) resolve(out);
      else reject(new Error(`chromium exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

/** Where the first target's screenshot goes (a temporary directory unless the docs' copy is asked for). */
function screenshotPath(): { png: string; cleanup(): void } {
  if (process.env.MAILGATE_UPDATE_SCREENSHOT === "1") {
    return { png: join(ROOT, "docs", "status_page.png"), cleanup: () => {} };
  }
  const dir = mkdtempSync(join(tmpdir(), "mailgate-screenshot-"));
  return {
    png: join(dir, "status_page.png"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The text of the element with this id in a dumped DOM. */
function byId(dom: string, id: string): string {
  const m = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(dom);
  assert.ok(m, `#${id} in the page`);
  return m[1];
}

async function login(port: number, user: string, hold = false): Promise<TestClient> {
  const c = await TestClient.open(port);
  await c.line();
  c.write(`a1 LOGIN ${user} secret\r\n`);
  await c.line();
  if (!hold) {
    c.write("a2 LOGOUT\r\n");
    await c.waitClose(5000);
    c.close();
  }
  return c;
}

for (const [i, target] of targets().entries()) {
  // CI (MAILGATE_REQUIRE_PEERS=1, .ci/run installs chromium) fails rather than skips.
  const skip = CHROMIUM || process.env.MAILGATE_REQUIRE_PEERS ? false : "chromium not installed";
  describe(`status page in Chromium (${target})`, { skip }, () => {
    let auth: MockAuth;
    let backend: MockImap;
    let mg: Running;
    let port: number;
    let sport: number;
    const held: TestClient[] = [];
    let shot: ReturnType<typeof screenshotPath> | null = null;
    before(async () => {
      if (i === 0) shot = screenshotPath();
      backend = await MockImap.start();
      auth = await MockAuth.start((req) =>
        req.get("Auth-User") === "bad"
          ? refuse("Invalid login or password")
          : ok("127.0.0.1", backend.port)
      );
      assert.ok(CHROMIUM, "chromium is required (MAILGATE_REQUIRE_PEERS)");
      [port, sport] = await freePorts(2);
      const conf = `
worker_processes 2;
error_log stderr notice;
events { }
mail {
  status_listen 127.0.0.1:${sport};
  auth_http 127.0.0.1:${auth.port}/auth;
  server { listen 127.0.0.1:${port}; protocol imap; }
}
`;
      mg = await startMailgate(target, conf, {}, /master started with 2 worker processes/);
    });
    after(async () => {
      for (const c of held) c.close();
      await mg?.stop("SIGKILL");
      await auth?.stop();
      await backend?.stop();
      shot?.cleanup();
    });

    it("the page's numbers match /metrics", async () => {
      // The load: three sessions held open, and logins (some refused) while the browser polls.
      for (let n = 0; n < 3; n++) held.push(await login(port, "good", true));
      let running = true;
      let done = 0;
      const load = (async () => {
        // At least eight logins (two refused) whatever the timing: without
        // the screenshot step the load is stopped at once, and a run that
        // got fewer than four logins had no failure to show.
        for (let n = 0; (running || n < 8) && n < 3000; n++) {
          await login(port, n % 4 === 3 ? "bad" : "good");
          done++;
        }
      })();
      const url = `http://127.0.0.1:${sport}/`;
      try {
        if (i === 0) {
          // While the load runs, once the server has a few seconds of history for the charts.
          await pollUntil(
            () => fetch(`http://127.0.0.1:${sport}/status.json`).then((r) => r.json()),
            (s) => s.history.length >= 6,
            20000,
            "six history samples",
          );
          await chromium([
            "--window-size=1200,860",
            "--virtual-time-budget=2000",
            `--screenshot=${shot!.png}`,
          ], url);
        }
      } finally {
        running = false;
        await load;
      }
      assert.ok(done > 0, "the load ran");
      // The load is over: wait until the master's sums have every session (workers report once a second).
      const metrics = () => fetch(`http://127.0.0.1:${sport}/metrics`).then((r) => r.text());
      const t = await pollUntil(
        metrics,
        (t) =>
          metricSum(t, "mailgate_sessions_ended_total") === done &&
          metricSum(t, "mailgate_connections_open") === 3,
        20000,
        "the sums to settle",
      );
      const dom = await chromium(["--dump-dom", "--virtual-time-budget=3000"], url);
      assert.equal(
        Number(byId(dom, "open-imap")),
        metricSum(t, "mailgate_connections_open", { protocol: "imap" }),
      );
      assert.equal(Number(byId(dom, "open-imap")), 3);
      assert.equal(
        Number(byId(dom, "accepted")),
        metricSum(t, "mailgate_connections_accepted_total"),
      );
      assert.equal(
        Number(byId(dom, "logins-ok")),
        metricSum(t, "mailgate_logins_total", { outcome: "ok" }),
      );
      const failed = metricSum(t, "mailgate_logins_total") -
        metricSum(t, "mailgate_logins_total", { outcome: "ok" });
      assert.equal(Number(byId(dom, "logins-failed")), failed);
      assert.ok(failed > 0);
      assert.equal(
        Number(byId(dom, "auth-count")),
        metricSum(t, "mailgate_auth_duration_seconds_count"),
      );
      // Per worker: two rows, and the busiest backend is the mock.
      assert.equal(
        (dom.match(/<tbody id="workers">(.*?)<\/tbody>/s)?.[1].match(/<tr>/g) ?? []).length,
        2,
      );
      assert.match(dom, new RegExp(`<td>127\\.0\\.0\\.1:${backend.port}</td>`));
      // No secrets: the password the clients sent is nowhere on the page.
      assert.doesNotMatch(dom, /secret/);
      if (i === 0) {
        assert.ok(shot !== null, "a screenshot path");
        assert.ok(existsSync(shot.png) && statSync(shot.png).size > 10_000, "screenshot saved");
      }
    });
  });
}
