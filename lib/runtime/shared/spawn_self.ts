// Worker processes for both runtimes: this same program started again
// (selfCommand) through node:child_process, loaded on first use (only
// worker_processes > 1 needs it).

import process from "node:process";
import { nodeChildProcess } from "../builtins.ts";
import type { ChildEvents, ChildHandle, SignalName } from "../types.ts";
import { selfCommand } from "./self_command.ts";

export function spawnSelf(args: string[], env: Record<string, string>, events: ChildEvents): ChildHandle {
  const [cmd, ...pre] = selfCommand();
  const proc = nodeChildProcess().spawn(cmd, [...pre, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  let exited = false;
  const exit = (code: number | null, signal: string | null) => {
    if (exited) return;
    exited = true;
    events.exit(code, signal);
  };
  proc.stdout!.on("data", (d: Uint8Array) => events.stdout(d));
  proc.on("exit", exit);
  // A process that could not be started (no executable, no memory) has no
  // exit event of its own; 127 is the shell's "could not run".
  proc.on("error", () => {
    if (proc.pid === undefined) exit(127, null);
  });
  const pid = proc.pid ?? 0;
  return {
    pid,
    // Not proc.kill(): Deno's ChildProcess.kill() sends only its first
    // signal (it returns early once `killed` is set) and closes the child's
    // pipes, so after a reload (HUP) the master's QUIT, TERM and USR2 never
    // reached the workers: they kept serving and never exited (issue 13).
    // Until the exit event the child is not reaped, so its pid is still ours.
    kill(signal: SignalName): void {
      if (exited || pid === 0) return;
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    },
  };
}
