// Cold start: time from exec to the first greeting byte, per target
// (deno, bun, the compiled executable). Median of N runs.
//   deno run -A tools/startup_time.ts [--runs=10] [--targets=deno,bun,binary]

import { spawn } from "node:child_process";
import { connect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { command, type Target } from "../tests/helpers/mailgate.ts";
import { freePort } from "../tests/helpers/ports.ts";

const arg = (name: string, def: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? def;
const RUNS = Number(arg("runs", "10"));
const TARGETS = arg("targets", "deno,bun,binary").split(",") as Target[];

function tryGreeting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("data", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Milliseconds from spawn to the first greeting byte (polling connect every 2 ms, bounded at 20 s). */
export async function coldStart(cmd: string, args: string[], port: number): Promise<number> {
  const t0 = performance.now();
  const p = spawn(cmd, args, { stdio: "ignore" });
  try {
    for (let i = 0; i < 10000; i++) {
      if (await tryGreeting(port)) return performance.now() - t0;
      if (performance.now() - t0 > 20000) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error(`${cmd} did not greet within 20 s`);
  } finally {
    p.kill("SIGKILL");
    await new Promise((r) => p.once("exit", r));
  }
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (import.meta.main) {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-start-"));
  try {
    const port = await freePort();
    const conf = join(dir, "m.conf");
    writeFileSync(conf, `error_log stderr error;\nevents { }\nmail {\n  auth_http 127.0.0.1:9/auth;\n  server { listen 127.0.0.1:${port}; protocol imap; }\n}\n`);
    console.log(`| target | median ms (${RUNS} runs) | min | max |\n|---|---|---|---|`);
    for (const t of TARGETS) {
      const [cmd, args] = command(t, ["-p", dir, "-c", conf]);
      const xs: number[] = [];
      for (let i = 0; i < RUNS; i++) xs.push(await coldStart(cmd, args, port));
      console.log(`| ${t} | ${median(xs).toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
