// The whole test suite, as the README's test command runs it:
//   1. type-check everything (deno check), and check the runtime boundary
//      (tools/check_boundary.ts: nothing outside lib/runtime/ reaches a runtime)
//   2. build the Bun single executable (build/mailgate)
//   3. unit tests under Deno and under Bun
//   4. integration tests (each scenario against Deno, Bun and the executable)
//   5. real-peer tests (Dovecot, curl, Python's mail clients) when installed;
//      MAILGATE_REQUIRE_PEERS=1 (set by .ci/run) makes missing peers a failure.
// Usage: deno run -A tools/test.ts [unit|integration|peers|check|build]...

import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import process from "node:process";

const ROOT = resolve(import.meta.dirname!, "..");
const BIN = join(ROOT, "node_modules", ".bin");
const deno = join(BIN, "deno");
const bun = join(BIN, "bun");

const steps: [string, string, string[]][] = [
  ["check", deno, ["check", "main.ts", "lib/", "tests/", "tools/"]],
  ["check", deno, ["run", "--allow-read", "tools/check_boundary.ts"]],
  ["build", bun, ["build", "--compile", "--bytecode", "--format=esm", "main.ts", "--outfile", "build/mailgate"]],
  ["unit", deno, ["test", "-A", "--unstable-net", "--no-check", "tests/unit/"]],
  ["unit", bun, ["test", "--timeout", "60000", "tests/unit/"]],
  ["integration", deno, ["test", "-A", "--unstable-net", "--no-check", "tests/integration/"]],
  ["peers", deno, ["test", "-A", "--unstable-net", "--no-check", "tests/peers/"]],
];

const wanted = process.argv.slice(2);
const results: [string, boolean, number][] = [];
for (const [name, cmd, args] of steps) {
  if (wanted.length && !wanted.includes(name)) continue;
  const label = `${name} (${cmd === bun ? "bun" : "deno"} ${args[0]})`;
  console.log(`\n=== ${label}: ${[cmd.replace(ROOT + "/", ""), ...args].join(" ")}`);
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, NO_COLOR: "1" } });
  results.push([label, r.status === 0, Date.now() - t0]);
  if (r.status !== 0 && (name === "check" || name === "build")) break;
}
console.log("\n=== summary");
for (const [label, ok, ms] of results) console.log(`${ok ? "PASS" : "FAIL"}  ${label}  ${(ms / 1000).toFixed(1)}s`);
const failed = results.some(([, ok]) => !ok);
process.exit(failed ? 1 : 0);
