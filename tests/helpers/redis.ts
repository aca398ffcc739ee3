// A real redis-server for tests: loopback, a port from ports.ts, its own
// temporary directory, no persistence (so a restart starts empty unless the
// test says otherwise), optional requirepass. Stopped by its pid; kill()
// (SIGKILL) and restart() on the same port play an outage.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { toolsAvailable } from "./haproxy.ts";

export interface RedisServer {
  port: number;
  url: string;
  /** Runs one redis-cli command against it; resolves with its stdout. */
  cli(...args: string[]): Promise<string>;
  /** SIGKILL, waits until it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after kill()). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function redisAvailable(): { ok: boolean; why: string } {
  return toolsAvailable("redis-server", "redis-cli");
}

/** How long redis-server may take to accept connections (a loaded machine). */
const START_MS = 15_000;

export async function startRedis(options: { password?: string } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "mailgate-redis-"));
  let proc: ChildProcess | null = null;

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const args = [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ];
      if (options.password) args.push("--requirepass", options.password);
      const p = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
      proc = p;
      let out = "";
      const timer = setTimeout(() => {
        p.kill("SIGKILL");
        reject(new Error(`redis-server did not start within ${START_MS} ms:\n${out}`));
      }, START_MS);
      p.stdout!.on("data", (b: Uint8Array) => {
        out += new TextDecoder().decode(b);
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.stderr!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
      p.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${out}`));
      });
    });

  const gone = (signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      const p = proc;
      proc = null;
      if (p === null || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once("exit", () => resolve());
      p.kill(signal);
    });

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cli: (...args) =>
      new Promise((resolve, reject) => {
        const auth = options.password ? ["-a", options.password, "--no-auth-warning"] : [];
        const c = spawn("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...auth, ...args], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        c.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
        c.once("exit", (code) =>
          code === 0
            ? resolve(out.trim())
            : reject(new Error(`redis-cli ${args.join(" ")}: exit ${code}`)));
      }),
    kill: () => gone("SIGKILL"),
    restart: start,
    stop: async () => {
      await gone("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
