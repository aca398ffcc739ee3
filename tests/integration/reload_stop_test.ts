// A reload followed by a graceful stop, with a logged-in session alive
// through both (issue 13): after QUIT no new connection may be served, the
// live session keeps relaying, and once it ends every process exits.
// Under Deno with worker_processes 2 the reload used to leave listening
// sockets open through QUIT: new connections were still served and the
// processes never exited.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { TestClient } from "../helpers/client.ts";
import { MockAuth, ok } from "../helpers/mock_auth.ts";
import { MockImap } from "../helpers/mock_imap.ts";
import { startMailgate, targets } from "../helpers/mailgate.ts";
import { freePorts } from "../helpers/ports.ts";

/** Generous: the processes exit at once once idle; this only bounds a failure. */
const EXIT_BOUND_MS = 10_000;

function children(pid: number): number[] {
  const r = spawnSync("pgrep", ["-P", String(pid)]);
  return String(r.stdout).split("\n").filter(Boolean).map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** "refused" when the connect fails, else what the connection did within 1 s. */
function tryConnect(port: number): Promise<"refused" | "served" | "silent"> {
  return TestClient.open(port).then(
    async (c) => {
      try {
        await c.line(1000);
        return "served";
      } catch {
        return "silent";
      } finally {
        c.close();
      }
    },
    () => "refused",
  );
}

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

for (const target of targets()) {
  for (const workers of [1, 2]) {
    describe(`reload, then graceful stop (${target}, worker_processes ${workers})`, () => {
      let auth: MockAuth;
      let backend: MockImap;
      before(async () => {
        backend = await MockImap.start();
        auth = await MockAuth.start(() => ok("127.0.0.1", backend.port));
      });
      after(async () => {
        await auth.stop();
        await backend.stop();
      });

      it("QUIT after HUP: new connections refused, the live session relays, then every process exits", async () => {
        const [port] = await freePorts(1);
        const conf = `
worker_processes ${workers};
pid mg.pid;
error_log stderr info;
events { }
mail {
  auth_http 127.0.0.1:${auth.port}/auth;
  server { listen 127.0.0.1:${port}; protocol imap; }
}
`;
        const ready = workers === 1 ? /started, listening on/ : /master started with 2 worker processes/;
        const mg = await startMailgate(target, conf, {}, ready);
        try {
          const master = mg.proc.pid!;
          if (workers > 1) await until(() => children(master).length === workers, 5000, "the workers");
          const pids = [master, ...(workers > 1 ? children(master) : [])];

          const live = await TestClient.open(port);
          assert.equal(await live.line(), "* OK IMAP4 ready\r\n");
          live.write("a1 LOGIN u p\r\n");
          assert.equal(await live.line(), "a1 OK mock login ok\r\n");

          process.kill(master, "SIGHUP");
          // Every serving process logs the end of its reload.
          await until(() => count(mg.stderr(), /reconfiguring done/g) === workers, 20000, "the reload");
          const served = await TestClient.open(port);
          assert.equal(await served.line(), "* OK IMAP4 ready\r\n", "served after the reload");
          served.close();

          process.kill(master, "SIGQUIT");
          // Each serving process logs this once its listeners are closed (a
          // master logs it too, as it passes the signal on).
          const expected = workers === 1 ? 1 : workers + 1;
          await until(
            () => count(mg.stderr(), /gracefully shutting down/g) === expected,
            20000,
            `every process to stop accepting; stderr:\n${mg.stderr()}`,
          );
          for (let i = 0; i < 10; i++) {
            assert.equal(await tryConnect(port), "refused", `connection ${i + 1} after QUIT`);
          }

          live.write("a2 NOOP\r\n");
          assert.equal(await live.line(), "a2 OK noop\r\n", "the live session still relays");
          // The master, and the worker serving the session, wait for it.
          assert.ok(alive(master), "the master waits for the live session");
          if (workers > 1) assert.ok(pids.slice(1).some(alive), "the session's worker waits for it");
          live.write("a3 LOGOUT\r\n");
          assert.ok(await live.waitClose(5000), "the session ends");

          await until(() => !pids.some(alive), EXIT_BOUND_MS, `pids ${pids.join(" ")} to exit`);
          assert.equal(mg.proc.exitCode, 0);
          // Each worker ended by its own graceful exit, not by a signal: the
          // master's report must say so (Deno's ChildProcess.kill() made it
          // report the first signal ever sent, here SIGHUP).
          for (const w of pids.slice(1)) {
            assert.match(mg.stderr(), new RegExp(`worker process ${w} exited with code 0`));
          }
          assert.equal(existsSync(join(mg.dir, "mg.pid")), false, "pid file removed");
        } finally {
          await mg.stop("SIGKILL");
        }
      });
    });
  }
}
