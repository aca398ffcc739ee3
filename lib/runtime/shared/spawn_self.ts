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
  return {
    pid: proc.pid ?? 0,
    kill(signal: SignalName): void {
      try {
        proc.kill(signal);
      } catch {
        // already gone
      }
    },
  };
}
