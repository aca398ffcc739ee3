// Starting a proxy under test: nginx with its mail module, or mailgate under
// Deno, under Bun, as the Bun-compiled executable, or as a second executable
// (the "baseline", built from an older revision, for before/after), all on
// the same configuration file, each with its own prefix directory (pid file).

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { command } from "../../tests/helpers/mailgate.ts";
import { start, type Started } from "./processes.ts";
import { tryGreeting } from "./cold_start.ts";
import { NGINX } from "./install_nginx.ts";

export type Target = "nginx" | "deno" | "bun" | "binary" | "baseline";
export { NGINX };

/** The executables measured as "binary" (after) and "baseline" (before); "" when not measured. */
export interface Executables {
  binary: string;
  baseline: string;
}

/** A proxy that has not greeted within this long failed to start. */
const READY_MS = 30_000;
/** After the first greeting: time for the other workers to come up. */
const SETTLE_MS = 500;

/** argv for a target; `exes` holds the executables chosen for this benchmark run. */
export function proxyCommand(
  target: Target,
  prefix: string,
  conf: string,
  exes: Executables,
): [string, string[]] {
  const args = ["-p", prefix, "-c", conf];
  if (target === "nginx") return [NGINX, args];
  if (target === "binary" || target === "baseline") {
    if (exes[target] === "") throw new Error(`no executable given for target ${target}`);
    return [exes[target], args];
  }
  return command(target, args);
}

export async function startProxy(
  target: Target,
  dir: string,
  conf: string,
  exes: Executables,
  port: number,
): Promise<Started> {
  const prefix = join(dir, `prefix-${target}`);
  mkdirSync(prefix, { recursive: true });
  const [cmd, args] = proxyCommand(target, prefix, conf, exes);
  const p = start(target, cmd, args, { cwd: prefix });
  try {
    const t0 = Date.now();
    while (!(await tryGreeting(port))) {
      if (p.exited()) throw new Error(`${target} exited at start: ${p.stderr().slice(-2000)}`);
      if (Date.now() - t0 > READY_MS) {
        throw new Error(`${target} did not greet within ${READY_MS} ms`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return p;
  } catch (e) {
    await p.stop();
    throw e;
  }
}
