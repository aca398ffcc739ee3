// Every process the benchmark starts goes through here, so every one of them
// is stopped by pid: the helper itself on stop(), and, on Ctrl-C or an
// error, all that are still running (stopAll()). A process is stopped with
// its whole tree, because nginx's workers outlive a killed master and
// mailgate's workers only notice a lost master after a poll.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import process from "node:process";
import { processTree } from "./proc_stats.ts";

/** A helper's stderr kept for error messages (the tail of it). */
const STDERR_KEEP = 16 * 1024;
/** SIGTERM, then this long for the tree to exit, then SIGKILL. */
const STOP_GRACE_MS = 5000;

export interface Started {
  label: string;
  proc: ChildProcess;
  pid: number;
  /** The next JSON line from stdout (helpers announce themselves this way). */
  next(timeoutMs: number, what?: string): Promise<Record<string, unknown>>;
  send(line: string): void;
  stderr(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

const running = new Set<Started>();

/** Process start time (field 22 of /proc/<pid>/stat), to tell a pid from a reused one. */
function startTime(pid: number): string | null {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, "latin1");
    return t.slice(t.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return null;
  }
}

/** Sends `signal` to each pid that is still the process it was when listed. */
function signalAll(tree: [number, string | null][], signal: NodeJS.Signals): void {
  for (const [pid, start] of tree) {
    if (start !== null && startTime(pid) === start) {
      try {
        process.kill(pid, signal);
      } catch { /* gone */ }
    }
  }
}

export function start(
  label: string,
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Started {
  const proc = spawn(cmd, args, {
    cwd: opts.cwd,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
  });
  // A failed spawn also emits "error" later; the throw below reports it.
  proc.once("error", () => {});
  if (proc.pid === undefined) throw new Error(`${label}: could not start ${cmd}`);
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let err = "";
  let exited = false;
  const wake = () => waiters.splice(0).forEach((w) => w());
  createInterface({ input: proc.stdout! }).on("line", (l) => {
    lines.push(l);
    wake();
  });
  proc.stderr!.on("data", (d) => {
    err = (err + d).slice(-STDERR_KEEP);
  });
  proc.stdin!.on("error", () => {});
  const exitP = new Promise<void>((r) =>
    proc.once("exit", () => {
      exited = true;
      wake();
      r();
    })
  );
  const self: Started = {
    label,
    proc,
    pid: proc.pid,
    async next(timeoutMs, what = "an answer") {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const l = lines.shift();
        if (l !== undefined) {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            continue; // not a protocol line (a runtime's own notice)
          }
        }
        if (exited) throw new Error(`${label} exited before ${what}; stderr: ${err.slice(-2000)}`);
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(
            `${label}: no ${what} within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`,
          );
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    send(line) {
      if (!exited) proc.stdin!.write(line + "\n");
    },
    stderr: () => err,
    exited: () => exited,
    async stop() {
      running.delete(self);
      const tree = processTree(proc.pid!).map((p) => [p, startTime(p)] as [number, string | null]);
      if (!exited) {
        proc.stdin!.end();
        signalAll(tree.slice(0, 1), "SIGTERM");
        let t: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([exitP, new Promise((r) => (t = setTimeout(r, STOP_GRACE_MS)))]);
        clearTimeout(t);
      }
      // Whatever is left of the tree (the root, if it ignored SIGTERM, and
      // any worker that outlived it) goes now.
      signalAll(tree, "SIGKILL");
      if (!exited) await exitP;
    },
  };
  running.add(self);
  return self;
}

/** Stops everything still running (used by finally blocks and signal handlers). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}
