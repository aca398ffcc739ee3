// Runs a client program (curl, swaks, python3) without blocking the event
// loop, so servers living in the test process itself (mock backends, sinks)
// keep answering while it runs; spawnSync would freeze them and the client
// would hang until its own timeout. Bounded: killed by pid after timeoutMs.

import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";

export interface ClientResult {
  /** Exit code; null when killed (timeout). */
  status: number | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

/** Output kept per stream; a client printing more is a test failure, not a memory problem. */
export const MAX_CLIENT_OUTPUT = 64 << 20;

export function runClient(
  cmd: string,
  args: string[],
  opts: { input?: Uint8Array | string; timeoutMs?: number } = {},
): Promise<ClientResult> {
  const timeoutMs = opts.timeoutMs ?? 30000;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let outLen = 0;
    let err = "";
    let timedOut = false;
    p.on("error", reject);
    p.stdout!.on("data", (d: Buffer) => {
      if (outLen + d.length <= MAX_CLIENT_OUTPUT) out.push(d);
      outLen += d.length;
    });
    p.stderr!.on("data", (d: Buffer) => {
      if (err.length < MAX_CLIENT_OUTPUT) err += d.toString("latin1");
    });
    p.stdin!.on("error", () => {}); // a client that never reads its stdin
    const t = setTimeout(() => {
      timedOut = true;
      p.kill("SIGKILL");
    }, timeoutMs);
    p.on("close", (code) => {
      clearTimeout(t);
      resolve({ status: code, stdout: Buffer.concat(out), stderr: err, timedOut });
    });
    p.stdin!.end(opts.input ?? "");
  });
}
