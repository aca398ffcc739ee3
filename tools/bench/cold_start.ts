// Cold start: exec to the first greeting byte. The timing is
// tools/startup_time.ts's coldStart (spawn, then connect every 2 ms until a
// greeting byte arrives); coldStart itself stops the target with one SIGKILL
// of its pid, which leaves nginx's worker (and, for up to a second,
// mailgate's workers) alive and still listening on the port. Here the
// whole tree is stopped by pid (processes.ts) before the next start, so one
// run cannot greet on behalf of the next.

import { connect } from "node:net";
import { start } from "./processes.ts";

const POLL_MS = 2;
const LIMIT_MS = 20_000;

/** Resolves true when a greeting byte arrives, false on a refused/failed connect. */
export function tryGreeting(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once("data", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("close", () => resolve(false));
  });
}

/** Milliseconds from spawn to the first greeting byte on `port`. */
export async function coldStartTree(
  cmd: string,
  args: string[],
  port: number,
  cwd?: string,
): Promise<number> {
  const t0 = performance.now();
  const p = start("cold start", cmd, args, { cwd });
  try {
    for (let i = 0; i < LIMIT_MS / POLL_MS; i++) {
      if (await tryGreeting(port)) return performance.now() - t0;
      if (p.exited()) break;
      if (performance.now() - t0 > LIMIT_MS) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new Error(`${cmd} did not greet within ${LIMIT_MS} ms: ${p.stderr().slice(-1000)}`);
  } finally {
    await p.stop();
  }
}
