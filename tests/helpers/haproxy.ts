// Starts a private HAProxy on loopback as a real PROXY protocol sender:
// the caller gives the frontend/backend sections, this adds the global and
// defaults sections (mode tcp, bounded timeouts) and a probe listener used
// to know when it is serving. Runs in the foreground (-db), stopped by pid.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { tempDir } from "./mailgate.ts";
import { freePort } from "./ports.ts";

/** Bound on HAProxy's start-up (config parse + binds). */
const START_MS = 10000;
/** Bound on its exit after SIGTERM before SIGKILL. */
const STOP_MS = 5000;

export interface HAProxy {
  dir: string;
  /** stderr so far (configuration warnings, alerts). */
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Whether client tools that need no root (haproxy, openssl) are installed;
 * with MAILGATE_REQUIRE_PEERS=1 a missing one is an error, as in
 * peersAvailable (which also requires root, for Dovecot and Postfix).
 */
export function toolsAvailable(...tools: string[]): { ok: boolean; why: string } {
  for (const t of tools) {
    if (spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0) {
      const why = `${t} is not installed (apt-get install as .ci/run does)`;
      if (process.env.MAILGATE_REQUIRE_PEERS === "1") throw new Error(why);
      return { ok: false, why };
    }
  }
  return { ok: true, why: "" };
}

/** Whether a TCP connect to 127.0.0.1:port succeeds. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * `sections`: HAProxy configuration text (frontends, backends, listens).
 * `files`: extra files written into HAProxy's temp dir (e.g. a combined
 * certificate + key PEM for `bind ... ssl crt`); `{dir}` in `sections` is
 * replaced by that directory.
 */
export async function startHAProxy(sections: string, files: Record<string, string> = {}): Promise<HAProxy> {
  const { dir, cleanup } = tempDir("mailgate-haproxy-");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const probe = await freePort();
  const cfg = `
global
  maxconn 256
  # Without this HAProxy binds with SO_REUSEPORT and silently shares a port
  # another HAProxy (a parallel test run) already listens on; the kernel then
  # splits connections between the two, and a client landing on the other
  # one waits 3 s (three retries, 1 s apart, to that run's dead backend).
  # With it, such a clash is a start-up error. (Issue 13, the IPv6 step.)
  noreuseport

defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s

# Accepts and closes (no server): answers once HAProxy is serving.
listen probe
  bind 127.0.0.1:${probe}

${sections.replaceAll("{dir}", dir)}
`;
  writeFileSync(join(dir, "haproxy.cfg"), cfg);
  const proc: ChildProcess = spawn("haproxy", ["-f", join(dir, "haproxy.cfg"), "-db"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), STOP_MS);
      await exited;
      clearTimeout(t);
    }
    cleanup();
  };
  const deadline = Date.now() + START_MS;
  while (!(await accepts(probe))) {
    if (Date.now() > deadline || proc.exitCode !== null) {
      await stop();
      throw new Error(`haproxy did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { dir, stderr: () => err, stop };
}
