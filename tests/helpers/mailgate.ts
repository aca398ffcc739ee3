// Starts the real mailgate process under test: under Deno, under Bun, or as
// the Bun-compiled executable (build/mailgate, made by the test command).
// MAILGATE_TARGETS=deno,bun,binary picks the targets (default: all three).

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";

export type Target = "deno" | "bun" | "binary";

export const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../..");
const BIN = join(ROOT, "node_modules", ".bin");
export const BINARY = join(ROOT, "build", "mailgate");

export function targets(): Target[] {
  const env = process.env.MAILGATE_TARGETS;
  const list = (env ? env.split(",") : ["deno", "bun", "binary"]).map((s) => s.trim()).filter(Boolean);
  return list as Target[];
}

export function command(target: Target, args: string[]): [string, string[]] {
  switch (target) {
    case "deno":
      return [join(BIN, "deno"), ["run", "-A", "--unstable-net", join(ROOT, "main.ts"), ...args]];
    case "bun":
      return [join(BIN, "bun"), [join(ROOT, "main.ts"), ...args]];
    case "binary":
      if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run the test command (it builds it) or bun build --compile`);
      return [BINARY, args];
  }
}

export interface Running {
  target: Target;
  proc: ChildProcess;
  dir: string;
  conf: string;
  /** stderr so far. */
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Waits until stderr matches re. */
  waitLog(re: RegExp, ms?: number): Promise<string>;
}

/** Runs mailgate to completion (e.g. -t, -v) and returns its output. */
export function runOnce(target: Target, args: string[], opts: { input?: string; timeoutMs?: number } = {}) {
  const [cmd, argv] = command(target, args);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    p.stdout!.on("data", (d) => (stdout += d));
    p.stderr!.on("data", (d) => (stderr += d));
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`mailgate ${args.join(" ")} did not exit; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 20000);
    p.on("exit", (code) => {
      clearTimeout(t);
      // let the pipes drain
      setTimeout(() => resolve({ code, stdout, stderr }), 20);
    });
    p.stdin!.end(opts.input ?? "");
  });
}

export function tempDir(prefix = "mailgate-test-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Writes `confText` to a temp dir and starts mailgate on it; resolves once
 * the start-up notice is logged (the config must log to stderr at notice or
 * lower). Extra files: name -> content, written beside the config.
 */
export async function startMailgate(
  target: Target,
  confText: string,
  files: Record<string, string> = {},
  ready = /started, listening on/,
  opts: { fdLimit?: number } = {},
): Promise<Running> {
  const { dir } = tempDir();
  const conf = join(dir, "mailgate.conf");
  writeFileSync(conf, confText);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  let [cmd, argv] = command(target, ["-p", dir, "-c", conf]);
  if (opts.fdLimit !== undefined) {
    // A lower RLIMIT_NOFILE for this process only; exec keeps the pid.
    argv = ["-c", `ulimit -n ${opts.fdLimit} && exec "$0" "$@"`, cmd, ...argv];
    cmd = "sh";
  }
  const proc = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  let err = "";
  const waiters: (() => void)[] = [];
  proc.stderr!.on("data", (d) => {
    err += d;
    for (const w of waiters.splice(0)) w();
  });
  proc.stdout!.on("data", () => {});
  let exited: number | null | undefined;
  const exitP = new Promise<number | null>((r) =>
    proc.on("exit", (code) => {
      exited = code;
      for (const w of waiters.splice(0)) w();
      r(code);
    })
  );
  const waitLog = async (re: RegExp, ms = 20000): Promise<string> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(err);
      if (m) return m[0];
      if (exited !== undefined) throw new Error(`mailgate exited (${exited}) before ${re}; stderr:\n${err}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${re}; stderr:\n${err}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  const running: Running = {
    target,
    proc,
    dir,
    conf,
    stderr: () => err,
    waitLog,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (exited === undefined) {
        proc.kill(signal);
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exitP;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
      return exited ?? null;
    },
  };
  try {
    await waitLog(ready);
  } catch (e) {
    await running.stop("SIGKILL");
    throw e;
  }
  return running;
}
